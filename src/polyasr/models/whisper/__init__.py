"""OpenAI Whisper in native PyTorch, loading the Hugging Face hub layout."""

from .load import WhisperAsr, is_whisper_dir, load_whisper

__all__ = ["WhisperAsr", "is_whisper_dir", "load_whisper"]
