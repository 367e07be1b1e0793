"""Resolve a model name, hub id or local path to a local directory (downloading if needed)."""

from __future__ import annotations

from pathlib import Path

from .errors import ModelError

HUB_FILES = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.nemo",
    "*.ckpt",
    "*.yaml",
]
"""What an unknown repository may need (the family is known only once the files are here)."""

IGNORED = ["*.fp32*"]
"""Never loaded: the fp32 copies (`model.fp32-0000k-of-0000n.safetensors`, their
`model.safetensors.index.fp32.json`) some repos hold beside their fp16 `model.safetensors`."""

# The files each family's loader reads, for the repositories behind the short names (see
# docs/hub-layouts.md for their real file lists): everything else in them is left on the hub.
WHISPER_FILES = ["config.json", "generation_config.json", "tokenizer.json", "model.safetensors"]
GIGAAM_FILES = ["config.json", "pytorch_model.bin", "tokenizer.model"]
QWEN3ASR_FILES = [
    "config.json",
    "preprocessor_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "tokenizer.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
]
PREFIXES: list[tuple[str, list[str]]] = [
    ("openai/whisper-", WHISPER_FILES),
    ("ai-sage/GigaAM", GIGAAM_FILES),
    ("nvidia/", ["*.nemo"]),  # NeMo repos also carry a transformers copy we do not read
    ("Qwen/Qwen3-ASR-", QWEN3ASR_FILES),
    ("pyannote/", ["config.yaml", "pytorch_model.bin"]),
]


def _patterns(repo_id: str) -> list[str]:
    """The files of `repo_id` worth downloading (fnmatch patterns of huggingface_hub)."""
    for prefix, patterns in PREFIXES:
        if repo_id.startswith(prefix):
            return patterns
    return HUB_FILES


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def download(repo_id: str, local: str = "--model PATH") -> Path:
    """Fetch a hub repository (`org/name` or `org/name@revision`) into the huggingface_hub
    cache, with a progress bar; a complete cached copy is used without touching the network.
    `local` names the option that takes a local copy instead, for the error messages."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id, _, revision = repo_id.partition("@")
    revision = revision or None
    patterns = _patterns(repo_id)
    try:
        path = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=patterns,
                ignore_patterns=IGNORED,
                local_files_only=True,
            )
        )
    except OSError:  # not cached, or a partial or corrupt copy: the download repairs it
        pass
    else:
        return _checked(path, repo_id, revision, patterns)
    try:
        path = Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=patterns, ignore_patterns=IGNORED
            )
        )
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: check it first
        raise ModelError(
            f"model {repo_id!r} is gated on the Hugging Face hub: request access at "
            f"https://huggingface.co/{repo_id}, then set HF_TOKEN to a token of that account "
            f"(or run `hf auth login`), or pass a local copy with {local}"
        ) from None
    except RevisionNotFoundError:
        raise ModelError(f"model {repo_id!r} has no revision {revision!r} on the hub") from None
    except RepositoryNotFoundError:
        raise ModelError(
            f"model {repo_id!r} does not exist on the Hugging Face hub (if it is private, "
            "set HF_TOKEN)"
        ) from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"cannot download {repo_id!r}: the Hugging Face hub is unreachable (offline?) and the "
            f"model is not in the local cache; pass a local copy with {local}"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"cannot download {repo_id!r}: {_first_line(exc)}") from None
    return _checked(path, repo_id, revision, patterns)


def _checked(path: Path, repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    """`path`, unless the snapshot lacks the one file a NeMo repo is downloaded for (the
    repository dropped or renamed its `.nemo`, keeping only other formats)."""
    if patterns == ["*.nemo"] and not any(path.glob("*.nemo")):
        at = f" at revision {revision!r}" if revision else ""
        raise ModelError(
            f"model {repo_id!r} has no .nemo file on the hub{at}: polyasr reads NVIDIA models "
            "from their .nemo archive; pass a local .nemo with --model PATH"
        )
    return path
