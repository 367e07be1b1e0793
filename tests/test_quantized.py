"""Int8 weights in memory: the kernels' products match fp32 closely for every input shape,
embeddings look their rows up, and `materialize` keeps only what the kernels can run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polyasr.models.linear import Embedding, Linear, PointwiseConv1d, TiedEmbedding, linear
from polyasr.models.materialize import materialize
from polyasr.models.quantized import Float16Matrix, Int8Matrix, pack_all, packed_kernels

needs_kernels = pytest.mark.skipif(not packed_kernels(), reason="this torch has no int8 kernels")


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@needs_kernels
@pytest.mark.parametrize("shape", [(512,), (1, 512), (5, 512), (3, 7, 512), (1500, 512)])
def test_int8_products_stay_close_to_fp32(shape):
    torch.manual_seed(0)
    weight, bias = torch.randn(384, 512) * 0.05, torch.randn(384)
    x = torch.randn(shape)
    x[..., 3] *= 30  # an outlier channel, as in real activations
    matrix = Int8Matrix.quantize(weight)
    y = linear(x, matrix, bias)
    assert y.shape == (*shape[:-1], 384) and y.dtype == torch.float32
    assert relative(y, torch.nn.functional.linear(x, weight, bias)) < 0.05
    assert relative(linear(x, matrix), x @ weight.T) < 0.05
    # rows are quantized each with their own scale: a quiet row beside a loud one keeps its
    # precision
    both = torch.stack([x.reshape(-1, 512)[0], x.reshape(-1, 512)[0] * 1e-3])
    y = linear(both, matrix)
    assert relative(y[1] * 1e3, y[0]) < 1e-4


def test_quantize_round_trip_and_lookup():
    weight = torch.randn(100, 64)
    matrix = Int8Matrix.quantize(weight)
    assert matrix.values.dtype == torch.int8 and matrix.scales.shape == (100,)
    assert relative(matrix.dequantize(), weight) < 0.01
    ids = torch.tensor([[3, 99], [0, 3]])
    assert torch.equal(matrix[ids], matrix.dequantize()[ids])
    assert torch.equal(matrix[2:5], matrix.dequantize()[2:5])
    with pytest.raises(ValueError):
        Int8Matrix(torch.zeros(4, 8), torch.ones(4))


@needs_kernels
def test_blocked_values_and_parallel_packing():
    """Values cut in strided blocks (Q8_0's int8 part, read in place) compute what contiguous
    rows do; `pack_all` packs on threads, drops the values and gives mapped pages back once."""
    weight = torch.randn(48, 128)
    plain = Int8Matrix.quantize(weight)
    stored = torch.zeros(48, 4, 34, dtype=torch.int8)  # 2 bytes of scale before each block
    stored[:, :, 2:] = plain.values.reshape(48, 4, 32)
    blocked = Int8Matrix(stored[:, :, 2:], plain.scales)
    assert blocked.shape == (48, 128)
    assert torch.equal(blocked.dequantize(), plain.dequantize())
    assert torch.equal(blocked[torch.tensor([[1, 47]])], plain[torch.tensor([[1, 47]])])
    x = torch.randn(6, 128)
    expected = linear(x, plain)
    unmapped = []
    blocked.unmap = lambda: unmapped.append(True)
    matrices = [blocked, Float16Matrix(weight.half()), Int8Matrix.quantize(weight)]
    pack_all([(blocked, False), (matrices[1], False), (matrices[2], True)], threads=2)
    assert unmapped == [True] and all(m._packed is not None for m in matrices)
    assert [m.values.numel() for m in matrices] == [0, 0, weight.numel()]  # the last is kept
    assert torch.equal(linear(x, blocked), expected)
    assert relative(linear(x, matrices[1]), x @ weight.T) < 1e-2


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = Embedding(50, 32)
        self.tied = TiedEmbedding(50, 32)
        self.proj = Linear(32, 64)
        self.conv = PointwiseConv1d(64, 32)
        self.norm = nn.LayerNorm(32)
        self.other = nn.Linear(32, 32)  # not the seam's: runs dense


@needs_kernels
def test_materialize_keeps_seam_weights_quantized():
    torch.manual_seed(0)
    dense = {k: torch.randn(v.shape) for k, v in Tiny().state_dict().items()}
    state = dict(dense)
    for key in ("embed.weight", "tied.weight", "proj.weight", "conv.weight", "other.weight"):
        state[key] = Int8Matrix.quantize(dense[key])
    model = materialize(Tiny, state, torch.device("cpu"), torch.float32, "the test weights")
    assert isinstance(model.embed.weight, Int8Matrix) and model.embed.weight.values.numel()
    assert model.embed.weight._packed is None  # looked up only: never packed
    tied = model.tied.weight  # looked up and the output projection: packed at load, rows kept
    assert tied._packed is not None and tied.values.numel() == tied.numel()
    assert isinstance(model.proj.weight, Int8Matrix) and model.proj.weight.values.numel() == 0
    assert isinstance(model.conv.weight, Int8Matrix) and model.conv.weight.shape == (32, 64, 1)
    assert isinstance(model.other.weight, nn.Parameter)
    assert "proj.weight" not in dict(model.named_parameters())
    ids = torch.tensor([[1, 2, 3]])
    x = model.embed(ids)
    assert relative(x, dense["embed.weight"][ids]) < 0.01
    y = model.conv(model.proj(x))
    expected = (
        model.conv.bias
        + (dense["proj.bias"] + x @ dense["proj.weight"].T) @ dense["conv.weight"][..., 0].T
    )
    assert relative(y, expected) < 0.03


def test_materialize_dequantizes_where_no_kernel_runs():
    torch.manual_seed(0)
    state = {k: torch.randn(v.shape) for k, v in Tiny().state_dict().items()}
    state["proj.weight"] = Int8Matrix.quantize(state["proj.weight"])
    model = materialize(Tiny, state, torch.device("cpu"), torch.bfloat16, "the test weights")
    assert isinstance(model.proj.weight, (Int8Matrix, nn.Parameter))
    if isinstance(model.proj.weight, nn.Parameter):
        assert model.proj.weight.dtype == torch.bfloat16


@needs_kernels
def test_float16_weights_stay_float16():
    torch.manual_seed(0)
    weight = (torch.randn(96, 64) * 0.1).half()
    matrix = Float16Matrix(weight)
    x = torch.randn(7, 64)
    expected = x @ weight.float().T
    assert relative(linear(x, matrix, torch.ones(96)), expected + 1) < 1e-3
    matrix.release_values()
    assert matrix.values.numel() == 0
    assert relative(linear(x[0], matrix), expected[0]) < 1e-3
    table = Float16Matrix(weight)
    assert torch.equal(table[torch.tensor([5, 1])], weight[[5, 1]].float())
    with pytest.raises(ValueError):
        Float16Matrix(weight.float())
