"""Audio decoding, resampling and log-mel features."""

from .features import FeatureConfig, log_mel
from .io import Audio, load_audio

__all__ = ["Audio", "FeatureConfig", "load_audio", "log_mel"]
