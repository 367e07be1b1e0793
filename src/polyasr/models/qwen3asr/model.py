"""Qwen3-ASR in data-flow order: the AuT audio encoder, then a Qwen3 decoder with a KV cache.

Audio: 128-bin log-mel cut into 100-frame chunks -> three stride-2 Conv2d (13 tokens a chunk)
-> sinusoidal positions restarting in every chunk -> pre-LN transformer attending within
104-token (8 s) windows, or over the whole clip -> LayerNorm and a 2-layer GELU projector to the
decoder width. The audio vectors replace the `<|audio_pad|>` embeddings of the prompt; the
decoder is a plain Qwen3 (GQA, per-head q/k RMSNorm before RoPE, SwiGLU, no biases). Module and
parameter names follow the checkpoint (`thinker.` prefix removed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import apply_rope, rope_tables, sinusoids
from ..linear import Embedding, Linear, TiedEmbedding, embedding_logits

CHUNK_FRAMES = 100  # mel frames per conv chunk (2 * n_window)
TOKENS_PER_CHUNK = 13  # ceil(100 / 8): audio tokens per full chunk
CONV_GROUP = 16  # chunks through the conv stem at a time (bounds the activation memory)


@dataclass(frozen=True)
class AudioDims:
    n_mels: int = 128
    d_model: int = 896
    layers: int = 18
    heads: int = 14
    ffn: int = 3584
    conv_channels: int = 480
    output_dim: int = 1024
    window_chunks: int = 8
    """Attention window in chunks: n_window_infer / (2 * n_window) = 800 / 100 (8 s)."""


@dataclass(frozen=True)
class TextDims:
    vocab_size: int = 151936
    hidden: int = 1024
    intermediate: int = 3072
    layers: int = 28
    heads: int = 16
    kv_heads: int = 8
    head_dim: int = 128
    rope_theta: float = 1_000_000.0
    rms_eps: float = 1e-6
    tie_embeddings: bool = True


def tokens_after_conv(frames: int) -> int:
    """Audio tokens of a clip with `frames` mel frames: 13 per full chunk, ceil(r / 8) for the
    rest (the three stride-2 convolutions)."""
    rest = frames % CHUNK_FRAMES
    return TOKENS_PER_CHUNK * (frames // CHUNK_FRAMES) + (rest + 7) // 8


# --- audio encoder --------------------------------------------------------------------------


class AudioAttention(nn.Module):
    """Bidirectional multi-head self-attention of the audio encoder (biases everywhere)."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = Linear(d_model, d_model)
        self.k_proj = Linear(d_model, d_model)
        self.v_proj = Linear(d_model, d_model)
        self.out_proj = Linear(d_model, d_model)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x [S, L, d] (S windows or clips, padded to L); mask [S, 1, 1, L] marks real keys."""
        s, length, _ = x.shape
        q, k, v = (
            p(x).view(s, length, self.heads, -1).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(a.transpose(1, 2).reshape(s, length, -1))


class AudioEncoderLayer(nn.Module):
    """Pre-LayerNorm transformer layer: attention, then a GELU feed-forward, both residual."""

    def __init__(self, dims: AudioDims) -> None:
        super().__init__()
        self.self_attn = AudioAttention(dims.d_model, dims.heads)
        self.self_attn_layer_norm = nn.LayerNorm(dims.d_model)
        self.fc1 = Linear(dims.d_model, dims.ffn)
        self.fc2 = Linear(dims.ffn, dims.d_model)
        self.final_layer_norm = nn.LayerNorm(dims.d_model)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), mask)
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        if x.dtype == torch.float16:  # as the reference: keep fp16 activations finite
            limit = torch.finfo(torch.float16).max - 1000
            x = x.clamp(-limit, limit)
        return x


class AudioEncoder(nn.Module):
    """log-mel clips [n_mels, T_i] -> audio vectors [N_i, output_dim], N_i = tokens_after_conv."""

    def __init__(self, dims: AudioDims) -> None:
        super().__init__()
        self.dims = dims
        c = dims.conv_channels
        self.conv2d1 = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.conv2d2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv2d3 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        freq = (((dims.n_mels + 1) // 2 + 1) // 2 + 1) // 2  # mel bins after the convs: 16
        self.conv_out = Linear(c * freq, dims.d_model, bias=False)
        self.layers = nn.ModuleList(AudioEncoderLayer(dims) for _ in range(dims.layers))
        self.ln_post = nn.LayerNorm(dims.d_model)
        self.proj1 = Linear(dims.d_model, dims.d_model)
        self.proj2 = Linear(dims.d_model, dims.output_dim)

    def conv_stem(self, chunks: Tensor) -> Tensor:
        """[C, n_mels, W] mel chunks -> [C, ceil(W / 8), d_model] with chunk-local positions."""
        outs = []
        for group in chunks.split(CONV_GROUP):
            # channels-last runs oneDNN's faster kernels on CPU (about 30 % for this stack)
            x = group[:, None].contiguous(memory_format=torch.channels_last)
            x = F.gelu(self.conv2d1(x))
            x = F.gelu(self.conv2d2(x))
            x = F.gelu(self.conv2d3(x))  # [c, channels, freq, time]
            outs.append(self.conv_out(x.permute(0, 3, 1, 2).flatten(2)))
        x = torch.cat(outs)
        return x + sinusoids(x.shape[1], x.shape[2]).to(x.device, x.dtype)

    def embed(self, mel: Tensor) -> Tensor:
        """One clip [n_mels, T] -> [N, d_model]: 100-frame chunks through the conv stem (a
        shorter last chunk is zero-padded to 100 frames unless it is the only one)."""
        frames = mel.shape[-1]
        if frames <= CHUNK_FRAMES:
            return self.conv_stem(mel[None])[0, : tokens_after_conv(frames)]
        n_chunks = math.ceil(frames / CHUNK_FRAMES)
        padded = F.pad(mel, (0, n_chunks * CHUNK_FRAMES - frames))
        chunks = padded.view(mel.shape[0], n_chunks, CHUNK_FRAMES).transpose(0, 1)
        return self.conv_stem(chunks).flatten(0, 1)[: tokens_after_conv(frames)]

    def forward(self, mels: list[Tensor], windowed: bool = True) -> list[Tensor]:
        """Audio vectors of each clip. Windowed attention (the reference; vLLM, FlashAttention-2
        and transformers 5 run it) lets a token see its 104-token window only; otherwise every
        token sees the whole clip (qwen-asr's transformers backend with sdpa/eager)."""
        embedded = [self.embed(m) for m in mels]
        window = TOKENS_PER_CHUNK * self.dims.window_chunks
        spans = []  # (clip, start, length) of every attention span
        for i, e in enumerate(embedded):
            step = window if windowed else max(len(e), 1)
            spans += [(i, a, min(step, len(e) - a)) for a in range(0, len(e), step)]
        longest = max(n for _, _, n in spans)
        x = embedded[0].new_zeros(len(spans), longest, self.dims.d_model)
        for s, (i, a, n) in enumerate(spans):
            x[s, :n] = embedded[i][a : a + n]
        lengths = torch.tensor([n for _, _, n in spans], device=x.device)
        mask = None
        if bool((lengths < longest).any()):
            mask = (torch.arange(longest, device=x.device) < lengths[:, None])[:, None, None]
        for layer in self.layers:
            x = layer(x, mask)
        x = self.proj2(F.gelu(self.proj1(self.ln_post(x))))
        out: list[list[Tensor]] = [[] for _ in mels]
        for s, (i, _, n) in enumerate(spans):
            out[i].append(x[s, :n])
        return [torch.cat(parts) for parts in out]


# --- Qwen3 decoder --------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale (decoder layers and per-head q/k)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalized in float32, cast back, then scaled (the reference's order)."""
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class KVCache:
    """Keys and values [B, kv_heads, capacity, head_dim] per layer, grown on demand.

    The prompts sit right-aligned before the first generated column, so every generated token
    of the batch goes to the same column (`length`); `valid` [B, capacity] marks the filled
    columns. Unfilled columns hold zeros (masked out, and never NaN).
    """

    def __init__(self, dims: TextDims, batch: int, capacity: int, device, dtype) -> None:
        shape = (batch, dims.kv_heads, capacity, dims.head_dim)
        self.layers = [
            (
                torch.zeros(shape, device=device, dtype=dtype),
                torch.zeros(shape, device=device, dtype=dtype),
            )
            for _ in range(dims.layers)
        ]
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.valid.shape[1]

    def reserve(self, columns: int) -> None:
        """Make room for `columns` more tokens (capacity grows by at least half)."""
        need = self.length + columns
        if need <= self.capacity:
            return
        extra = max(need - self.capacity, self.capacity // 2)
        self.layers = [
            (F.pad(k, (0, 0, 0, extra)), F.pad(v, (0, 0, 0, extra))) for k, v in self.layers
        ]
        self.valid = F.pad(self.valid, (0, extra))


class DecoderAttention(nn.Module):
    """Grouped-query causal attention with per-head q/k RMSNorm before RoPE, no biases."""

    def __init__(self, dims: TextDims) -> None:
        super().__init__()
        inner, kv = dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
        self.heads, self.kv_heads, self.head_dim = dims.heads, dims.kv_heads, dims.head_dim
        self.q_proj = Linear(dims.hidden, inner, bias=False)
        self.k_proj = Linear(dims.hidden, kv, bias=False)
        self.v_proj = Linear(dims.hidden, kv, bias=False)
        self.o_proj = Linear(inner, dims.hidden, bias=False)
        self.q_norm = RMSNorm(dims.head_dim, dims.rms_eps)
        self.k_norm = RMSNorm(dims.head_dim, dims.rms_eps)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        kv: tuple[Tensor, Tensor],
        rows: slice,
        columns: slice,
        mask: Tensor | None,
    ) -> Tensor:
        """x [b, n, hidden] is written to the cache at `rows` x `columns`. A prefill (n > 1)
        attends causally to itself; a step attends to cache columns up to `columns.stop`
        where `mask` [b, 1, 1, stop] (None: all) allows."""
        b, n, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, n, self.heads, -1)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, n, self.kv_heads, -1)).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.kv_heads, -1).transpose(1, 2)
        cos, sin = (t[:, None] for t in rope)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys, values = kv
        keys[rows, :, columns] = k
        values[rows, :, columns] = v
        if n > 1:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:
            end = columns.stop
            a = F.scaled_dot_product_attention(
                q, keys[rows, :, :end], values[rows, :, :end], attn_mask=mask, enable_gqa=True
            )
        return self.o_proj(a.transpose(1, 2).reshape(b, n, -1))


class DecoderMLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""

    def __init__(self, dims: TextDims) -> None:
        super().__init__()
        self.gate_proj = Linear(dims.hidden, dims.intermediate, bias=False)
        self.up_proj = Linear(dims.hidden, dims.intermediate, bias=False)
        self.down_proj = Linear(dims.intermediate, dims.hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-RMSNorm Qwen3 layer: attention, then SwiGLU, both residual."""

    def __init__(self, dims: TextDims) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(dims)
        self.mlp = DecoderMLP(dims)
        self.input_layernorm = RMSNorm(dims.hidden, dims.rms_eps)
        self.post_attention_layernorm = RMSNorm(dims.hidden, dims.rms_eps)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        kv: tuple[Tensor, Tensor],
        rows: slice,
        columns: slice,
        mask: Tensor | None,
    ) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, kv, rows, columns, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class TextModel(nn.Module):
    """Token embeddings, decoder layers and the final norm (the checkpoint's `model.*`)."""

    def __init__(self, dims: TextDims) -> None:
        super().__init__()
        embedding = TiedEmbedding if dims.tie_embeddings else Embedding
        self.embed_tokens = embedding(dims.vocab_size, dims.hidden)
        self.layers = nn.ModuleList(DecoderLayer(dims) for _ in range(dims.layers))
        self.norm = RMSNorm(dims.hidden, dims.rms_eps)
        self.head_dim, self.rope_theta = dims.head_dim, dims.rope_theta

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        cache: KVCache,
        rows: slice,
        columns: slice,
        mask: Tensor | None = None,
    ) -> Tensor:
        """Embedded inputs [b, n, hidden] at `positions` [b, n] -> normed hidden states."""
        rope = rope_tables(positions, self.head_dim, self.rope_theta, x.dtype)
        for layer, kv in zip(self.layers, cache.layers):
            x = layer(x, rope, kv, rows, columns, mask)
        return self.norm(x)


class Qwen3AsrThinker(nn.Module):
    """The checkpoint's `thinker`: audio tower, text model, output head (tied or not)."""

    def __init__(self, audio: AudioDims, text: TextDims) -> None:
        super().__init__()
        self.text_dims = text
        self.audio_tower = AudioEncoder(audio)
        self.model = TextModel(text)
        self.lm_head = None if text.tie_embeddings else Linear(text.hidden, text.vocab_size, False)

    def logits(self, hidden: Tensor) -> Tensor:
        """Vocabulary logits of hidden states [..., hidden], in float32."""
        if self.lm_head is None:
            return embedding_logits(hidden, self.model.embed_tokens.weight)
        return self.lm_head(hidden).float()

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        weight = self.model.embed_tokens.weight
        return KVCache(self.text_dims, batch, capacity, weight.device, weight.dtype)
