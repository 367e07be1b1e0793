"""GigaAM v3 (SaluteDevices) in native PyTorch, loading the published checkpoints safely."""

from .checkpoint import is_gigaam, load_gigaam
from .recognizer import GigaAMRecognizer

__all__ = ["GigaAMRecognizer", "is_gigaam", "load_gigaam"]
