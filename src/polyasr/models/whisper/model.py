"""The Whisper network in data-flow order: attention, layers, audio encoder, text decoder.

Pre-LayerNorm transformer; keys have no bias; GELU is the exact erf form. Module and parameter
names are the Hugging Face checkpoint's (`model.` prefix removed), weights in its [out, in]
layout. The decoder keeps a key/value cache that grows with the text, and beams or sampled
candidates of one window share that window's cross-attention keys and values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..linear import Embedding, Linear, TiedEmbedding, embedding_logits

# cuDNN attention rebuilds its execution plan whenever the key length changes, which it does
# at every decoding step (~5 ms of CPU per call); the other backends have no such cost.
DECODER_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
CACHE_STEP = 64
"""Text positions the self-attention cache grows by."""


@dataclass(frozen=True)
class WhisperDims:
    n_mels: int
    vocab_size: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn: int
    decoder_ffn: int
    n_audio_ctx: int = 1500
    n_text_ctx: int = 448


class KVCache:
    """Self-attention keys/values [layers, 2, rows, H, capacity, head_dim], grown in steps of
    `CACHE_STEP` positions, plus per layer the cross-attention (keys transposed, values) of
    each window [windows, H, ...]; `rows` is windows x candidates per window."""

    def __init__(self, dims: WhisperDims, rows: int, device, dtype) -> None:
        self.dims = dims
        head_dim = dims.d_model // dims.decoder_heads
        shape = (dims.decoder_layers, 2, rows, dims.decoder_heads, 0, head_dim)
        self.self_kv = torch.empty(shape, device=device, dtype=dtype)
        self.cross_kv: list[tuple[Tensor, Tensor]] = []
        self.length = 0

    def reserve(self, positions: int) -> None:
        """Room for `positions` more text positions."""
        need = min(self.length + positions, self.dims.n_text_ctx)
        capacity = self.self_kv.shape[4]
        if need > capacity:
            grown = min(max(need, capacity + CACHE_STEP), self.dims.n_text_ctx)
            self.self_kv = F.pad(self.self_kv, (0, 0, 0, grown - capacity))

    def reorder(self, index: Tensor) -> None:
        """Keep rows `index` (beam search)."""
        self.self_kv[:, :, :, :, : self.length] = self.self_kv[:, :, index, :, : self.length]


class Attention(nn.Module):
    """Projections of one attention layer; the key projection has no bias."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = Linear(d_model, d_model)
        self.k_proj = Linear(d_model, d_model, bias=False)
        self.v_proj = Linear(d_model, d_model)
        self.out_proj = Linear(d_model, d_model)

    def heads(self, x: Tensor) -> Tensor:
        """[B, T, D] -> [B, H, T, D/H]."""
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, -1).transpose(1, 2)

    def merge(self, x: Tensor) -> Tensor:
        """[B, H, T, D/H] -> [B, T, D]."""
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, -1)


