"""polyasr: local speech recognition for several model families behind one API."""

from __future__ import annotations

from .audio.io import Audio
from .diarization.api import diarize
from .errors import AudioError, AudioWarning, ModelError, OptionError, PolyasrError
from .registry import KNOWN_MODELS, load
from .types import (
    AsrModel,
    DiarizeOptions,
    Progress,
    Segment,
    TranscribeOptions,
    Transcript,
    Turn,
    VadOptions,
    Word,
)

__all__ = [
    "KNOWN_MODELS",
    "AsrModel",
    "Audio",
    "AudioError",
    "AudioWarning",
    "DiarizeOptions",
    "ModelError",
    "OptionError",
    "PolyasrError",
    "Progress",
    "Segment",
    "TranscribeOptions",
    "Transcript",
    "Turn",
    "VadOptions",
    "Word",
    "diarize",
    "load",
]
__version__ = "0.1.0"
