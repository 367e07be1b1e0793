"""One parameterized log-mel frontend that expresses every family's recipe.

Whisper / Qwen3-ASR: periodic Hann 400, hop 160, centered reflect padding, Slaney mel, log10,
dynamic-range clamp and (x + 4) / 4. GigaAM v3: no centering, HTK mel, ln with clamp.
Parakeet: preemphasis, symmetric Hann 400 in n_fft 512, zero padding, ln(x + 2^-24),
per-feature normalization. Filter banks and windows stored in a checkpoint can be passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch


@dataclass(frozen=True)
class FeatureConfig:
    """Every knob of the log-mel recipe; defaults are Whisper's 80-bin frontend."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    win_length: int | None = None
    """Window length (<= n_fft, zero-padded to n_fft in the middle); None means n_fft."""
    window: Literal["hann", "hann_symmetric", "hamming"] = "hann"
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney"] | None = "slaney"
    center: bool = True
    pad_mode: Literal["reflect", "constant"] = "reflect"
    preemphasis: float | None = None
    dither: float = 0.0
    """Gaussian noise amplitude added to the waveform; keep 0 at inference for determinism."""
    power: float = 2.0
    log: Literal["log10", "ln"] = "log10"
    log_guard: Literal["clamp", "add"] = "clamp"
    log_eps: float = 1e-10
    log_max: float | None = None
    drop_last_frame: bool = False
    normalize: Literal["whisper", "per_feature"] | None = None
    """"whisper": max(L, max(L) - 8), (L + 4) / 4; "per_feature": zero mean, unit std per bin."""
    valid_frames_only: bool = False
    """Count floor(samples / hop) frames as valid; stats use them and later frames are zeroed."""

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


WHISPER_80 = FeatureConfig(n_mels=80, drop_last_frame=True, normalize="whisper")
WHISPER_128 = FeatureConfig(n_mels=128, drop_last_frame=True, normalize="whisper")


def _hz_to_mel(freq: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    freq = np.asarray(freq, dtype=np.float64)
    linear = 3.0 * freq / 200.0
    log_part = 15.0 + np.log(np.maximum(freq, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(freq >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = 200.0 * mel / 3.0
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=16)
def mel_filters(config: FeatureConfig) -> torch.Tensor:
    """Triangular mel filter bank [n_mels, n_bins] (librosa / torchaudio formulas)."""
    f_max = config.f_max if config.f_max is not None else config.sample_rate / 2
    bins = np.linspace(0.0, config.sample_rate / 2, config.n_bins)
    mel_points = np.linspace(
        _hz_to_mel(np.array(config.f_min), config.mel_scale),
        _hz_to_mel(np.array(f_max), config.mel_scale),
        config.n_mels + 2,
    )
    hz_points = _mel_to_hz(mel_points, config.mel_scale)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    if config.mel_norm == "slaney":
        filters *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    return torch.from_numpy(filters.astype(np.float32))


@lru_cache(maxsize=16)
def analysis_window(config: FeatureConfig) -> torch.Tensor:
    length = config.win_length or config.n_fft
    if config.window == "hamming":
        return torch.hamming_window(length)
    return torch.hann_window(length, periodic=config.window == "hann")


def log_mel(
    audio: torch.Tensor | np.ndarray,
    config: FeatureConfig = WHISPER_80,
    *,
    filters: torch.Tensor | None = None,
    window: torch.Tensor | None = None,
    chunk_frames: int = 6000,
) -> torch.Tensor:
    """Log-mel features [n_mels, frames] of a waveform [samples] (or [B, n_mels, frames]).

    `filters` [n_mels, n_bins] and `window` [win_length] override the computed ones, for
    checkpoints that store their own. The spectrum is computed `chunk_frames` frames at a
    time, so hours of audio never hold a full complex spectrogram in memory.
    """
    x = torch.as_tensor(audio, dtype=torch.float32)
    squeeze = x.dim() == 1
    if squeeze:
        x = x[None]
    n_samples = x.shape[-1]
    if config.dither > 0:
        x = x + config.dither * torch.randn_like(x)
    if config.preemphasis is not None:
        x = torch.cat([x[:, :1], x[:, 1:] - config.preemphasis * x[:, :-1]], dim=1)
    if config.center:
        pad = config.n_fft // 2
        x = torch.nn.functional.pad(x[:, None], (pad, pad), mode=config.pad_mode)[:, 0]
    win = (window if window is not None else analysis_window(config)).to(x.device, torch.float32)
    fb = (filters if filters is not None else mel_filters(config)).to(x.device, torch.float32)
    hop = config.hop_length
    n_frames = 1 + (x.shape[-1] - config.n_fft) // hop
    chunks = []
    for first in range(0, n_frames, chunk_frames):
        count = min(chunk_frames, n_frames - first)
        piece = x[:, first * hop : (first + count - 1) * hop + config.n_fft]
        chunks.append(_log_mel_frames(piece, config, win, fb))
    feats = torch.cat(chunks, dim=-1)
    if config.drop_last_frame:
        feats = feats[..., :-1]
    feats = _normalize(feats, config, n_samples)
    return feats[0] if squeeze else feats


def _log_mel_frames(
    x: torch.Tensor, config: FeatureConfig, win: torch.Tensor, fb: torch.Tensor
) -> torch.Tensor:
    """Log-mel of every full frame of `x` [B, samples] (no padding added)."""
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=win.shape[0],
        window=win,
        center=False,
        return_complex=True,
    )
    magnitude = spec.abs()
    power = magnitude**2 if config.power == 2.0 else magnitude**config.power
    mel = fb @ power
    if config.log_guard == "add":
        mel = mel + config.log_eps
    else:
        mel = mel.clamp(min=config.log_eps, max=config.log_max)
    return torch.log10(mel) if config.log == "log10" else torch.log(mel)


def _normalize(feats: torch.Tensor, config: FeatureConfig, n_samples: int) -> torch.Tensor:
    valid = n_samples // config.hop_length if config.valid_frames_only else feats.shape[-1]
    if config.normalize == "whisper":
        peak = feats.amax(dim=(-2, -1), keepdim=True)
        feats = torch.maximum(feats, peak - 8.0, out=feats).add_(4.0).div_(4.0)
    elif config.normalize == "per_feature":
        used = feats[..., :valid]
        mean = used.mean(dim=-1, keepdim=True)
        std = used.std(dim=-1, keepdim=True).nan_to_num(0.0) + 1e-5
        feats = (feats - mean) / std
    if valid < feats.shape[-1]:
        feats = feats.clone()
        feats[..., valid:] = 0.0
    return feats
