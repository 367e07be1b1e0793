"""Model families, short names -> hub ids, and family detection for local directories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .types import AsrModel


@dataclass(frozen=True)
class Family:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., AsrModel]


def _whisper_family() -> Family:
    from .models.whisper import is_whisper_dir, load_whisper

    return Family("whisper", is_whisper_dir, load_whisper)


FAMILIES: list[Callable[[], Family]] = [_whisper_family]

_WHISPER_SIZES = ["tiny", "base", "small", "medium"]
KNOWN_MODELS: dict[str, str] = {
    **{f"whisper-{s}": f"openai/whisper-{s}" for s in _WHISPER_SIZES},
    **{f"whisper-{s}.en": f"openai/whisper-{s}.en" for s in _WHISPER_SIZES},
    "whisper-large": "openai/whisper-large",
    "whisper-large-v2": "openai/whisper-large-v2",
    "whisper-large-v3": "openai/whisper-large-v3",
    "whisper-large-v3-turbo": "openai/whisper-large-v3-turbo",
}


def resolve_directory(name_or_path: str | Path) -> tuple[Path, str]:
    """Local directory holding the model files, and a display name."""
    from .hub import download

    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file; pass the model directory that contains it")
        return path, path.name
    if text in KNOWN_MODELS:
        return download(KNOWN_MODELS[text]), text
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return download(text), text
    raise ModelError(
        f"unknown model {text!r}: not a local directory, a known name "
        f"({', '.join(sorted(KNOWN_MODELS))}) or a hub id like openai/whisper-base"
    )


def detect_family(directory: Path) -> Family:
    for make in FAMILIES:
        family = make()
        if family.detect(directory):
            return family
    raise ModelError(
        f"{directory} is not a model directory polyasr recognizes "
        "(expected e.g. a Whisper config.json, tokenizer.json and model.safetensors)"
    )


def load(name_or_path: str | Path, device: str = "auto", dtype: Any = None) -> AsrModel:
    """Load a model by short name (`whisper-base`), hub id (`openai/whisper-base`) or path.

    `device` is "auto", "cpu", "cuda" or "mps"; `dtype` "float32", "float16", "bfloat16" or
    None for the device's default (float16 on CUDA, float32 elsewhere).
    """
    directory, name = resolve_directory(name_or_path)
    family = detect_family(directory)
    return family.load(directory, device=device, dtype=dtype, name=name)
