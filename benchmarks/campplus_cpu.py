"""CAM++ embeddings per second on CPU: polyasr's native model against 3D-Speaker's code.

Both run in one process (the reference environment of `tests/golden/make_campplus.py`, where
torch is the same 2.13.0 CPU build), on the same real weights and the same clips cut from
`$POLYASR_SHARED/data/diarization`, in batches of equal-length clips, measured alternately so
that load from other jobs hits both alike; the table gives the best of `--repeats` runs (the
least disturbed by other jobs) and the ratio of the medians:

- reference: `FBank(80, 16000, mean_nor=True)` per clip (as 3D-Speaker's diarization applies
  it with `torch.vmap`; here a loop), stacked, then `CAMPPlus(...)` on the batch;
- polyasr: `CamPlusPlus.embed(clips, batch_size=B)` (native fbank for the batch, padded and
  masked network).

Run from the repository root:

    PYTHONPATH=src:.ref-venv-campplus/src .ref-venv-campplus/bin/python \
        benchmarks/campplus_cpu.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "models" / "campplus-zh-en-common" / "campplus_cn_en_common.pt"
sys.path.insert(0, str(REPO / "tests" / "golden"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--durations", type=float, nargs="+", default=[1.5, 5.0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from make_campplus import import_reference, read_flac

    from polyasr.diarization.campplus import load_campplus

    CAMPPlus, FBank = import_reference()
    reference = CAMPPlus(feat_dim=80, embedding_size=192)
    reference.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    reference.eval()
    fbank = FBank(80, 16000, mean_nor=True)
    ours = load_campplus(WEIGHTS)

    audio = read_flac(SHARED / "data" / "diarization" / "ami_debug_dev00.flac")

    def run_reference(clips):
        with torch.inference_mode():
            feats = torch.stack([fbank(torch.from_numpy(c)) for c in clips])
            return reference(feats)

    def run_ours(clips):
        return ours.embed(clips, batch_size=args.batch)

    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    print("| clip | polyasr emb/s | 3D-Speaker emb/s | speed-up (best) | (median) | max abs diff |")
    print("|---|---|---|---|---|---|")
    for duration in args.durations:
        n = int(duration * 16000)
        hop = max(1, (len(audio) - n) // args.batch)
        clips = [audio[i * hop : i * hop + n] for i in range(args.batch)]
        diff = (run_ours(clips) - run_reference(clips)).abs().max().item()
        times = {"ours": [], "ref": []}
        for _ in range(args.repeats):
            for name, fn in (("ours", run_ours), ("ref", run_reference)):
                start = time.perf_counter()
                fn(clips)
                times[name].append(time.perf_counter() - start)
        ours_s, ref_s = (min(times[k]) for k in ("ours", "ref"))
        median = statistics.median(times["ref"]) / statistics.median(times["ours"])
        print(
            f"| {duration:g} s | {args.batch / ours_s:.1f} | {args.batch / ref_s:.1f} | "
            f"{ref_s / ours_s:.2f}x | {median:.2f}x | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
