"""Conformer building blocks shared by GigaAM and Parakeet (FastConformer).

Both use the macaron block (½FF, self-attention, convolution module, ½FF, LayerNorm) with the
same checkpoint names; they differ in the attention (rotary vs relative positions), in biases
and in the convolution module's normalization (LayerNorm vs BatchNorm), which are parameters here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import Linear, PointwiseConv1d


def valid_mask(lengths: Tensor, size: int) -> Tensor:
    """[B, size] True where the time step is inside the utterance."""
    return torch.arange(size, device=lengths.device)[None] < lengths[:, None]


def depthwise_conv_time(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Depthwise 'same' convolution over time of x [B, T, d] with weight [d, k].

    A sum of shifted products in the [B, T, d] layout: no transposes, and several times faster
    than oneDNN's grouped conv1d on CPU.
    """
    kernel = weight.shape[-1]
    t = x.shape[1]
    padded = F.pad(x, (0, 0, kernel // 2, (kernel - 1) // 2))
    out = padded[:, :t] * weight[:, 0]
    for j in range(1, kernel):
        out = torch.addcmul(out, padded[:, j : j + t], weight[:, j])
    return out if bias is None else out + bias


class ConvolutionModule(nn.Module):
    """Pointwise conv, GLU, depthwise conv, normalization, SiLU, pointwise conv.

    The kernel-1 convolutions run as matrix products over the [B, T, d] layout.
    `norm` is "layer" (GigaAM) or "batch" (FastConformer, running statistics); the checkpoint
    calls either `batch_norm`.
    """

    def __init__(self, d_model: int, kernel: int, norm: str = "layer", bias: bool = True) -> None:
        super().__init__()
        self.pointwise_conv1 = PointwiseConv1d(d_model, 2 * d_model, bias=bias)
        self.depthwise_conv = nn.Conv1d(
            d_model, d_model, kernel, padding=kernel // 2, groups=d_model, bias=bias
        )
        self.batch_norm = nn.LayerNorm(d_model) if norm == "layer" else nn.BatchNorm1d(d_model)
        self.pointwise_conv2 = PointwiseConv1d(d_model, d_model, bias=bias)

    def normalize(self, x: Tensor) -> Tensor:
        norm = self.batch_norm
        if isinstance(norm, nn.LayerNorm):
            return norm(x)
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        return (x - norm.running_mean) * scale + norm.bias

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        """x [B, T, d] -> [B, T, d]; pad_mask [B, T] True on padding."""
        y = F.glu(self.pointwise_conv1(x), dim=-1)
        if pad_mask is not None:
            y = y.masked_fill(pad_mask[..., None], 0.0)
        depthwise = self.depthwise_conv
        z = depthwise_conv_time(y, depthwise.weight[:, 0], depthwise.bias)
        return self.pointwise_conv2(F.silu(self.normalize(z)))


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, bias: bool = True) -> None:
        super().__init__()
        self.linear1 = Linear(d_model, d_ff, bias=bias)
        self.linear2 = Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(F.silu(self.linear1(x)))


class ConformerLayer(nn.Module):
    """Macaron block: ½FF, self-attention, convolution, ½FF, then the layer's own LayerNorm."""

    def __init__(
        self, d_model: int, d_ff: int, attention: nn.Module, conv: ConvolutionModule, bias: bool
    ) -> None:
        super().__init__()
        self.norm_feed_forward1 = nn.LayerNorm(d_model)
        self.feed_forward1 = FeedForward(d_model, d_ff, bias)
        self.norm_self_att = nn.LayerNorm(d_model)
        self.self_attn = attention
        self.norm_conv = nn.LayerNorm(d_model)
        self.conv = conv
        self.norm_feed_forward2 = nn.LayerNorm(d_model)
        self.feed_forward2 = FeedForward(d_model, d_ff, bias)
        self.norm_out = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, pad_mask: Tensor | None, **attention: Tensor | None) -> Tensor:
        """x [B, T, d]; `attention` holds the keyword arguments of the attention module."""
        x = x + 0.5 * self.feed_forward1(self.norm_feed_forward1(x))
        x = x + self.self_attn(self.norm_self_att(x), **attention)
        x = x + self.conv(self.norm_conv(x), pad_mask)
        x = x + 0.5 * self.feed_forward2(self.norm_feed_forward2(x))
        return self.norm_out(x)
