"""Cluster mode: who spoke when in one channel, with overlapped speech.

1. pyannote's segmentation-3.0 on sliding 10 s windows gives, per window and frame, which of up
   to three local speakers talk (two at once at most: overlap is explicit).
2. Each (window, local speaker) gets a speaker embedding of the frames where it talks alone
   (all its frames when those are too few); the features of the recording are computed once.
3. The embeddings are clustered with an automatic speaker count (`clustering`).
4. Back to the recording's frame grid: per frame, the number of speakers is the windows' mean
   local count, and that many clusters with the most activity there are active.

The recipe (and its defaults) is pyannote.audio 3.x's `SpeakerDiarization` pipeline.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch

from ..types import DiarizeOptions, Turn
from .clustering import agglomerate, assign, speaker_range
from .embedding import SpeakerEmbedder
from .segmentation import Segmentation, sliding_windows
from .speakers import turns_from_activity

SAMPLE_RATE = 16000
BATCH = 32
"""Windows segmented at a time."""


class Diarizer:
    """Speaker turns of a 16 kHz mono recording from a segmentation model and an embedder."""

    def __init__(self, segmentation: Segmentation, embedder: SpeakerEmbedder) -> None:
        self.segmentation = segmentation
        self.embedder = embedder

    @torch.inference_mode()
    def activity(self, samples: np.ndarray, step: int) -> tuple[np.ndarray, list[int]]:
        """Hard local-speaker activity [windows, frames, speakers] of the sliding windows
        every `step` samples (`sliding_windows`, cut a batch at a time so that memory stays
        bounded), and the windows' start samples."""
        window = self.segmentation.window_samples
        audio = torch.from_numpy(samples)
        out, starts = [], []
        for first in range(0, len(samples), BATCH * step):
            part = audio[first : first + (BATCH - 1) * step + window]
            windows = sliding_windows(part, window, step)
            out.append(self.segmentation.to_speakers(self.segmentation(windows)).numpy())
            starts += [first + i * step for i in range(len(windows))]
            if first + (BATCH - 1) * step + window >= len(samples):
                break
        return np.concatenate(out), starts

    def embeddings(
        self, samples: np.ndarray, starts: list[int], activity: np.ndarray, chosen: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embeddings of the active (window, local speaker) pairs of the `chosen` windows:
        ([N, E], windows, speakers).

        A pair is embedded on the feature frames where it talks alone, or on all of its frames
        when those are fewer than the embedder needs."""
        features = self.embedder.features(samples)
        timing = self.segmentation.timing
        frames = activity.shape[1]
        alone = activity * (activity.sum(axis=2, keepdims=True) < 2)
        embed_step, embed_centre = self.embedder.frame_step, self.embedder.frame_centre
        clips, windows, speakers = [], [], []
        for w in chosen:
            offset = starts[w] / SAMPLE_RATE + timing.start
            for s in range(activity.shape[2]):
                if not activity[w, :, s].any():
                    continue
                # the feature frames whose centre lies in one of the pair's frames
                first = max(0, math.ceil((offset - embed_centre) / embed_step))
                end = offset + frames * timing.step - embed_centre
                rows = np.arange(first, min(len(features), int(end / embed_step) + 1))
                owner = ((rows * embed_step + embed_centre - offset) / timing.step).astype(int)
                owner = np.clip(owner, 0, frames - 1)
                keep = rows[alone[w, owner, s] > 0]
                if len(keep) < self.embedder.min_frames:
                    keep = rows[activity[w, owner, s] > 0]
                if len(keep) < self.embedder.min_frames:
                    continue
                clips.append(features[torch.from_numpy(keep)])
                windows.append(w)
                speakers.append(s)
        vectors = self.embedder.embed(clips) if clips else np.zeros((0, 1), np.float32)
        return vectors, np.array(windows, dtype=int), np.array(speakers, dtype=int)

    def __call__(self, samples: np.ndarray, options: DiarizeOptions) -> list[Turn]:
        """Speaker turns (overlapping where two speakers talk at once)."""
        samples = np.asarray(samples, dtype=np.float32)
        if len(samples) == 0:
            return []
        step = max(1, round(options.step_s * SAMPLE_RATE))
        activity, starts = self.activity(samples, step)
        timing = self.segmentation.timing
        frames = activity.shape[1]
        offsets = [round(s / SAMPLE_RATE / timing.step) for s in starts]
        total = offsets[-1] + frames
        coverage = np.zeros(total)
        count = np.zeros(total)
        for w, first in enumerate(offsets):
            coverage[first : first + frames] += 1
            count[first : first + frames] += activity[w].sum(axis=1)
        count = np.rint(count / np.maximum(coverage, 1)).astype(int)
        if count.max() == 0:
            return []
        chosen = list(range(0, len(starts), options.embed_every))
        if chosen[-1] != len(starts) - 1:
            chosen.append(len(starts) - 1)
        vectors, windows, speakers = self.embeddings(samples, starts, activity, chosen)
        fewest, most = speaker_range(
            len(vectors), options.num_speakers, options.min_speakers, options.max_speakers
        )
        clusters = np.full(activity.shape[::2], -1)
        if len(vectors) and most >= 2:
            labels = agglomerate(vectors, options.threshold, options.min_cluster_size, fewest, most)
            _, assigned = assign(vectors, labels, windows if options.constrained else None)
            clusters[windows, speakers] = assigned
        elif len(vectors):
            clusters[windows, speakers] = 0
        else:
            clusters[activity.any(axis=1)] = 0
        if len(chosen) < len(starts):
            propagate(clusters, activity, offsets, chosen)
        if options.max_speakers:
            count = np.minimum(count, options.max_speakers)
        width = max(int(clusters.max()) + 1, int(count.max()))
        scores = np.zeros((total, width))  # per frame: windows in which each cluster talks
        for w, first in enumerate(offsets):
            talking = np.zeros((frames, width))
            for s in np.flatnonzero(clusters[w] >= 0):
                k = clusters[w, s]
                talking[:, k] = np.maximum(talking[:, k], activity[w, :, s])
            scores[first : first + frames] += talking
        binary = np.zeros_like(scores)
        ranked = np.argsort(-scores, axis=1, kind="stable")
        for t in np.flatnonzero(count):
            binary[t, ranked[t, : count[t]]] = 1
        end = len(samples) / SAMPLE_RATE
        turns = turns_from_activity(binary, timing.duration / 2, timing.step)
        return [Turn(t.start, min(t.end, end), t.speaker) for t in turns if t.start < end]


def propagate(
    clusters: np.ndarray, activity: np.ndarray, offsets: list[int], chosen: list[int]
) -> None:
    """Clusters for the local speakers of the windows that were not embedded: each takes the
    cluster whose speakers in the nearest embedded windows on both sides share the most active
    frames with it (two local speakers of one window never share a cluster)."""
    from scipy.optimize import linear_sum_assignment

    frames = activity.shape[1]
    width = int(clusters.max()) + 1
    if width < 1:
        return
    embedded = np.array(chosen)
    for w in np.setdiff1d(np.arange(len(offsets)), embedded):
        active = np.flatnonzero(activity[w].any(axis=0))
        if not len(active):
            continue
        after = int(np.searchsorted(embedded, w))
        shared = np.zeros((len(active), width))
        for n in embedded[max(after - 1, 0) : after + 1]:
            shift = offsets[n] - offsets[w]
            lo, hi = max(0, shift), min(frames, frames + shift)
            if lo >= hi:
                continue
            mine = activity[w, lo:hi][:, active]
            for s in np.flatnonzero(clusters[n] >= 0):
                theirs = activity[n, lo - shift : hi - shift, s]
                shared[:, clusters[n, s]] += mine.T @ theirs
        rows, picked = linear_sum_assignment(shared, maximize=True)
        for row, k in zip(rows, picked):
            if shared[row, k] > 0:
                clusters[w, active[row]] = k


def load_diarizer(options: DiarizeOptions) -> Diarizer:
    """The segmentation model and the embedder that `options` name, from local files or their
    official sources (see `models`); loaded once per process."""
    from .models import CAMPLUS, SEGMENTATION

    return _load(
        options.embedding,
        options.segmentation_model or os.environ.get(SEGMENTATION.variable),
        options.embedding_model or os.environ.get(CAMPLUS.variable),
    )


@functools.lru_cache(maxsize=4)
def _load(embedding: str, segmentation_path: str | None, embedding_path: str | None) -> Diarizer:
    from .campplus import load_campplus
    from .embedding import CamPlusPlusEmbedder, MeanMelEmbedder
    from .models import CAMPLUS, SEGMENTATION, model_file
    from .segmentation import load_segmentation

    segmentation = load_segmentation(model_file(SEGMENTATION, segmentation_path))
    if embedding == "mean-mel":
        return Diarizer(segmentation, MeanMelEmbedder())
    model = load_campplus(model_file(CAMPLUS, embedding_path))
    return Diarizer(segmentation, CamPlusPlusEmbedder(model))
