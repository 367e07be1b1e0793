"""Result and option dataclasses, and the protocol every model family implements."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol, Union, runtime_checkable

import numpy as np

from .errors import OptionError

AudioInput = Union[str, "os.PathLike[str]", np.ndarray]
"""A file path, or a float32 waveform at 16 kHz: [samples] mono or [channels, samples]."""


@dataclass
class Word:
    """One word with its time span in seconds and the model's confidence in it."""

    start: float
    end: float
    text: str
    probability: float | None = None


@dataclass
class Segment:
    """A stretch of speech with its text, absolute time span and optional words/speaker."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None
    language: str | None = None
    """ISO code of the language the model tagged this stretch with (Qwen3-ASR), else None."""
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None


@dataclass
class Transcript:
    """The result of transcribing one recording."""

    text: str
    segments: list[Segment]
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    """Length of the audio in seconds."""
    processing_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time divided by audio duration."""
        return self.processing_seconds / self.duration if self.duration > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rtf"] = self.rtf
        return data


TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class TranscribeOptions:
    """What to transcribe and how. Families ignore options that do not apply to them."""

    language: str | None = None
    """ISO code such as "en"; None detects the language."""
    task: str = "transcribe"
    """"transcribe" or "translate" (to English; Whisper only)."""
    beam_size: int = 5
    """1 is greedy decoding."""
    best_of: int = 5
    """Candidates sampled at temperatures above zero."""
    patience: float = 1.0
    length_penalty: float | None = None
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    """Fallback schedule: the next temperature is tried when a window fails the thresholds."""
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    timestamps: bool = True
    """Segment timestamps; off decodes each window as one segment."""
    word_timestamps: bool = False
    max_new_tokens: int | None = None
    seed: int = 0
    """Seed for sampling at temperatures above zero, so results are reproducible."""
    vad: bool = True
    """Cut the audio at pauses found by Silero VAD and transcribe the pieces in batches; off,
    Whisper decodes 30 s windows sequentially and other families cut fixed windows."""
    batch_size: int = 8
    """Pieces of audio decoded together (more is faster per second of audio, uses more memory)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise OptionError(f"unknown task {self.task!r}; use one of: {', '.join(TASKS)}")
        if self.beam_size < 1 or self.best_of < 1:
            raise OptionError("beam_size and best_of must be at least 1")
        if self.patience <= 0:
            raise OptionError("patience must be positive")
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise OptionError("temperatures must be a non-empty list of values >= 0")
        if self.batch_size < 1:
            raise OptionError("batch_size must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise OptionError("max_new_tokens must be at least 1")
        if isinstance(self.temperatures, list):
            object.__setattr__(self, "temperatures", tuple(self.temperatures))

    @classmethod
    def resolve(
        cls, options: TranscribeOptions | None, overrides: dict[str, Any]
    ) -> TranscribeOptions:
        """`options` (or the defaults) with keyword overrides; unknown names are an error."""
        options = options or cls()
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise OptionError(f"unknown option(s): {', '.join(unknown)}")
        return replace(options, **overrides) if overrides else options


@runtime_checkable
class AsrModel(Protocol):
    """What every model family offers; users never branch on the family."""

    family: str
    sample_rate: int
    languages: tuple[str, ...]

    def transcribe(
        self, audio: AudioInput, options: TranscribeOptions | None = None, **kwargs: Any
    ) -> Transcript: ...

    def transcribe_batch(
        self, audios: list[AudioInput], options: TranscribeOptions | None = None, **kwargs: Any
    ) -> list[Transcript]: ...
