"""One self-contained GGUF file for a model of any family: its family, full config, other files
(tokenizer) and weights, the large matrices quantized (Q8_0, Q4_0, Q4_K) or in f16.

Written from a family's `Checkpoint` and read back into one, so the family's own `build` (and
the shared `materialize`) make the model as from its published files. GGUF files are untrusted
input: every tensor's type, shape, offset and size are checked against the file before use.

The blocks are ggml's (ggml-common.h). polyasr's Q8_0 writer gives all blocks of a row the
same scale (the row's largest magnitude / 127): any GGUF reader sees ordinary Q8_0, and the
int8 kernels, which take one scale per row, run exactly the stored values (`Int8Matrix`).
Q8_0 with scales per block (other writers) and the 4-bit types are rounded to per-row int8
as they are read."""

from __future__ import annotations

import json
import mmap
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import ModelError
from .checkpoint import Checkpoint
from .quantized import Float16Matrix, Int8Matrix, PackedMatrix, packed_kernels

MAGIC = b"GGUF"
ARCH = "polyasr"
ASSET = "asset:"
"""Name prefix of the tensors that hold the model's other files as bytes."""
QTYPES = ("q8_0", "q4_0", "q4_k", "f16", "f32")
BLOCK = 32
SUPER_BLOCK = 256
"""Q4_K's block: 8 sub-blocks of 32 weights."""
MIN_QUANTIZED = 4096
"""Matrices smaller than this stay in f16: quantizing them saves nothing worth the error."""
KEEP_PRECISION = {"qwen3-asr": ("audio_tower.",)}
"""Weights that stay in f16 whatever the type asked for (the Qwen3-ASR audio encoder: the
seed measured its quantization hurting accuracy)."""
NEVER_QUANTIZED = ("preprocessor.",)
"""Tensors that are no layer's weights (mel filterbanks, windows) keep their precision."""
MAX_ELEMENTS = 1 << 36
REQUANTIZE_CHUNK = 1 << 22
"""Weights rounded to int8 at a time when a tensor is not row-uniform Q8_0 (16 MB of float32)."""
QUANTIZED = {"Q8_0": 34, "Q4_0": 18, "Q4_K": 144}
"""Block types this reader knows, with their bytes per block."""
READABLE = {"F32", "F16", "BF16", "I8", "I16", "I32", "I64", *QUANTIZED}
"""Tensor types this reader turns into weights."""


def is_gguf(path: Path) -> bool:
    """True for a file that starts with GGUF's magic."""
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == MAGIC


def is_layer_weight(name: str) -> bool:
    """Whether tensor `name` is a layer's weight matrix (what may be quantized)."""
    return name.endswith(".weight") and not name.startswith(NEVER_QUANTIZED)


def _kind(qtype: str, family: str, name: str, tensor: torch.Tensor):
    """The GGML type a tensor is stored in."""
    from gguf import GGMLQuantizationType as T

    if not tensor.is_floating_point():
        return {torch.int8: T.I8, torch.int16: T.I16, torch.int32: T.I32}.get(tensor.dtype, T.I64)
    if qtype == "f32" or tensor.dim() < 2:
        return T.F32  # norms, biases, scalars
    matrix = tensor.dim() == 2 or (tensor.dim() == 3 and tensor.shape[-1] == 1)
    quantizable = (
        qtype in ("q8_0", "q4_0", "q4_k")
        and matrix
        and is_layer_weight(name)
        and tensor.numel() >= MIN_QUANTIZED
        and tensor.shape[1] % BLOCK == 0
        and not name.startswith(KEEP_PRECISION.get(family, ()))
    )
    if not quantizable:
        return T.F16
    if qtype == "q4_k":  # rows that do not fill super-blocks fall back to Q4_0, as in ggml
        return T.Q4_K if tensor.shape[1] % SUPER_BLOCK == 0 else T.Q4_0
    return T.Q8_0 if qtype == "q8_0" else T.Q4_0


