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


def download(repo_id: str) -> Path:
    """Fetch a hub repository (`org/name` or `org/name@revision`) into the huggingface_hub
    cache, with a progress bar."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
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
    except (LocalEntryNotFoundError, FileNotFoundError):
        pass
    except Exception:  # a corrupt or partial cache entry: let the download repair it
        pass
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except RepositoryNotFoundError as exc:
        raise ModelError(f"model {repo_id!r} does not exist on the Hugging Face hub") from exc
    except GatedRepoError as exc:
        raise ModelError(f"model {repo_id!r} is gated: log in with `hf auth login` first") from exc
    except LocalEntryNotFoundError as exc:
        raise ModelError(
            f"cannot download {repo_id!r}: the Hugging Face hub is unreachable (offline?) and the "
            "model is not in the local cache; pass a local model directory with --model PATH"
        ) from exc
    except OSError as exc:
        raise ModelError(f"cannot download {repo_id!r}: {exc}") from exc
