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


def _patterns(repo_id: str) -> list[str]:
    """Files worth downloading: NeMo repos also carry a converted copy we do not need."""
    if repo_id.startswith("nvidia/"):
        return ["*.nemo"]
    if repo_id.startswith("ai-sage/GigaAM"):
        return HUB_FILES + ["pytorch_model.bin"]
    return HUB_FILES


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def download(repo_id: str) -> Path:
    """Fetch a hub repository (`org/name` or `org/name@revision`) into the huggingface_hub
    cache, with a progress bar; a complete cached copy is used without touching the network."""
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
        return Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=patterns, local_files_only=True
            )
        )
    except OSError:  # not cached, or a partial or corrupt copy: the download repairs it
        pass
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except GatedRepoError:  # a subclass of RepositoryNotFoundError: check it first
        raise ModelError(
            f"model {repo_id!r} is gated on the Hugging Face hub: request access at "
            f"https://huggingface.co/{repo_id}, then set HF_TOKEN to a token of that account "
            "(or run `hf auth login`), or pass a local copy with --model PATH"
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
            "model is not in the local cache; pass a local model directory with --model PATH"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelError(f"cannot download {repo_id!r}: {_first_line(exc)}") from None
