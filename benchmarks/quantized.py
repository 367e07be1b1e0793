"""Quantized weights on CPU: each family's published files against its GGUF files, side by side.

For every model, the published checkpoint (`source`: whatever format the family publishes) and
the GGUF files that `polyasr quantize SRC --qtype T -o FILE.gguf` writes from it (f16, q8_0,
q4_0, q4_k) are each loaded with `polyasr.load(path, device="cpu", dtype="float32")` in a fresh
worker process and transcribe the same audio once (cold, no warm-up, `torch.set_num_threads`).
Measured per (model, type): file size, the `polyasr.load` call alone, process start to the model
ready and to the first text, RSS growth of the load and peak RSS, RTF, the tokens emitted and
how far the text stays from the source's (`polyasr.metrics.agreement`, 1 - CER), plus WER and
repetition loops where there is a reference text.

Models and audio (the same as the family benchmarks, so that numbers compare):
  whisper-base  real weights, $POLYASR_SHARED/models/whisper-base (f16 safetensors);
                en/derived_longform_dev.flac (97 s) and its manifest text; language="en",
                beam_size=1, vad=False as whisper_cpu.py's polyasr engine (--whisper-defaults:
                the polyasr defaults, beam 5 with VAD)
  gigaam-ctc    real-size random-weight GigaAM v3 CTC / e2e RNN-T (gigaam_cpu.py builds them)
  gigaam-rnnt   60 s of speech as gigaam_cpu.py, vad=False
  parakeet      real-size random-weight Parakeet TDT 0.6B `.nemo` (parakeet_cpu.py builds it),
                its 60 s of speech, vad=False
  qwen3-asr     real-size random-weight Qwen3-ASR 0.6B (qwen3asr_cpu.py builds it), gigaam's
                60 s, vad=False, exactly 150 generated tokens (no stop token), as that benchmark

The random-weight checkpoints are built by the family benchmarks' own builders (their
`ensure_*` functions, which run the reference venvs `.ref-venv-*` under --ref-root once and
cache the result in `.ref-venv-*/bench-cache`), whose heads are shaped to emit a realistic number
of tokens. Without that venv or cache, gigaam-ctc, parakeet and qwen3-asr fall back to
load_cache.py's builds (same dims, plain random weights, written by polyasr's own modules into
--load-cache-dir): their size, load, memory and RTF hold, but their heads are not shaped, so
their tokens and agreement say little (qwen3-asr's build is plain random either way). A model
with neither says so in the output; `--source MODEL=PATH` names a checkpoint to use instead.
The GGUF files are written once into --cache-dir and rewritten when their source or polyasr's
GGUF writer (polyasr/models/gguf.py) is newer, or with --requantize. Each file is read right
before its worker starts, so every load finds it in the page cache; the checkpoint cache is off
(POLYASR_CHECKPOINT_CACHE=off), so every load parses the file as a first use does.

Run from the repository root (2 threads, all families and types, one round):

    .venv/bin/python benchmarks/quantized.py
    .venv/bin/python benchmarks/quantized.py --families whisper --types source,q8_0 --repeat 3
    .venv/bin/python benchmarks/quantized.py --pythonpath /other/checkout/src --json out.json
    .venv/bin/python benchmarks/quantized.py --source gigaam-rnnt=/models/v3_e2e_rnnt.ckpt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gigaam_cpu
import load_cache
import numpy as np
import parakeet_cpu
import qwen3asr_cpu
import whisper_cpu
from benchlib import (
    REPO_ROOT,
    SAMPLE_RATE,
    SHARED,
    concatenated_speech,
    emit_result,
    measure_once,
    median_run,
    spawn_worker,
    table,
)

TYPES = ("source", "f16", "q8_0", "q4_0", "q4_k")
FAMILIES = {
    "whisper": ("whisper-base",),
    "gigaam": ("gigaam-ctc", "gigaam-rnnt"),
    "parakeet": ("parakeet",),
    "qwen3-asr": ("qwen3-asr",),
}
WHISPER_AUDIO = "en/derived_longform_dev.flac"
PARAKEET_PREFIXES = ("en/librispeech", "en/librivox", "en/mfa", "other/")  # parakeet_cpu's audio
READ_CHUNK = 1 << 24
LOAD_CACHE_NAMES = {"gigaam-ctc": "gigaam", "parakeet": "parakeet", "qwen3-asr": "qwen3-asr"}


@dataclass
class Result:
    """What one worker measured; times are seconds since the parent launched it."""

    model: str
    qtype: str
    load_s: float = 0.0  # process start -> model ready (imports included)
    load_call_s: float = 0.0  # the polyasr.load call alone
    cold_s: float = 0.0  # process start -> first text available
    transcribe_s: float = 0.0  # wall time of the one transcription call
    transcribe_cpu_s: float = 0.0
    encode_s: float = 0.0  # log-mel + encoder part of the call (not for whisper)
    prefill_s: float = 0.0  # qwen3-asr: decoder over the prompts
    decode_s: float = 0.0  # qwen3-asr: generation steps
    steps: int = 0  # qwen3-asr: decoding steps after the prefill
    rss_before_load_mb: float = 0.0
    model_mb: float = 0.0  # RSS right after the load - RSS right before it
    load_peak_mb: float = 0.0  # VmHWM right after the load - RSS right before it
    hwm_mb: float = 0.0  # VmHWM (peak RSS of this process image) after the transcription
    peak_rss_mb: float = 0.0  # measure_once's ru_maxrss: Linux carries the parent's over exec
    other_cpu_s: float = 0.0  # CPU used by other processes meanwhile (set by the parent)
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    error: str = ""


# --- engines (each runs inside its worker process; heavy imports stay local) ---------------

Transcribe = Callable[[], tuple[str, list[int], float]]  # -> text, token ids, encoder seconds


def run_whisper(source: Path, audio: Path, threads: int, result: Result, defaults: bool):
    """whisper_cpu.py's polyasr engine (greedy, no VAD), or the polyasr defaults; the tokens are
    the text's ids in the model's tokenizer."""
    import torch

    import polyasr

    torch.set_num_threads(threads)
    model = polyasr.load(str(source), device="cpu", dtype="float32")
    options = {} if defaults else {"beam_size": 1, "vad": False}
    options = polyasr.TranscribeOptions(language="en", **options)

    def transcribe() -> tuple[str, list[int], float]:
        text = model.transcribe(str(audio), options).text
        return text, model.recognizer.tokenizer.encode(text.strip()), 0.0

    return transcribe


def run_qwen3asr(source: Path, audio: Path, threads: int, result: Result, defaults: bool):
    transcribe = qwen3asr_cpu.run_polyasr(source, audio, threads, one_piece=False)

    def call() -> tuple[str, list[int], float]:
        text = transcribe(result)  # also fills the per-phase times and the token ids
        return text, result.tokens, result.encode_s

    return call


def run_family(run: Callable) -> Callable:
    """A family benchmark's polyasr engine with vad=False."""
    return lambda source, audio, threads, result, defaults: run(source, audio, threads, False)


