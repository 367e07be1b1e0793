"""CAM++ speaker embeddings (3D-Speaker's `CAMPPlus`), natively in PyTorch.

The checkpoint is 3D-Speaker's plain state dict (`campplus_cn_en_common.pt`, 192-d, or any CAM++
with the same layout): keys `head.*` (FCM, a 2-D convolutional front module) and `xvector.*`
(a TDNN layer, three densely connected TDNN blocks with context-aware masking, transit layers,
statistics pooling and a dense layer). The front end is Kaldi's `compute-fbank-feats` as
3D-Speaker calls `torchaudio.compliance.kaldi.fbank`: 25 ms povey window, 10 ms shift, snipped
edges, DC removal, pre-emphasis 0.97, power spectrum in a 512-point FFT, 80 Kaldi-mel bins from
20 Hz to Nyquist, natural log floored at float32 epsilon, no dither; then the mean over the
utterance's frames is subtracted.

Batching: clips of different lengths are padded and every step that mixes frames (the
convolutions, the segment and utterance means of context-aware masking, the statistics pooling)
sees exactly the frames a clip has alone, so a clip's embedding does not depend on what it is
batched with. The dense blocks keep their growing feature map channels-last in one buffer (no
concatenation per layer), and each context-aware mask is computed once per 100-frame segment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..devices import resolve_device, resolve_dtype
from ..errors import AudioError, ModelError
from ..models.linear import PointwiseConv1d, linear
from ..models.materialize import materialize
from ..safe_pickle import load_pickle

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512  # the frame rounded up to a power of two
N_MELS = 80
LOW_FREQ = 20.0
PREEMPHASIS = 0.97
EPSILON = torch.finfo(torch.float32).eps
MIN_SAMPLES = FRAME_LENGTH + 2 * FRAME_SHIFT
"""3 frames: the stride-2 TDNN leaves 2, the fewest with a standard deviation."""
SEGMENT = 100
"""Frames per segment of the context-aware masks' segment pooling."""


# --------------------------------------------------------------------------------------------
# Kaldi fbank