def write_gguf(checkpoint: Checkpoint, qtype: str, output: Path, name: str = "") -> dict[str, int]:
    """Write `checkpoint` as one GGUF file (atomically); counts of tensors per stored type."""
    import gguf

    if qtype not in QTYPES:
        raise ModelError(f"unknown quantization type {qtype!r}; use one of: {', '.join(QTYPES)}")
    try:
        config = json.dumps(checkpoint.config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the {checkpoint.family} config cannot be stored: {exc}") from None
    output = Path(output)
    counts: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    with atomic_path(output) as temporary:
        writer = gguf.GGUFWriter(temporary, ARCH)
        writer.add_string("polyasr.family", checkpoint.family)
        writer.add_string("polyasr.config", config)
        writer.add_string("polyasr.name", name)
        writer.add_string("polyasr.qtype", qtype)
        for asset, data in checkpoint.assets.items():
            writer.add_tensor(ASSET + asset, np.frombuffer(data, dtype=np.int8).copy())
        for key, tensor in checkpoint.state.items():
            kind = _kind(qtype, checkpoint.family, key, tensor)
            counts[kind.name] = counts.get(kind.name, 0) + 1
            array = tensor.detach().cpu()
            if kind.name in QUANTIZED:
                matrix = array.float().reshape(array.shape[0], -1)
                if matrix.shape != array.shape:  # a kernel-1 convolution [out, in, 1]
                    shapes[key] = list(array.shape)
                writer.add_tensor(key, quantize(matrix, kind.name), raw_dtype=kind)
            elif kind == gguf.GGMLQuantizationType.F16:
                writer.add_tensor(key, array.half().numpy())
            elif kind == gguf.GGMLQuantizationType.F32:
                writer.add_tensor(key, array.float().numpy())
            else:
                writer.add_tensor(key, array.numpy())
        writer.add_string("polyasr.shapes", json.dumps(shapes))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return counts


def quantize(matrix: torch.Tensor, kind: str) -> np.ndarray:
    """A float matrix [rows, n] as GGUF blocks (uint8 [rows, bytes]) of type `kind`."""
    if kind == "Q8_0":
        return _quantize_q8_0(matrix)
    if kind == "Q4_K":
        return _quantize_q4_k(matrix)
    import gguf

    return gguf.quants.quantize(matrix.numpy(), gguf.GGMLQuantizationType.Q4_0)


def _quantize_q8_0(matrix: torch.Tensor) -> np.ndarray:
    """Q8_0 blocks (fp16 scale d, 32 int8 q, x = d q) with one scale per row."""
    rows = matrix.shape[0]
    scale = (matrix.abs().amax(dim=1) / 127).half()
    safe = torch.where(scale > 0, scale.float(), 1.0)[:, None]
    values = torch.round(matrix / safe).clamp_(-127, 127).to(torch.int8).reshape(rows, -1, BLOCK)
    scales = scale[:, None, None].expand(rows, values.shape[1], 1).contiguous()
    return (
        torch.cat([scales.view(torch.int8), values], dim=2)
        .view(torch.uint8)
        .reshape(rows, -1)
        .numpy()
    )


def _fit_sub_blocks(x: torch.Tensor, rounds: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Step and offset (>= 0) per sub-block of x [..., 32] for x ~ step q - offset, q in
    0..15: the range [min(0, lo), hi] first, then least-squares refits of the rounded q (the
    idea of ggml's make_qkx2_quants; 15 % less error than the range alone)."""
    low = x.amin(dim=-1).clamp(max=0)
    step, offset = (x.amax(dim=-1) - low) / 15, -low
    n = x.shape[-1]
    for _ in range(rounds):
        safe = torch.where(step > 0, step, 1.0)
        q = torch.round((x + offset[..., None]) / safe[..., None]).clamp_(0, 15)
        sq, sqq = q.sum(dim=-1), (q * q).sum(dim=-1)
        sx, sqx = x.sum(dim=-1), (q * x).sum(dim=-1)
        det = n * sqq - sq * sq
        fit_step = (n * sqx - sq * sx) / torch.where(det > 0, det, 1.0)
        fit_offset = (fit_step * sq - sx) / n
        no_offset = sqx / torch.where(sqq > 0, sqq, 1.0)  # best fit with offset 0
        fit_step = torch.where(fit_offset >= 0, fit_step, no_offset)
        fit_offset = fit_offset.clamp(min=0)
        better = (det > 0) & (fit_step > 0)
        step, offset = torch.where(better, fit_step, step), torch.where(better, fit_offset, offset)
    return step, offset


def _quantize_q4_k(matrix: torch.Tensor) -> np.ndarray:
    """Q4_K super-blocks: fp16 d and dmin, 6-bit scale sc and min m per 32 weights, 4-bit q;
    x = d sc q - dmin m."""
    rows = matrix.shape[0]
    x = matrix.reshape(rows, -1, 8, BLOCK)  # [rows, super-blocks, sub-blocks, 32]
    step, offset = _fit_sub_blocks(x)
    d = (step.amax(dim=-1) / 63).half()
    dmin = (offset.amax(dim=-1) / 63).half()
    sc = torch.round(step / torch.where(d > 0, d.float(), 1.0)[..., None]).clamp_(0, 63)
    m = torch.round(offset / torch.where(dmin > 0, dmin.float(), 1.0)[..., None]).clamp_(0, 63)
    unit = (d.float()[..., None] * sc)[..., None]
    q = torch.round((x + (dmin.float()[..., None] * m)[..., None]) / torch.where(unit > 0, unit, 1))
    q = q.clamp_(0, 15).to(torch.uint8).reshape(*x.shape[:2], 4, 2, BLOCK)
    qs = (q[:, :, :, 0] | (q[:, :, :, 1] << 4)).reshape(*x.shape[:2], 128)
    sc, m = sc.to(torch.uint8), m.to(torch.uint8)
    packed = torch.cat(
        [
            sc[..., :4] | ((sc[..., 4:] >> 4) << 6),
            m[..., :4] | ((m[..., 4:] >> 4) << 6),
            (sc[..., 4:] & 0xF) | ((m[..., 4:] & 0xF) << 4),
        ],
        dim=-1,
    )
    header = torch.stack([d, dmin], dim=-1).view(torch.uint8)
    return torch.cat([header, packed, qs], dim=-1).reshape(rows, -1).numpy()


def dequantize(blocks: np.ndarray, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Q8_0, Q4_0 or Q4_K blocks (uint8 [rows, bytes]) as float32 `shape`: Q8_0 is an fp16
    scale d and 32 int8 q (x = d q); Q4_0 an fp16 scale d and 16 bytes, element j in the low
    nibble of byte j and j + 16 in the high nibble (x = d (q - 8)); Q4_K see `_quantize_q4_k`."""
    raw = torch.from_numpy(np.array(blocks, dtype=np.uint8).reshape(-1, QUANTIZED[kind]))
    if kind == "Q4_K":
        return _dequantize_q4_k(raw).reshape(shape)
    scale = raw[:, :2].contiguous().view(torch.float16).float()
    if kind == "Q8_0":
        values = raw[:, 2:].contiguous().view(torch.int8).float()
    else:
        packed = raw[:, 2:].to(torch.int16)
        values = torch.cat([packed & 0x0F, packed >> 4], dim=1).float() - 8
    return (values * scale).reshape(shape)


def _dequantize_q4_k(raw: torch.Tensor) -> torch.Tensor:
    """Q4_K super-blocks (uint8 [n, 144]) as float32 [n, 256] (ggml's get_scale_min_k4)."""
    d, dmin = raw[:, :4].contiguous().view(torch.float16).float().unbind(dim=1)
    s = raw[:, 4:16].to(torch.int16)
    sc = torch.cat([s[:, :4] & 63, (s[:, 8:] & 0xF) | ((s[:, :4] >> 6) << 4)], dim=1)
    m = torch.cat([s[:, 4:8] & 63, (s[:, 8:] >> 4) | ((s[:, 4:8] >> 6) << 4)], dim=1)
    qs = raw[:, 16:].to(torch.int16).reshape(-1, 4, 1, BLOCK)
    q = torch.cat([qs & 0xF, qs >> 4], dim=2).reshape(-1, 8, BLOCK).float()
    x = (d[:, None] * sc)[..., None] * q - (dmin[:, None] * m)[..., None]
    return x.reshape(-1, SUPER_BLOCK)


def int8_matrix(blocks: np.ndarray, kind: str, shape: tuple[int, ...]) -> Int8Matrix:
    """A quantized tensor as int8 rows: Q8_0 whose blocks share their row's scale is viewed in
    place (no copy: `blocks` may be a memory map); anything else is rounded once more, per row,
    when first used (at packing), a few rows at a time (never a whole float32 copy)."""
    rows = shape[0]
    blocks = np.asarray(blocks).reshape(rows, -1)
    if kind == "Q8_0":
        bits = blocks.view(np.uint16).reshape(rows, -1, QUANTIZED[kind] // 2)[:, :, 0]
        if bool((bits == bits[:, :1]).all()):  # numpy: 10x faster than torch on this view
            scales = torch.from_numpy(bits[:, 0].view(np.float16).astype(np.float32))
            raw = _in_place(blocks).reshape(rows, -1, QUANTIZED[kind])
            return Int8Matrix(raw[:, :, 2:].view(torch.int8), scales, shape)
    columns = int(np.prod(shape[1:]))

    def requantize() -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.empty(rows, columns, dtype=torch.int8)
        scales = torch.empty(rows)
        step = max(1, REQUANTIZE_CHUNK // columns)
        for start in range(0, rows, step):
            part = blocks[start : start + step]
            matrix = Int8Matrix.quantize(dequantize(part, kind, (part.shape[0], columns)))
            values[start : start + step] = matrix.values
            scales[start : start + step] = matrix.scales
        return values, scales

    return Int8Matrix.deferred(requantize, shape)


def _in_place(array: np.ndarray) -> torch.Tensor:
    """A tensor viewing `array` (part of the read-only file map) without a copy; polyasr never
    writes to weights."""
    with warnings.catch_warnings():  # torch warns that the array is not writable
        warnings.simplefilter("ignore")
        return torch.from_numpy(array)


def read_gguf(path: Path, quantized: bool = True) -> Checkpoint:
    """The `Checkpoint` stored in a polyasr GGUF file; one-line `ModelError` for a file that is
    truncated, malformed, hostile or not polyasr's. With `quantized` (and packed kernels in
    this torch), quantized layer weights come as `Int8Matrix` and f16 ones as
    `Float16Matrix`, to stay small in memory; otherwise as float32 and f16 tensors.

    The file is memory-mapped. Int8 and f16 weights view it in place until they are packed
    for their kernels (an embedding's rows are looked up in it); every other tensor is copied
    out. The pages read are given back each time, so that the weights are never in memory
    twice."""
    import gguf

    path = Path(path)
    size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(path, "r")
    except Exception as exc:  # the reader raises whatever a malformed header makes it hit
        raise ModelError(f"{path} is not a readable GGUF file ({type(exc).__name__})") from None
    fields = {
        key: field.contents() if hasattr(field, "contents") else None
        for key, field in reader.fields.items()
    }
    family, config = fields.get("polyasr.family"), fields.get("polyasr.config")
    if not isinstance(family, str) or not isinstance(config, str):
        raise ModelError(f"{path} is a GGUF file, but not a polyasr model (polyasr quantize)")
    try:
        config = json.loads(config)
    except ValueError:
        raise ModelError(f"{path}: its polyasr.config is not valid JSON") from None
    try:
        reshaped = json.loads(fields.get("polyasr.shapes") or "{}")
        reshaped = {k: tuple(int(n) for n in v) for k, v in reshaped.items()}
    except (ValueError, TypeError, AttributeError):
        raise ModelError(f"{path}: its polyasr.shapes is not valid") from None
    state: dict[str, torch.Tensor] = {}
    assets: dict[str, bytes] = {}
    packed = quantized and packed_kernels()
    for tensor in reader.tensors:
        shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        _check(path, size, tensor, shape)
        kind = tensor.tensor_type.name
        keep_small = packed and is_layer_weight(tensor.name)
        if tensor.name.startswith(ASSET):
            assets[tensor.name[len(ASSET) :]] = np.asarray(tensor.data).tobytes()
        elif kind in QUANTIZED:
            stored = reshaped.get(tensor.name, shape)
            if int(np.prod(stored)) != int(np.prod(shape)):
                raise ModelError(f"{path}: tensor {tensor.name} has a wrong shape record")
            if keep_small:
                state[tensor.name] = int8_matrix(tensor.data, kind, tuple(stored))
            else:
                state[tensor.name] = dequantize(tensor.data, kind, tuple(stored))
        elif kind == "F16" and keep_small:
            state[tensor.name] = Float16Matrix(_in_place(np.asarray(tensor.data).reshape(shape)))
        else:
            state[tensor.name] = torch.from_numpy(np.array(tensor.data).reshape(shape))
        region = (reader.data, int(tensor.data_offset), int(tensor.n_bytes))
        if isinstance(state.get(tensor.name), PackedMatrix):
            state[tensor.name].unmap = partial(_release, *region)
        _release(*region)
    return Checkpoint(family, config, state, assets, str(path))


def _release(data: np.memmap, start: int, length: int) -> None:
    """Drop the mapped pages of bytes [start, start + length) from this process's memory
    (the file stays in the page cache; a later read maps them again)."""
    handle = getattr(data, "_mmap", None)
    if handle is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    first = start - start % mmap.PAGESIZE
    handle.madvise(mmap.MADV_DONTNEED, first, start + length - first)


def _check(path: Path, size: int, tensor: Any, shape: tuple[int, ...]) -> None:
    """Refuse a tensor whose type, shape or place in the file does not add up."""
    import gguf

    kind = tensor.tensor_type
    if kind not in gguf.GGML_QUANT_SIZES or kind.name not in READABLE:
        raise ModelError(f"{path}: tensor {tensor.name} has an unsupported type {kind.name}")
    if any(n <= 0 for n in shape) or int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise ModelError(f"{path}: tensor {tensor.name} has an impossible shape {list(shape)}")
    block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    elements = int(np.prod(shape))
    if elements % block:
        raise ModelError(f"{path}: tensor {tensor.name} does not fill whole {kind.name} blocks")
    expected = elements // block * block_bytes
    start = int(tensor.data_offset)
    if tensor.n_bytes != expected or start < 0 or start + expected > size:
        raise ModelError(f"{path}: tensor {tensor.name} lies outside the file (truncated?)")
    if np.asarray(tensor.data).nbytes != expected:
        raise ModelError(f"{path}: tensor {tensor.name} is cut short (truncated file)")