RUNNERS = {
    "whisper-base": run_whisper,
    "gigaam-ctc": run_family(gigaam_cpu.run_polyasr),
    "gigaam-rnnt": run_family(gigaam_cpu.run_polyasr),
    "parakeet": run_family(parakeet_cpu.run_polyasr),
    "qwen3-asr": run_qwen3asr,
}


def status_mb(key: str) -> float:
    """A memory line of /proc/self/status (VmRSS: now, VmHWM: peak), in MiB. VmHWM starts
    afresh at exec, unlike ru_maxrss, which a child inherits from the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_load(result: Result) -> None:
    """Make `polyasr.load` record its own time and the RSS it adds into `result`."""
    import polyasr

    load = polyasr.load

    def measured(*args, **kwargs):
        result.rss_before_load_mb = status_mb("VmRSS")
        start = time.perf_counter()
        model = load(*args, **kwargs)
        result.load_call_s = time.perf_counter() - start
        result.model_mb = status_mb("VmRSS") - result.rss_before_load_mb
        result.load_peak_mb = status_mb("VmHWM") - result.rss_before_load_mb
        return model

    polyasr.load = measured


def worker(args: argparse.Namespace) -> None:
    """Load one model file, transcribe once, print one JSON line."""
    result = Result(model=args.worker, qtype=args.qtype)
    measure_load(result)

    def prepare() -> Transcribe:
        transcribe = RUNNERS[args.worker](
            args.model_path, args.audio, args.threads, result, args.whisper_defaults
        )

        def call() -> tuple[str, list[int], float]:
            out = transcribe()
            result.hwm_mb = status_mb("VmHWM")
            return out

        return call

    measure_once(result, args.launched_at, prepare)


# --- parent: audio, sources, GGUF files ---------------------------------------------------


@dataclass
class Model:
    """One row group: its audio, the source checkpoint (or why there is none), and the text
    that the other rows are compared with."""

    name: str
    audio: Path
    duration_s: float
    source: Path | None = None
    note: str = ""  # where the source comes from, when not from the family benchmark
    error: str = ""
    reference: str = ""  # the reference transcript, where there is one
    files: dict[str, Path] = field(default_factory=dict)  # type -> file
    file_errors: dict[str, str] = field(default_factory=dict)


def whisper_audio(folder: Path) -> tuple[Path, float, str]:
    """The long-form dev file as whisper_cpu.py's 16 kHz WAV, and its manifest text."""
    from polyasr.audio import load_audio

    data = SHARED / "data"
    entries = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    entry = next(e for e in entries if e["path"] == WHISPER_AUDIO and e["task"] == "asr_longform")
    samples = load_audio(data / WHISPER_AUDIO).mono()
    path = folder / "whisper.wav"
    whisper_cpu.write_wav(path, samples)
    return path, len(samples) / SAMPLE_RATE, entry["text"]


