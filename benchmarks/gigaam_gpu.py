"""GigaAM v3 on a CUDA GPU: fixture parity and real-size speed (random weights).

Runs on a bare GPU machine from the repository root (no audio decoding needed):

    PYTHONPATH=src python benchmarks/gigaam_gpu.py

Prints the max errors of the native model on CUDA against the committed fixtures
(tests/golden/gigaam-*), then, for a real-size v3 encoder with random weights, the time to
encode 60 s of audio as one piece and as a batch of three 20 s pieces, and the RTF of a full
CTC and RNN-T transcription of those pieces, in float32 and float16.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import table

import polyasr
from polyasr.models.gigaam.decoding import ctc_greedy, rnnt_greedy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from batching import random_gigaam_ckpt  # noqa: E402


def parity() -> list[list[str]]:
    rows = []
    for name in ("gigaam-v3-ctc", "gigaam-v3-e2e-rnnt"):
        directory = REPO / "tests" / "golden" / name
        model = polyasr.load(directory, device="cuda", dtype="float32").recognizer
        ref, inputs = np.load(directory / "reference.npz"), np.load(directory / "inputs.npz")
        states, lengths = model.encode([inputs["audio_0"]])
        expected = ref["encoder_out_0"]
        err = np.abs(states[0].float().cpu().numpy() - expected).max() / np.abs(expected).max()
        n = int(lengths[0])
        if model.model.head_type == "ctc":
            tokens, _ = ctc_greedy(model.model.head(states)[0].cpu(), n, model.blank)
        else:
            ((tokens, _),) = rnnt_greedy(model.model.head, states, lengths, model.blank)
        rows.append([name, f"{err:.2e}", str(tokens == ref["tokens_0"].tolist())])
    return rows


def timed(fn, repeats: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats


def speed(ckpt: Path, dtype: torch.dtype) -> list[str]:
    model = polyasr.load(ckpt, device="cuda", dtype=dtype).recognizer
    audio = np.random.default_rng(0).standard_normal(16000 * 60).astype(np.float32) * 0.1
    pieces = [audio[i * 320000 : (i + 1) * 320000] for i in range(3)]
    one = timed(lambda: model.encode([audio]))
    three = timed(lambda: model.encode(pieces))
    full = timed(lambda: model.decode(pieces, polyasr.TranscribeOptions()), 3)
    label = str(dtype).replace("torch.", "")
    return [
        model.model.head_type,
        label,
        f"{one * 1e3:.1f}",
        f"{three * 1e3:.1f}",
        f"{full / 60:.4f}",
    ]


def main() -> None:
    torch.backends.cudnn.allow_tf32 = False  # float32 parity, not TF32
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    print(table(["fixture (cuda fp32)", "encoder rel. err", "tokens identical"], parity()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = random_gigaam_ckpt(Path(tmp))
        for dtype in (torch.float32, torch.float16):
            rows.append(speed(ckpt, dtype))
    header = ["head", "dtype", "encode 60 s ms", "encode 3x20 s ms", "RTF (3x20 s, decoded)"]
    print()
    print(table(header, rows))


if __name__ == "__main__":
    main()
