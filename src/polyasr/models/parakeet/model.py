"""Parakeet TDT in data-flow order: depthwise-striding subsampling, FastConformer layers with
relative-position attention, LSTM prediction network and the token-and-duration joint.

Facts (shared/docs/models/parakeet.md, NeMo 3.0.0): no xscaling, no biases in attention, FFN
and conv module for v2/v3, BatchNorm in the conv module, masked entries filled with -10000,
positional table computed for the actual length (it is not in the checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conformer import ConformerLayer, ConvolutionModule, valid_mask
from ..linear import Embedding, Linear

MASK_VALUE = -10000.0


@dataclass(frozen=True)
class ParakeetDims:
    feat_in: int = 128
    n_layers: int = 24
    d_model: int = 1024
    n_heads: int = 8
    ff_expansion: int = 4
    conv_kernel: int = 9
    subsampling_factor: int = 8
    subsampling_channels: int = 256
    xscaling: bool = False
    use_bias: bool = False
    attention_window: int | None = None
    """Local attention: each frame sees +-window frames (None: the whole input)."""
    vocab_size: int = 8192
    pred_hidden: int = 640
    pred_layers: int = 2
    joint_hidden: int = 640
    durations: tuple[int, ...] = (0, 1, 2, 3, 4)

    @property
    def blank(self) -> int:
        return self.vocab_size

    @property
    def n_strides(self) -> int:
        return int(math.log2(self.subsampling_factor))


class DepthwiseStridingSubsampling(nn.Module):
    """[B, T, feat_in] -> [B, T/8, d]: a full 3x3 stride-2 conv, then (depthwise stride-2 conv,
    pointwise conv) pairs, ReLUs between; time steps past each length are zeroed before every
    layer, as NeMo's masked conv sequence does."""

    def __init__(self, dims: ParakeetDims) -> None:
        super().__init__()
        c = dims.subsampling_channels
        layers: list[nn.Module] = [nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU()]
        for _ in range(dims.n_strides - 1):
            layers += [
                nn.Conv2d(c, c, 3, stride=2, padding=1, groups=c),
                nn.Conv2d(c, c, 1),
                nn.ReLU(),
            ]
        self.conv = nn.Sequential(*layers)
        freq = dims.feat_in
        for _ in range(dims.n_strides):
            freq = (freq - 1) // 2 + 1
        self.out = Linear(c * freq, dims.d_model)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = x[:, None]  # [B, 1, T, F]
        for layer in self.conv:
            x = x * valid_mask(lengths, x.shape[2])[:, None, :, None]
            x = layer(x)
            if isinstance(layer, nn.Conv2d) and layer.stride[0] == 2:
                lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        x = x * valid_mask(lengths, x.shape[2])[:, None, :, None]
        b, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(b, t, c * f)), lengths


def relative_positions(length: int, d_model: int, device: torch.device) -> Tensor:
    """Sinusoids [2T-1, d] for relative positions T-1, T-2, ..., -(T-1), in fp32 as NeMo."""
    positions = torch.arange(length - 1, -length, -1, dtype=torch.float32, device=device)
    inv = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32, device=device)
        * -(math.log(10000.0) / d_model)
    )
    angles = positions[:, None] * inv
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(2 * length - 1, d_model)


