"""Channel mode: each channel of a recording is one speaker (a call, a two-microphone
interview). Each channel is transcribed on its own; a word heard in both channels (crosstalk
leaking into the other microphone) belongs to the channel where it is loudest, so that it is
never given to both speakers."""

from __future__ import annotations

from dataclasses import replace
from difflib import SequenceMatcher

import numpy as np

from ..types import Segment, Turn
from .speakers import join_words, label, turns_from_activity

SAMPLE_RATE = 16000
LEAKAGE_DB = 20.0
"""Speech in a channel quieter than the other by this much is the other speaker leaking in
(measured: two people talking at once on separate microphones differ by up to 11 dB)."""
LEAKAGE = 10 ** (LEAKAGE_DB / 10)
SIMILAR = 0.75
"""Words this similar (difflib ratio of their letters) at the same time are the same speech."""
IDENTICAL = 0.999
"""Channels whose correlation reaches this carry the same signal (a mono file in stereo)."""


def distinct_channels(samples: np.ndarray) -> bool:
    """True for exactly two channels that carry different signals."""
    if samples.ndim != 2 or samples.shape[0] != 2:
        return False
    left, right = samples.astype(np.float64)
    energy = np.sqrt(np.sum(left**2) * np.sum(right**2))
    if energy == 0:
        return bool(np.any(left) or np.any(right))
    return float(np.dot(left, right) / energy) < IDENTICAL


def _energy(channel: np.ndarray, start: float, end: float) -> float:
    a = max(0, int(start * SAMPLE_RATE))
    b = max(a + 1, int(np.ceil(end * SAMPLE_RATE)))
    return float(np.mean(np.square(channel[a:b], dtype=np.float64))) if a < len(channel) else 0.0


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _echo(start: float, end: float, text: str, others: list[tuple[float, float, str]]) -> bool:
    """True if `others` holds (nearly) the same text at the same time (over half of the shorter
    span): the same speech, heard in both microphones."""
    key = _key(text)
    return any(
        min(end, b) - max(start, a) > 0.5 * min(end - start, b - a)
        and SequenceMatcher(None, key, _key(other)).ratio() >= SIMILAR
        for a, b, other in others
    )


def merge_channels(samples: np.ndarray, per_channel: list[list[Segment]]) -> list[Segment]:
    """Segments of every channel, each labelled with its channel's speaker, in time order.

    Speech that leaks into the other microphone is transcribed twice, once in each channel, at
    the same time: such a word (or, without words, segment) is kept only in the channel where
    it is loudest, and so is speech far louder in the other channel. Two people talking at once
    keep their words, whichever is louder."""
    spans = [
        [(x.start, x.end, x.text) for segment in segments for x in (segment.words or [segment])]
        for segments in per_channel
    ]

    def kept(channel: int, start: float, end: float, text: str) -> bool:
        mine = _energy(samples[channel], start, end)
        for other in range(len(per_channel)):
            theirs = _energy(samples[other], start, end)
            if other == channel or theirs <= mine:
                continue
            if theirs >= mine * LEAKAGE or _echo(start, end, text, spans[other]):
                return False
        return True

    merged: list[Segment] = []
    for channel, segments in enumerate(per_channel):
        speaker = label(channel)
        for segment in segments:
            if not segment.words:
                if kept(channel, segment.start, segment.end, segment.text):
                    merged.append(replace(segment, speaker=speaker))
                continue
            words = [
                replace(w, speaker=speaker)
                for w in segment.words
                if kept(channel, w.start, w.end, w.text)
            ]
            if words:
                merged.append(
                    replace(
                        segment,
                        start=words[0].start,
                        end=words[-1].end,
                        text=join_words(words) if len(words) < len(segment.words) else segment.text,
                        words=words,
                        speaker=speaker,
                    )
                )
    return sorted(merged, key=lambda s: (s.start, s.end))


def channel_turns(samples: np.ndarray) -> list[Turn]:
    """Turns of a two-channel recording, channel k being SPEAKER_0k: where Silero VAD finds
    speech in that channel and the channel is not far quieter than the other (leakage)."""
    from ..audio.vad import WINDOW, regions_from_probabilities, speech_probabilities
    from ..types import VadOptions

    fine = VadOptions(min_speech_s=0.25, min_silence_s=0.1, speech_pad_s=0.03)
    n = samples.shape[1]
    frames = -(-n // WINDOW)
    padded = np.pad(samples, ((0, 0), (0, frames * WINDOW - n)))
    energy = np.mean(np.square(padded.reshape(2, frames, WINDOW), dtype=np.float64), axis=2)
    loud = energy * LEAKAGE >= energy.max(axis=0)
    active = np.zeros((frames, 2), dtype=bool)
    for channel in range(2):
        probs = speech_probabilities(samples[channel])
        for start, end in regions_from_probabilities(probs, n, fine):
            active[start // WINDOW : -(-end // WINDOW), channel] = True
    active &= loud.T
    step = WINDOW / SAMPLE_RATE
    turns = turns_from_activity(active, step / 2, step, by_appearance=False)
    return [Turn(t.start, min(t.end, n / SAMPLE_RATE), t.speaker) for t in turns]
