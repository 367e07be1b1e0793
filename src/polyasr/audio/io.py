"""Decode any audio or video container to float32 samples and resample to the model rate."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AudioError

SAMPLE_RATE = 16000


@dataclass
class Audio:
    """Decoded audio: float32 samples [channels, n] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    def mono(self) -> np.ndarray:
        """Average of the channels, as ffmpeg's downmix to one channel does."""
        if self.channels == 1:
            return self.samples[0]
        return self.samples.mean(axis=0, dtype=np.float32)


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """High-quality resampling of [channels, n] float32 with libsoxr."""
    if orig_rate == new_rate:
        return samples
    import soxr

    out = soxr.resample(samples.T, orig_rate, new_rate, quality="HQ")
    return np.ascontiguousarray(out.reshape(out.shape[0], -1).T, dtype=np.float32)


def _decode_file(path: Path) -> Audio:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioError(
            f"cannot decode {path}: not a supported audio or video file ({exc})"
        ) from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise AudioError(f"cannot decode {path}: unknown sample rate")
        to_float = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in to_float.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in to_float.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioError(
                    f"cannot decode {path}: corrupt or unsupported audio ({exc})"
                ) from None
    if not chunks:
        raise AudioError(f"{path} contains no audio samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if samples.shape[1] == 0:
        raise AudioError(f"{path} contains no audio samples")
    return Audio(samples, int(rate))


def load_audio(
    source: str | os.PathLike[str] | np.ndarray, sample_rate: int = SAMPLE_RATE
) -> Audio:
    """Decode a file (wav, flac, ogg/opus, mp3, m4a, video containers...) or wrap an array.

    Arrays are taken as float samples already at `sample_rate`, shaped [n] or [channels, n].
    Channels are kept; call `Audio.mono()` for a single channel.
    """
    if isinstance(source, np.ndarray):
        samples = np.asarray(source, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None]
        if samples.ndim != 2 or samples.shape[1] == 0:
            raise AudioError(
                "audio array must be non-empty with shape [samples] or [channels, samples]"
            )
        return Audio(samples, sample_rate)
    path = Path(source)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty: {path}")
    audio = _decode_file(path)
    if not np.isfinite(audio.samples).all():
        raise AudioError(f"{path} contains invalid (NaN or infinite) samples")
    return Audio(resample(audio.samples, audio.sample_rate, sample_rate), sample_rate)
