"""The one way polyasr reads a pickle. Model files are untrusted input.

The layout is recognized from the first bytes, before anything is unpickled:
- torch's zip layout (`torch.save` since 1.6): `<dir>/data.pkl` plus one member per storage;
- torch's legacy layout: the magic-number pickle, protocol 1001, system info, the object, its
  storage keys, then each storage's raw bytes;
- a plain pickle (protocol 2 or later).
Anything else is refused. The unpickler resolves only the globals on an explicit allow-list
(containers, tensor rebuilding, storage types); classes of modules the caller declares inert
(OmegaConf's config nodes, pyannote's task description) become stand-ins that only keep their
state. So nothing a file names is ever imported or called, and a hostile file is refused before
its payload could run. Sizes and offsets read from the file are checked before memory is used.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict, defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import ModelError

_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _MAGIC.to_bytes(10, "little") + b"."
_LEGACY_PROTOCOL = 1001
_ZIP_HEAD = b"PK\x03\x04"
_MAX_PICKLE_BYTES = 1 << 30

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something outside the allow-list."""


class StandIn:
    """An object of a class the caller declared inert: it keeps its constructor arguments and
    pickled state, and has no behaviour."""

    args: tuple[Any, ...] = ()
    state: dict[str, Any] | None = None

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_val": state}


_stand_ins: dict[tuple[str, str], type] = {}


def _stand_in(module: str, name: str) -> type:
    key = (module, name)
    if key not in _stand_ins:
        _stand_ins[key] = type(name, (StandIn,), {"__module__": module})
    return _stand_ins[key]


class _StorageType:
    """What `torch.FloatStorage` and its kind stand for in a checkpoint: a dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and v >= 0 for v in value
    ):
        raise pickle.UnpicklingError(f"invalid tensor {what} {value!r}")
    return tuple(value)


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, *_requires_grad_hooks_metadata: Any
) -> torch.Tensor:
    """A view of a flat storage, after checking that it lies inside the storage."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if not isinstance(offset, int) or offset < 0 or len(size) != len(stride):
        raise pickle.UnpicklingError(f"invalid tensor layout {offset!r} {size} {stride}")
    if 0 in size:
        return storage.new_empty(size)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel():
        raise pickle.UnpicklingError(
            f"a tensor of size {list(size)} reaches past its storage of {storage.numel()}"
        )
    return storage.as_strided(size, stride, offset)


def _rebuild_parameter(data: Any, *_requires_grad_hooks: Any) -> Any:
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch.torch_version", "TorchVersion"): str,
    ("typing", "Any"): Any,
}
for _module in ("builtins", "__builtin__"):
    for _type in (dict, list, tuple, set, frozenset, int, float, bool, str):
        _ALLOWED[(_module, _type.__name__)] = _type
_ALLOWED[("__builtin__", "long")] = int
_ALLOWED[("__builtin__", "unicode")] = str


class _Unpickler(pickle._Unpickler):
    """The Python implementation, so that BUILD (which may call `__setstate__`) can be
    restricted too; checkpoint pickles are small, the tensor data lies outside them."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: BinaryIO, inert: tuple[str, ...], storages: Any = None) -> None:
        super().__init__(file, encoding="utf-8")
        self.inert = inert
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if any(module == m or module.startswith(m + ".") for m in self.inert):
            return _stand_in(module, name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self.storages is None:
            raise pickle.UnpicklingError("a plain pickle refers to external storage")
        return self.storages(pid)

    def load_build(self) -> None:
        """Set state only on stand-ins and on ordered dicts (a state dict's `_metadata`)."""
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, StandIn):
            inst.__setstate__(state)
        elif type(inst) is OrderedDict and isinstance(state, dict):
            inst.__dict__.update({str(k): v for k, v in state.items()})
        elif state is not None:
            raise pickle.UnpicklingError(f"refusing to set state on {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build


def _storage_request(pid: Any, legacy: bool) -> tuple[str, torch.dtype, int, Any]:
    """(key, dtype, numel, view) of a persistent id ('storage', type, key, location, numel...)."""
    if not isinstance(pid, tuple) or len(pid) != (6 if legacy else 5):
        raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
    kind, storage_type, key, _location, numel = pid[:5]
    if isinstance(kind, bytes):
        kind = kind.decode("ascii", "replace")
    if isinstance(key, bytes):
        key = key.decode("ascii", "replace")
    if kind != "storage" or not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f"invalid storage reference {pid!r:.80}")
    return key, storage_type.dtype, numel, pid[5] if legacy else None


def _read_exact(handle: BinaryIO, tensor: torch.Tensor) -> None:
    """Fill `tensor` (contiguous) with its size in bytes from `handle`."""
    view = memoryview(tensor.view(torch.uint8).numpy())
    done = 0
    while done < len(view):
        n = handle.readinto(view[done:])
        if not n:
            raise EOFError("the file ends inside a tensor")
        done += n


def _size_of(handle: BinaryIO) -> int:
    position = handle.tell()
    size = handle.seek(0, io.SEEK_END)
    handle.seek(position)
    return size


