"""Pieces shared by the transducer decoders (GigaAM RNN-T, Parakeet TDT)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .linear import linear


def lstm_step(lstm: nn.LSTM, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One time step of a stacked `nn.LSTM` (PyTorch gate order i, f, g, o) for x [B, in],
    states [layers, B, H]: returns the top output [B, H] and the new states.

    Written out as two matrix products per layer (through the `linear` seam) because
    `torch.lstm` on CPU re-lays out its weights on every call, which made each decoding step
    tens of milliseconds.
    """
    hs, cs = [], []
    for layer in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        gates = linear(x, w_ih, bias) + linear(h[layer], w_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c[layer] + torch.sigmoid(i) * torch.tanh(g)
        x = torch.sigmoid(o) * torch.tanh(c_new)
        hs.append(x)
        cs.append(c_new)
    return x, torch.stack(hs), torch.stack(cs)
