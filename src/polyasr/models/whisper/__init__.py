"""OpenAI Whisper in native PyTorch, loading the Hugging Face hub layout."""

from .checkpoint import is_whisper_dir, load_whisper
from .recognizer import WhisperRecognizer

__all__ = ["WhisperRecognizer", "is_whisper_dir", "load_whisper"]
