"""Safe reading of NeMo `.nemo` archives: a tar of model_config.yaml, model_weights.ckpt and
tokenizer files.

The archive is untrusted. Every member must be a regular file with a relative name free of
`..`; only the members we need are read, straight from the tar (nothing is extracted to disk);
the YAML goes through `safe_load` and the weights through the safe unpickler.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from ...errors import ModelError
from ...safe_pickle import load_pickle

CONFIG = "model_config.yaml"
WEIGHTS = "model_weights.ckpt"


class NemoArchive:
    """An open `.nemo` file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelError(f"{path} is not a readable .nemo archive: {exc}") from None
        try:
            self.members = self._check_members()
        except BaseException:
            self.tar.close()
            raise

    def _check_members(self) -> dict[str, tarfile.TarInfo]:
        """Regular files by normalized name; anything else (links, devices, absolute or `..`
        names) makes the whole archive unsafe."""
        try:
            members = self.tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelError(f"{self.path} is not a readable .nemo archive: {exc}") from None
        found: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts:
                raise ModelError(f"unsafe .nemo archive {self.path}: member {member.name!r}")
            if member.isdir():
                continue
            if not member.isfile():
                raise ModelError(f"unsafe .nemo archive {self.path}: {member.name!r} is not a file")
            found[str(PurePosixPath(*[p for p in name.parts if p != "."]))] = member
        return found

    def __enter__(self) -> NemoArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.tar.close()

    def _member(self, name: str) -> tarfile.TarInfo:
        name = name.removeprefix("nemo:").removeprefix("./")
        member = self.members.get(name)
        if member is None:
            raise ModelError(f"{self.path} has no {name!r}: an incomplete or different .nemo file")
        return member

    def _open(self, member: tarfile.TarInfo) -> io.BufferedReader:
        handle = self.tar.extractfile(member)
        assert handle is not None  # regular files always have a handle
        return handle

    def read_bytes(self, name: str) -> bytes:
        member = self._member(name)
        with self._open(member) as handle:
            try:
                data = handle.read()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ModelError(f"{self.path} is truncated or corrupt ({exc})") from None
        if len(data) != member.size:
            raise ModelError(f"{self.path} is truncated: {member.name!r} is incomplete")
        return data

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
        """The weights, read straight from the tar member by the safe unpickler."""
        with self._open(self._member(WEIGHTS)) as handle:
            state = load_pickle(handle, f"{self.path}:{WEIGHTS}")
        if not isinstance(state, dict):
            raise ModelError(f"{self.path}: {WEIGHTS} is not a state dict")
        return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
