"""Batching across files: `transcribe_batch` on N files against N single `transcribe` calls.

Prints, for whisper-base (real weights) and a real-size GigaAM v3 CTC (random weights from
the real config, saved in the published .ckpt layout), the audio length, the time of N single
calls, the time of one batched call, the speed-up, and whether the texts are identical.

    python benchmarks/batching.py [--threads 2] [--files 8]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import polyasr

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))

GIGAAM_V3_ENCODER = {
    "feat_in": 64,
    "n_layers": 16,
    "d_model": 768,
    "subsampling": "conv1d",
    "subs_kernel_size": 5,
    "subsampling_factor": 4,
    "ff_expansion_factor": 4,
    "self_attention_model": "rotary",
    "pos_emb_max_len": 5000,
    "n_heads": 16,
    "conv_kernel_size": 5,
    "conv_norm_type": "layer_norm",
}
CHARS = [" "] + list("абвгдежзийклмнопрстуфхцчшщъыьэюя")


def random_gigaam_ckpt(directory: Path) -> Path:
    """A real-size v3_ctc checkpoint with random weights (plain-dict cfg, published keys)."""
    from polyasr.audio.features import FeatureConfig, analysis_window, mel_filters
    from polyasr.models.gigaam.model import GigaAM, GigaAMDims

    torch.manual_seed(0)
    model = GigaAM(GigaAMDims(num_classes=len(CHARS) + 1), "ctc")
    for name, p in model.named_parameters():
        torch.nn.init.normal_(p, std=0.02 if p.dim() > 1 else 0.1)
        if "norm" in name and name.endswith("weight"):
            p.data += 1.0
    features = FeatureConfig(n_fft=320, n_mels=64, mel_scale="htk", mel_norm=None, center=False)
    state = dict(model.state_dict())
    state["preprocessor.featurizer.0.spectrogram.window"] = analysis_window(features)
    state["preprocessor.featurizer.0.mel_scale.fb"] = mel_filters(features).T.contiguous()
    cfg = {
        "preprocessor": {"features": 64, "n_fft": 320, "win_length": 320, "hop_length": 160},
        "encoder": GIGAAM_V3_ENCODER,
        "head": {"num_classes": len(CHARS) + 1},
        "decoding": {"vocabulary": CHARS},
    }
    path = directory / "v3_ctc.ckpt"
    torch.save({"cfg": cfg, "state_dict": state}, path)
    return path


def files_of(language: str, count: int) -> list[Path]:
    rows = [json.loads(x) for x in (SHARED / "data/manifest.jsonl").read_text().splitlines()]
    paths = [SHARED / "data" / r["path"] for r in rows if r["task"] == "asr"]
    ordered = [p for p in paths if f"/{language}/" in str(p)] + paths
    return list(dict.fromkeys(ordered))[:count]


def measure(model, files: list[Path], **options) -> list[str]:
    model.transcribe(files[0], **options)  # warm-up: first-call allocations and kernels
    t = time.perf_counter()
    single = [model.transcribe(f, **options) for f in files]
    single_s = time.perf_counter() - t
    t = time.perf_counter()
    batch = model.transcribe_batch(files, **options)
    batch_s = time.perf_counter() - t
    audio_s = sum(r.duration for r in single)
    same = [a.text for a in single] == [b.text for b in batch]
    return [
        f"{audio_s:.1f}",
        f"{single_s:.2f}",
        f"{batch_s:.2f}",
        f"{single_s / batch_s:.2f}x",
        str(same),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument(
        "--gigaam",
        type=Path,
        action="append",
        default=[],
        help="GigaAM checkpoint(s) to measure instead of a random real-size CTC (repeatable)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    whisper = polyasr.load(SHARED / "models/whisper-base", device="cpu", dtype="float32")
    files = files_of("en", args.files)
    rows.append(
        [
            "whisper-base (greedy)",
            str(len(files)),
            *measure(whisper, files, language="en", beam_size=1),
        ]
    )
    files = files_of("ru", args.files)
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.gigaam or [random_gigaam_ckpt(Path(tmp))]:
            gigaam = polyasr.load(ckpt, device="cpu", dtype="float32")
            label = f"gigaam {ckpt.stem} ({gigaam.recognizer.model.head_type})"
            rows.append([label, str(len(files)), *measure(gigaam, files)])
    header = [
        "model",
        "files",
        "audio s",
        "single calls s",
        "one batch s",
        "speed-up",
        "same texts",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"CPU, {args.threads} threads, batch_size 8, VAD on; times after one warm-up call\n")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
