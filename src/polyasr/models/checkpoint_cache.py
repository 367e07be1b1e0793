"""A memory-mappable copy of each model read from its published files, so that loading it again
skips what makes a load slow: unpickling the weights of a `.nemo` or `.ckpt` (through the safe
unpickler) and widening 16-bit weights to float32.

One safetensors file per model path, `<cache_root()>/checkpoints/<hash of the path>.safetensors`,
holds the whole `Checkpoint`: its weights (16-bit floats widened to float32, the compute type on
CPU, so that `materialize` uses the memory-mapped tensors without a copy), its other files as
uint8 tensors, and in the header its family, config (JSON) and source, with a fingerprint of the
model's files (size, mtime and inode of each file the family reads) and of polyasr's own code.
The copy is used only while the fingerprint matches: a changed model file, an upgraded or edited
polyasr (whose readers may have changed), a truncated or garbled cache file all mean that the
published files are read again and the copy is rewritten (temp file, fsync, rename). Writing is
best effort: when it fails (read-only folder, full disk) a warning says so and the load goes on.

Models published as safetensors (Whisper, Qwen3-ASR) get no copy (their families declare no
inputs): they are memory-mapped as read, and widening their 16-bit weights (about 1 s for
Qwen3-ASR 0.6B) does not justify a copy twice their size on disk (3.6 GB for that model).
`POLYASR_CHECKPOINT_CACHE=off` turns the cache off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..user_cache import cache_root
from .checkpoint import Checkpoint

SWITCH = "POLYASR_CHECKPOINT_CACHE"
FORMAT = "1"
"""Version of the file layout below; a file of another version is rewritten."""
STATE, ASSET = "state:", "asset:"
"""Tensor name prefixes of the weights and of the other files."""
WIDENED = (torch.float16, torch.bfloat16)
ABANDONED_S = 24 * 3600
"""A temp file older than this is left over from a killed write and is removed."""


def enabled() -> bool:
    """False when `POLYASR_CHECKPOINT_CACHE` is off, 0, false or no."""
    return os.environ.get(SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def cache_file(key: str) -> Path:
    """Where the copy of the model at the resolved path `key` lives."""
    name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return cache_root() / "checkpoints" / f"{name}.safetensors"


def read_through(path: Path, inputs: list[Path], read: Callable[[Path], Checkpoint]) -> Checkpoint:
    """`read(path)`, or its cached copy while `inputs` (the files `read` reads; none: no copy)
    are unchanged. After a real read the copy is written and the checkpoint returned is read
    back from it, so the first load gives the same tensors as the next ones."""
    if not enabled() or not inputs:
        return read(path)
    key = str(path.resolve())
    target = cache_file(key)
    stamp = fingerprint(inputs)
    cached = _load(target, key, stamp)
    if cached is not None:
        return cached
    checkpoint = read(path)
    return _store(target, key, stamp, checkpoint) or checkpoint


def fingerprint(inputs: list[Path]) -> str:
    """Size, mtime and inode of each input (only its resolved path when absent), and a digest
    of polyasr's code."""
    files = []
    for path in inputs:
        name = str(path.resolve())
        try:
            info = path.stat()
            files.append([name, info.st_size, info.st_mtime_ns, info.st_ino])
        except OSError:
            files.append([name])
    return json.dumps({"files": files, "code": _code_fingerprint()})


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """A digest of the size and mtime of every module of polyasr."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for module in sorted(package.rglob("*.py")):
        info = module.stat()
        digest.update(f"{module.relative_to(package)} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _load(target: Path, key: str, stamp: str) -> Checkpoint | None:
    """The checkpoint in `target` when it is a complete copy of `key` with fingerprint `stamp`,
    its tensors memory-mapped; None otherwise."""
    from safetensors import safe_open

    try:
        with safe_open(str(target), framework="pt") as handle:
            meta = handle.metadata() or {}
            found = (meta.get("format"), meta.get("key"), meta.get("fingerprint"))
            if found != (FORMAT, key, stamp):
                return None
            state, assets = {}, {}
            for name in handle.keys():
                if name.startswith(STATE):
                    state[name[len(STATE) :]] = handle.get_tensor(name)
                elif name.startswith(ASSET):
                    assets[name[len(ASSET) :]] = handle.get_tensor(name).numpy().tobytes()
                else:
                    return None
            config = json.loads(meta["config"])
            return Checkpoint(meta["family"], config, state, assets, meta["source"])
    except Exception:  # absent, truncated or garbled: the published files are read again
        return None


def _store(target: Path, key: str, stamp: str, checkpoint: Checkpoint) -> Checkpoint | None:
    """Write `checkpoint` to `target` and read it back; None when it cannot be stored (a
    config that JSON does not keep as it is) or the write failed (with a warning)."""
    try:
        config = json.dumps(checkpoint.config)
        if json.loads(config) != checkpoint.config:
            return None
    except (TypeError, ValueError):
        return None
    source = os.path.abspath(checkpoint.source) if checkpoint.source else ""  # links kept
    metadata = {"format": FORMAT, "key": key, "fingerprint": stamp}
    metadata.update(family=checkpoint.family, config=config, source=source)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _prune(target.parent)
        _write(target, _tensors(checkpoint), metadata)
    except Exception as exc:  # a cache must never fail the load
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        warnings.warn(
            f"checkpoint cache not written in {target.parent} ({reason}); "
            f"set {SWITCH}=off to skip it",
            stacklevel=4,
        )
        return None
    return _load(target, key, stamp)


def _tensors(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """The tensors to write: the weights contiguous, 16-bit floats widened, none sharing memory
    with another (safetensors refuses that), and the other files as uint8."""
    tensors, storages = {}, set()
    for name, tensor in checkpoint.state.items():
        tensor = tensor.detach().cpu()
        tensor = (tensor.float() if tensor.dtype in WIDENED else tensor).contiguous()
        if tensor.untyped_storage().data_ptr() in storages:
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[STATE + name] = tensor
    for name, data in checkpoint.assets.items():
        tensors[ASSET + name] = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())
    return tensors


def _write(target: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write atomically, flushed to disk before it takes the place of `target`."""
    from safetensors.torch import save_file

    with atomic_path(target, durable=True) as temporary:
        save_file(tensors, temporary, metadata)


def _prune(folder: Path) -> None:
    """Remove temp files of killed writes and copies of models whose path is gone."""
    from safetensors import safe_open

    for entry in folder.iterdir():
        try:
            if entry.suffix == ".tmp":
                if time.time() - entry.stat().st_mtime > ABANDONED_S:
                    entry.unlink()
            elif entry.suffix == ".safetensors":
                with safe_open(str(entry), framework="pt") as handle:
                    key = (handle.metadata() or {}).get("key")
                if key and not Path(key).exists():
                    entry.unlink()
        except Exception:  # gone meanwhile, unreadable: left for the next write
            continue
