"""Safe reading of NeMo `.nemo` archives: a tar of model_config.yaml, model_weights.ckpt and
tokenizer files.

The archive is untrusted. Every member must be a regular file with a relative name free of
`..`; only the members we need are read, straight from the tar (nothing is extracted to disk);
the YAML goes through `safe_load` and the weights through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ...errors import ModelError

CONFIG = "model_config.yaml"
WEIGHTS = "model_weights.ckpt"


class NemoArchive:
    """An open `.nemo` file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")
            members = self.tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelError(f"{path} is not a readable .nemo archive: {exc}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts:
                raise ModelError(f"unsafe .nemo archive {path}: member {member.name!r}")
            if member.isdir():
                continue
            if not member.isfile():
                raise ModelError(f"unsafe .nemo archive {path}: {member.name!r} is not a file")
            self.members[str(PurePosixPath(*[p for p in name.parts if p != "."]))] = member

    def __enter__(self) -> NemoArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.tar.close()

    def _open(self, name: str) -> io.BufferedReader:
        name = name.removeprefix("nemo:").removeprefix("./")
        member = self.members.get(name)
        if member is None:
            raise ModelError(f"{self.path} has no {name!r}: an incomplete or different .nemo file")
        handle = self.tar.extractfile(member)
        assert handle is not None  # regular files always have a handle
        return handle

    def read_bytes(self, name: str) -> bytes:
        with self._open(name) as handle:
            return handle.read()

    def config(self) -> dict[str, Any]:
        import yaml

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 20x faster
        try:
            config = yaml.load(self.read_bytes(CONFIG), Loader=loader)
        except yaml.YAMLError as exc:
            raise ModelError(f"{self.path}: {CONFIG} is not valid YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ModelError(f"{self.path}: {CONFIG} does not hold a model configuration")
        return config

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights, read directly from the tar member with weights-only unpickling."""
        try:
            with self._open(WEIGHTS) as handle:
                state = torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelError(f"unsafe or unsupported weights in {self.path}: {exc}") from None
        except (RuntimeError, OSError, EOFError, ValueError) as exc:
            raise ModelError(f"cannot read the weights in {self.path}: {exc}") from None
        if not isinstance(state, dict):
            raise ModelError(f"{self.path}: {WEIGHTS} is not a state dict")
        return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
