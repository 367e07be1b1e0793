"""Long audio for any family: speech regions -> chunks that fit the model -> batches -> stitch.

A family provides `max_input_seconds` and `transcribe_chunks(chunks, options)`, which returns
segments with times relative to each chunk; this module does the rest, pooling the chunks of
several files into the same batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import numpy as np

from ..audio import load_audio
from ..types import AudioInput, Segment, TranscribeOptions, Transcript

SAMPLE_RATE = 16000


class ChunkModel(Protocol):
    max_input_seconds: float
    pads_to_max_input: bool
    """True when every piece is padded to the full input (Whisper's 30 s window): then any
    pieces can share a batch at no extra cost."""

    def transcribe_chunks(
        self, chunks: list[np.ndarray], options: TranscribeOptions
    ) -> list[list[Segment]]: ...


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


def chunks_of(
    samples: np.ndarray, options: TranscribeOptions, max_seconds: float
) -> list[tuple[float, float]]:
    duration = len(samples) / SAMPLE_RATE
    if not options.vad:
        return fixed_chunks(duration, max_seconds)
    from ..audio.vad import speech_regions

    return plan_chunks(speech_regions(samples), max_seconds)


def _shift(segment: Segment, offset: float) -> Segment:
    words = [
        replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3))
        for w in segment.words
    ]
    return replace(
        segment,
        start=round(segment.start + offset, 3),
        end=round(segment.end + offset, 3),
        words=words,
    )


def transcribe_samples(
    model: ChunkModel,
    recordings: list[np.ndarray],
    options: TranscribeOptions,
    progress: Callable[[float, float], None] | None = None,
) -> list[list[Segment]]:
    """Segments with absolute times for each recording; chunks of all recordings share batches,
    longest first so that a batch holds pieces of similar length (little padding)."""
    pieces = []  # (recording index, chunk start s, samples)
    for r, samples in enumerate(recordings):
        for start, end in chunks_of(samples, options, model.max_input_seconds):
            a, b = int(round(start * SAMPLE_RATE)), int(round(end * SAMPLE_RATE))
            if b > a:
                pieces.append((r, start, samples[a:b]))
    order = sorted(range(len(pieces)), key=lambda i: -len(pieces[i][2]))
    results: list[list[Segment]] = [[] for _ in pieces]
    total = sum(len(p[2]) for p in pieces) / SAMPLE_RATE
    done = 0.0
    for batch in _batches(
        order, [len(p[2]) for p in pieces], options.batch_size, model.pads_to_max_input
    ):
        outputs = model.transcribe_chunks([pieces[j][2] for j in batch], options)
        for j, segments in zip(batch, outputs):
            results[j] = [_shift(s, pieces[j][1]) for s in segments]
            done += len(pieces[j][2]) / SAMPLE_RATE
        if progress:
            progress(done, total)
    per_recording: list[list[Segment]] = [[] for _ in recordings]
    for (r, _, _), segments in zip(pieces, results):
        per_recording[r].extend(segments)
    return per_recording


def _batches(
    order: list[int], lengths: list[int], size: int, padded_anyway: bool, waste: float = 0.25
) -> list[list[int]]:
    """Consecutive groups of `order` (longest first) of at most `size` pieces. Unless every
    piece is padded to the model's full input anyway, a group also stops growing when padding
    to its longest piece would waste more than `waste` of the computation."""
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < size:
            group = batches[-1] + [i]
            padded = len(group) * lengths[group[0]]
            if padded_anyway or padded <= (1 + waste) * sum(lengths[j] for j in group):
                batches[-1] = group
                continue
        batches.append([i])
    return batches


def transcribe_many(
    model: ChunkModel,
    audios: list[AudioInput],
    options: TranscribeOptions,
    language: str | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> list[Transcript]:
    """Transcripts of several recordings, decoded in shared batches."""
    started = time.perf_counter()
    recordings = [load_audio(a, SAMPLE_RATE).mono() for a in audios]
    segment_lists = transcribe_samples(model, recordings, options, progress)
    elapsed = time.perf_counter() - started
    total = sum(len(r) for r in recordings) or 1
    return [
        Transcript(
            text=join_text(segments),
            segments=segments,
            language=language,
            duration=len(samples) / SAMPLE_RATE,
            processing_seconds=elapsed * len(samples) / total,
        )
        for samples, segments in zip(recordings, segment_lists)
    ]


def join_text(segments: list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())
