"""The one matrix product of every family: y = x W^T + b with W in the published [out, in]
layout. Linear layers, kernel-1 convolutions, LSTM steps and tied output embeddings all go
through `linear`, so that a weight format (fp32, fp16, quantized) plugs in at one place."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x [..., in] @ weight [out, in] (or a kernel-1 conv weight [out, in, 1]) + bias.

    On CPU, 4-64 rows (batched decoding steps) run about twice as fast with the weight as the
    left operand (MKL packs the large matrix otherwise); other shapes are fastest as F.linear.
    """
    if weight.dim() == 3:
        weight = weight.flatten(1)
    rows = x.numel() // x.shape[-1]
    if not 4 <= rows <= 64 or x.device.type != "cpu":
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


def embedding_logits(hidden: Tensor, embedding: Tensor) -> Tensor:
    """Scores of every token for `hidden` [..., d] against the (tied) embedding [vocab, d],
    in float32 whatever the compute dtype."""
    return linear(hidden, embedding).float()
