"""The last step of every loader: a family's module built from (config, state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .linear import Embedding, Linear, TiedEmbedding
from .quantized import PackedMatrix, pack_all, packed_kernels

M = TypeVar("M", bound=nn.Module)


def materialize(
    build: Callable[[], M],
    state: dict[str, Tensor | PackedMatrix],
    device: torch.device,
    dtype: torch.dtype,
    what: str,
) -> M:
    """Build the module on the meta device (no memory), check that `state` has exactly its
    tensors with their shapes, then move them one by one to `device` (floating point ones to
    `dtype`) and assign them: no second copy of the weights. `state` is consumed. Returns the
    module in eval mode without gradients; a mismatch is one `ModelError` line about `what`
    (a plural such as "the weights in DIR").

    `PackedMatrix` weights (int8, fp16) stay so where their kernels can run them (the weight of a
    `Linear` or an `Embedding` on CPU); elsewhere they are dequantized to `dtype`."""
    try:
        with torch.device("meta"):
            module = build()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{what}: the configuration describes no valid model ({exc})") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [f"lacks {len(missing)} tensors, e.g. {missing[:3]}"] if missing else []
        if unexpected:
            parts.append(f"has {len(unexpected)} unknown ones, e.g. {unexpected[:3]}")
        raise ModelError(f"{what} do not match the model: {' and '.join(parts)}")
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape) or (
            got.is_floating_point() != want.is_floating_point()
        ):
            kind = "floating point" if want.is_floating_point() else "integer"
            raise ModelError(
                f"{what} do not match the model's configuration: tensor {key} is "
                f"{got.dtype} {list(got.shape)}, the configuration needs {kind} {list(want.shape)}"
            )
    packed_here = torch.device(device).type == "cpu" and dtype == torch.float32 and packed_kernels()
    to_pack: list[tuple[PackedMatrix, bool]] = []
    for key in list(state):
        tensor = state.pop(key)
        if isinstance(tensor, PackedMatrix):
            owner = _packed_owner(module, key) if packed_here else None
            if owner is not None:
                owner._parameters.pop("weight")
                owner.weight = tensor
                if isinstance(owner, (Linear, TiedEmbedding)):
                    to_pack.append((tensor, isinstance(owner, Embedding)))
                continue
            tensor = tensor.dequantize()
        state[key] = tensor.to(device, dtype if tensor.is_floating_point() else None).contiguous()
    pack_all(to_pack)
    module.load_state_dict(state, assign=True)
    return module.eval().requires_grad_(False)


def _packed_owner(module: nn.Module, key: str) -> Linear | Embedding | None:
    """The `Linear` or `Embedding` whose weight `key` is (what the packed kernels run): a
    `Linear`'s values are packed for the kernel at load and dropped, an `Embedding` keeps them
    for its row lookups (a `TiedEmbedding`, also the output projection, is packed at load
    too). None elsewhere."""
    owner_name, _, name = key.rpartition(".")
    owner = module.get_submodule(owner_name)
    return owner if name == "weight" and isinstance(owner, (Linear, Embedding)) else None