@lru_cache(maxsize=4)
def kaldi_mel_banks(n_mels: int = N_MELS) -> Tensor:
    """Kaldi's triangular mel filters [N_FFT // 2 + 1, n_mels] (the Nyquist row zero), computed
    in float32 exactly as torchaudio's `get_mel_banks` (no VTLN) computes them."""

    def mel(freq: float) -> float:
        return 1127.0 * math.log(1.0 + freq / 700.0)

    low, high = mel(LOW_FREQ), mel(0.5 * SAMPLE_RATE)
    delta = (high - low) / (n_mels + 1)
    index = torch.arange(n_mels).unsqueeze(1)
    left = low + index * delta
    center = low + (index + 1.0) * delta
    right = low + (index + 2.0) * delta
    fft_mel = 1127.0 * (1.0 + (SAMPLE_RATE / N_FFT) * torch.arange(N_FFT // 2) / 700.0).log()
    up = (fft_mel - left) / (center - left)
    down = (right - fft_mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1)).T.contiguous()


@lru_cache(maxsize=4)
def povey_window() -> Tensor:
    """Kaldi's povey window: a symmetric Hann window to the power 0.85 (float32)."""
    return torch.hann_window(FRAME_LENGTH, periodic=False, dtype=torch.float32).pow(0.85)


def frame_counts(lengths: Tensor) -> Tensor:
    """Frames per clip with snipped edges: 1 + (n - 400) // 160 (0 for shorter clips)."""
    return torch.where(
        lengths >= FRAME_LENGTH,
        1 + torch.div(lengths - FRAME_LENGTH, FRAME_SHIFT, rounding_mode="floor"),
        0,
    )


def kaldi_fbank(waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Log-mel fbank [B, T, 80] (float32) of zero-padded 16 kHz waveforms [B, N] in [-1, 1]
    with `lengths` [B] samples each, and the frames of each clip [B]; frames past a clip's
    count are meaningless."""
    frames = frame_counts(lengths)
    waveforms = waveforms.float()
    if waveforms.shape[-1] < FRAME_LENGTH:
        waveforms = F.pad(waveforms, (0, FRAME_LENGTH - waveforms.shape[-1]))
    x = waveforms.unfold(-1, FRAME_LENGTH, FRAME_SHIFT)  # [B, T, 400]
    x = x - x.mean(-1, keepdim=True)
    x = x - PREEMPHASIS * torch.cat([x[..., :1], x[..., :-1]], dim=-1)
    x = x * povey_window().to(x.device)
    spectrum = torch.fft.rfft(x, n=N_FFT).abs().pow(2.0)
    energies = spectrum @ kaldi_mel_banks().to(x.device)
    return torch.clamp(energies, min=EPSILON).log(), frames


def length_batches(
    frames: Sequence[int], max_frames: int, max_count: int | None = None
) -> list[list[int]]:
    """Indices of clips of `frames` each, shortest first, grouped into batches of at most
    `max_count` clips whose padded size (count x longest) stays within `max_frames` (a longer
    clip goes alone)."""
    order = sorted(range(len(frames)), key=lambda i: frames[i])
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        if (
            batch is not None
            and (max_count is None or len(batch) < max_count)
            and (len(batch) + 1) * frames[i] <= max_frames
        ):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def _time_mask(frames: Tensor, length: int) -> Tensor:
    """[B, length] float mask of each clip's frames."""
    return (torch.arange(length, device=frames.device) < frames[:, None]).float()


def mean_normalize(feats: Tensor, frames: Tensor) -> Tensor:
    """Subtract each clip's mean over its own frames; padding frames become zero."""
    mask = _time_mask(frames, feats.shape[1]).unsqueeze(-1)
    mean = (feats * mask).sum(1, keepdim=True) / frames.clamp(min=1)[:, None, None]
    return (feats - mean) * mask


def as_clips(waveforms: Sequence[np.ndarray | Tensor]) -> list[Tensor]:
    """1-D float32 tensors of the waveforms; one `AudioError` line naming the first clip that is
    not 1-D or too short for an embedding."""
    clips = []
    for i, wave in enumerate(waveforms):
        clip = wave if isinstance(wave, Tensor) else torch.from_numpy(np.asarray(wave))
        if clip.dim() != 1:
            raise AudioError(f"clip {i}: expected a 1-D waveform, got shape {list(clip.shape)}")
        if clip.shape[0] < MIN_SAMPLES:
            raise AudioError(
                f"clip {i} has {clip.shape[0]} samples; a CAM++ embedding needs at least "
                f"{MIN_SAMPLES} ({MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms at 16 kHz)"
            )
        clips.append(clip.float())
    return clips


def pad_waveforms(waveforms: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-padded float32 batch [B, N] and lengths [B] of 1-D waveforms (see `as_clips`)."""
    clips = as_clips(waveforms)
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.long)
    batch = torch.zeros(len(clips), int(lengths.max()) if clips else 0)
    for row, clip in zip(batch, clips):
        row[: len(clip)] = clip
    return batch, lengths


# --------------------------------------------------------------------------------------------
# The network


class BatchNorm(nn.Module):
    """Inference batch normalization with the checkpoint's names, applied on dimension `dim`
    (channels) as x * scale + shift."""

    def __init__(self, channels: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.empty(channels))
            self.bias = nn.Parameter(torch.empty(channels))
        else:
            self.weight = self.bias = None
        self.register_buffer("running_mean", torch.empty(channels))
        self.register_buffer("running_var", torch.empty(channels))
        self.register_buffer("num_batches_tracked", torch.empty((), dtype=torch.long))
        self._affine: tuple[Tensor, Tensor] | None = None

    def affine(self) -> tuple[Tensor, Tensor]:
        """(scale, shift) per channel, computed in float32."""
        scale = torch.rsqrt(self.running_var.float() + self.eps)
        if self.weight is not None:
            scale = scale * self.weight.float()
        shift = -self.running_mean.float() * scale
        if self.bias is not None:
            shift = shift + self.bias.float()
        return scale, shift

    def prepare(self) -> None:
        dtype = self.running_mean.dtype
        self._affine = tuple(t.to(dtype) for t in self.affine())

    def forward(self, x: Tensor, dim: int = -1, relu: bool = False) -> Tensor:
        scale, shift = self._affine or self.affine()
        shape = [-1] + [1] * (x.dim() - 1 - dim % x.dim())
        y = torch.addcmul(shift.to(x.dtype).view(shape), x, scale.to(x.dtype).view(shape))
        return y.relu_() if relu else y


class BatchNormReLU(nn.Module):
    """3D-Speaker's `nonlinear` containers ('batchnorm-relu'): keys `<name>.batchnorm.*`."""

    def __init__(self, channels: int, relu: bool = True, affine: bool = True) -> None:
        super().__init__()
        self.batchnorm = BatchNorm(channels, affine=affine)
        self.relu = relu

    def forward(self, x: Tensor, dim: int = -1) -> Tensor:
        return self.batchnorm(x, dim, self.relu)


class FoldedConv:
    """A bias-free convolution followed by inference batchnorm, as one convolution with a
    bias (the weight scaled per output channel); 2-D weights in channels-last layout."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d | PointwiseConv1d, bn: BatchNorm) -> None:
        scale, shift = bn.affine()
        dtype = conv.weight.dtype
        weight = conv.weight.float() * scale.view(-1, *[1] * (conv.weight.dim() - 1))
        if weight.dim() == 4:
            weight = weight.contiguous(memory_format=torch.channels_last)
        self.weight, self.bias = weight.to(dtype), shift.to(dtype)
        self.conv = F.conv2d if weight.dim() == 4 else F.conv1d
        self.args = tuple(getattr(conv, name, None) for name in ("stride", "padding", "dilation"))

    def __call__(self, x: Tensor) -> Tensor:
        return self.conv(x, self.weight, self.bias, *self.args)


def _masked_(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the frames past each clip's end, in place (`mask` None: nothing to zero)."""
    return x if mask is None else x.mul_(mask)


def _conv2d(in_ch: int, out_ch: int, stride: int) -> nn.Conv2d:
    """3x3 convolution over (frequency, time), strided on frequency only."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=(stride, 1), padding=1, bias=False)


class ResBlock(nn.Module):
    """FCM's basic residual block (2-D, stride on frequency)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv2d(in_ch, out_ch, stride)
        self.bn1 = BatchNorm(out_ch)
        self.conv2 = _conv2d(out_ch, out_ch, 1)
        self.bn2 = BatchNorm(out_ch)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.ModuleList(
                [nn.Conv2d(in_ch, out_ch, 1, stride=(stride, 1), bias=False), BatchNorm(out_ch)]
            )
        else:
            self.shortcut = None

    def prepare(self) -> None:
        self._conv1 = FoldedConv(self.conv1, self.bn1)
        self._conv2 = FoldedConv(self.conv2, self.bn2)
        self._shortcut = None if self.shortcut is None else FoldedConv(*self.shortcut)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        out = _masked_(self._conv1(x).relu_(), mask)
        out = self._conv2(out)
        out += x if self._shortcut is None else self._shortcut(x)
        return _masked_(out.relu_(), mask)


class FCM(nn.Module):
    """The front module: 2-D convolutions over the fbank, frequency reduced 8x, flattened to
    channels x frequency features per frame."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = _conv2d(1, channels, 1)
        self.bn1 = BatchNorm(channels)
        self.layer1 = nn.ModuleList([ResBlock(channels, channels, s) for s in (2, 1)])
        self.layer2 = nn.ModuleList([ResBlock(channels, channels, s) for s in (2, 1)])
        self.conv2 = _conv2d(channels, channels, 2)
        self.bn2 = BatchNorm(channels)

    def prepare(self) -> None:
        self._conv1 = FoldedConv(self.conv1, self.bn1)
        self._conv2 = FoldedConv(self.conv2, self.bn2)

    def forward(self, feats: Tensor, mask: Tensor | None) -> Tensor:
        """feats [B, T, F] -> [B, C * F / 8, T] (channels-first)."""
        mask = None if mask is None else mask[:, None, None, :]
        x = feats.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T]
        x = _masked_(self._conv1(x).relu_(), mask)
        for block in (*self.layer1, *self.layer2):
            x = block(x, mask)
        x = _masked_(self._conv2(x).relu_(), mask)
        return x.contiguous().flatten(1, 2)


class TDNNLayer(nn.Module):
    """Conv1d (kernel 5, stride 2, 'same' padding) + batchnorm + ReLU; channels-last output."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
        self.nonlinear = BatchNormReLU(out_ch)

    def prepare(self) -> None:
        self._conv = FoldedConv(self.linear, self.nonlinear.batchnorm)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv(x).relu_().transpose(1, 2).contiguous()


class CAMLayer(nn.Module):
    """Context-aware masking: a dilated convolution scaled by a sigmoid mask predicted from the
    utterance mean plus the mean of the frame's 100-frame segment."""

    def __init__(self, bn_ch: int, out_ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.linear_local = nn.Conv1d(
            bn_ch,
            out_ch,
            kernel,
            padding=(kernel - 1) // 2 * dilation,
            dilation=dilation,
            bias=False,
        )
        self.linear1 = PointwiseConv1d(bn_ch, bn_ch // 2)
        self.linear2 = PointwiseConv1d(bn_ch // 2, out_ch)

    def prepare(self) -> None:
        # [out, in, 1, k] channels-last: applied to a channels-last [B, T, C] viewed as
        # [B, C, 1, T] (the same memory), the convolution needs no transposed copies
        weight = self.linear_local.weight.unsqueeze(2)
        self._local = weight.contiguous(memory_format=torch.channels_last)
        self._args = ((1, 1), (0, *self.linear_local.padding), (1, *self.linear_local.dilation))

    def forward(self, x: Tensor, pooling: SegmentPooling) -> Tensor:
        """x [B, T, C] channels-last, zero past each clip's frames -> [B, T, out]."""
        local = F.conv2d(x.transpose(1, 2).unsqueeze(2), self._local, None, *self._args)
        local = local.squeeze(2).transpose(1, 2)
        context = pooling(x)  # [B, segments, C]
        gate = torch.sigmoid(self.linear2(self.linear1(context).relu_()))
        return local * pooling.expand(gate)


class SegmentPooling:
    """Per-clip utterance mean + 100-frame segment means (the last segment partial, as
    `avg_pool1d(ceil_mode=True)`), for a batch whose frame counts are `frames`."""

    def __init__(self, frames: Tensor, length: int, dtype: torch.dtype) -> None:
        self.length = length
        self.segments = -(-length // SEGMENT)
        starts = torch.arange(self.segments, device=frames.device) * SEGMENT
        counts = (frames[:, None] - starts).clamp(0, SEGMENT)  # [B, segments]
        self.inv_counts = (1.0 / counts.clamp(min=1)).unsqueeze(-1).to(dtype)
        self.inv_frames = (1.0 / frames.clamp(min=1)).view(-1, 1, 1).to(dtype)

    def __call__(self, x: Tensor) -> Tensor:
        mean = x.sum(1, keepdim=True) * self.inv_frames
        pad = self.segments * SEGMENT - self.length
        padded = F.pad(x, (0, 0, 0, pad)) if pad else x
        sums = padded.view(x.shape[0], self.segments, SEGMENT, x.shape[-1]).sum(2)
        return mean + sums * self.inv_counts

    def expand(self, per_segment: Tensor) -> Tensor:
        """[B, segments, C] -> [B, T, C]: each segment's value on its frames."""
        if self.segments == 1:
            return per_segment
        return per_segment.repeat_interleave(SEGMENT, dim=1)[:, : self.length]


class CAMDenseTDNNLayer(nn.Module):
    """batchnorm-relu, 1x1 bottleneck, batchnorm-relu, context-aware masked convolution."""

    def __init__(self, in_ch: int, out_ch: int, bn_ch: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = BatchNormReLU(in_ch)
        self.linear1 = PointwiseConv1d(in_ch, bn_ch, bias=False)
        self.nonlinear2 = BatchNormReLU(bn_ch)
        self.cam_layer = CAMLayer(bn_ch, out_ch, kernel, dilation)

    def prepare(self) -> None:
        # the bottleneck's batchnorm folded into it
        folded = FoldedConv(self.linear1, self.nonlinear2.batchnorm)
        self._bottleneck = (folded.weight, folded.bias)

    def forward(self, x: Tensor, mask: Tensor | None, pooling: SegmentPooling) -> Tensor:
        h = linear(self.nonlinear1(x), *self._bottleneck).relu_()
        return self.cam_layer(_masked_(h, mask), pooling)


class CAMDenseTDNNBlock(nn.Module):
    """Densely connected layers: each sees all earlier outputs (one channels-last buffer)."""

    def __init__(
        self, layers: int, in_ch: int, growth: int, bn_ch: int, kernel: int, dilation: int
    ) -> None:
        super().__init__()
        self.in_ch, self.growth, self.layers = in_ch, growth, layers
        for i in range(layers):
            layer = CAMDenseTDNNLayer(in_ch + i * growth, growth, bn_ch, kernel, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    @property
    def out_ch(self) -> int:
        return self.in_ch + self.layers * self.growth

    def forward(self, x: Tensor, mask: Tensor | None, pooling: SegmentPooling) -> Tensor:
        buffer = x.new_empty(*x.shape[:-1], self.out_ch)
        buffer[..., : self.in_ch] = x
        width = self.in_ch
        for layer in self.children():
            buffer[..., width : width + self.growth] = layer(buffer[..., :width], mask, pooling)
            width += self.growth
        return buffer


class TransitLayer(nn.Module):
    """batchnorm-relu then a 1x1 projection (halving the channels)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.nonlinear = BatchNormReLU(in_ch)
        self.linear = PointwiseConv1d(in_ch, out_ch, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    """The embedding: a 1x1 projection of the pooled statistics, batchnorm without affine."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.linear = PointwiseConv1d(in_ch, out_ch, bias=False)
        self.nonlinear = BatchNormReLU(out_ch, relu=False, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinear(self.linear(x))


BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
"""(layers, kernel, dilation) of the three dense blocks."""


class XVector(nn.Module):
    def __init__(
        self,
        in_ch: int,
        embedding_size: int,
        growth: int = 32,
        bn_size: int = 4,
        init_ch: int = 128,
    ) -> None:
        super().__init__()
        self.tdnn = TDNNLayer(in_ch, init_ch)
        channels = init_ch
        for i, (layers, kernel, dilation) in enumerate(BLOCKS, start=1):
            block = CAMDenseTDNNBlock(layers, channels, growth, bn_size * growth, kernel, dilation)
            self.add_module(f"block{i}", block)
            channels = block.out_ch
            self.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.out_nonlinear = BatchNormReLU(channels)
        self.dense = DenseLayer(channels * 2, embedding_size)

    def forward(self, x: Tensor, frames: Tensor | None) -> Tensor:
        """x [B, C, T] from the front module, `frames` its valid frames per clip (None: all)."""
        x = self.tdnn(x)  # [B, T', C], T' = ceil(T / 2)
        length = x.shape[1]
        frames = (
            torch.full((x.shape[0],), length, device=x.device)
            if frames is None
            else torch.div(frames + 1, 2, rounding_mode="floor")
        )
        mask = None
        if not bool((frames == length).all()):
            mask = _time_mask(frames, length).to(x.dtype)[..., None]
        pooling = SegmentPooling(frames, length, x.dtype)
        for i in range(1, len(BLOCKS) + 1):
            x = getattr(self, f"block{i}")(x, mask, pooling)
            x = getattr(self, f"transit{i}")(x)
        x = _masked_(self.out_nonlinear(x), mask)
        return self.dense(statistics_pooling(x, frames))


def statistics_pooling(x: Tensor, frames: Tensor) -> Tensor:
    """Mean and unbiased standard deviation over each clip's frames: [B, T, C] -> [B, 2C]."""
    n = frames.to(x.dtype).view(-1, 1, 1)
    mean = x.sum(1, keepdim=True) / n
    centred = x - mean
    if x.shape[1] != int(frames.min()):
        centred = centred * _time_mask(frames, x.shape[1]).to(x.dtype)[..., None]
    std = (centred.square().sum(1, keepdim=True) / (n - 1)).sqrt()
    return torch.cat([mean, std], dim=-1).squeeze(1)


class CAMPPlusNet(nn.Module):
    """3D-Speaker's CAMPPlus with its parameter names: `head` (FCM) and `xvector`.

    `prepare()` (after the weights are in place) derives the inference form: batchnorms as
    scale and shift, those that follow a convolution folded into it."""

    def __init__(self, embedding_size: int = 192, feat_dim: int = N_MELS, m_channels: int = 32):
        super().__init__()
        self.head = FCM(m_channels)
        self.xvector = XVector(m_channels * (feat_dim // 8), embedding_size)
        self._prepared = False

    def prepare(self) -> CAMPPlusNet:
        for module in self.modules():
            if module is not self and hasattr(module, "prepare"):
                module.prepare()
        self._prepared = True
        return self

    def forward(self, feats: Tensor, frames: Tensor | None = None) -> Tensor:
        """Mean-normalized fbank [B, T, 80] (zero past each clip's `frames`) -> [B, E]."""
        if not self._prepared:
            self.prepare()
        if frames is not None and bool((frames == feats.shape[1]).all()):
            frames = None
        mask = None if frames is None else _time_mask(frames, feats.shape[1]).to(feats.dtype)
        return self.xvector(self.head(feats, mask), frames)


# --------------------------------------------------------------------------------------------
# Loading and the public model


class CamPlusPlus:
    """A loaded CAM++ model: `embed(waveforms)` -> [N, E] speaker embeddings (compare with
    cosine similarity)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, net: CAMPPlusNet, device: torch.device, dtype: torch.dtype) -> None:
        self.net, self.device, self.dtype = net, device, dtype
        self.embedding_size = net.xvector.dense.linear.weight.shape[0]

    def features(self, waveforms: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
        """Mean-normalized Kaldi fbank of each clip, zero-padded: ([B, T, 80], frames [B])."""
        batch, lengths = pad_waveforms(waveforms)
        feats, frames = kaldi_fbank(batch.to(self.device), lengths.to(self.device))
        return mean_normalize(feats, frames), frames

    @torch.inference_mode()
    def embed_features(self, feats: Tensor, frames: Tensor) -> Tensor:
        """Embeddings [B, E] (float32) of mean-normalized fbank [B, T, 80] with `frames` each."""
        feats = feats.to(self.device, self.dtype)
        return self.net(feats, frames.to(self.device)).float()

    def embed(
        self,
        waveforms: Sequence[np.ndarray | Tensor],
        batch_size: int = 32,
        max_batch_frames: int = 32 * 1000,
    ) -> Tensor:
        """Embeddings [N, E] (float32, CPU) of 1-D 16 kHz float waveforms in [-1, 1].

        Clips are sorted by length and run in batches of at most `batch_size` clips and
        `max_batch_frames` padded frames; each clip's result is what it gets alone."""
        clips = as_clips(waveforms)
        out = torch.empty(len(clips), self.embedding_size)
        frames = [1 + (len(clip) - FRAME_LENGTH) // FRAME_SHIFT for clip in clips]
        for chunk in length_batches(frames, max_batch_frames, batch_size):
            feats, counts = self.features([clips[i] for i in chunk])
            out[chunk] = self.embed_features(feats, counts).cpu()
        return out


def load_campplus(
    path: str | Path, device: str = "cpu", dtype: str | torch.dtype = "float32"
) -> CamPlusPlus:
    """Load a CAM++ state dict (3D-Speaker's `.pt`/`.bin`) as a `CamPlusPlus`.

    Raises `ModelError` with one line for a missing, hostile, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"CAM++ model file not found: {path}")
    state = load_pickle(path, str(path))
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path} is not a CAM++ checkpoint (no state dict of tensors)")
    for key in ("head.conv1.weight", "xvector.tdnn.linear.weight", "xvector.dense.linear.weight"):
        if key not in state:
            raise ModelError(f"{path} is not a CAM++ checkpoint (it lacks {key})")
    try:
        embedding_size = state["xvector.dense.linear.weight"].shape[0]
        m_channels = state["head.conv1.weight"].shape[0]
        feat_dim = state["xvector.tdnn.linear.weight"].shape[1] // m_channels * 8
    except (IndexError, ZeroDivisionError):
        raise ModelError(f"{path} is not a CAM++ checkpoint (unexpected tensor shapes)") from None
    if feat_dim != N_MELS:
        raise ModelError(f"{path}: a CAM++ model for {feat_dim}-bin features is not supported")
    dev = resolve_device(device)
    net = materialize(
        lambda: CAMPPlusNet(embedding_size, feat_dim, m_channels),
        state,
        dev,
        resolve_dtype(dtype, dev),
        f"the CAM++ weights in {path}",
    )
    return CamPlusPlus(net.prepare(), dev, resolve_dtype(dtype, dev))
