"""Parakeet TDT (NVIDIA NeMo) in native PyTorch, loading `.nemo` archives safely."""

from .load import ParakeetAsr, is_parakeet, load_parakeet

__all__ = ["ParakeetAsr", "is_parakeet", "load_parakeet"]
