"""Seconds to segment one hour of audio with segmentation-3.0 on CPU: polyasr against
pyannote.audio 3.3.2, on the same windows in the same batches, in one process.

The hour is the seven 30 s recordings of `$POLYASR_SHARED/data/diarization` repeated. It is cut
into 10 s windows every 1 s (pyannote's diarization recipe: 3591 windows for an hour) and run in
batches of `--batch-size` (32, pyannote's default). The two engines take turns batch by batch,
so that a load from other processes falls on both alike; the CPU seconds other processes used
during the run are reported. Per batch:

- polyasr: `Segmentation(batch)` and `powerset_to_speakers` (hard speaker activity);
- pyannote: `Inference(model, step=1, batch_size=N, skip_aggregation=True).infer(batch)`, what
  its `slide` runs on every batch (inference mode, forward, powerset -> multilabel, numpy).

Run in the reference environment of `tests/golden/make_segmentation.py` (pyannote.audio
3.3.2 + soundfile), with polyasr from the source tree:

    PYTHONPATH=src .ref-venv-pyannote/bin/python benchmarks/segmentation_cpu.py --threads 2

`--minutes` shortens the audio; `--only polyasr` skips pyannote (any environment with soundfile).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests" / "golden")]

from benchlib import machine_busy_s, table  # noqa: E402

from polyasr.diarization.segmentation import (  # noqa: E402
    SAMPLE_RATE,
    load_segmentation,
    powerset_to_speakers,
    sliding_windows,
)

SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
CHECKPOINT = SHARED / "models" / "pyannote-segmentation-3.0" / "pytorch_model.bin"


def audio(minutes: float) -> torch.Tensor:
    """`minutes` of the diarization recordings, repeated, as float32 samples."""
    import soundfile as sf

    clips = []
    for path in sorted((SHARED / "data" / "diarization").glob("*.flac")):
        samples, rate = sf.read(path, dtype="int16")
        assert rate == SAMPLE_RATE and samples.ndim == 1, path
        clips.append(samples.astype(np.float32) / 32768.0)
    one = np.concatenate(clips)
    total = round(minutes * 60 * SAMPLE_RATE)
    return torch.from_numpy(np.resize(one, total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["polyasr"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ours = load_segmentation(CHECKPOINT)
    engines = {"polyasr": lambda batch: powerset_to_speakers(ours(batch)).numpy()}
    if args.only is None:
        from make_segmentation import load_model  # registers torchaudio's stub first

        model = load_model()
        from pyannote.audio import Inference

        reference = Inference(model, step=1.0, batch_size=args.batch_size, skip_aggregation=True)
        engines["pyannote.audio 3.3.2"] = reference.infer

    samples = audio(args.minutes)
    windows = sliding_windows(samples, ours.window_samples, SAMPLE_RATE)
    seconds = {name: 0.0 for name in engines}
    differing = frames = 0
    busy_before, started = machine_busy_s(), time.perf_counter()
    cpu_before = time.process_time()
    with torch.inference_mode():
        for run in engines.values():  # warm-up (first-call allocations, oneDNN plans)
            run(windows[: args.batch_size].contiguous())
        for start in range(0, len(windows), args.batch_size):
            batch = windows[start : start + args.batch_size].contiguous()
            outputs = {}
            for name, run in engines.items():
                begin = time.perf_counter()
                outputs[name] = run(batch)
                seconds[name] += time.perf_counter() - begin
            if len(outputs) == 2:
                a, b = outputs.values()
                differing += int((a != b).any(axis=-1).sum())
            frames += batch.shape[0] * ours.num_frames(batch.shape[-1])
    wall = time.perf_counter() - started
    other_cpu = machine_busy_s() - busy_before - (time.process_time() - cpu_before)

    duration = samples.shape[0] / SAMPLE_RATE
    rows = [
        [name, f"{s * 3600 / duration:.1f}", f"{s / duration:.4f}", f"{s / seconds['polyasr']:.2f}"]
        for name, s in seconds.items()
    ]
    print(
        f"{duration / 60:.1f} min of audio, {len(windows)} windows of 10 s (step 1 s), "
        f"batches of {args.batch_size}, {args.threads} threads, torch {torch.__version__}"
    )
    print(table(["engine", "s per hour", "RTF", "time / polyasr's"], rows, left=1))
    if len(engines) == 2:
        print(f"frames whose speaker activity differs: {differing} of {frames}")
    print(f"wall {wall:.1f} s; other processes used {max(other_cpu, 0.0):.1f} CPU s meanwhile")


if __name__ == "__main__":
    main()
