"""Weights kept small in memory (int8, fp16) and multiplied by the CPU's packed kernels.

`Int8Matrix` is a matrix [out, in] as int8 values with one float32 scale per row: the layout
of the CPU's int8 kernels (fbgemm through `torch.ops.quantized`), which quantize the
activations on the fly, multiply in int8 and rescale. On this project's CPUs they are 1.5-8x
faster than fp32 `F.linear` from a few rows on, and they read a quarter of the bytes, which
is what memory-bound decoding steps wait for. `Float16Matrix` keeps an f16 weight in f16
(fbgemm's fp16 kernel, about fp32's speed at half its memory). `linear` (the one
matrix-product seam) hands such a weight to its `matmul`; `materialize` puts them in place
of the parameters of `Linear` and `Embedding` modules.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import torch
from torch import Tensor

from ..devices import release_free_memory


@cache
def reduce_range() -> bool:
    """Whether activations must be quantized to 7 bits, not 8: without VNNI, fbgemm sums pairs
    of u8 x s8 products in int16, which 8-bit activations can overflow. (8 bits measured
    better: whisper-base dev WER 4.16 against 5.19 with 7.)"""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return True
    return not ({"avx512_vnni", "avx_vnni"} & set(flags))


@cache
def packed_kernels() -> bool:
    """Whether this torch build has fbgemm's int8 and fp16 dynamic linear kernels on CPU."""
    ops = torch.ops.quantized
    names = ("linear_prepack", "linear_dynamic", "linear_prepack_fp16", "linear_dynamic_fp16")
    return all(hasattr(ops, op) for op in names) and any(
        engine in torch.backends.quantized.supported_engines for engine in ("x86", "fbgemm")
    )


class PackedMatrix(ABC):
    """A weight [out, in] (or a kernel-1 convolution's [out, in, 1]) that a packed CPU kernel
    multiplies; its compact values are packed on first use (its own copy), and dropped by
    `release_values` where no row is ever looked up. Computes in float32 on CPU.

    The values may be a view of a memory-mapped file; `unmap`, when set, drops the pages that
    packing read from this process's memory (the view stays valid: pages read again come
    back from the page cache), so that a file's weights are not held twice."""

    shape: torch.Size
    values: Tensor
    dtype = torch.float32
    device = torch.device("cpu")
    unmap: Callable[[], None] | None = None
    _packed: object | None = None

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def is_floating_point(self) -> bool:
        return True

    @abstractmethod
    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The weights as a dense tensor of the original shape."""

    @abstractmethod
    def __getitem__(self, index) -> Tensor:
        """Rows as float32 (an embedding lookup)."""

    @abstractmethod
    def matmul(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x [..., in] @ W^T (+ bias), in x's dtype."""

    @abstractmethod
    def _pack(self) -> object:
        """The weights in the kernel's layout (a copy)."""

    def packed(self) -> object:
        """The weights in the kernel's own layout."""
        if self._packed is None:
            self._packed = self._pack()
            if self.unmap is not None:
                self.unmap()
        return self._packed

    def release_values(self) -> None:
        """Pack now and drop the compact values (a weight that is never looked up by rows)."""
        self.packed()
        self.values = self.values.new_empty(0)