def save_samples(folder: Path, name: str, samples: np.ndarray) -> tuple[Path, str]:
    import hashlib

    path = folder / f"{name}.npy"
    np.save(path, samples)
    return path, hashlib.sha256(samples).hexdigest()


def builder_args(args: argparse.Namespace, module) -> argparse.Namespace:
    """The options a family benchmark's ensure_* function reads, for its default cache."""
    venv = args.ref_root / module.REF_VENV.name
    return argparse.Namespace(
        cache_dir=venv / "bench-cache",
        ref_python=venv / "bin" / "python",
        rebuild=False,
        threads=args.threads,
    )


def built_source(model: str, args: argparse.Namespace, audio: Path, sha: str) -> Path:
    """The family benchmark's random-weight checkpoint (built by it when missing)."""
    family = model.split("-")[0]
    module = {"gigaam": gigaam_cpu, "parakeet": parakeet_cpu, "qwen3": qwen3asr_cpu}[family]
    ns = builder_args(args, module)
    try:
        if family == "gigaam":
            gigaam_cpu.ensure_checkpoints(ns, audio, sha)
            head = {"gigaam-ctc": "ctc", "gigaam-rnnt": "e2e_rnnt"}[model]
            return gigaam_cpu.checkpoint_path(ns.cache_dir, head)
        if family == "parakeet":
            parakeet_cpu.ensure_archive(ns, audio, sha)
            return ns.cache_dir / parakeet_cpu.ARCHIVE_NAME
        qwen3asr_cpu.ensure_model(ns)
        return ns.cache_dir / "model"
    except Exception as exc:
        if not ns.ref_python.exists():
            raise RuntimeError(
                f"no {Path(module.__file__).name} build in {ns.cache_dir}, no "
                f"{ns.ref_python.parents[1].name} to make one"
            ) from None
        raise RuntimeError(f"{Path(module.__file__).name} build failed: {exc}") from None


def fallback_source(model: Model, args: argparse.Namespace, why: str) -> None:
    """load_cache.py's build of the model (made once), or the reason there is none."""
    if model.name not in LOAD_CACHE_NAMES:
        model.error = f"{why}; pass --source {model.name}=PATH"
        return
    name = LOAD_CACHE_NAMES[model.name]
    try:
        model.source = load_cache.model_paths(args.load_cache_dir, [name])[name]
        model.note = f"load_cache.py's build, heads not shaped: {why}"
    except Exception as exc:
        model.error = f"{why}; load_cache.py's build failed too: {exc}"


