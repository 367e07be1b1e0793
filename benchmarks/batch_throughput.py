"""Throughput of `polyasr batch`: the local engine against the Ray engine, same inputs, same model.

The real English recordings of `$POLYASR_SHARED/data/en` are copied `--repeat` times into a
temporary folder (a few minutes of audio); each engine then runs the whole `polyasr batch`
command in its own subprocess, start-up and model loading included, with whisper-base
(`$POLYASR_SHARED/models/whisper-base`), greedy, English. Prints one table: audio seconds, wall
seconds, throughput (audio hours per hour = audio seconds / wall seconds) and whether every
transcript (text and segment times) is identical to the local engine's.

    python benchmarks/batch_throughput.py [--repeat 3] [--workers 1 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
OPTIONS = ["--language", "en", "--beam-size", "1", "--format", "json", "--quiet"]


def english_recordings() -> list[Path]:
    """The short English recordings of the manifest (originals, not the 16 kHz copies or the
    derived long file)."""
    lines = (SHARED / "data" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [
        SHARED / "data" / e["path"]
        for e in entries
        if e["language"] == "en" and e["task"] == "asr" and e["source_repo"] != "derived"
    ]


def make_inputs(folder: Path, repeat: int) -> list[Path]:
    copies = []
    for r in range(repeat):
        for source in english_recordings():
            target = folder / f"{source.stem}-{r}{source.suffix}"
            shutil.copy(source, target)
            copies.append(target)
    return copies


def run(engine: str, workers: int | None, inputs: Path, out: Path, model: Path) -> float:
    """Wall seconds of one `polyasr batch` command (fails loudly if the command fails)."""
    command = [sys.executable, "-m", "polyasr.cli", "batch", str(inputs), "-o", str(out)]
    command += ["-m", str(model), "--engine", engine, *OPTIONS]
    if workers is not None:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{engine} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall


def transcripts(out: Path) -> dict[str, tuple]:
    """Per output file: the text and the (start, end, text) of every segment."""
    found = {}
    for path in sorted(out.glob("*.json")):
        if path.name == "summary.json":
            continue
        data = json.loads(path.read_text())
        segments = tuple((s["start"], s["end"], s["text"]) for s in data["segments"])
        found[path.name] = (data["text"], segments)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Copies of each recording.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actors.")
    parser.add_argument("--rounds", type=int, default=2, help="Runs per engine (best kept).")
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "whisper-base")
    args = parser.parse_args()
    runs = [("local", None)] + [("ray", w) for w in args.workers]
    walls: dict[tuple, list[float]] = {run: [] for run in runs}
    same: dict[tuple, bool] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inputs"
        folder.mkdir()
        inputs = make_inputs(folder, args.repeat)
        reference = None
        for round_ in range(args.rounds):  # engines interleaved: other load hits them alike
            for engine, workers in runs:
                out = Path(tmp) / f"{engine}-{workers}-{round_}"
                walls[engine, workers].append(run(engine, workers, folder, out, args.model))
                summary = json.loads((out / "summary.json").read_text())
                assert len(summary["done"]) == len(inputs), summary["failed"]
                found = transcripts(out)
                reference = reference or found
                same[engine, workers] = same.get((engine, workers), True) and found == reference
                audio = summary["audio_seconds"]
    print(f"polyasr batch, {args.model.name}, greedy, English; {os.cpu_count()} CPUs (load")
    print(f"average {load:.1f} at start); wall time of the whole command, start-up and model")
    print(f"loading included, best of {args.rounds} interleaved runs\n")
    print("| engine | actors | files | audio s | wall s | audio h / h | same transcripts |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (engine, workers), times in walls.items():
        actors = "-" if workers is None else str(workers)
        wall = min(times)
        print(
            f"| {engine} | {actors} | {len(inputs)} | {audio:.1f} | {wall:.1f} | "
            f"{audio / wall:.1f} | {'yes' if same[engine, workers] else 'no'} |"
        )


if __name__ == "__main__":
    main()
