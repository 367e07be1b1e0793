"""One exception family with user-facing messages; the CLI prints them as one line."""

from __future__ import annotations


class PolyasrError(Exception):
    """Base class of every error polyasr raises on purpose."""


class AudioError(PolyasrError):
    """The audio input is missing, empty, corrupt or in an unsupported format."""


class ModelError(PolyasrError):
    """A model name, directory or file cannot be resolved or loaded."""


class OptionError(PolyasrError):
    """An option has an unknown or invalid value."""


class AudioWarning(UserWarning):
    """The audio was only partly readable; what was read is still transcribed."""
