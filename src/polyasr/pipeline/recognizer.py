"""What a model family implements. Everything else (audio, VAD, pieces, batches across
files, stitching, the `Transcript`) is the pipeline's job (`pipeline.transcriber`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..types import Segment, TranscribeOptions


@dataclass
class Decoded:
    """A piece's segments, with times relative to the piece's start."""

    segments: list[Segment]
    consumed: float | None = None
    """Seconds of the piece that were decoded; None is all of it. The pipeline decodes the
    rest as a new piece (Whisper stops a window at its last complete segment)."""


class Recognizer:
    """A loaded model of one family, seen from the pipeline: it decodes batches of pieces of
    16 kHz mono audio that fit its input, and may detect the language or provide its own
    long-form strategy for when VAD is off."""

    family: str = ""
    name: str = ""
    languages: tuple[str, ...] = ()
    """ISO codes the model handles; empty means it does not say."""
    max_piece_seconds: float = 30.0
    pads_to_max_input: bool = False
    """True when every piece costs a full input window (Whisper's 30 s): then pieces of any
    length may share a batch at no extra cost."""
    words_on_request: bool = False
    """True when word timestamps cost extra and are computed only when asked for."""
    has_long_form: bool = False
    """True when `transcribe_long` replaces fixed windows when VAD is off."""

    def check(self, options: TranscribeOptions) -> None:
        """Raise `OptionError` for options this model cannot honour."""

    def decode(self, pieces: list[np.ndarray], options: TranscribeOptions) -> list[Decoded]:
        """Decode pieces of at most `max_piece_seconds`, all in the language of `options`."""
        raise NotImplementedError

    def detect_language(self, samples: np.ndarray) -> tuple[str, float | None] | None:
        """The language spoken in `samples` (the first piece of a recording) and its
        probability, or None when the model does not detect languages before decoding."""
        return None

    def transcribe_long(
        self,
        recordings: list[np.ndarray],
        options: TranscribeOptions,
        advance: Callable[[float], None],
    ) -> list[list[Segment]]:
        """Whole recordings without VAD, with absolute times (when `has_long_form`);
        `advance(seconds)` reports audio done."""
        raise NotImplementedError