def prepare_models(names: list[str], args: argparse.Namespace, folder: Path) -> list[Model]:
    """Each model's audio file and source checkpoint (building those that are missing)."""
    overrides = dict(item.split("=", 1) for item in args.source)
    models = []
    for name in names:
        if name == "whisper-base":
            audio, duration, reference = whisper_audio(folder)
            model = Model(name, audio, duration, args.whisper_model, reference=reference)
        else:
            if name == "parakeet":
                samples = concatenated_speech(SHARED, parakeet_cpu.DURATION_S, PARAKEET_PREFIXES)
            else:
                samples = gigaam_cpu.default_audio()
            audio, sha = save_samples(folder, name.split("-")[0], samples)
            model = Model(name, audio, len(samples) / SAMPLE_RATE)
            try:
                model.source = Path(overrides.get(name) or built_source(name, args, audio, sha))
                model.note = "--source" if name in overrides else ""
            except RuntimeError as exc:
                fallback_source(model, args, str(exc))
        if model.source is not None and not model.source.exists():
            model.error, model.source = f"{model.source} does not exist", None
        models.append(model)
    return models


def files_of(path: Path) -> list[Path]:
    """A checkpoint file, or the files of a checkpoint directory."""
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def newest_mtime(path: Path) -> float:
    return max(p.stat().st_mtime for p in files_of(path))


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in files_of(path)) / 2**20


def gguf_files(model: Model, types: list[str], args: argparse.Namespace) -> None:
    """`polyasr quantize`'s file of each type, rewritten when older than the source or the
    GGUF writer; a type that fails gets its error instead. Each is written by
    whisper_cpu.gguf_file in a child process, so that this one stays small (its peak RSS
    would be its workers' ru_maxrss)."""
    from importlib.util import find_spec

    writer = Path(find_spec("polyasr.models.gguf").origin).stat().st_mtime
    newest = max(newest_mtime(model.source), writer)
    for qtype in types:
        if qtype == "source":
            model.files[qtype] = model.source
            continue
        folder = args.cache_dir / model.name
        out = folder / f"{model.source.name}.{qtype}.gguf"
        if out.exists() and (args.requantize or out.stat().st_mtime < newest):
            out.unlink()
        if not out.exists():
            print(f"quantizing {model.name} to {qtype} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--quantize", str(folder), "--qtype", qtype]
            data, error, _ = spawn_worker(
                [*cmd, "--model-path", str(model.source)], worker_env(args)
            )
            if data is None:
                model.file_errors[qtype] = f"quantize failed: {error}"
                continue
        model.files[qtype] = out


def quantize(source: Path, folder: Path, qtype: str) -> None:
    """In a child: write the GGUF file, print where."""
    emit_result({"path": str(whisper_cpu.gguf_file(source, folder, qtype))})


def read_once(path: Path) -> None:
    """Read a file (or a directory's files) once, so that no load waits for the disk."""
    for file in files_of(path):
        with open(file, "rb") as f:
            while f.read(READ_CHUNK):
                pass


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env["POLYASR_CHECKPOINT_CACHE"] = "off"  # every load parses the file, as a first use does
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(args.pythonpath), env.get("PYTHONPATH", "")])
    return env


def run_worker(model: Model, qtype: str, args: argparse.Namespace) -> Result:
    if qtype in model.file_errors:
        return Result(model=model.name, qtype=qtype, error=model.file_errors[qtype])
    read_once(model.files[qtype])  # untimed: the load below finds the file in the page cache
    flags = {"--qtype": qtype, "--model-path": model.files[qtype], "--audio": model.audio}
    flags |= {"--threads": args.threads, "--launched-at": time.time()}
    cmd = [sys.executable, __file__, "--worker", model.name, *map(str, sum(flags.items(), ()))]
    if args.whisper_defaults:
        cmd.append("--whisper-defaults")
    data, error, other_cpu_s = spawn_worker(cmd, worker_env(args))
    result = Result(**data) if data else Result(model=model.name, qtype=qtype, error=error)
    result.other_cpu_s = other_cpu_s
    return result


# --- table ----------------------------------------------------------------------------------

HEADER = ["model", "type", "file MB", "load s", "ready s", "cold s", "cold src/x", "RTF"]
HEADER += ["RTF/src", "peak MB", "model MB", "model/file", "load +MB", "+MB/file", "tokens"]
HEADER += ["agree"]
HEADER += ["WER %", "max 3g", "loop", "other CPU s"]


