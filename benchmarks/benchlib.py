"""Helpers shared by the CPU benchmarks: machine load accounting and median runs."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any


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
