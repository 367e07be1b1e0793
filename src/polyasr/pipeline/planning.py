"""Where to cut a recording into pieces a model can decode, and which pieces share a batch."""

from __future__ import annotations

import math

import numpy as np

from ..types import VadOptions

SAMPLE_RATE = 16000
SILENCE_RMS = 1e-4
"""Pieces quieter than this (-80 dBFS) are digital silence: nothing to transcribe."""


def plan_chunks(
    regions: list[tuple[float, float]], max_seconds: float
) -> list[tuple[float, float]]:
    """Merge neighbouring speech regions while the span fits `max_seconds`; split longer ones
    into equal parts. Pauses between merged regions stay inside the chunk."""
    merged: list[tuple[float, float]] = []
    for start, end in regions:
        if merged and end - merged[-1][0] <= max_seconds:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    chunks = []
    for start, end in merged:
        parts = max(1, math.ceil((end - start) / max_seconds - 1e-9))
        step = (end - start) / parts
        chunks += [(start + i * step, start + (i + 1) * step) for i in range(parts)]
    return chunks


def fixed_chunks(duration: float, max_seconds: float) -> list[tuple[float, float]]:
    """The whole recording if it fits, else consecutive windows of `max_seconds`."""
    if duration <= 0:
        return []
    starts = np.arange(0.0, duration, max_seconds)
    return [(float(s), float(min(s + max_seconds, duration))) for s in starts]


def plan(
    samples: np.ndarray, vad: VadOptions | None, max_seconds: float
) -> list[tuple[float, float]]:
    """Pieces (start_s, end_s) of a 16 kHz recording: speech regions merged up to the model's
    input length, or fixed windows when `vad` is None."""
    if vad is None:
        return fixed_chunks(len(samples) / SAMPLE_RATE, max_seconds)
    from ..audio.vad import speech_regions

    return plan_chunks(speech_regions(samples, vad), max_seconds)


def is_silent(samples: np.ndarray) -> bool:
    """True for digital silence (or near it), which no model should be asked to transcribe."""
    return samples.size == 0 or float(np.sqrt(np.mean(np.square(samples)))) < SILENCE_RMS


def batches(
    order: list[int], lengths: list[int], size: int, padded_anyway: bool, waste: float = 0.25
) -> list[list[int]]:
    """Consecutive groups of `order` (longest first) of at most `size` pieces. Unless every
    piece is padded to the model's full input anyway, a group also stops growing when padding
    to its longest piece would waste more than `waste` of the computation."""
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < size:
            group = groups[-1] + [i]
            padded = len(group) * lengths[group[0]]
            if padded_anyway or padded <= (1 + waste) * sum(lengths[j] for j in group):
                groups[-1] = group
                continue
        groups.append([i])
    return groups
