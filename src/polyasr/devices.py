"""Device and dtype selection shared by every family."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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


_threads_lock = threading.Lock()
_single_depth = 0
_saved_threads = 1


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the block on one CPU thread, for recurrent steps made of tiny matrix products: more
    threads gain nothing there, and when the cores are busy their waiting makes such a loop up
    to 40x slower. Nested and concurrent uses restore the thread count once, at the end of the
    last one."""
    global _single_depth, _saved_threads
    with _threads_lock:
        if _single_depth == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_depth += 1
    try:
        yield
    finally:
        with _threads_lock:
            _single_depth -= 1
            if _single_depth == 0:
                torch.set_num_threads(_saved_threads)


def release_free_memory() -> None:
    """Hand the heap memory freed while loading (read buffers, unpacked weights) back to the
    system (glibc keeps it otherwise: 32 MB of whisper-base Q8_0's 138 MB)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, opened once (packing calls it after every matrix); None where
    there is none (not Linux, or musl)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc's name; no library search at load
    except (OSError, AttributeError):
        return None
