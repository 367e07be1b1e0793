"""One self-contained GGUF file for a model of any family: its family, full config, other files
(tokenizer) and weights, the large matrices quantized (Q8_0, Q4_0) or in f16.

Written from a family's `Checkpoint` and read back into one, so the family's own `build` (and
the shared `materialize`) make the model as from its published files. GGUF files are untrusted
input: every tensor's type, shape, offset and size are checked against the file before use.
Quantized weights are dequantized as they are read (GGUF's block formats, ggml-common.h)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from .checkpoint import Checkpoint

MAGIC = b"GGUF"
ARCH = "polyasr"
ASSET = "asset:"
"""Name prefix of the tensors that hold the model's other files as bytes."""
QTYPES = ("q8_0", "q4_0", "f16", "f32")
BLOCK = 32
MIN_QUANTIZED = 4096
"""Matrices smaller than this stay in f16: quantizing them saves nothing worth the error."""
KEEP_PRECISION = {"qwen3-asr": ("audio_tower.",)}
"""Weights that stay in f16 whatever the type asked for (the Qwen3-ASR audio encoder: the
seed measured its quantization hurting accuracy)."""
MAX_ELEMENTS = 1 << 36
READABLE = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "I8", "I16", "I32", "I64"}
"""Tensor types this reader turns into weights."""


def is_gguf(path: Path) -> bool:
    """True for a file that starts with GGUF's magic."""
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == MAGIC


def _kind(qtype: str, family: str, name: str, tensor: torch.Tensor):
    """The GGML type a tensor is stored in."""
    from gguf import GGMLQuantizationType as T

    if not tensor.is_floating_point():
        return {torch.int8: T.I8, torch.int16: T.I16, torch.int32: T.I32}.get(tensor.dtype, T.I64)
    if qtype == "f32" or tensor.dim() < 2:
        return T.F32  # norms, biases, scalars
    matrix = tensor.dim() == 2 or (tensor.dim() == 3 and tensor.shape[-1] == 1)
    quantizable = (
        qtype in ("q8_0", "q4_0")
        and matrix
        and tensor.numel() >= MIN_QUANTIZED
        and tensor.shape[1] % BLOCK == 0
        and not name.startswith(KEEP_PRECISION.get(family, ()))
    )
    if quantizable:
        return T.Q8_0 if qtype == "q8_0" else T.Q4_0
    return T.F16


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
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"
    )
    os.close(handle)
    counts: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    try:
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
            if kind in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
                matrix = array.float().reshape(array.shape[0], -1).numpy()
                if matrix.shape != tuple(array.shape):  # a kernel-1 convolution [out, in, 1]
                    shapes[key] = list(array.shape)
                data = gguf.quants.quantize(matrix, kind)
                writer.add_tensor(key, data, raw_dtype=kind)
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
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return counts


def dequantize(blocks: np.ndarray, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Q8_0 or Q4_0 blocks (uint8 [rows, bytes]) as float32 `shape`: Q8_0 is an fp16 scale d
    and 32 int8 q (x = d q); Q4_0 an fp16 scale d and 16 bytes, element j in the low nibble of
    byte j and j + 16 in the high nibble (x = d (q - 8))."""
    size = 34 if kind == "Q8_0" else 18
    raw = torch.from_numpy(np.array(blocks, dtype=np.uint8).reshape(-1, size))
    scale = raw[:, :2].contiguous().view(torch.float16).float()
    if kind == "Q8_0":
        values = raw[:, 2:].contiguous().view(torch.int8).float()
    else:
        packed = raw[:, 2:].to(torch.int16)
        values = torch.cat([packed & 0x0F, packed >> 4], dim=1).float() - 8
    return (values * scale).reshape(shape)


def read_gguf(path: Path) -> Checkpoint:
    """The `Checkpoint` stored in a polyasr GGUF file; one-line `ModelError` for a file that is
    truncated, malformed, hostile or not polyasr's."""
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
    for tensor in reader.tensors:
        shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        _check(path, size, tensor, shape)
        kind = tensor.tensor_type.name
        if tensor.name.startswith(ASSET):
            assets[tensor.name[len(ASSET) :]] = np.asarray(tensor.data).tobytes()
        elif kind in ("Q8_0", "Q4_0"):
            stored = reshaped.get(tensor.name, shape)
            if int(np.prod(stored)) != int(np.prod(shape)):
                raise ModelError(f"{path}: tensor {tensor.name} has a wrong shape record")
            state[tensor.name] = dequantize(np.asarray(tensor.data), kind, tuple(stored))
        else:
            state[tensor.name] = torch.from_numpy(np.array(tensor.data).reshape(shape))
    return Checkpoint(family, config, state, assets, str(path))


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
