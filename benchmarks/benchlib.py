"""Helpers shared by the CPU benchmarks: machine load accounting, median runs, and the
machine's fp32 ceilings that each benchmark reports its fraction of."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO_ROOT.parent / "shared"))
"""The shared data and models: `POLYASR_SHARED`, default `../shared` next to the repository."""
SAMPLE_RATE = 16_000


def machine_busy_s() -> float:
    """CPU seconds that all processes on the machine have used since boot (Linux)."""
    user, nice, system, _idle, _iowait, irq, softirq = Path("/proc/stat").read_text().split()[1:8]
    return sum(map(int, (user, nice, system, irq, softirq))) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_run(runs: list[Any]) -> Any:
    """The run with the median transcription time (the slower middle one for an even count)."""
    ok = sorted((r for r in runs if not r.error), key=lambda r: r.transcribe_s)
    return ok[len(ok) // 2] if ok else runs[0]


def render_rows(rows: list[list[str]], left: int) -> list[str]:
    """Aligned table lines: the first `left` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]


RESULT_PREFIX = "BENCH_RESULT "


def emit_result(result: dict[str, Any]) -> None:
    """Print a worker's result as the one line the parent looks for."""
    import json

    print(RESULT_PREFIX + json.dumps(result, ensure_ascii=False), flush=True)


def spawn_worker(cmd: list[str], env: dict[str, str]) -> tuple[dict[str, Any] | None, str, float]:
    """Run one worker process: its result (or None and the error line) and the CPU seconds
    other processes used meanwhile (well above 0 means the measurement was disturbed)."""
    import json
    import subprocess

    busy_before, children_before = machine_busy_s(), children_cpu_s()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    other_cpu_s = machine_busy_s() - busy_before - (children_cpu_s() - children_before)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if lines:
        return json.loads(lines[-1][len(RESULT_PREFIX) :]), "", max(other_cpu_s, 0.0)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"worker exited {proc.returncode}: {tail}", max(other_cpu_s, 0.0)


def concatenated_speech(
    shared: Path, duration_s: float, prefixes: tuple[str, ...], gap_s: float = 0.5
) -> Any:
    """Exactly `duration_s` of float32 16 kHz speech: the shared clips whose paths start with
    `prefixes`, in that order, joined by `gap_s` of silence."""
    import json

    import numpy as np

    from polyasr.audio import load_audio

    data = shared / "data"
    entries = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    paths = [data / e["path"] for p in prefixes for e in entries if e["path"].startswith(p)]
    gap = np.zeros(int(gap_s * 16000), dtype=np.float32)
    chunks: list[np.ndarray] = []
    for path in paths:
        if sum(len(c) for c in chunks) >= duration_s * 16000:
            break
        chunks += [load_audio(path).mono(), gap]
    return np.concatenate(chunks)[: int(duration_s * 16000)]


def table(header: list[str], rows: list[list[str]], left: int | None = None) -> str:
    """A text table with a rule under the header; the first `left` columns (all by default)
    are left-aligned, the others right-aligned."""
    lines = render_rows([header, *rows], left=len(header) if left is None else left)
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def time_calls(obj: Any, name: str) -> list[Any]:
    """Wrap method `name` of `obj` so that it adds its wall time to item 0 of the returned list
    and counts its calls in item 1."""
    import time

    method, total = getattr(obj, name), [0.0, 0]

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = method(*args, **kwargs)
        total[0] += time.perf_counter() - start
        total[1] += 1
        return out

    setattr(obj, name, timed)
    return total


def record_calls(obj: Any, name: str) -> list[Any]:
    """Wrap method `name` of `obj` so that every call's return value is appended to a list."""
    method, outputs = getattr(obj, name), []

    def recorded(*args: Any, **kwargs: Any) -> Any:
        out = method(*args, **kwargs)
        outputs.append(out)
        return out

    setattr(obj, name, recorded)
    return outputs


def measure_once(result: Any, launched_at: float, prepare: Any) -> None:
    """In a worker: `prepare()` loads the engine and returns a call giving (text, token ids,
    encoder seconds); it runs once, and `result` (a dataclass with the load_s, cold_s,
    transcribe_s, transcribe_cpu_s, encode_s, peak_rss_mb, tokens, text and error fields) is
    filled and printed. Times count from `launched_at`, the parent's launch of the process.
    A call with a `count_flops` attribute (see `flop_replay`) also fills `encode_flops`, after
    the timing, where `result` has that field."""
    import time

    transcribe = None
    try:
        transcribe = prepare()
        ready, cpu = time.time(), time.process_time()
        text, result.tokens, result.encode_s = transcribe()
        done = time.time()
        result.text = text.strip()
        result.transcribe_cpu_s = time.process_time() - cpu
        result.load_s, result.cold_s = ready - launched_at, done - launched_at
        result.transcribe_s = done - ready
    except Exception as exc:  # reported in the table, not raised
        result.error = f"{type(exc).__name__}: {exc}"
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    count_flops = getattr(transcribe, "count_flops", None)
    if count_flops is not None and hasattr(result, "encode_flops") and not result.error:
        result.encode_flops = count_flops()
    emit_result(result.__dict__)


