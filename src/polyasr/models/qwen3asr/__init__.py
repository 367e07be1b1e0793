"""Qwen3-ASR (0.6B / 1.7B) in native PyTorch, loading the hub layout."""

from .checkpoint import build_qwen3asr, is_qwen3asr_dir, read_qwen3asr
from .recognizer import Qwen3AsrRecognizer

__all__ = ["Qwen3AsrRecognizer", "build_qwen3asr", "is_qwen3asr_dir", "read_qwen3asr"]