def agreement_function() -> Callable[[str, str], float]:
    """polyasr.metrics.agreement (1 - CER, at least 0), or the same from edit_distance where the
    importable polyasr predates it."""
    try:
        from polyasr.metrics import agreement
    except ImportError:
        from polyasr.metrics import edit_distance

        def agreement(reference: str, hypothesis: str) -> float:
            if not reference:
                return float(not hypothesis)
            return max(0.0, 1 - edit_distance(list(reference), list(hypothesis)) / len(reference))

    return agreement


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def table_rows(model: Model, runs: dict[str, list[Result]]) -> tuple[list[list[str]], list[str]]:
    from polyasr.metrics import wer

    agreement = agreement_function()
    base = median_run(runs["source"]) if "source" in runs else None
    base = base if base is not None and not base.error else None
    ref_3g = whisper_cpu.max_trigram_count(model.reference) if model.reference else 0
    rows, errors = [], []
    for qtype, type_runs in runs.items():
        r = median_run(type_runs)
        if r.error:
            errors.append(f"{model.name} {qtype}: {r.error}")
            continue
        file_mb = size_mb(model.files[qtype])
        rtf = r.transcribe_s / model.duration_s
        trigrams = whisper_cpu.max_trigram_count(r.text)
        loops = whisper_cpu.max_compression_ratio(r.text) > 2.4 or trigrams >= ref_3g + 3
        rows.append(
            [
                model.name,
                qtype,
                f"{file_mb:.0f}",
                f"{r.load_call_s:.2f}",
                f"{r.load_s:.2f}",
                f"{r.cold_s:.2f}",
                ratio(base.cold_s, r.cold_s) if base else "-",
                f"{rtf:.3f}",
                ratio(r.transcribe_s, base.transcribe_s) if base else "-",
                f"{r.hwm_mb:.0f}",
                f"{r.model_mb:.0f}",
                f"{r.model_mb / file_mb:.2f}",
                f"{r.load_peak_mb:.0f}",
                f"{r.load_peak_mb / file_mb:.2f}",
                str(len(r.tokens)),
                f"{agreement(base.text, r.text):.3f}" if base else "-",
                f"{100 * wer(model.reference, r.text):.2f}" if model.reference else "-",
                str(trigrams) if model.reference else "-",
                ("yes" if loops else "no") if model.reference else "-",
                f"{r.other_cpu_s:.1f}",
            ]
        )
    return rows, errors


def q8_summary(model: Model, runs: dict[str, list[Result]]) -> str:
    """The ratios the quantization targets are stated in, for the Q8_0 file."""
    base, q8 = (median_run(runs[t]) if t in runs else None for t in ("source", "q8_0"))
    if base is None or q8 is None or base.error or q8.error:
        return ""
    return (
        f"{model.name} q8_0: RTF {q8.transcribe_s / base.transcribe_s:.2f}x the source's, cold "
        f"start source / q8_0 = {base.cold_s / q8.cold_s:.2f}, peak model MB / file MB = "
        f"{q8.load_peak_mb / size_mb(model.files['q8_0']):.2f} (source: "
        f"{base.load_peak_mb / size_mb(model.source):.2f})"
    )


