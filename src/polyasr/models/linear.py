"""The one matrix product of every family: y = x W^T + b with W in the published [out, in]
layout. Linear layers, kernel-1 convolutions, LSTM steps and tied output embeddings all go
through `linear`, so that a weight format (fp32, fp16, quantized) plugs in at one place."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .quantized import PackedMatrix

LARGE = 2**21
"""Weights from this many elements (8 MB in fp32) on are read from memory, not from cache."""


def linear(x: Tensor, weight: Tensor | PackedMatrix, bias: Tensor | None = None) -> Tensor:
    """x [..., in] @ weight [out, in] (or a kernel-1 conv weight [out, in, 1]) + bias; a
    `PackedMatrix` weight (int8, fp16) runs on its packed kernel.

    On CPU, 4-64 rows (batched decoding steps) times a large matrix (a Qwen3 layer's, read from
    memory) run up to twice as fast with the weight as the left operand (MKL packs the big
    matrix otherwise); small, cache-resident matrices (whisper-base) and other shapes are
    fastest as F.linear.
    """
    if isinstance(weight, PackedMatrix):
        return weight.matmul(x, bias)
    if weight.dim() == 3:
        weight = weight.flatten(1)
    rows = x.numel() // x.shape[-1]
    if (
        not 4 <= rows <= 64
        or x.device.type != "cpu"
        or not LARGE <= weight.numel()
        or weight.shape[0] > 16384
    ):
        return F.linear(x, weight, bias)
    y = (weight @ x.reshape(rows, -1).T).T
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], -1)


class Linear(nn.Linear):
    """`nn.Linear` (weight [out, in], the checkpoints' names) computed with `linear`."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


class PointwiseConv1d(Linear):
    """A kernel-1 `nn.Conv1d` (checkpoint weight [out, in, 1]) applied to x [..., in] as a
    matrix product over the last dimension: no transposes around it."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__(n_in, n_out, bias)
        self.weight = nn.Parameter(self.weight.detach()[..., None])


def embedding_logits(hidden: Tensor, embedding: Tensor | PackedMatrix) -> Tensor:
    """Scores of every token for `hidden` [..., d] against the (tied) embedding [vocab, d],
    in float32 whatever the compute dtype."""
    return linear(hidden, embedding).float()


class Embedding(nn.Embedding):
    """`nn.Embedding` without a random initialization: its weights always come from a
    checkpoint, and initializing on the meta device would import half of torch (about 1 s)."""

    def reset_parameters(self) -> None:
        return None

    def forward(self, ids: Tensor) -> Tensor:
        if isinstance(self.weight, PackedMatrix):
            return self.weight[ids]
        return super().forward(ids)


class TiedEmbedding(Embedding):
    """An embedding that is also the output projection (`embedding_logits` scores the
    vocabulary with it): quantized, it is packed for the kernels when loaded, beside its rows."""
