"""Voice-activity detection: the Silero VAD v6 16 kHz network in plain PyTorch.

The network is a native re-implementation of the model that the `silero-vad` pip package runs
(`silero_vad.load_silero_vad()`), so that polyasr needs neither TorchScript nor onnxruntime.
Weights come from the package's own data folder; nothing is downloaded.

Weight source: `silero_vad_16k_op15.onnx`, read as plain protobuf (no pickle, no code
execution). The package also ships `silero_vad_16k.safetensors`, but in silero-vad 6.2.3 that
file holds *different* weights from the TorchScript/ONNX models the package actually uses
(probabilities differ by up to ~0.5 on real speech), so it cannot reproduce the reference.

Streaming semantics reproduced exactly: the audio is cut into 512-sample windows (the last one
zero-padded); each window is prefixed with the 64 samples preceding it (zeros for the first),
and the LSTM state is carried from window to window. Everything before the LSTM depends on one
window only, so it runs batched over many windows; only the LSTM runs sequentially.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import single_thread
from ..errors import ModelError
from ..types import VadOptions

SAMPLE_RATE = 16000
WINDOW = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples carried over from the previous window
_N_FFT = 256
_HOP = 128
_BINS = _N_FFT // 2 + 1
_BLOCK = 4096  # windows per batched front-end pass (~2 min of audio, bounded memory)
_WEIGHTS_FILE = "silero_vad_16k_op15.onnx"
DEFAULTS = VadOptions()

# ONNX initializer name -> SileroVAD parameter/buffer name.
_WEIGHT_NAMES = {
    "model.stft.forward_basis_buffer": "stft_basis",
    **{f"model.encoder.{i}.reparam_conv.weight": f"encoder.{2 * i}.weight" for i in range(4)},
    **{f"model.encoder.{i}.reparam_conv.bias": f"encoder.{2 * i}.bias" for i in range(4)},
    "model.decoder.rnn.weight_ih": "lstm.weight_ih_l0",
    "model.decoder.rnn.weight_hh": "lstm.weight_hh_l0",
    "model.decoder.rnn.bias_ih": "lstm.bias_ih_l0",
    "model.decoder.rnn.bias_hh": "lstm.bias_hh_l0",
    "model.decoder.decoder.2.weight": "head.weight",
    "model.decoder.decoder.2.bias": "head.bias",
}

LSTMState = tuple[torch.Tensor, torch.Tensor]


class SileroVAD(nn.Module):
    """Silero VAD v6 (16 kHz): STFT magnitude -> 4 conv layers -> LSTM -> speech probability."""

    def __init__(self) -> None:
        super().__init__()
        # Real and imaginary DFT rows (Hann-windowed) as one strided convolution.
        self.register_buffer("stft_basis", torch.zeros(2 * _BINS, 1, _N_FFT))
        self.encoder = nn.Sequential(
            nn.Conv1d(_BINS, 128, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv1d(128, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(64, 128, 3, stride=1, padding=1),
            nn.ReLU(),
        )
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.head = nn.Conv1d(128, 1, 1)

    @staticmethod
    def windows(audio: torch.Tensor) -> torch.Tensor:
        """Cut (T,) audio into (N, 576) context-prefixed windows, N = ceil(T / 512)."""
        n = math.ceil(audio.shape[0] / WINDOW)
        padded = F.pad(audio, (CONTEXT, n * WINDOW - audio.shape[0]))
        return padded.unfold(0, CONTEXT + WINDOW, WINDOW)

    def features(self, windows: torch.Tensor) -> torch.Tensor:
        """Per-window encoder features: (N, 576) -> (N, 128); independent across windows."""
        x = F.pad(windows.unsqueeze(1), (0, _N_FFT // 4), mode="reflect")  # (N, 1, 640)
        x = F.conv1d(x, self.stft_basis, stride=_HOP)  # (N, 258, 4)
        x = torch.sqrt(x[:, :_BINS] ** 2 + x[:, _BINS:] ** 2)  # (N, 129, 4) magnitude
        return self.encoder(x).squeeze(-1)  # (N, 128, 1) -> (N, 128)

    def forward(
        self, windows: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """Speech probability per window: (N, 576) -> (N,), carrying the LSTM state (1, 1, 128)."""
        h, state = self.lstm(self.features(windows).unsqueeze(0), state)  # (1, N, 128)
        logits = self.head(h[0].relu().unsqueeze(-1))  # (N, 1, 1)
        return torch.sigmoid(logits).flatten(), state


def _weights_path() -> Path:
    """The ONNX file inside the installed silero_vad package.

    Found via its import spec, not `importlib.resources.files("silero_vad.data")`: importing
    `silero_vad` runs `torch.set_num_threads(1)` for the whole process.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("Silero VAD weights not found: the 'silero-vad' package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / _WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"Silero VAD weights not found: {path}")
    return path


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _protobuf_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs of one protobuf message."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _onnx_initializers(path: Path) -> dict[str, torch.Tensor]:
    """Float32 initializers of an ONNX graph (ModelProto.graph.initializer) by name."""
    tensors: dict[str, torch.Tensor] = {}
    graphs = [v for n, v in _protobuf_fields(path.read_bytes()) if n == 7]  # ModelProto.graph
    for number, tensor in _protobuf_fields(graphs[0]) if graphs else []:
        if number != 5:  # GraphProto.initializer
            continue
        dims: list[int] = []
        name, raw, dtype = "", b"", 0
        for field, value in _protobuf_fields(tensor):
            if field == 1:  # dims (plain or packed int64)
                if isinstance(value, int):
                    dims.append(value)
                else:
                    pos = 0
                    while pos < len(value):
                        dim, pos = _varint(value, pos)
                        dims.append(dim)
            elif field == 2:
                dtype = value
            elif field == 8:
                name = value.decode()
            elif field == 9:
                raw = value
        if dtype == 1 and raw:  # FLOAT stored as raw little-endian bytes
            array = np.frombuffer(raw, dtype="<f4").reshape(dims)
            tensors[name] = torch.from_numpy(array.copy())
    return tensors


@lru_cache(maxsize=1)
def load_vad() -> SileroVAD:
    """The process-wide Silero VAD model (float32, CPU, eval mode), created on first use."""
    path = _weights_path()
    try:
        tensors = _onnx_initializers(path)
    except (ValueError, IndexError) as exc:
        raise ModelError(f"cannot read Silero VAD weights from {path}: {exc}") from exc
    missing = sorted(set(_WEIGHT_NAMES) - set(tensors))
    if missing:
        raise ModelError(f"Silero VAD weights incomplete in {path}: missing {missing}")
    model = SileroVAD()
    model.load_state_dict({_WEIGHT_NAMES[k]: tensors[k] for k in _WEIGHT_NAMES})
    return model.eval()


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Speech probability of each 512-sample window of 16 kHz mono audio, as float32 (N,).

    N = ceil(len(audio) / 512); the last window is zero-padded, as in the reference.
    """
    model = load_vad()
    samples = torch.as_tensor(np.asarray(audio, dtype=np.float32).reshape(-1))
    if samples.numel() == 0:
        return np.zeros(0, dtype=np.float32)
    windows = SileroVAD.windows(samples)
    probs: list[torch.Tensor] = []
    state: LSTMState | None = None
    with torch.inference_mode(), single_thread():
        for start in range(0, windows.shape[0], _BLOCK):
            block, state = model(windows[start : start + _BLOCK], state)
            probs.append(block)
    return torch.cat(probs).numpy()


def speech_regions(audio: np.ndarray, vad: VadOptions = DEFAULTS) -> list[tuple[float, float]]:
    """Speech regions of 16 kHz mono audio as (start_s, end_s), ordered and non-overlapping.

    Same rules as `silero_vad.get_speech_timestamps` with the settings of `vad` (speech starts
    at p >= threshold, ends after min_silence_s below threshold - 0.15; shorter than
    min_speech_s dropped; padded by speech_pad_s). Times are exact sample positions / 16000,
    not rounded to 0.1 s as the reference's `return_seconds=True` does.
    """
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    regions = regions_from_probabilities(speech_probabilities(samples), len(samples), vad)
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in regions]


def regions_from_probabilities(
    probs: np.ndarray,
    num_samples: int,
    vad: VadOptions = DEFAULTS,
    max_speech_s: float | None = None,
    neg_threshold: float | None = None,
    min_silence_at_max_speech_s: float = 0.098,
) -> list[tuple[int, int]]:
    """Speech regions in samples from per-window probabilities (see `speech_regions`);
    regions longer than `max_speech_s` are split at their longest inner silence, else cut hard.

    A port of `silero_vad.get_speech_timestamps_from_probs` (default path,
    `use_max_poss_sil_at_max_speech=True`), kept sample-exact so it can be checked against it.
    """
    threshold = vad.threshold
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    min_speech = SAMPLE_RATE * vad.min_speech_s
    min_silence = SAMPLE_RATE * vad.min_silence_s
    min_silence_at_max = SAMPLE_RATE * min_silence_at_max_speech_s
    pad = SAMPLE_RATE * vad.speech_pad_s
    max_speech = math.inf if max_speech_s is None else SAMPLE_RATE * max_speech_s - WINDOW - 2 * pad

    speeches: list[list[int]] = []  # [start, end] in samples, before padding
    start: int | None = None  # start of the current region; None while not in speech
    temp_end = 0  # where the current silence began (0: none yet)
    possible_ends: list[tuple[int, int]] = []  # (silence start, length) inside the region
    for i, prob in enumerate(probs.tolist()):
        sample = WINDOW * i
        if prob >= threshold and temp_end:
            if sample - temp_end > min_silence_at_max:
                possible_ends.append((temp_end, sample - temp_end))
            temp_end = 0
        if prob >= threshold and start is None:
            start = sample
            continue
        if start is not None and sample - start > max_speech:
            if possible_ends:  # cut at the longest silence seen inside the region
                cut, length = max(possible_ends, key=lambda end: end[1])
                speeches.append([start, cut])
                # The reference's condition `next_start < prev_end + cur_sample`.
                start = cut + length if length < sample else None
            else:  # no silence to cut at: cut hard here
                speeches.append([start, sample])
                start = None
            temp_end = 0
            possible_ends = []
            if start is None:
                continue
        if prob < neg_threshold and start is not None:
            if not temp_end:
                temp_end = sample
            if sample - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                speeches.append([start, temp_end])
            start = None
            temp_end = 0
            possible_ends = []
    if start is not None and num_samples - start > min_speech:
        speeches.append([start, num_samples])

    for i, speech in enumerate(speeches):
        if i == 0:
            speech[0] = int(max(0, speech[0] - pad))
        if i == len(speeches) - 1:
            speech[1] = int(min(num_samples, speech[1] + pad))
            continue
        following = speeches[i + 1]
        gap = following[0] - speech[1]
        if gap < 2 * pad:  # share a short gap between the two regions
            speech[1] += int(gap // 2)
            following[0] = int(max(0, following[0] - gap // 2))
        else:
            speech[1] = int(min(num_samples, speech[1] + pad))
            following[0] = int(max(0, following[0] - pad))
    return [(begin, end) for begin, end in speeches]