def flop_replay(obj: Any, name: str) -> Callable[[], float]:
    """Wrap method `name` of `obj` so that the arguments of its calls are kept; the returned
    function calls it again with each under torch's FLOP counter (after the timed run, so that
    counting costs the measurement nothing) and returns the total FLOPs."""
    method, calls = getattr(obj, name), []

    def kept(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return method(*args, **kwargs)

    def count() -> float:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            for args, kwargs in calls:
                method(*args, **kwargs)
        return float(counter.get_total_flops())

    setattr(obj, name, kept)
    return count


@dataclass
class Machine:
    """What a side-by-side run measures of the machine before its engines: the thread count,
    the load average, and the fp32 ceilings on those threads (see `measure`)."""

    threads: int
    load_avg: float
    gemm_gflops: float
    memory_gbps: float

    @classmethod
    def measure(cls, threads: int, rounds: int = 5) -> Machine:
        """The ceilings now (best of `rounds`): GEMM GFLOP/s of a 2048 x 2048 x 2048 product
        (what compute-bound encoders can reach) and GB/s of a matrix-vector product over a
        256 MB matrix (what a decoding step that reads its weights from memory can reach)."""
        import time

        import torch

        load_avg = os.getloadavg()[0]
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)

        def best(call: Callable[[], Any]) -> float:
            call()
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            return min(times)

        try:
            square = torch.randn(2048, 2048)
            gemm = 2 * 2048**3 / best(lambda: square @ square) / 1e9
            weight, row = torch.randn(16384, 4096), torch.randn(1, 4096)
            memory = weight.numel() * 4 / best(lambda: torch.nn.functional.linear(row, weight))
        finally:
            torch.set_num_threads(previous)
        return cls(threads, load_avg, gemm, memory / 1e9)

    def line(self) -> str:
        return (
            f"machine ceilings measured in this run (fp32, {self.threads} threads): GEMM "
            f"{self.gemm_gflops:.0f} GFLOP/s, matrix-vector from memory "
            f"{self.memory_gbps:.1f} GB/s"
        )

    def gemm_share(self, flops: float, seconds: float) -> str:
        """`flops` done in `seconds` as a percentage of the GEMM ceiling ("-" when unknown)."""
        if not flops or not seconds:
            return "-"
        return f"{100 * flops / seconds / 1e9 / self.gemm_gflops:.0f} %"

    def floor_s(self, weight_bytes: float) -> float:
        """Seconds to read `weight_bytes` at the measured bandwidth."""
        return weight_bytes / (self.memory_gbps * 1e9)


def weight_bytes(module: Any, skip: tuple[str, ...] = ()) -> int:
    """Bytes of the weights of `module`'s matrix layers (polyasr's `Linear` and `Embedding`,
    packed int8 / f16 ones at their size), except those whose names contain one of `skip`."""
    from polyasr.models.linear import Embedding, Linear
    from polyasr.models.quantized import Float16Matrix, Int8Matrix

    total = 0
    for name, layer in module.named_modules():
        if not isinstance(layer, (Linear, Embedding)) or any(s in name for s in skip):
            continue
        weight = layer.weight
        size = {Int8Matrix: 1, Float16Matrix: 2}.get(type(weight)) or weight.element_size()
        total += weight.numel() * size
    return total


def benchmark_parser(description: str, engines: tuple[str, ...], ref_venv: Path) -> Any:
    """The options every side-by-side CPU benchmark takes, and the hidden worker/build ones."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engines", default=",".join(engines), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds over all engines (the order rotates)"
    )
    parser.add_argument("--cache-dir", type=Path, default=ref_venv / "bench-cache")
    parser.add_argument("--ref-python", type=Path, default=ref_venv / "bin" / "python")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached model")
    parser.add_argument("--print-text", action="store_true", help="also print each hypothesis")
    parser.add_argument("--worker", choices=engines, help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audio-sha", help=argparse.SUPPRESS)
    parser.add_argument("--launched-at", type=float, default=time.time(), help=argparse.SUPPRESS)
    return parser
