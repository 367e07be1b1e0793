"""Qwen3-ASR (0.6B, 1.7B) in native PyTorch, loading the Hugging Face hub layout."""

from .load import Qwen3Asr, is_qwen3asr_dir, load_qwen3asr

__all__ = ["Qwen3Asr", "is_qwen3asr_dir", "load_qwen3asr"]
