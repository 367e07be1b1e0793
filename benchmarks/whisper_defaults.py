"""Whisper decoding configurations side by side: accuracy on dev + hard speech, silence, memory.

Runs whisper-base (`$POLYASR_SHARED/models/whisper-base`, fp32, CPU) through the public API only
(`polyasr.load`, `model.transcribe(path, language=..., beam_size=..., vad=...)`) in several
configurations, each in a worker process of its own, and prints one table:

    configuration | WER % dev | dev en | long-form | hard | quiet | whispered | falsetto
                  | words on silence/noise | peak RSS MB (long-form) | s | time vs defaults

Inputs (language forced per file from the manifests):
  dev   every `asr` / `asr_longform` recording of `$POLYASR_SHARED/data/manifest.jsonl` in a
        language Whisper handles (the original `path`, decoded by polyasr itself)
  hard  tests/data/hard/manifest.jsonl: quiet, whispered and falsetto English speech
  noise 40 s of digital silence, 40 s of white noise at -20 dBFS and 40 s at -50 dBFS (seeded);
        every word produced on them is invented (the column is their total, must be 0)

WER is corpus WER with `polyasr.metrics.wer` (one normalisation for every row). Peak RSS is the
worker's `ru_maxrss` right after its first call, which is the long-form file (model loading
included); `+MB` is that peak minus the resident size just before the call. Time is the wall
time of all transcription calls of the worker (CPU s: their process CPU time, which other load
on the machine disturbs less); compare rows of the same run only.

    .venv/bin/python benchmarks/whisper_defaults.py
    .venv/bin/python benchmarks/whisper_defaults.py --configs defaults,b5-novad --json out.json
    .venv/bin/python benchmarks/whisper_defaults.py --configs 'mine=beam_size:5,vad:false'
    .venv/bin/python benchmarks/whisper_defaults.py --pythonpath /other/checkout/src  # other code
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
HARD = REPO / "tests" / "data" / "hard" / "manifest.jsonl"
RESULT_PREFIX = "DEFAULTS_RESULT "
LONGFORM_TASK = "asr_longform"
WHISPER_LANGUAGES = {"en", "ru", "de", "fr"}  # the dev set's languages; all are Whisper's

CONFIGS: dict[str, dict] = {
    "--beam-size 1 --no-vad": {"beam_size": 1, "vad": False},
    "--beam-size 1": {"beam_size": 1},
    "--no-vad": {"vad": False},
    "defaults": {},
}
SHORT = {"b1-novad": "--beam-size 1 --no-vad", "b1": "--beam-size 1", "b5-novad": "--no-vad"}


def parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_configs(spec: str) -> dict[str, dict]:
    """`defaults,b1,...` (names above) or `name=key:value,key:value;name2=...`."""
    if "=" in spec:
        out = {}
        for part in spec.split(";"):
            name, _, body = part.partition("=")
            kv = [item.split(":", 1) for item in body.split(",") if item]
            out[name.strip()] = {k.strip(): parse_value(v.strip()) for k, v in kv}
        return out
    names = [SHORT.get(n.strip(), n.strip()) for n in spec.split(",") if n.strip()]
    return {n: CONFIGS[n] for n in names}


def dev_items(shared: Path) -> list[dict]:
    items = []
    data = shared / "data"
    for line in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e["task"] in ("asr", LONGFORM_TASK) and e["language"] in WHISPER_LANGUAGES:
            kind = "long-form" if e["task"] == LONGFORM_TASK else "dev"
            items.append(
                {
                    "set": "dev",
                    "kind": kind,
                    "path": str(data / e["path"]),
                    "text": e["text"],
                    "language": e["language"],
                }
            )
    items.sort(key=lambda e: e["kind"] != "long-form")  # the long-form file first (peak RSS)
    return items


def hard_items(manifest: Path) -> list[dict]:
    if not manifest.is_file():
        return []
    items = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        items.append(
            {
                "set": "hard",
                "kind": e["kind"],
                "path": str(manifest.parent / e["path"]),
                "text": e["text"],
                "language": e.get("language", "en"),
            }
        )
    return items


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())


def noise_items(folder: Path, seconds: float = 40.0) -> list[dict]:
    rng = np.random.default_rng(11)
    n = int(seconds * 16000)
    signals = {
        "silence": np.zeros(n),
        "white-20dBFS": rng.standard_normal(n) * 10 ** (-20 / 20),
        "white-50dBFS": rng.standard_normal(n) * 10 ** (-50 / 20),
    }
    items = []
    for name, samples in signals.items():
        path = folder / f"{name}.wav"
        write_wav(path, samples)
        items.append(
            {"set": "noise", "kind": name, "path": str(path), "text": "", "language": "en"}
        )
    return items


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import polyasr

    overrides = {k: v for k, v in json.loads(args.worker).items() if not k.startswith("env.")}
    items = json.loads(Path(args.items).read_text())
    model = polyasr.load(str(args.model), device="cpu", dtype="float32")
    results, peak_mb, delta_mb = [], None, None
    total = cpu_total = 0.0
    for item in items:
        before = rss_mb()
        started, cpu_started = time.perf_counter(), cpu_s()
        transcript = model.transcribe(item["path"], language=item["language"], **overrides)
        seconds = time.perf_counter() - started
        total += seconds
        cpu_total += cpu_s() - cpu_started
        if peak_mb is None:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            delta_mb = peak_mb - before
        results.append({**item, "hyp": transcript.text, "seconds": seconds})
    out = {
        "results": results,
        "peak_mb": peak_mb,
        "delta_mb": delta_mb,
        "seconds": total,
        "cpu_s": cpu_total,
    }
    print(RESULT_PREFIX + json.dumps(out, ensure_ascii=False), flush=True)


def run_config(name: str, overrides: dict, items_file: Path, args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env.update({k[4:]: str(v) for k, v in overrides.items() if k.startswith("env.")})
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([args.pythonpath, env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        json.dumps(overrides),
        "--items",
        str(items_file),
        "--model",
        str(args.model),
        "--threads",
        str(args.threads),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"configuration {name!r} failed:\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def corpus_wer(results: list[dict], keep) -> float | None:
    from polyasr.metrics import wer

    chosen = [r for r in results if keep(r)]
    if not chosen:
        return None
    return 100 * wer([r["text"] for r in chosen], [r["hyp"] for r in chosen])


def noise_words(results: list[dict]) -> int:
    from polyasr.metrics import normalize_text

    return sum(len(normalize_text(r["hyp"]).split()) for r in results if r["set"] == "noise")


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths))
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma list of: "
        + ", ".join(list(CONFIGS) + list(SHORT))
        + "; or 'name=key:value,...;name2=...' (transcribe() keyword options; a key "
        "env.NAME sets that environment variable in the worker instead)",
    )
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "whisper-base")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--hard", type=Path, default=HARD, help="hard-speech manifest.jsonl")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default="dev,hard,noise", help="subset of dev,hard,noise")
    parser.add_argument(
        "--pythonpath",
        help="prepend this to the workers' PYTHONPATH "
        "(benchmark another checkout's src/ with the same environment)",
    )
    parser.add_argument(
        "--reference", default="defaults", help="configuration that the time ratio compares against"
    )
    parser.add_argument("--json", type=Path, help="write every hypothesis and number here")
    parser.add_argument(
        "--print-errors",
        action="store_true",
        help="print each file whose WER differs between configurations",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args)
        return

    configs = parse_configs(args.configs)
    sets = set(args.sets.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        if "dev" in sets:
            items += dev_items(args.shared)
        if "hard" in sets:
            items += hard_items(args.hard)
        if "noise" in sets:
            items += noise_items(Path(tmp))
        items_file = Path(tmp) / "items.json"
        items_file.write_text(json.dumps(items, ensure_ascii=False))
        runs = {}
        for name, overrides in configs.items():
            print(f"running {name} {overrides} ...", file=sys.stderr, flush=True)
            runs[name] = run_config(name, overrides, items_file, args)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    has_long = any(i["kind"] == "long-form" for i in items)
    header = [
        "configuration",
        "WER % dev",
        "dev en",
        "long-form",
        "hard",
        "quiet",
        "whispered",
        "falsetto",
        "noise words",
        "peak RSS MB" if has_long else "peak RSS MB (1st file)",
        "+MB",
        "s",
        "CPU s",
        f"time vs {args.reference}",
    ]
    ref = args.reference if args.reference in runs else None
    ref_seconds = runs[ref]["seconds"] if ref else None
    rows = []
    for name, run in runs.items():
        res = run["results"]
        rows.append(
            [
                name,
                fmt(corpus_wer(res, lambda r: r["set"] == "dev")),
                fmt(corpus_wer(res, lambda r: r["set"] == "dev" and r["language"] == "en")),
                fmt(corpus_wer(res, lambda r: r["kind"] == "long-form")),
                fmt(corpus_wer(res, lambda r: r["set"] == "hard")),
                *(
                    fmt(corpus_wer(res, lambda r, k=k: r["kind"] == k))
                    for k in ("quiet", "whispered", "falsetto")
                ),
                str(noise_words(res)) if any(r["set"] == "noise" for r in res) else "-",
                f"{run['peak_mb']:.0f}",
                f"{run['delta_mb']:.0f}",
                f"{run['seconds']:.1f}",
                f"{run['cpu_s']:.1f}",
                f"{run['seconds'] / ref_seconds:.2f}x" if ref_seconds else "-",
            ]
        )
    counts = {s: sum(1 for i in items if i["set"] == s) for s in ("dev", "hard", "noise")}
    print(f"whisper-base fp32 CPU, {args.threads} threads; files: {counts}")
    print(render(header, rows))
    if args.print_errors:
        from polyasr.metrics import wer

        names = list(runs)
        for k, item in enumerate(items):
            if item["set"] == "noise":
                hyps = [runs[n]["results"][k]["hyp"] for n in names]
                if any(hyps):
                    print(
                        f"\n{item['kind']}: "
                        + " | ".join(f"{n}: {h!r}" for n, h in zip(names, hyps))
                    )
                continue
            wers = [100 * wer(item["text"], runs[n]["results"][k]["hyp"]) for n in names]
            if max(wers) - min(wers) > 1e-9:
                print(f"\n{Path(item['path']).name}: REF {item['text']}")
                for n, w in zip(names, wers):
                    print(f"  {w:6.1f}  {n}: {runs[n]['results'][k]['hyp']}")
    if args.json:
        args.json.write_text(json.dumps(runs, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
