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
    inputs: Callable[[Path], list[Path]] = lambda path: []
    """The files `read` reads from a path (their sizes and times validate a cached copy);
    none for families whose weights are memory-mapped as read (no copy is kept of them)."""


def _whisper_family() -> Family:
    from .models.whisper import build_whisper, is_whisper_dir, read_whisper

    return Family("whisper", is_whisper_dir, read_whisper, build_whisper)


def _gigaam_family() -> Family:
    from .models.gigaam import build_gigaam, gigaam_inputs, is_gigaam, read_gigaam

    return Family("gigaam", is_gigaam, read_gigaam, build_gigaam, gigaam_inputs)


def _parakeet_family() -> Family:
    from .models.parakeet import build_parakeet, is_parakeet, parakeet_inputs, read_parakeet

    return Family("parakeet", is_parakeet, read_parakeet, build_parakeet, parakeet_inputs)


def _qwen3asr_family() -> Family:
    from .models.qwen3asr import build_qwen3asr, is_qwen3asr_dir, read_qwen3asr

    return Family("qwen3-asr", is_qwen3asr_dir, read_qwen3asr, build_qwen3asr)


FAMILIES: list[Callable[[], Family]] = [
    _whisper_family,
    _gigaam_family,
    _parakeet_family,
    _qwen3asr_family,
]


@dataclass(frozen=True)
class KnownModel:
    """A short name's hub repository and how far its published layout is confirmed."""

    repo: str
    """The hub id, with `@revision` for a branch other than main."""
    uncertain: str = ""
    """What of the layout was not seen in public evidence and what would confirm it
    (docs/hub-layouts.md); empty when the files the loader reads are verified."""

    @property
    def verified(self) -> bool:
        return not self.uncertain


_WHISPER_LISTING = (
    "file list not seen (inferred: the layout of whisper-base/small/large); confirm with "
    "huggingface_hub.list_repo_files(repo)"
)
_GIGAAM_REVISION = (
    "file list and config.json of the revision not seen (inferred from e2e_rnnt and the remote "
    "code: characters in config.json, tokenizer.model only for e2e); confirm with "
    "list_repo_tree('ai-sage/GigaAM-v3', revision=...) and the revision's config.json"
)
_NEMO_YAML = (
    "model_config.yaml inside the .nemo not seen verbatim (TDT durations, use_bias, xscaling, "
    "tokenizer member names); confirm with `tar -tvf` of the .nemo and its YAML"
)
_QWEN_TOKENIZER = (
    "tokenizer_config.json (added tokens 151671-151703) and chat_template.json not seen; "
    "confirm with both files of the repository"
)


def _whisper(size: str, verified: bool) -> KnownModel:
    return KnownModel(f"openai/whisper-{size}", "" if verified else _WHISPER_LISTING)


_WHISPER_SIZES = ["tiny", "base", "small", "medium"]
_WHISPER_SEEN = {"base", "small", "large", "large-v2", "large-v3", "large-v3-turbo"}
GIGAAM_VARIANTS = ["ctc", "rnnt", "e2e_ctc", "e2e_rnnt"]
MODELS: dict[str, KnownModel] = {
    **{f"whisper-{s}": _whisper(s, s in _WHISPER_SEEN) for s in _WHISPER_SIZES},
    **{f"whisper-{s}.en": _whisper(f"{s}.en", False) for s in _WHISPER_SIZES},
    **{f"whisper-{s}": _whisper(s, True) for s in ["large", "large-v2", "large-v3"]},
    "whisper-large-v3-turbo": _whisper("large-v3-turbo", True),
    **{
        f"gigaam-v3-{v.replace('_', '-')}": KnownModel(
            f"ai-sage/GigaAM-v3@{v}",
            "" if v == "e2e_rnnt" else _GIGAAM_REVISION,
        )
        for v in GIGAAM_VARIANTS
    },
    "parakeet-tdt-0.6b-v2": KnownModel(
        "nvidia/parakeet-tdt-0.6b-v2", "repository file list not seen; " + _NEMO_YAML
    ),
    "parakeet-tdt-0.6b-v3": KnownModel("nvidia/parakeet-tdt-0.6b-v3", _NEMO_YAML),
    "qwen3-asr-0.6b": KnownModel("Qwen/Qwen3-ASR-0.6B", _QWEN_TOKENIZER),
    "qwen3-asr-1.7b": KnownModel("Qwen/Qwen3-ASR-1.7B", _QWEN_TOKENIZER),
}
"""The short names of `polyasr models`: repository and layout status (one table for the CLI,
the README and the tests)."""
KNOWN_MODELS: dict[str, str] = {name: model.repo for name, model in MODELS.items()}


def resolve_directory(name_or_path: str | Path) -> tuple[Path, str]:
    """Local directory holding the model files, and a display name."""
    from .hub import download

    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path, path.stem if path.is_file() else path.name
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
        "config.json has model_type qwen3_asr, a GigaAM v3 .ckpt, a Parakeet TDT .nemo or a "
        "polyasr .gguf)"
    )


def load(name_or_path: str | Path, device: str = "auto", dtype: Any = None) -> Transcriber:
    """Load a model by short name (`whisper-base`), hub id (`openai/whisper-base`) or path.

    `device` is "auto", "cpu", "cuda" or "mps"; `dtype` "float32", "float16", "bfloat16" or
    None for the device's default (float16 on CUDA, float32 elsewhere). The result follows
    the `AsrModel` protocol; its `recognizer` is the family's model.
    """
    from .devices import release_free_memory

    directory, name = resolve_directory(name_or_path)
    family, checkpoint = read_checkpoint(directory)
    recognizer = family.build(checkpoint, device=device, dtype=dtype, name=name)
    del checkpoint
    release_free_memory()
    return Transcriber(recognizer)


def read_checkpoint(path: Path, dense: bool = False) -> tuple[Family, Checkpoint]:
    """The family and the `Checkpoint` of a model directory or file: a family's published
    files (through the checkpoint cache, `models/checkpoint_cache.py`), or a polyasr GGUF file
    (recognized by its header; with `dense`, its weights as plain tensors, not packed-kernel
    matrices: what rewriting it in another type needs)."""
    from .models.checkpoint_cache import read_through
    from .models.gguf import is_gguf, read_gguf

    if is_gguf(path):
        checkpoint = read_gguf(path, quantized=not dense)
        for make in FAMILIES:
            family = make()
            if family.name == checkpoint.family:
                return family, checkpoint
        raise ModelError(f"{path} holds a {checkpoint.family!r} model, unknown to polyasr")
    family = detect_family(path)
    return family, read_through(path, family.inputs(path), family.read)
