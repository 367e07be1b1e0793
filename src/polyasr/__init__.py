"""polyasr: local speech recognition for several model families behind one API."""

from __future__ import annotations

from .errors import AudioError, ModelError, OptionError, PolyasrError
from .registry import KNOWN_MODELS, load
from .types import AsrModel, Segment, TranscribeOptions, Transcript, Word

__all__ = [
    "KNOWN_MODELS",
    "AsrModel",
    "AudioError",
    "ModelError",
    "OptionError",
    "PolyasrError",
    "Segment",
    "TranscribeOptions",
    "Transcript",
    "Word",
    "load",
]
__version__ = "0.1.0"
