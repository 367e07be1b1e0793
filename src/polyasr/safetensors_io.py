"""Read safetensors checkpoints, single-file or sharded with an index."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import ModelError


def load_safetensors(directory: Path, stem: str = "model") -> dict[str, torch.Tensor]:
    """All tensors of `stem.safetensors` or of the shards named by `stem.safetensors.index.json`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise ModelError(f"cannot read the shard index {index}: {exc}") from exc
        files = [directory / name for name in sorted(set(weight_map.values()))]
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
