"""Qwen3-ASR (0.6B / 1.7B) in native PyTorch, loading the hub layout."""

from .checkpoint import is_qwen3asr_dir, load_qwen3asr
from .recognizer import Qwen3AsrRecognizer

__all__ = ["Qwen3AsrRecognizer", "is_qwen3asr_dir", "load_qwen3asr"]