class Float16Matrix(PackedMatrix):
    """An f16 weight kept in f16, multiplied by fbgemm's fp16 kernel."""

    def __init__(self, values: Tensor, shape: tuple[int, ...] | None = None):
        if values.dtype != torch.float16:
            raise ValueError("Float16Matrix needs float16 values")
        self.values = values.reshape(values.shape[0], -1)
        self.shape = torch.Size(shape or values.shape)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        return self.values.to(dtype).reshape(self.shape)

    def __getitem__(self, index) -> Tensor:
        return self.values[index].float()

    def matmul(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        rows = x.float().reshape(-1, x.shape[-1])
        y = torch.ops.quantized.linear_dynamic_fp16(rows, self.packed())
        if bias is not None:
            y = y.add_(bias)
        return y.reshape(*x.shape[:-1], -1).to(x.dtype)

    def _pack(self) -> object:
        return torch.ops.quantized.linear_prepack_fp16(self.values.float(), None)


def pack_all(matrices: Iterable[tuple[PackedMatrix, bool]], threads: int | None = None) -> None:
    """Pack many (matrix, keep its values) pairs on `threads` threads (default: torch's
    intra-op thread count); values not kept are dropped. fbgemm packs one matrix on one core,
    at 50-130 M weights a second: the longest part of loading a quantized model. The two
    copies each packing makes are handed back to the system as it goes (glibc would keep a
    third of them: Parakeet's Q8_0 load peaked at 1.6x its file)."""

    def pack(job: tuple[PackedMatrix, bool]) -> None:
        matrix, keep = job
        matrix.packed() if keep else matrix.release_values()
        release_free_memory()

    with ThreadPoolExecutor(max(1, threads or torch.get_num_threads())) as pool:
        for _ in pool.map(pack, matrices):
            pass


class Int8Matrix(PackedMatrix):
    """int8 values and one float32 scale per row, x W^T computed by the int8 kernels. The
    values are [out, in], or [out, blocks, size]: a row cut in blocks, which may be a strided
    view (the int8 part of GGUF's Q8_0 blocks, read in place)."""

    def __init__(self, values: Tensor, scales: Tensor, shape: tuple[int, ...] | None = None):
        if values.dtype != torch.int8 or values.dim() not in (2, 3):
            raise ValueError("Int8Matrix needs int8 values [out, in] or [out, blocks, size]")
        if scales.shape != (values.shape[0],):
            raise ValueError("Int8Matrix needs one scale per row")
        self.values = values
        self.scales = scales.float().contiguous()
        self.shape = torch.Size(shape or (values.shape[0], values[0].numel()))

    @classmethod
    def deferred(cls, make: Callable[[], tuple[Tensor, Tensor]], shape: tuple[int, ...]):
        """A matrix whose values and scales `make()` computes when first needed (packing, a
        lookup): a 4-bit file's rows are rounded to int8 one matrix at a time as they are
        packed, so that loading never holds them all."""
        matrix = cls.__new__(cls)
        matrix._make, matrix.shape = make, torch.Size(shape)
        return matrix

    def __getattr__(self, name: str):
        """`values` and `scales` of a deferred matrix, made on first use."""
        make = self.__dict__.get("_make")
        if name not in ("values", "scales") or make is None:
            raise AttributeError(name)
        self.values, self.scales = make()
        del self._make
        return getattr(self, name)

    @classmethod
    def quantize(cls, weight: Tensor) -> Int8Matrix:
        """Symmetric per-row int8: scale = max |row| / 127."""
        matrix = weight.detach().float().reshape(weight.shape[0], -1)
        scales = matrix.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
        values = torch.round(matrix / scales[:, None]).clamp_(-127, 127).to(torch.int8)
        return cls(values, scales, tuple(weight.shape))

    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        rows = self.values.reshape(self.shape[0], -1)
        return (rows.float() * self.scales[:, None]).to(dtype).reshape(self.shape)

    def __getitem__(self, index) -> Tensor:
        rows = self.values[index]
        if self.values.dim() == 3:
            rows = rows.flatten(-2)
        return rows.float() * self.scales[index].unsqueeze(-1)

    def matmul(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """The kernel quantizes its whole input with one scale; each row is first divided by
        its largest magnitude (and the result multiplied back), which makes that one scale
        fit every row: per-row activation scales, the difference between a fifth more
        words wrong and fp32's WER on whisper-base."""
        rows = x.float().reshape(-1, x.shape[-1])
        if rows.shape[0] == 1:  # one row: the kernel's one scale is already per row
            y = torch.ops.quantized.linear_dynamic(rows, self.packed(), reduce_range())
            y = y if bias is None else y.add_(bias)
        else:
            peak = rows.abs().amax(dim=-1, keepdim=True).clamp_min_(1e-30)
            y = torch.ops.quantized.linear_dynamic(rows / peak, self.packed(), reduce_range())
            y = y.mul_(peak) if bias is None else torch.addcmul(bias, y, peak)
        return y.reshape(*x.shape[:-1], -1).to(x.dtype)

    def _pack(self) -> object:
        rows = self.values.shape[0]
        with warnings.catch_warnings():  # quantized tensors are deprecated, the ops are not
            warnings.simplefilter("ignore")
            weight = torch._make_per_channel_quantized_tensor(
                self.values.reshape(rows, -1).contiguous(),
                self.scales.double(),
                torch.zeros(rows, dtype=torch.long),
                0,
            )
            return torch.ops.quantized.linear_prepack(weight, None)
