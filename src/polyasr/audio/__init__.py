"""Audio decoding, resampling and log-mel features."""

from .io import Audio, AudioInput, load_audio

__all__ = ["Audio", "AudioInput", "FeatureConfig", "load_audio", "log_mel"]


def __getattr__(name: str):
    """The feature code (and torch) is imported on first use, so `import polyasr` stays fast."""
    if name in ("FeatureConfig", "log_mel"):
        from . import features

        return getattr(features, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