def cross_attention(
    q: Tensor, k_t: Tensor, v: Tensor, want_scores: bool
) -> tuple[Tensor, Tensor | None]:
    """Attention over the audio: q [W*G, H, n, D/H] for G candidates of each of W windows,
    keys stored transposed k_t [W, H, D/H, T] and values [W, H, T, D/H] once per window.

    The G candidates' queries are stacked so that each window's keys and values are read once
    and never copied per candidate. Returns the output and, if asked, the float32 scores
    before softmax (for the alignment heads).
    """
    rows, h, n, d = q.shape
    windows = k_t.shape[0]
    g = rows // windows
    q = q.view(windows, g, h, n, d).transpose(1, 2).reshape(windows, h, g * n, d)
    scores = (q @ k_t) * d**-0.5
    out = scores.float().softmax(dim=-1).to(v.dtype) @ v

    def per_row(x: Tensor) -> Tensor:
        return x.view(windows, h, g, n, -1).transpose(1, 2).reshape(rows, h, n, -1)

    return per_row(out), per_row(scores.float()) if want_scores else None


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ffn: int) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, n_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = Linear(d_model, ffn)
        self.fc2 = Linear(ffn, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        attn = self.self_attn
        h = self.self_attn_layer_norm(x)
        q, k, v = attn.heads(attn.q_proj(h)), attn.heads(attn.k_proj(h)), attn.heads(attn.v_proj(h))
        x = x + attn.out_proj(attn.merge(F.scaled_dot_product_attention(q, k, v)))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class AudioEncoder(nn.Module):
    """log-mel [B, n_mels, 3000] -> audio states [B, 1500, d]."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        d = dims.d_model
        self.conv1 = nn.Conv1d(dims.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = Embedding(dims.n_audio_ctx, d)  # fixed sinusoids
        self.layers = nn.ModuleList(
            EncoderLayer(d, dims.encoder_heads, dims.encoder_ffn)
            for _ in range(dims.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(d)

    def embed(self, mel: Tensor) -> Tensor:
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        return x + self.embed_positions.weight[: x.shape[1]]

    def forward(self, mel: Tensor) -> Tensor:
        x = self.embed(mel)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ffn: int) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, n_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.encoder_attn = Attention(d_model, n_heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = Linear(d_model, ffn)
        self.fc2 = Linear(ffn, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(
        self,
        x: Tensor,
        self_kv: Tensor,
        cross_kv: tuple[Tensor, Tensor],
        offset: int,
        want_cross_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x [B, n, d]; self_kv [2, B, H, capacity, hd] is written at offset..offset+n;
        cross_kv = (keys [W, H, hd, T] transposed, values [W, H, T, hd]).

        With `want_cross_weights`, also returns the cross-attention scores before softmax.
        """
        n = x.shape[1]
        attn = self.self_attn
        h = self.self_attn_layer_norm(x)
        q = attn.heads(attn.q_proj(h))
        end = offset + n
        self_kv[0, :, :, offset:end] = attn.heads(attn.k_proj(h))
        self_kv[1, :, :, offset:end] = attn.heads(attn.v_proj(h))
        keys, values = self_kv[0, :, :, :end], self_kv[1, :, :, :end]
        if n == 1:
            a = F.scaled_dot_product_attention(q, keys, values)
        else:
            mask = torch.ones(n, end, dtype=torch.bool, device=x.device).tril(offset)
            a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        x = x + attn.out_proj(attn.merge(a))

        cross = self.encoder_attn
        q = cross.heads(cross.q_proj(self.encoder_attn_layer_norm(x)))
        a, scores = cross_attention(q, *cross_kv, want_cross_weights)
        x = x + cross.out_proj(cross.merge(a))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))), scores


class TextDecoder(nn.Module):
    """tokens [B, n] + audio states -> hidden states [B, n, d], with a KV cache."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        d = dims.d_model
        self.embed_tokens = TiedEmbedding(dims.vocab_size, d)
        self.embed_positions = Embedding(dims.n_text_ctx, d)
        self.layers = nn.ModuleList(
            DecoderLayer(d, dims.decoder_heads, dims.decoder_ffn)
            for _ in range(dims.decoder_layers)
        )
        self.layer_norm = nn.LayerNorm(d)

    def set_audio(self, cache: KVCache, audio_states: Tensor) -> None:
        """Project the audio states [W, T, d] to cross-attention K/V once per window."""
        cache.cross_kv = []
        for layer in self.layers:
            attn = layer.encoder_attn
            k, v = attn.heads(attn.k_proj(audio_states)), attn.heads(attn.v_proj(audio_states))
            cache.cross_kv.append((k.transpose(-1, -2).contiguous(), v.contiguous()))

    def forward(
        self, tokens: Tensor, cache: KVCache, want_cross_weights: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        offset = cache.length
        n = tokens.shape[1]
        cache.reserve(n)
        x = self.embed_tokens(tokens) + self.embed_positions.weight[offset : offset + n]
        weights = []
        with sdpa_kernel(DECODER_ATTENTION):
            for i, layer in enumerate(self.layers):
                x, w = layer(x, cache.self_kv[i], cache.cross_kv[i], offset, want_cross_weights)
                if w is not None:
                    weights.append(w)
        cache.length = offset + n
        return self.layer_norm(x), weights

    def logits(self, hidden: Tensor) -> Tensor:
        """Tied output projection, in float32 whatever the compute dtype."""
        return embedding_logits(hidden, self.embed_tokens.weight)


class Whisper(nn.Module):
    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.alignment_heads = default_alignment_heads(dims)
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)

    def new_cache(self, rows: int) -> KVCache:
        weight = self.decoder.embed_tokens.weight
        return KVCache(self.dims, rows, weight.device, weight.dtype)


def default_alignment_heads(dims: WhisperDims) -> list[tuple[int, int]]:
    """All heads of the second half of the decoder layers (openai's fallback)."""
    layers, heads = dims.decoder_layers, dims.decoder_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]
