"""GigaAM v3 in data-flow order: conv1d subsampling, Conformer layers with RoPE, CTC/RNN-T heads.

Quirks of v3 (see shared/docs/models/gigaam.md): rotary embeddings (base 5000) are applied to
the layer input *before* the q/k projections, v unrotated; the conv module normalizes with a
LayerNorm (named `batch_norm` in the checkpoint); blank is the last class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import apply_rope, rope_tables
from ..conformer import ConformerLayer, ConvolutionModule, valid_mask
from ..linear import Embedding, Linear, PointwiseConv1d


@dataclass(frozen=True)
class GigaAMDims:
    feat_in: int = 64
    n_layers: int = 16
    d_model: int = 768
    n_heads: int = 16
    ff_expansion: int = 4
    subs_kernel: int = 5
    conv_kernel: int = 5
    rope_base: float = 5000.0
    num_classes: int = 34
    pred_hidden: int = 320
    joint_hidden: int = 320


class StridingSubsampling(nn.Module):
    """[B, feat_in, T] -> [B, T/4, d]: two stride-2 conv1d with ReLU; padding re-zeroed."""

    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        k = dims.subs_kernel
        self.conv = nn.Sequential(
            nn.Conv1d(dims.feat_in, dims.d_model, k, stride=2, padding=k // 2),
            nn.ReLU(),
            nn.Conv1d(dims.d_model, dims.d_model, k, stride=2, padding=k // 2),
            nn.ReLU(),
        )
        self.kernel = k

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        pad = self.kernel // 2
        x = x * valid_mask(lengths, x.shape[-1])[:, None]
        for conv, act in ((self.conv[0], self.conv[1]), (self.conv[2], self.conv[3])):
            x = act(conv(x))
            lengths = torch.div(lengths + 2 * pad - self.kernel, 2, rounding_mode="floor") + 1
            x = x * valid_mask(lengths, x.shape[-1])[:, None]
        return x.transpose(1, 2), lengths


class RotaryMultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.linear_q = Linear(d_model, d_model)
        self.linear_k = Linear(d_model, d_model)
        self.linear_v = Linear(d_model, d_model)
        self.linear_out = Linear(d_model, d_model)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, key_mask: Tensor | None) -> Tensor:
        """x [B, T, d]; cos/sin [T, head_dim]; key_mask [B, T] (None for one utterance)."""
        b, t, d = x.shape
        heads = x.view(b, t, self.n_heads, -1)
        rotated = apply_rope(heads, cos[:, None], sin[:, None]).reshape(b, t, d)

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, self.n_heads, -1).transpose(1, 2)

        q, k = split(self.linear_q(rotated)), split(self.linear_k(rotated))
        v = split(self.linear_v(x))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.linear_out(out.transpose(1, 2).reshape(b, t, d))


class ConformerEncoder(nn.Module):
    """log-mel [B, feat_in, T] + lengths -> states [B, T', d] + lengths T'."""

    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        self.dims = dims
        self.pre_encode = StridingSubsampling(dims)
        d = dims.d_model
        self.layers = nn.ModuleList(
            ConformerLayer(
                d,
                d * dims.ff_expansion,
                RotaryMultiHeadAttention(d, dims.n_heads),
                ConvolutionModule(d, dims.conv_kernel, norm="layer"),
                bias=True,
            )
            for _ in range(dims.n_layers)
        )

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x, lengths = self.pre_encode(features, lengths)
        head_dim = self.dims.d_model // self.dims.n_heads
        positions = torch.arange(x.shape[1], device=x.device)
        cos, sin = rope_tables(positions, head_dim, self.dims.rope_base, x.dtype)
        valid = valid_mask(lengths, x.shape[1]) if x.shape[0] > 1 else None
        pad = None if valid is None else ~valid
        for layer in self.layers:
            x = layer(x, pad, cos=cos, sin=sin, key_mask=valid)
        return x, lengths


class CTCHead(nn.Module):
    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        self.decoder_layers = nn.Sequential(PointwiseConv1d(dims.d_model, dims.num_classes))

    def forward(self, states: Tensor) -> Tensor:
        """states [B, T', d] -> log-probabilities [B, T', C]."""
        return self.decoder_layers(states).float().log_softmax(dim=-1)


class PredictionNetwork(nn.Module):
    """Label embedding + one-layer LSTM; a zero vector stands for "no label yet"."""

    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        self.embed = Embedding(dims.num_classes, dims.pred_hidden)
        self.lstm = nn.LSTM(dims.pred_hidden, dims.pred_hidden, num_layers=1, batch_first=True)


class Joint(nn.Module):
    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        self.enc = Linear(dims.d_model, dims.joint_hidden)
        self.pred = Linear(dims.pred_hidden, dims.joint_hidden)
        self.joint_net = nn.Sequential(nn.ReLU(), Linear(dims.joint_hidden, dims.num_classes))


class RNNTHead(nn.Module):
    def __init__(self, dims: GigaAMDims) -> None:
        super().__init__()
        self.decoder = PredictionNetwork(dims)
        self.joint = Joint(dims)


class GigaAM(nn.Module):
    def __init__(self, dims: GigaAMDims, head: str) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = ConformerEncoder(dims)
        self.head = CTCHead(dims) if head == "ctc" else RNNTHead(dims)
        self.head_type = head
