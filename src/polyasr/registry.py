"""Model families, short names -> hub ids, and family detection for local directories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .models.checkpoint import Checkpoint
from .pipeline.recognizer import Recognizer
from .pipeline.transcriber import Transcriber


@dataclass(frozen=True)
class Family:
    """A model family: which files are its, how to read them, how to build the model."""

    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], Checkpoint]
    build: Callable[..., Recognizer]


def _whisper_family() -> Family:
    from .models.whisper import build_whisper, is_whisper_dir, read_whisper

    return Family("whisper", is_whisper_dir, read_whisper, build_whisper)


def _gigaam_family() -> Family:
    from .models.gigaam import build_gigaam, is_gigaam, read_gigaam

    return Family("gigaam", is_gigaam, read_gigaam, build_gigaam)


def _parakeet_family() -> Family:
    from .models.parakeet import build_parakeet, is_parakeet, read_parakeet

    return Family("parakeet", is_parakeet, read_parakeet, build_parakeet)


def _qwen3asr_family() -> Family:
    from .models.qwen3asr import build_qwen3asr, is_qwen3asr_dir, read_qwen3asr

    return Family("qwen3-asr", is_qwen3asr_dir, read_qwen3asr, build_qwen3asr)


FAMILIES: list[Callable[[], Family]] = [
    _whisper_family,
    _gigaam_family,
    _parakeet_family,
    _qwen3asr_family,
]

_WHISPER_SIZES = ["tiny", "base", "small", "medium"]
GIGAAM_VARIANTS = ["ctc", "rnnt", "e2e_ctc", "e2e_rnnt"]
KNOWN_MODELS: dict[str, str] = {
    **{f"whisper-{s}": f"openai/whisper-{s}" for s in _WHISPER_SIZES},
    **{f"whisper-{s}.en": f"openai/whisper-{s}.en" for s in _WHISPER_SIZES},
    "whisper-large": "openai/whisper-large",
    "whisper-large-v2": "openai/whisper-large-v2",
    "whisper-large-v3": "openai/whisper-large-v3",
    "whisper-large-v3-turbo": "openai/whisper-large-v3-turbo",
    **{f"gigaam-v3-{v.replace('_', '-')}": f"ai-sage/GigaAM-v3@{v}" for v in GIGAAM_VARIANTS},
    "parakeet-tdt-0.6b-v2": "nvidia/parakeet-tdt-0.6b-v2",
    "parakeet-tdt-0.6b-v3": "nvidia/parakeet-tdt-0.6b-v3",
    "qwen3-asr-0.6b": "Qwen/Qwen3-ASR-0.6B",
    "qwen3-asr-1.7b": "Qwen/Qwen3-ASR-1.7B",
}


def resolve_directory(name_or_path: str | Path) -> tuple[Path, str]:
    """Local directory holding the model files, and a display name."""
    from .hub import download

    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path, path.stem
    if text in KNOWN_MODELS:
        return download(KNOWN_MODELS[text]), text
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return download(text), text
    raise ModelError(
        f"unknown model {text!r}: not a local directory, a known name "
        f"({', '.join(sorted(KNOWN_MODELS))}) or a hub id like openai/whisper-base"
    )


def detect_family(directory: Path) -> Family:
    """The family whose files `directory` (or a single checkpoint file) holds."""
    for make in FAMILIES:
        family = make()
        if family.detect(directory):
            return family
    raise ModelError(
        f"{directory} is not a model polyasr recognizes (expected a Whisper directory with "
        "config.json, tokenizer.json and model.safetensors, a Qwen3-ASR directory whose "
        "config.json has model_type qwen3_asr, a GigaAM v3 .ckpt or a Parakeet TDT .nemo)"
    )


def load(name_or_path: str | Path, device: str = "auto", dtype: Any = None) -> Transcriber:
    """Load a model by short name (`whisper-base`), hub id (`openai/whisper-base`) or path.

    `device` is "auto", "cpu", "cuda" or "mps"; `dtype` "float32", "float16", "bfloat16" or
    None for the device's default (float16 on CUDA, float32 elsewhere). The result follows
    the `AsrModel` protocol; its `recognizer` is the family's model.
    """
    directory, name = resolve_directory(name_or_path)
    family = detect_family(directory)
    checkpoint = family.read(directory)
    return Transcriber(family.build(checkpoint, device=device, dtype=dtype, name=name))
