"""The Whisper network in data-flow order: attention, blocks, audio encoder, text decoder.

Pre-LayerNorm transformer; keys have no bias; GELU is the exact erf form. The decoder keeps a
preallocated key/value cache so each generated token costs one position of work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

# cuDNN attention rebuilds its execution plan whenever the key length changes, which it does
# at every decoding step (~5 ms of CPU per call); the other backends have no such cost.
DECODER_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


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
    """Self-attention keys/values [B, H, n_text_ctx, head_dim] per layer, plus cross K/V."""

    def __init__(self, dims: WhisperDims, batch: int, device, dtype) -> None:
        head_dim = dims.d_model // dims.decoder_heads
        shape = (dims.decoder_layers, 2, batch, dims.decoder_heads, dims.n_text_ctx, head_dim)
        self.self_kv = torch.empty(shape, device=device, dtype=dtype)
        self.cross_kv: list[tuple[Tensor, Tensor]] = []
        self.length = 0

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (beam search): rows of the same audio share cross K/V."""
        self.self_kv[:, :, :, :, : self.length] = self.self_kv[:, :, index, :, : self.length]


class Linear(nn.Module):
    """y = x W + b with W stored as [in, out].

    Decoding multiplies one row by each matrix, bound by memory bandwidth; MKL reads the
    [in, out] layout about 30 % faster than PyTorch's [out, in] (large products: the same).
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])
        y = flat @ self.weight if self.bias is None else torch.addmm(self.bias, flat, self.weight)
        return y.view(*x.shape[:-1], -1)


class MLP(nn.Module):
    def __init__(self, d_model: int, ffn: int) -> None:
        super().__init__()
        self.fc1 = Linear(d_model, ffn)
        self.fc2 = Linear(ffn, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MultiHeadAttention(nn.Module):
    """Projections of one attention layer; q, k, v (or k, v) fused into one matrix product.

    Whisper's key projection has no bias, so the fused bias holds zeros in the key rows.
    """

    def __init__(self, d_model: int, n_heads: int, cross: bool = False) -> None:
        super().__init__()
        self.n_heads = n_heads
        if cross:
            self.query = Linear(d_model, d_model)
            self.kv = Linear(d_model, 2 * d_model)
        else:
            self.qkv = Linear(d_model, 3 * d_model)
        self.out = Linear(d_model, d_model)

    def split(self, x: Tensor, parts: int) -> list[Tensor]:
        """[B, T, parts * D] -> parts x [B, H, T, D/H]."""
        b, t, _ = x.shape
        heads = x.view(b, t, parts, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        return list(heads.unbind(0))

    def merge(self, x: Tensor) -> Tensor:
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, -1)


def cross_attention(
    q: Tensor, k_t: Tensor, v: Tensor, want_scores: bool
) -> tuple[Tensor, Tensor | None]:
    """Attention over the audio with keys stored transposed, k_t [B, H, D/H, T].

    With one query row, `q @ k_t` and `p @ v` read both matrices in their fast layout (about
    20 % quicker than SDPA on CPU). Returns the output and, if asked, the float32 scores
    before softmax (for the alignment heads).
    """
    scores = (q @ k_t) * q.shape[-1] ** -0.5
    probs = scores.float().softmax(dim=-1).to(v.dtype)
    return probs @ v, scores.float() if want_scores else None


class EncoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ffn: int) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.attn_ln = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, ffn)
        self.mlp_ln = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.attn.split(self.attn.qkv(self.attn_ln(x)), 3)
        x = x + self.attn.out(self.attn.merge(F.scaled_dot_product_attention(q, k, v)))
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    """log-mel [B, n_mels, 3000] -> audio states [B, 1500, d]."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        d = dims.d_model
        self.conv1 = nn.Conv1d(dims.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        # Filled by the loader: the checkpoint's stored table, or `sinusoids()` when absent.
        self.register_buffer("positional_embedding", torch.empty(dims.n_audio_ctx, d))
        self.blocks = nn.ModuleList(
            EncoderBlock(d, dims.encoder_heads, dims.encoder_ffn)
            for _ in range(dims.encoder_layers)
        )
        self.ln_post = nn.LayerNorm(d)

    def embed(self, mel: Tensor) -> Tensor:
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        return x + self.positional_embedding[: x.shape[1]]

    def forward(self, mel: Tensor) -> Tensor:
        x = self.embed(mel)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


class DecoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ffn: int) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.attn_ln = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, cross=True)
        self.cross_attn_ln = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, ffn)
        self.mlp_ln = nn.LayerNorm(d_model)

    def forward(
        self,
        x: Tensor,
        self_kv: Tensor,
        cross_kv: tuple[Tensor, Tensor],
        offset: int,
        want_cross_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x [B, n, d]; self_kv [2, B, H, ctx, hd] is written at offset..offset+n;
        cross_kv = (keys [B, H, hd, T] transposed, values [B, H, T, hd]).

        With `want_cross_weights`, also returns the cross-attention scores before softmax.
        """
        n = x.shape[1]
        q, k, v = self.attn.split(self.attn.qkv(self.attn_ln(x)), 3)
        end = offset + n
        self_kv[0, :, :, offset:end] = k
        self_kv[1, :, :, offset:end] = v
        keys, values = self_kv[0, :, :, :end], self_kv[1, :, :, :end]
        if n == 1:
            a = F.scaled_dot_product_attention(q, keys, values)
        else:
            mask = torch.ones(n, end, dtype=torch.bool, device=x.device).tril(offset)
            a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        x = x + self.attn.out(self.attn.merge(a))

        (q,) = self.cross_attn.split(self.cross_attn.query(self.cross_attn_ln(x)), 1)
        a, scores = cross_attention(q, *cross_kv, want_cross_weights)
        x = x + self.cross_attn.out(self.cross_attn.merge(a))
        return x + self.mlp(self.mlp_ln(x)), scores


class TextDecoder(nn.Module):
    """tokens [B, n] + audio states -> hidden states [B, n, d], with a KV cache."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        d = dims.d_model
        # Token embeddings stored transposed [d, vocab]: the tied output projection is then a
        # fast [in, out] product, and looking up a token reads one column.
        self.token_embedding_t = nn.Parameter(torch.empty(d, dims.vocab_size))
        self.positional_embedding = nn.Parameter(torch.empty(dims.n_text_ctx, d))
        self.blocks = nn.ModuleList(
            DecoderBlock(d, dims.decoder_heads, dims.decoder_ffn)
            for _ in range(dims.decoder_layers)
        )
        self.ln = nn.LayerNorm(d)

    def set_audio(self, cache: KVCache, audio_states: Tensor) -> None:
        """Project the audio states to cross-attention K/V once per window."""
        cache.cross_kv = []
        for block in self.blocks:
            k, v = block.cross_attn.split(block.cross_attn.kv(audio_states), 2)
            cache.cross_kv.append((k.transpose(-1, -2).contiguous(), v.contiguous()))

    def forward(
        self, tokens: Tensor, cache: KVCache, want_cross_weights: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        offset = cache.length
        n = tokens.shape[1]
        x = (
            self.token_embedding_t[:, tokens].permute(1, 2, 0)
            + self.positional_embedding[offset : offset + n]
        )
        weights = []
        with sdpa_kernel(DECODER_ATTENTION):
            for i, block in enumerate(self.blocks):
                x, w = block(x, cache.self_kv[i], cache.cross_kv[i], offset, want_cross_weights)
                if w is not None:
                    weights.append(w)
        cache.length = offset + n
        return self.ln(x), weights

    def logits(self, hidden: Tensor) -> Tensor:
        """Tied output projection, in float32 whatever the compute dtype."""
        return (hidden @ self.token_embedding_t).float()


class Whisper(nn.Module):
    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.alignment_heads = default_alignment_heads(dims)
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)

    def new_cache(self, batch: int) -> KVCache:
        p = self.decoder.positional_embedding
        return KVCache(self.dims, batch, p.device, p.dtype)


def default_alignment_heads(dims: WhisperDims) -> list[tuple[int, int]]:
    """All heads of the second half of the decoder layers (openai's fallback)."""
    layers, heads = dims.decoder_layers, dims.decoder_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Whisper's fixed encoder positions: all sines, then all cosines."""
    half = channels // 2
    inv = torch.exp(-torch.log(torch.tensor(max_timescale)) / (half - 1) * torch.arange(half))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)