class RelPositionMultiHeadAttention(nn.Module):
    """Transformer-XL attention: scores = ((q + u) k^T + rel_shift((q + v) P^T)) / sqrt(d_k).

    The positional term enters scaled_dot_product_attention as an additive mask, with the
    key-padding and local-window masks folded in, so the softmax runs in the fused kernel.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_k = d_model // n_heads
        self.linear_q = Linear(d_model, d_model, bias=bias)
        self.linear_k = Linear(d_model, d_model, bias=bias)
        self.linear_v = Linear(d_model, d_model, bias=bias)
        self.linear_out = Linear(d_model, d_model, bias=bias)
        self.linear_pos = Linear(d_model, d_model, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(n_heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(n_heads, self.d_k))

    def forward(self, x: Tensor, pos: Tensor, bad: Tensor | None) -> Tensor:
        """x [B, T, d]; pos [2T-1, d] sinusoids; bad [B or 1, T, T] True where masked."""
        b, t, d = x.shape

        def heads(y: Tensor) -> Tensor:
            return y.view(b, -1, self.n_heads, self.d_k).transpose(1, 2)

        q, k, v = heads(self.linear_q(x)), heads(self.linear_k(x)), heads(self.linear_v(x))
        p = self.linear_pos(pos).view(2 * t - 1, self.n_heads, self.d_k).transpose(0, 1)
        full = torch.matmul(q + self.pos_bias_v[:, None], p.transpose(1, 2))  # [B, H, T, 2T-1]
        # rel_shift: position term of (i, j) is column T-1-i+j of row i.
        bd = full.as_strided(
            (b, self.n_heads, t, t),
            (full.stride(0), full.stride(1), 2 * t - 2, 1),
            full.storage_offset() + t - 1,
        )
        bias = bd / math.sqrt(self.d_k)
        if bad is not None:
            bias = bias.masked_fill(bad[:, None], MASK_VALUE)
        out = F.scaled_dot_product_attention(q + self.pos_bias_u[:, None], k, v, attn_mask=bias)
        return self.linear_out(out.transpose(1, 2).reshape(b, t, d))


class FastConformerEncoder(nn.Module):
    """log-mel [B, feat_in, T] + lengths -> states [B, T', d] + lengths T'."""

    def __init__(self, dims: ParakeetDims) -> None:
        super().__init__()
        self.dims = dims
        self.pre_encode = DepthwiseStridingSubsampling(dims)
        d = dims.d_model
        self.layers = nn.ModuleList(
            ConformerLayer(
                d,
                d * dims.ff_expansion,
                RelPositionMultiHeadAttention(d, dims.n_heads, dims.use_bias),
                ConvolutionModule(d, dims.conv_kernel, norm="batch", bias=dims.use_bias),
                bias=dims.use_bias,
            )
            for _ in range(dims.n_layers)
        )

    def attention_mask(self, lengths: Tensor, size: int) -> Tensor | None:
        """[B or 1, T, T] True where query i must not see key j (padding, outside the window)."""
        bad = None
        if bool((lengths < size).any()):
            valid = valid_mask(lengths, size)
            bad = ~(valid[:, :, None] & valid[:, None, :])
        window = self.dims.attention_window
        if window is not None and window < size:
            steps = torch.arange(size, device=lengths.device)
            outside = ((steps[:, None] - steps[None, :]).abs() > window)[None]
            bad = outside if bad is None else bad | outside
        return bad

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Frames past the longest length are dropped first: they are padding, and every layer
        treats masked steps exactly like the zero padding of a shorter input."""
        features = features[..., : int(lengths.max())]
        x, lengths = self.pre_encode(features.transpose(1, 2), lengths)
        x = x[:, : int(lengths.max())]
        if self.dims.xscaling:
            x = x * math.sqrt(self.dims.d_model)
        t = x.shape[1]
        pos = relative_positions(t, self.dims.d_model, x.device).to(x.dtype)
        bad = self.attention_mask(lengths, t)
        pad = ~valid_mask(lengths, t) if bool((lengths < t).any()) else None
        for layer in self.layers:
            x = layer(x, pad, pos=pos, bad=bad)
        return x, lengths


class PredictionNetwork(nn.Module):
    """Token embedding (blank is the zero padding row) + stacked LSTM, no projection."""

    def __init__(self, dims: ParakeetDims) -> None:
        super().__init__()
        self.embed = Embedding(dims.vocab_size + 1, dims.pred_hidden)
        self.dec_rnn = nn.Module()
        self.dec_rnn.lstm = nn.LSTM(
            dims.pred_hidden, dims.pred_hidden, num_layers=dims.pred_layers, batch_first=True
        )


class TDTJoint(nn.Module):
    """logits = W · ReLU(enc(f) + pred(g)); the first vocab+1 are tokens (blank last), the rest
    one per duration."""

    def __init__(self, dims: ParakeetDims) -> None:
        super().__init__()
        self.enc = Linear(dims.d_model, dims.joint_hidden)
        self.pred = Linear(dims.pred_hidden, dims.joint_hidden)
        self.joint_net = nn.Sequential(
            nn.ReLU(),
            nn.Identity(),  # dropout in training
            Linear(dims.joint_hidden, dims.vocab_size + 1 + len(dims.durations)),
        )

    def forward(self, enc: Tensor, pred: Tensor) -> Tensor:
        """Logits from already projected encoder frames and prediction states."""
        return self.joint_net(enc + pred)


class ParakeetTDT(nn.Module):
    def __init__(self, dims: ParakeetDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = FastConformerEncoder(dims)
        self.decoder = nn.Module()
        self.decoder.prediction = PredictionNetwork(dims)
        self.joint = TDTJoint(dims)
