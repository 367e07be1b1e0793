"""Audio decoding, resampling and log-mel features."""

from .features import FeatureConfig, log_mel
from .io import Audio, AudioInput, load_audio

__all__ = ["Audio", "AudioInput", "FeatureConfig", "load_audio", "log_mel"]
