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
    samples: np.ndarray, vad: VadOptions | None, max_seconds: float, grow: bool = False
) -> list[tuple[float, float]]:
    """Pieces (start_s, end_s) of a 16 kHz recording of at most `max_seconds`: `cover`ing it
    around its speech regions, or fixed windows when `vad` is None."""
    duration = len(samples) / SAMPLE_RATE
    if vad is None:
        return fixed_chunks(duration, max_seconds)
    from ..audio.vad import WINDOW, regions_from_probabilities, speech_probabilities

    probs = speech_probabilities(samples)
    regions = [
        (start / SAMPLE_RATE, end / SAMPLE_RATE)
        for start, end in regions_from_probabilities(probs, len(samples), vad)
    ]
    return cover(regions, probs, WINDOW / SAMPLE_RATE, duration, max_seconds, vad.veto, grow)


def cover(
    regions: list[tuple[float, float]],
    probs: np.ndarray,
    frame_s: float,
    duration: float,
    max_seconds: float,
    veto: float,
    grow: bool,
) -> list[tuple[float, float]]:
    """Pieces over the whole recording but what is certainly not speech.

    Speech regions are merged into pieces (`plan_chunks`) and the recording is split midway
    between consecutive pieces. With `grow` (for a model that pays for its full input window
    anyway), each piece takes in its share of the audio around it up to `max_seconds`, so no
    word at its edge is cut. The rest of each share becomes pieces of their own, kept when any
    VAD frame in them (`probs`, one per `frame_s`) reaches `veto`.
    """
    chunks = plan_chunks(regions, max_seconds)
    cuts = [0.0] + [(a[1] + b[0]) / 2 for a, b in zip(chunks, chunks[1:])] + [duration]
    pieces: list[tuple[tuple[float, float], bool]] = []  # (span, a speech piece)

    def between(start: float, end: float) -> None:
        if end - start > 0.01:
            pieces.extend((span, False) for span in plan_chunks([(start, end)], max_seconds))

    if not chunks:
        between(0.0, duration)
    for (start, end), low, high in zip(chunks, cuts, cuts[1:]):
        room = max_seconds - (end - start) if grow else 0.0
        grown_start = max(low, start - room / 2)
        grown_end = min(high, end + room - (start - grown_start))
        grown_start = max(low, grown_end - max_seconds)
        between(low, grown_start)
        pieces.append(((grown_start, grown_end), True))
        between(grown_end, high)
    kept = []
    for (start, end), speech in pieces:
        frames = probs[int(start / frame_s) : int(math.ceil(end / frame_s))]
        if speech or (len(frames) and float(frames.max()) >= veto):
            kept.append((start, end))
    return kept


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