def print_report(
    models: list[Model], runs: dict[tuple[str, str], list[Result]], args, load_avg: float
) -> None:
    rows, errors, summaries = [], [], []
    for model in models:
        if model.error:
            errors.append(f"{model.name}: not measured: {model.error}")
            continue
        model_runs = {t: rs for (m, t), rs in runs.items() if m == model.name}
        model_rows, model_errors = table_rows(model, model_runs)
        rows += model_rows
        errors += model_errors
        summaries.append(q8_summary(model, model_runs))
    whisper = "polyasr defaults (beam 5, VAD)" if args.whisper_defaults else "beam 1, no VAD"
    print(
        f"\nSource checkpoints and their GGUF files on CPU, loaded as float32, {args.threads} "
        f"threads; {args.repeat} round(s), a fresh process per file and round with one cold "
        f"call (no warm-up), rows are medians; whisper: language en, {whisper}; load average "
        f"before the run: {load_avg:.2f}.\n"
    )
    print(table(HEADER, rows, left=2))
    print(*errors, sep="\n")
    print()
    for model in models:
        if model.source is not None:
            note = f"; {model.note}" if model.note else ""
            print(f"{model.name}: {model.source} ({model.duration_s:.1f} s of audio{note})")
    print(*filter(None, summaries), sep="\n")
    print(
        "\nload s = the polyasr.load call alone; ready s / cold s = process start to the model "
        "loaded / to the first text (imports included); cold src/x = source cold s / row cold s "
        "(>1: the row starts faster). RTF = transcription wall time / audio seconds; RTF/src = "
        "row RTF / source RTF (<1: faster). peak MB = the worker's peak RSS (VmHWM); model MB "
        "= RSS right after the load - RSS right before it; model/file = model MB / file MB; "
        "load +MB = VmHWM right after the load - RSS before it; +MB/file = load +MB / file MB. "
        "tokens = ids emitted (whisper: the text's ids); agree = polyasr.metrics.agreement("
        "source text, row text), 1 - CER. WER and max 3g (most repeats of one word 3-gram; "
        "loop = zlib ratio > 2.4 or max 3g >= the reference's + 3) where there is a reference. "
        "other CPU s = CPU time other processes used while the worker ran: well above 0 means "
        "the row was slowed."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset")
    parser.add_argument("--types", default=",".join(TYPES), help="comma-separated subset")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whisper-defaults", action="store_true", help="beam 5 with VAD")
    parser.add_argument("--whisper-model", type=Path, default=SHARED / "models" / "whisper-base")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="use this checkpoint for MODEL (gigaam-ctc, gigaam-rnnt, parakeet, qwen3-asr) "
        "instead of the family benchmark's build; repeatable",
    )
    parser.add_argument(
        "--ref-root", type=Path, default=REPO_ROOT, help="folder holding the .ref-venv-* venvs"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polyasr-quant-bench",
        help="where the GGUF files are kept",
    )
    parser.add_argument("--requantize", action="store_true", help="rewrite the GGUF files")
    parser.add_argument(
        "--load-cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polyasr-load-cache-bench",
        help="load_cache.py's --work-dir, for the fallback builds",
    )
    parser.add_argument(
        "--pythonpath",
        type=Path,
        help="put this first on the import path of the workers and of the quantizing "
        "(benchmark another checkout's src/ with the same environment)",
    )
    parser.add_argument("--json", type=Path, help="write every run's numbers and text here")
    parser.add_argument("--print-text", action="store_true", help="also print each hypothesis")
    parser.add_argument("--worker", choices=list(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--quantize", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--qtype", help=argparse.SUPPRESS)
    parser.add_argument("--model-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--launched-at", type=float, default=time.time(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.quantize:
        return quantize(args.model_path, args.quantize, args.qtype)
    if args.pythonpath:
        sys.path.insert(0, str(args.pythonpath))

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    unknown = (set(families) - set(FAMILIES)) | (set(types) - set(TYPES))
    if unknown:
        parser.error(f"unknown families or types: {', '.join(sorted(unknown))}")
    names = [name for family in families for name in FAMILIES[family]]
    for item in args.source:
        name, equals, _ = item.partition("=")
        if not equals or name not in RUNNERS or name == "whisper-base":
            parser.error(
                f"--source {item}: MODEL=PATH, MODEL one of {', '.join(list(RUNNERS)[1:])}"
            )
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        models = prepare_models(names, args, Path(tmp))
        for model in models:
            if model.source is not None:
                gguf_files(model, types, args)
        load_avg = os.getloadavg()[0]
        jobs = [(model, qtype) for model in models if not model.error for qtype in types]
        runs: dict[tuple[str, str], list[Result]] = {(m.name, t): [] for m, t in jobs}
        for round_ in range(args.repeat):
            for model, qtype in jobs:
                print(f"round {round_ + 1}: {model.name} {qtype} ...", file=sys.stderr, flush=True)
                runs[(model.name, qtype)].append(run_worker(model, qtype, args))
    print_report(models, runs, args, load_avg)
    print(f"\nwhole run: {time.time() - started:.0f} s")
    if args.print_text:
        for (name, qtype), type_runs in runs.items():
            print(f"\n[{name} {qtype}] {median_run(type_runs).text[:500]}")
    if args.json:
        out = {
            "models": {m.name: {"source": str(m.source), "error": m.error} for m in models},
            "files": {f"{m.name} {t}": str(p) for m in models for t, p in m.files.items()},
            "runs": {f"{m} {t}": [r.__dict__ for r in rs] for (m, t), rs in runs.items()},
        }
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
