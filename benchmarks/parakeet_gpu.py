"""Parakeet TDT on a CUDA GPU: fixture parity and real-size speed (random weights).

Runs on a bare GPU machine from the repository root (no audio decoding needed):

    PYTHONPATH=src python benchmarks/parakeet_gpu.py

Prints the errors of the native model on CUDA (fp32, TF32 off) against the committed NeMo
fixture (tests/golden/parakeet-tdt-tiny), then, for a real-size 0.6B TDT with random weights
whose blank bias is set to emit about 4 tokens per second, the time to encode 60 s, the greedy
TDT decoding time, and the RTF of whole transcriptions (one 60 s piece, and a batch of 16),
in float32 and float16 (bfloat16 rounding flips the near-tied decisions of random weights,
so its token count and timing say nothing).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from benchlib import table

import polyasr
from polyasr.models.parakeet.decoding import tdt_greedy
from polyasr.models.parakeet.model import ParakeetDims, ParakeetTDT

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "golden" / "parakeet-tdt-tiny"
TOKENS_PER_S = 4.0


def parity() -> list[list[str]]:
    model = polyasr.load(FIXTURE, device="cuda", dtype="float32").recognizer
    arrays = np.load(FIXTURE / "reference.npz")
    ref = json.loads((FIXTURE / "reference.json").read_text(encoding="utf-8"))
    rows = []
    for lang, utterance in ref["utterances"].items():
        audio = arrays[f"{lang}_audio"]
        feats = model.log_mel(torch.from_numpy(audio).cuda()).cpu().numpy()
        states, lengths = model.encode([audio])
        n = utterance["encoder_length"]
        enc_err = np.abs(states[0, :n].cpu().numpy() - arrays[f"{lang}_encoder_out"][:n]).max()
        spans = tdt_greedy(model.model, states, lengths)[0]
        same = [[s.start, s.id, s.end - s.start] for s in spans] == utterance["decisions"]
        feat_err = np.abs(feats - arrays[f"{lang}_features"]).max()
        rows.append([lang, f"{feat_err:.1e}", f"{enc_err:.1e}", str(same)])
    return rows


def timed(fn, repeats: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def real_size_model() -> polyasr.models.parakeet.ParakeetRecognizer:
    """The fixture's tokenizer and frontend around a real-size random TDT on the GPU."""
    asr = polyasr.load(FIXTURE, device="cuda", dtype="float32").recognizer
    torch.manual_seed(0)
    dims = replace(ParakeetDims(), durations=(0, 1, 2, 3, 4))
    with torch.device("cuda"):
        model = ParakeetTDT(dims).eval().requires_grad_(False)
    for layer in model.encoder.layers:
        norm = layer.conv.batch_norm
        norm.running_mean.normal_(0, 0.2)
        norm.running_var.uniform_(0.5, 1.5)
    asr.model = model
    return asr


def set_blank_bias(asr, audio: np.ndarray) -> int:
    """Bisect the blank bias until the 60 s audio decodes to about TOKENS_PER_S tokens/s."""
    states, lengths = asr.encode([audio])
    bias = asr.model.joint.joint_net[2].bias
    blank = asr.model.dims.blank
    target, low, high = int(TOKENS_PER_S * len(audio) / 16000), -30.0, 30.0
    for _ in range(16):
        bias[blank] = (low + high) / 2
        n = len(tdt_greedy(asr.model, states, lengths)[0])
        low, high = (float(bias[blank]), high) if n > target else (low, float(bias[blank]))
    return len(tdt_greedy(asr.model, states, lengths)[0])


def speed(asr, audio: np.ndarray, dtype: torch.dtype) -> list[str]:
    asr.model.to(dtype)
    options = polyasr.TranscribeOptions()
    encode = timed(lambda: asr.encode([audio]))
    states, lengths = asr.encode([audio])
    decode = timed(lambda: tdt_greedy(asr.model, states, lengths), 3)
    eager = timed(lambda: tdt_greedy(asr.model, states, lengths, cuda_graph=False), 2)
    same = tdt_greedy(asr.model, states, lengths) == tdt_greedy(
        asr.model, states, lengths, cuda_graph=False
    )
    full = timed(lambda: asr.decode([audio], options), 3)
    batch = [audio] * 16
    full16 = timed(lambda: asr.decode(batch, options), 2)
    tokens = len(tdt_greedy(asr.model, states, lengths)[0])
    seconds = len(audio) / 16000
    return [
        str(dtype).replace("torch.", ""),
        f"{encode * 1e3:.1f}",
        f"{decode * 1e3:.1f}",
        f"{eager * 1e3:.1f}",
        str(same),
        str(tokens),
        f"{full / seconds:.5f}",
        f"{full16 / (16 * seconds):.5f}",
        f"{16 * seconds / full16:.0f}",
    ]


def main() -> None:
    torch.backends.cudnn.allow_tf32 = False  # float32 parity, not TF32
    torch.backends.cuda.matmul.allow_tf32 = False
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    header = ["fixture (cuda fp32)", "features err", "encoder err", "decisions identical"]
    print(table(header, parity()))
    arrays = np.load(FIXTURE / "reference.npz")
    speech = np.concatenate([arrays["en_audio"], arrays["de_audio"]])
    audio = np.tile(speech, int(np.ceil(60 * 16000 / len(speech))))[: 60 * 16000]
    asr = real_size_model()
    with torch.inference_mode():
        tokens = set_blank_bias(asr, audio)
        print(f"\nreal-size random TDT: {tokens} tokens on 60 s at fp32")
        rows = [speed(asr, audio, dtype) for dtype in (torch.float32, torch.float16)]
    header = ["dtype", "encode 60 s ms", "TDT decode ms", "eager decode ms", "same tokens"]
    header += ["tokens", "RTF 1x60 s", "RTF 16x60 s"]
    print(table([*header, "RTFx 16x60 s"], rows))


if __name__ == "__main__":
    main()
