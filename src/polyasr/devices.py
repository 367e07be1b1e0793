"""Device and dtype selection shared by every family."""

from __future__ import annotations

import torch

from .errors import OptionError


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise OptionError(f"unknown device {device!r}; use cpu, cuda, mps or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("device 'cuda' requested but no CUDA GPU is available")
    if device == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device 'mps' requested but Apple MPS is not available")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if dtype not in table:
        raise OptionError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
    return table[dtype]
