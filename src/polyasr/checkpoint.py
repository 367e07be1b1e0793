"""Load pickled PyTorch checkpoints without running code from them.

Published `.ckpt`/`.bin` files are pickles. A restricted unpickler accepts only tensor
rebuilding, plain containers and OmegaConf's config classes (mapped to inert stand-ins, then
converted to plain dicts and lists), so a hostile file cannot execute anything and omegaconf is
not needed at run time.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError

_ALLOWED = {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
}
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bool", "bytes"}


class ConfigStandIn:
    """An OmegaConf object as plain state: `__setstate__` keeps the pickled attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"_val": state}


def _stand_in(module: str, name: str) -> type:
    return type(name, (ConfigStandIn,), {"__module__": module})


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return super().find_class("builtins", name)
        if module == "__builtin__" and name in ("long", "unicode"):  # Python 2 names
            return int if name == "long" else str
        if module == "typing" and name == "Any":
            return Any
        if module == "omegaconf" or module.startswith("omegaconf."):
            return _stand_in(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


_restricted = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler, load=pickle.load, __name__="polyasr_restricted_pickle"
)


def load_pickled_checkpoint(path: Path) -> Any:
    """Unpickle a torch.save file with the restricted unpickler; tensors land on the CPU."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"unsafe or unsupported checkpoint {path}: {exc}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from None


def to_plain(value: Any) -> Any:
    """OmegaConf stand-ins (DictConfig, ListConfig, value nodes) -> dicts, lists and values."""
    if isinstance(value, ConfigStandIn):
        state = value.state
        if "_content" in state:
            return to_plain(state["_content"])
        return to_plain(state.get("_val"))
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
