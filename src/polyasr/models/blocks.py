"""Position encodings shared by several families."""

from __future__ import annotations

import torch
from torch import Tensor


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Fixed positions [length, channels]: all sines, then all cosines (Whisper's audio
    encoder, Qwen3-ASR's audio chunks)."""
    half = channels // 2
    inv = torch.exp(-torch.log(torch.tensor(max_timescale)) / (half - 1) * torch.arange(half))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def rope_tables(
    positions: Tensor, dim: int, base: float, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """cos/sin [..., dim] of integer `positions` [...] for rotary embeddings in the
    rotate-half layout (each frequency twice); angles in float32, then cast to `dtype`."""
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, device=positions.device).float() / dim))
    angles = positions.float()[..., None] * inv
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: Tensor) -> Tensor:
    """[x1, x2] -> [-x2, x1] over the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x rotated by the tables (which broadcast against x)."""
    return x * cos + rotate_half(x) * sin
