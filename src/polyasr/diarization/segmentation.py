"""pyannote's speaker-segmentation network (segmentation-3.0, "PyanNet") in plain PyTorch.

The checkpoint is pyannote's Lightning file; it is read with the project's safe unpickler
(pyannote's task classes become inert stand-ins) and its `state_dict` keys are this module's
parameter names. The network, in data-flow order, on 10 s windows of 16 kHz mono audio:

- SincNet: instance norm of the waveform; 80 parametrized sinc band-pass filters (40 cosine,
  40 sine, 251 taps, stride 10) and |.|; then two 5-tap convolutions (80 -> 60 -> 60), each
  stage followed by max-pooling (3, stride 3), instance norm and leaky ReLU;
- a 4-layer bidirectional LSTM (hidden 128 per direction);
- 2 linear layers (128) with leaky ReLU and a classifier with log-softmax over the powerset
  classes: no speaker, {1}, {2}, {3}, {1,2}, {1,3}, {2,3} (3 local speakers, at most 2 at once).

A 10 s window gives 589 frames; frame i covers samples [270 i, 270 i + 991) (16.875 ms step,
61.9 ms receptive field), as pyannote's `model.receptive_field` says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..devices import resolve_device, single_thread
from ..errors import ModelError
from ..models.linear import Linear
from ..models.materialize import materialize
from ..safe_pickle import load_pickle, plain

SAMPLE_RATE = 16000
SINC_FILTERS = 80
SINC_KERNEL = 251
MIN_LOW_HZ = 50.0
MIN_BAND_HZ = 50.0
POOL = 3
CONV_KERNEL = 5
CONV_CHANNELS = 60
SINC_BLOCK = 2
"""Windows that go through SincNet together: its first activations (80 x 15975 floats a
window) stay in cache, twice as fast on CPU as a batch of 32 at once."""
LSTM_BLOCK = 16
"""Windows that go through the LSTM together (faster per window than 32 or more on CPU)."""


@dataclass(frozen=True)
class SegmentationConfig:
    """The architecture (PyanNet's hyper-parameters) and the task (powerset of speakers)."""

    sinc_stride: int = 10
    lstm_hidden: int = 128
    lstm_layers: int = 4
    bidirectional: bool = True
    linear_hidden: int = 128
    linear_layers: int = 2
    num_speakers: int = 3
    max_overlap: int = 2
    window_s: float = 10.0

    @property
    def num_classes(self) -> int:
        """Powerset classes: every set of at most `max_overlap` of the local speakers."""
        return sum(math.comb(self.num_speakers, k) for k in range(self.max_overlap + 1))

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(kernel, stride) of every strided operation from samples to frames."""
        sinc, pool, conv = (SINC_KERNEL, self.sinc_stride), (POOL, POOL), (CONV_KERNEL, 1)
        return [sinc, pool, conv, pool, conv, pool]


@dataclass(frozen=True)
class FrameTiming:
    """Where output frames lie in a window, in seconds (pyannote's `model.receptive_field`):
    frame i covers [start + i * step, start + i * step + duration)."""

    start: float
    duration: float
    step: float

    def middle(self, frame: int | Tensor) -> Any:
        """The centre of frame `frame` (an index or a tensor of indices)."""
        return self.start + frame * self.step + self.duration / 2


def num_frames(config: SegmentationConfig, num_samples: int) -> int:
    """Output frames for a window of `num_samples` samples (unpadded convolutions/pools)."""
    for kernel, stride in config.layers:
        num_samples = 1 + (num_samples - kernel) // stride
    return max(num_samples, 0)


def frame_timing(config: SegmentationConfig) -> FrameTiming:
    """The receptive field of one frame and the step between frames, as pyannote computes it."""

    def size(frames: int) -> int:
        for kernel, stride in reversed(config.layers):
            frames = kernel + (frames - 1) * stride
        return frames

    centre = 0
    for kernel, stride in reversed(config.layers):
        centre = centre * stride + (kernel - 1) // 2
    field = size(1)
    start = centre - (field - 1) / 2
    return FrameTiming(start / SAMPLE_RATE, field / SAMPLE_RATE, (size(2) - field) / SAMPLE_RATE)


@lru_cache(maxsize=8)
def powerset_mapping(num_speakers: int = 3, max_overlap: int = 2) -> Tensor:
    """[classes, speakers]: row k is 1 for the speakers in powerset class k, the sets ordered by
    size and then lexicographically (pyannote's `Powerset.mapping`)."""
    sets = [s for n in range(max_overlap + 1) for s in combinations(range(num_speakers), n)]
    mapping = torch.zeros(len(sets), num_speakers)
    for k, members in enumerate(sets):
        mapping[k, list(members)] = 1.0
    return mapping


def powerset_to_speakers(log_probs: Tensor, num_speakers: int = 3, max_overlap: int = 2) -> Tensor:
    """Hard speaker activity [..., frames, speakers] (0.0 / 1.0) of the most likely powerset
    class of every frame: pyannote's `Powerset.to_multilabel(log_probs, soft=False)`."""
    mapping = powerset_mapping(num_speakers, max_overlap)
    if log_probs.shape[-1] != mapping.shape[0]:
        raise ValueError(
            f"{log_probs.shape[-1]} powerset classes, {num_speakers} speakers with at most "
            f"{max_overlap} at once have {mapping.shape[0]}"
        )
    return mapping.to(log_probs.device)[log_probs.argmax(dim=-1)]


class SincFilterbank(nn.Module):
    """asteroid's `ParamSincFB`: band-pass filters from learnt low cut-offs and bandwidths, a
    cosine (even) and a sine (odd) filter per band, built from half a Hamming window."""

    def __init__(self, n_filters: int = SINC_FILTERS, kernel: int = SINC_KERNEL) -> None:
        super().__init__()
        self.n_filters, self.kernel = n_filters, kernel
        self.low_hz_ = nn.Parameter(torch.empty(n_filters // 2, 1))
        self.band_hz_ = nn.Parameter(torch.empty(n_filters // 2, 1))
        self.register_buffer("window_", torch.empty(kernel // 2))
        self.register_buffer("n_", torch.empty(1, kernel // 2))  # 2 pi t / sample rate, t < 0

    def filters(self) -> Tensor:
        """[n_filters, 1, kernel], computed with asteroid's operations in its order."""
        low = MIN_LOW_HZ + torch.abs(self.low_hz_)
        high = torch.clamp(
            low + MIN_BAND_HZ + torch.abs(self.band_hz_), MIN_LOW_HZ, SAMPLE_RATE / 2
        )
        band = (high - low)[:, 0]
        ft_low, ft_high = low @ self.n_, high @ self.n_
        half_n = self.n_ / 2
        cos_left = ((torch.sin(ft_high) - torch.sin(ft_low)) / half_n) * self.window_
        sin_left = ((torch.cos(ft_low) - torch.cos(ft_high)) / half_n) * self.window_
        cos = torch.cat([cos_left, 2 * band.view(-1, 1), torch.flip(cos_left, dims=[1])], dim=1)
        sin = torch.cat(
            [sin_left, torch.zeros_like(band.view(-1, 1)), -torch.flip(sin_left, dims=[1])], dim=1
        )
        scale = 2 * band[:, None]
        shape = (self.n_filters // 2, 1, self.kernel)
        return torch.cat([(cos / scale).view(shape), (sin / scale).view(shape)], dim=0)


class SincConv(nn.Module):
    """The first SincNet layer: the filterbank as a strided convolution of the waveform."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.filterbank = SincFilterbank()

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.filterbank.filters(), stride=self.stride)


class SincNet(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList(
            [
                SincConv(stride),
                nn.Conv1d(SINC_FILTERS, CONV_CHANNELS, CONV_KERNEL),
                nn.Conv1d(CONV_CHANNELS, CONV_CHANNELS, CONV_KERNEL),
            ]
        )
        self.pool1d = nn.ModuleList([nn.MaxPool1d(POOL, stride=POOL) for _ in range(3)])
        self.norm1d = nn.ModuleList(
            [
                nn.InstanceNorm1d(n, affine=True)
                for n in (SINC_FILTERS, CONV_CHANNELS, CONV_CHANNELS)
            ]
        )

    def forward(self, waveforms: Tensor) -> Tensor:
        """[B, 1, samples] -> [B, 60, frames]."""
        x = self.wav_norm1d(waveforms)
        for c, (conv, pool, norm) in enumerate(zip(self.conv1d, self.pool1d, self.norm1d)):
            x = conv(x)
            if c == 0:
                x = x.abs_()
            x = F.leaky_relu(norm(pool(x)), inplace=True)
        return x


class Segmentation(nn.Module):
    """PyanNet: `model(windows [B, 1, samples])` -> log-probabilities [B, frames, classes] over
    the powerset classes (see `powerset_to_speakers`). `timing` places the frames in a window,
    `window_samples` is the window the model was trained on (10 s)."""

    def __init__(self, config: SegmentationConfig) -> None:
        super().__init__()
        self.config = config
        self.sincnet = SincNet(config.sinc_stride)
        self.lstm = nn.LSTM(
            CONV_CHANNELS,
            config.lstm_hidden,
            num_layers=config.lstm_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
        )
        width = config.lstm_hidden * (2 if config.bidirectional else 1)
        sizes = [width] + [config.linear_hidden] * config.linear_layers
        self.linear = nn.ModuleList([Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        self.classifier = Linear(sizes[-1], config.num_classes)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_samples(self) -> int:
        return round(self.config.window_s * SAMPLE_RATE)

    @property
    def timing(self) -> FrameTiming:
        return frame_timing(self.config)

    def num_frames(self, num_samples: int) -> int:
        return num_frames(self.config, num_samples)

    def forward(self, windows: Tensor) -> Tensor:
        if windows.dim() == 2:
            windows = windows[:, None]
        if windows.dim() != 3 or windows.shape[1] != 1:
            raise ValueError(f"expected windows [batch, 1, samples], got {list(windows.shape)}")
        if not len(windows):
            frames = self.num_frames(windows.shape[-1])
            return windows.new_zeros(0, frames, self.config.num_classes)
        return torch.cat([self._forward(part) for part in windows.split(LSTM_BLOCK)])

    def _forward(self, windows: Tensor) -> Tensor:
        x = torch.cat([self.sincnet(part) for part in windows.split(SINC_BLOCK)])
        with single_thread():
            x, _ = self.lstm(x.transpose(1, 2))
        for layer in self.linear:
            x = F.leaky_relu(layer(x))
        return F.log_softmax(self.classifier(x), dim=-1)

    def to_speakers(self, log_probs: Tensor) -> Tensor:
        """Hard activity [B, frames, speakers] of `self(windows)` (see `powerset_to_speakers`)."""
        return powerset_to_speakers(log_probs, self.config.num_speakers, self.config.max_overlap)


def _mapping(value: Any, what: str, where: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelError(f"{where}: its {what} is not a mapping")
    return value


def config_from_checkpoint(data: dict[str, Any], where: Path) -> SegmentationConfig:
    """The architecture from `hyper_parameters` (PyanNet's defaults for what it omits) and the
    powerset from the task specifications under `pyannote.audio`."""
    if "hyper_parameters" not in data or "pyannote.audio" not in data:
        raise ModelError(
            f"{where} is not a pyannote segmentation checkpoint (no hyper_parameters or "
            "pyannote.audio section)"
        )
    hparams = _mapping(plain(data["hyper_parameters"]), "hyper_parameters", where)
    meta = _mapping(plain(data["pyannote.audio"]), "pyannote.audio section", where)
    architecture = _mapping(meta.get("architecture"), "architecture", where).get("class")
    if architecture != "PyanNet":
        raise ModelError(f"{where}: unsupported architecture {architecture!r} (expected PyanNet)")
    specs = _mapping(meta.get("specifications"), "task specifications", where)
    sincnet = _mapping(hparams.get("sincnet"), "sincnet configuration", where)
    lstm = _mapping(hparams.get("lstm"), "lstm configuration", where)
    linear = _mapping(hparams.get("linear"), "linear configuration", where)
    try:
        rates = {int(hparams.get("sample_rate", SAMPLE_RATE))}
        rates.add(int(sincnet.get("sample_rate", SAMPLE_RATE)))
        channels = int(hparams.get("num_channels", 1))
        classes = specs.get("classes")
        max_overlap = specs.get("powerset_max_classes")
        if not isinstance(classes, list) or not classes or max_overlap is None:
            raise ModelError(
                f"{where}: the task is not a speaker powerset (multi-label models are not "
                "supported)"
            )
        config = SegmentationConfig(
            sinc_stride=int(sincnet.get("stride", 10)),
            lstm_hidden=int(lstm.get("hidden_size", 128)),
            lstm_layers=int(lstm.get("num_layers", 2)),
            bidirectional=bool(lstm.get("bidirectional", True)),
            linear_hidden=int(linear.get("hidden_size", 128)),
            linear_layers=int(linear.get("num_layers", 2)),
            num_speakers=len(classes),
            max_overlap=int(max_overlap),
            window_s=float(specs.get("duration", 10.0)),
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: invalid model configuration ({exc})") from None
    if rates != {SAMPLE_RATE} or channels != 1:
        raise ModelError(f"{where}: only 16 kHz mono models are supported")
    if not lstm.get("monolithic", True):
        raise ModelError(f"{where}: only the monolithic LSTM layout is supported")
    if config.linear_layers < 1 or config.lstm_layers < 1 or config.sinc_stride < 1:
        raise ModelError(f"{where}: unsupported layer counts or stride")
    if not 1 <= config.max_overlap <= config.num_speakers:
        raise ModelError(f"{where}: invalid powerset size {config.max_overlap}")
    return config


def load_segmentation(path: str | Path, device: str | torch.device = "cpu") -> Segmentation:
    """The segmentation model in pyannote's checkpoint `path` (e.g. segmentation-3.0's
    `pytorch_model.bin`), in eval mode, fp32 on `device`. Raises `ModelError` (one line) for a
    missing, hostile, truncated, incomplete or different file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no segmentation model file at {path}")
    data = load_pickle(path, str(path), inert=("pyannote",))
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ModelError(f"{path} is not a pyannote segmentation checkpoint (no state_dict)")
    config = config_from_checkpoint(data, path)
    state = {str(k): v for k, v in data["state_dict"].items() if isinstance(v, Tensor)}
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return materialize(
        lambda: Segmentation(config), state, dev, torch.float32, f"the weights in {path}"
    )


def sliding_windows(samples: Tensor, window: int, step: int) -> Tensor:
    """[chunks, 1, window] windows of mono `samples` [N] every `step` samples, the last one
    zero-padded when the audio does not end on a window (pyannote's `Inference.slide`)."""
    n = samples.shape[-1]
    samples = samples.reshape(1, n)
    if n >= window:
        chunks = samples.unfold(1, window, step).transpose(0, 1)
    else:
        chunks = samples.new_zeros(0, 1, window)
    count = chunks.shape[0]
    if n < window or (n - window) % step:
        last = F.pad(samples[:, count * step :], (0, window - (n - count * step)))
        chunks = torch.cat([chunks, last[None]])
    return chunks
