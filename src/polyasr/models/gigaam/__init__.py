"""GigaAM v3 (SaluteDevices) in native PyTorch, loading the published checkpoints safely."""

from .checkpoint import build_gigaam, gigaam_inputs, is_gigaam, read_gigaam
from .recognizer import GigaAMRecognizer

__all__ = ["GigaAMRecognizer", "build_gigaam", "gigaam_inputs", "is_gigaam", "read_gigaam"]
