"""OpenAI Whisper in native PyTorch, loading the Hugging Face hub layout."""

from .checkpoint import build_whisper, is_whisper_dir, read_whisper
from .recognizer import WhisperRecognizer

__all__ = ["WhisperRecognizer", "build_whisper", "is_whisper_dir", "read_whisper"]