def _load_zip(handle: BinaryIO, inert: tuple[str, ...]) -> Any:
    archive = zipfile.ZipFile(handle)
    pickles = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise pickle.UnpicklingError("a zip file that is not a PyTorch checkpoint")
    if archive.getinfo(pickles[0]).file_size > _MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError("an implausibly large data.pkl")
    prefix = pickles[0].removesuffix("data.pkl")
    names = set(archive.namelist())
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
        raise pickle.UnpicklingError("a big-endian checkpoint")
    file_size = _size_of(handle)
    loaded: dict[str, torch.Tensor] = {}

    def storage(pid: Any) -> torch.Tensor:
        key, dtype, numel, _ = _storage_request(pid, legacy=False)
        if key in loaded:
            return loaded[key]
        try:
            info = archive.getinfo(f"{prefix}data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"storage {key!r} is missing") from None
        nbytes = numel * dtype.itemsize
        if info.file_size != nbytes or info.compress_type != zipfile.ZIP_STORED:
            raise pickle.UnpicklingError(
                f"storage {key!r} holds {info.file_size} bytes (compression "
                f"{info.compress_type}), its tensor needs {nbytes} stored"
            )
        handle.seek(info.header_offset)  # read in place: no CRC pass, no extra copy
        header = handle.read(30)
        if len(header) != 30 or header[:4] != _ZIP_HEAD:
            raise pickle.UnpicklingError(f"corrupt zip entry for storage {key!r}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + nbytes > file_size:
            raise pickle.UnpicklingError(f"storage {key!r} reaches past the end of the file")
        flat = torch.empty(numel, dtype=dtype)
        handle.seek(start)
        _read_exact(handle, flat)
        loaded[key] = flat
        return flat

    with archive.open(pickles[0]) as data:
        return _Unpickler(io.BytesIO(data.read()), inert, storage).load()


def _load_legacy(handle: BinaryIO, inert: tuple[str, ...]) -> Any:
    handle.seek(len(_LEGACY_HEAD))
    if _Unpickler(handle, ()).load() != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unsupported legacy checkpoint protocol")
    _Unpickler(handle, ()).load()  # system info: byte order and type sizes
    remaining = _size_of(handle) - handle.tell()
    roots: dict[str, torch.Tensor] = {}
    views: dict[str, torch.Tensor] = {}

    def storage(pid: Any) -> torch.Tensor:
        nonlocal remaining
        key, dtype, numel, view = _storage_request(pid, legacy=True)
        if key not in roots:
            nbytes = numel * dtype.itemsize
            if nbytes > remaining:
                raise pickle.UnpicklingError(f"storage {key!r} is larger than the file")
            remaining -= nbytes
            roots[key] = torch.empty(numel, dtype=dtype)
        flat = roots[key]
        if view is None:
            return flat
        if not isinstance(view, tuple) or len(view) != 3:
            raise pickle.UnpicklingError(f"invalid storage view {view!r:.80}")
        view_key, offset, length = view
        if not (isinstance(offset, int) and isinstance(length, int)) or not (
            0 <= offset <= offset + length <= flat.numel()
        ):
            raise pickle.UnpicklingError(f"storage view {view!r:.80} is outside its storage")
        return views.setdefault(str(view_key), flat[offset : offset + length])

    result = _Unpickler(handle, inert, storage).load()
    keys = _Unpickler(handle, ()).load()
    if not isinstance(keys, list) or set(keys) != set(roots):
        raise pickle.UnpicklingError("the storage list does not match the tensors")
    for key in keys:
        (numel,) = struct.unpack("<q", handle.read(8))
        if numel != roots[key].numel():
            raise pickle.UnpicklingError(f"storage {key!r} has the wrong size in the file")
        _read_exact(handle, roots[key])
    return result


def load_pickle(source: Path | BinaryIO, what: str, inert: tuple[str, ...] = ()) -> Any:
    """The object pickled in `source` (a path or a seekable binary file), tensors on the CPU.

    `what` names the file in errors; `inert` lists modules whose classes may appear as plain
    data (they become `StandIn`s; see `plain`). Raises `ModelError` with one line for a file
    in no known layout, a global outside the allow-list, or a truncated or inconsistent file.
    """
    try:
        with open(source, "rb") if isinstance(source, Path) else nullcontext(source) as handle:
            head = handle.read(len(_LEGACY_HEAD))
            handle.seek(0)
            if head.startswith(_ZIP_HEAD):
                return _load_zip(handle, inert)
            if head == _LEGACY_HEAD:
                return _load_legacy(handle, inert)
            if len(head) >= 2 and head[0] == pickle.PROTO[0] and 2 <= head[1] <= 5:
                return _Unpickler(handle, inert).load()
            raise ModelError(f"{what} is not a PyTorch checkpoint (unknown file layout)")
    except _Refused as exc:
        raise ModelError(
            f"refusing {what}: it names {exc}, which could run code (nothing was executed)"
        ) from None
    except (pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot read {what}: corrupt or unsupported checkpoint ({exc})") from None
    except (EOFError, struct.error) as exc:
        raise ModelError(f"cannot read {what}: the file is truncated ({exc})") from None
    except Exception as exc:  # whatever else a malformed file provokes while it is parsed
        raise ModelError(f"cannot read {what}: {type(exc).__name__}: {exc}") from None


def plain(value: Any) -> Any:
    """Stand-ins turned into plain data: OmegaConf containers into their content, value nodes
    into their value, other objects into their state (or their constructor argument)."""
    if isinstance(value, StandIn):
        state = value.state or {}
        if "_content" in state:
            return plain(state["_content"])
        if "_val" in state:
            return plain(state["_val"])
        if state:
            return {k: plain(v) for k, v in state.items()}
        return plain(value.args[0]) if len(value.args) == 1 else plain(list(value.args))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
