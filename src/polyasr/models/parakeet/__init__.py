"""Parakeet TDT (NVIDIA NeMo) in native PyTorch, loading `.nemo` archives safely."""

from .checkpoint import build_parakeet, is_parakeet, parakeet_inputs, read_parakeet
from .recognizer import ParakeetRecognizer

__all__ = [
    "ParakeetRecognizer",
    "build_parakeet",
    "is_parakeet",
    "parakeet_inputs",
    "read_parakeet",
]
