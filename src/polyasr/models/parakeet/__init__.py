"""Parakeet TDT (NVIDIA NeMo) in native PyTorch, loading `.nemo` archives safely."""

from .checkpoint import is_parakeet, load_parakeet
from .recognizer import ParakeetRecognizer

__all__ = ["ParakeetRecognizer", "is_parakeet", "load_parakeet"]
