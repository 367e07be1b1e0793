"""Result and option dataclasses, progress reports, and the protocol every loaded model offers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

from .audio.io import AudioInput
from .errors import OptionError, PolyasrError


@dataclass
class Word:
    """One word with its time span in seconds, the model's confidence and its speaker."""

    start: float
    end: float
    text: str
    probability: float | None = None
    speaker: str | None = None


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


@dataclass(frozen=True, order=True)
class Turn:
    """A stretch of time in which one speaker talks (turns of two speakers may overlap)."""

    start: float
    end: float
    speaker: str


@dataclass
class Transcript:
    """The result of transcribing one recording, with what produced it."""

    text: str
    segments: list[Segment]
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    """Length of the audio in seconds."""
    processing_seconds: float = 0.0
    model: str | None = None
    """Name of the model (short name, hub id or path as given to `polyasr.load`)."""
    family: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """The `TranscribeOptions` that made this transcript, as plain data."""
    turns: list[Turn] = field(default_factory=list)
    """Speaker turns when speakers were asked for (`TranscribeOptions.diarize`)."""
    source: str | None = None
    """The input's path, when it was a file."""

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time divided by audio duration."""
        return self.processing_seconds / self.duration if self.duration > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rtf"] = self.rtf
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """The transcript `to_dict` (or the JSON output) describes; unknown keys are ignored."""
        try:
            segments = [
                Segment(
                    **{
                        **_known(Segment, s),
                        "words": [Word(**_known(Word, w)) for w in s.get("words") or []],
                    }
                )
                for s in data.get("segments") or []
            ]
            turns = [Turn(**_known(Turn, t)) for t in data.get("turns") or []]
            return cls(**{**_known(cls, data), "segments": segments, "turns": turns})
        except (TypeError, AttributeError) as exc:
            raise PolyasrError(f"not a transcript: {exc}") from None


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class VadOptions:
    """How Silero VAD cuts a recording into pieces. It decides where to cut and what is
    certainly not speech, never what is: speech regions are merged into pieces that also cover
    the audio around them, and a stretch between them is left out only when no VAD frame in it
    reaches `veto` (quiet, whispered or falsetto speech often stays below `threshold`)."""

    threshold: float = 0.5
    """Speech starts where the speech probability reaches this (regions guide the cuts)."""
    min_speech_s: float = 0.0
    """Shorter bursts of speech are not regions of their own."""
    min_silence_s: float = 2.0
    """A region ends after this much audio below `threshold - 0.15`."""
    speech_pad_s: float = 0.4
    """Each region is widened by this much on both sides."""
    veto: float = 0.1
    """A stretch outside the regions is left out only when no frame reaches this probability."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or not 0.0 <= self.veto <= self.threshold:
            raise OptionError("the VAD threshold must lie between 0 and 1, the veto below it")
        if min(self.min_speech_s, self.min_silence_s, self.speech_pad_s) < 0:
            raise OptionError("VAD durations must not be negative")


SPEAKER_MODES = ("auto", "channel", "cluster")
EMBEDDINGS = ("campplus", "mean-mel")


@dataclass(frozen=True)
class DiarizeOptions:
    """Who spoke when. `mode` "channel" takes each channel of a stereo recording as one
    speaker, "cluster" finds speakers in the downmix, "auto" picks channel mode for two
    distinct channels and cluster mode otherwise. The speaker count is found automatically
    unless `num_speakers` (or a range) is given."""

    mode: str = "auto"
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    embedding: str = "campplus"
    """"campplus" (3D-Speaker's CAM++) or "mean-mel" (the mean log-mel vector baseline)."""
    threshold: float = 0.925
    """Clustering cut: Euclidean distance between unit-length centroids (lower: more speakers)."""
    min_cluster_size: int = 12
    """Clusters with fewer embeddings are folded into the nearest larger one."""
    step_s: float = 1.0
    """Step of the 10 s segmentation windows."""
    embed_every: int = 3
    """Embed the speakers of every n-th window only; the windows between take their speakers'
    clusters from the embedded neighbours that overlap them most (n times faster embedding)."""
    constrained: bool = False
    """Assign the local speakers of a window to distinct speakers."""
    segmentation_model: str | None = None
    """Local pyannote segmentation-3.0 `pytorch_model.bin` (default: $POLYASR_SEGMENTATION_MODEL,
    else downloaded from the Hugging Face hub, a gated repository)."""
    embedding_model: str | None = None
    """Local CAM++ `campplus_cn_en_common.pt` (default: $POLYASR_EMBEDDING_MODEL, else
    downloaded from ModelScope)."""

    def __post_init__(self) -> None:
        if self.mode not in SPEAKER_MODES:
            raise OptionError(f"unknown speaker mode {self.mode!r}; use {', '.join(SPEAKER_MODES)}")
        if self.embedding not in EMBEDDINGS:
            raise OptionError(f"unknown embedding {self.embedding!r}; use {', '.join(EMBEDDINGS)}")
        counts = [c for c in (self.num_speakers, self.min_speakers, self.max_speakers) if c]
        if any(c < 1 for c in counts) or (
            self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers
        ):
            raise OptionError("speaker counts must be at least 1, min_speakers <= max_speakers")
        if not 0 < self.step_s <= 10 or self.threshold <= 0 or self.min_cluster_size < 1:
            raise OptionError("step_s must lie in (0, 10], threshold and min_cluster_size > 0")
        if self.embed_every < 1:
            raise OptionError("embed_every must be at least 1")


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
    vad_options: VadOptions = field(default_factory=VadOptions)
    diarize: DiarizeOptions | None = None
    """Speakers on every segment and word (see `DiarizeOptions`; True for its defaults);
    None: no speakers."""
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
        if not isinstance(self.vad_options, VadOptions):
            raise OptionError("vad_options must be a polyasr.VadOptions")
        if isinstance(self.diarize, bool):
            object.__setattr__(self, "diarize", DiarizeOptions() if self.diarize else None)
        if self.diarize is not None and not isinstance(self.diarize, DiarizeOptions):
            raise OptionError("diarize must be a polyasr.DiarizeOptions (or None)")
        if isinstance(self.temperatures, list):
            object.__setattr__(self, "temperatures", tuple(self.temperatures))


@dataclass(frozen=True)
class Progress:
    """How far a `transcribe_batch` call has come: pieces of audio decoded and their seconds.

    Totals grow as inputs are read (inputs are decoded a group at a time)."""

    pieces_done: int
    pieces_total: int
    seconds_done: float
    seconds_total: float


ProgressCallback = Callable[[Progress], None]
SegmentsCallback = Callable[[int, list["Segment"]], None]
"""Receives (input index, segments) as stretches of an input become final, in time order."""


@runtime_checkable
class AsrModel(Protocol):
    """What every loaded model offers; users never branch on the family."""

    family: str
    name: str
    sample_rate: int
    languages: tuple[str, ...]

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int | None = None,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        **overrides: Any,
    ) -> Transcript: ...

    def transcribe_batch(
        self,
        audios: list[AudioInput],
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int | None = None,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        **overrides: Any,
    ) -> list[Transcript | PolyasrError]: ...


OptionsT = TypeVar("OptionsT", "TranscribeOptions", "DiarizeOptions")


def with_overrides(
    kind: type[OptionsT], options: OptionsT | None, overrides: dict[str, Any]
) -> OptionsT:
    """`options` (or the defaults of `kind`) with keyword overrides; unknown names are an
    error."""
    options = options or kind()
    unknown = sorted(set(overrides) - {f.name for f in fields(kind)})
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(unknown)}")
    return replace(options, **overrides) if overrides else options
