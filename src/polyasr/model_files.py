"""Read the plain files of a model directory: JSON configs and safetensors weights (single
or sharded with an index). Pickles go through `safe_pickle`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError


def read_json(path: Path, required: bool = True) -> dict[str, Any]:
    """The JSON object in `path` ({} when it is absent and not `required`); one `ModelError`
    line when it is missing, unreadable or not an object."""
    if not path.is_file():
        if required:
            raise ModelError(f"incomplete model directory: {path.name} is missing in {path.parent}")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object")
    return data


def model_type(directory: Path) -> str | None:
    """The `model_type` of `directory/config.json`, or None when there is no readable one."""
    try:
        return str(read_json(directory / "config.json").get("model_type"))
    except ModelError:
        return None


def load_safetensors(directory: Path, stem: str = "model") -> dict[str, torch.Tensor]:
    """All tensors of `stem.safetensors` or of the shards named by `stem.safetensors.index.json`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = _shards(index)
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise ModelError(f"missing weight shards in {directory}: {', '.join(absent)}")
    else:
        raise ModelError(f"no {stem}.safetensors (or sharded index) in {directory}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(str(file)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"cannot read weights {file}: {exc}") from exc
    return state


def _shards(index: Path) -> list[Path]:
    """The weight files named by a shard index."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"cannot read the shard index {index}: {exc}") from exc
    return [index.parent / name for name in names]
