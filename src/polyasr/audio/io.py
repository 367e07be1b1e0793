"""Decode any audio or video container to float32 samples and resample to the model rate.

Audio comes as a path, the bytes of a file, a binary file-like object, a waveform array (with
its sample rate), or an `Audio`. Channels are kept: a later step decides what to do with them.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from ..errors import AudioError, AudioWarning

SAMPLE_RATE = 16000
MAX_CHANNELS = 64


@dataclass
class Audio:
    """Decoded audio: float32 samples [channels, n] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    source: str | None = None
    """The path it was read from, if any."""

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


AudioInput = Union[str, "os.PathLike[str]", bytes, BinaryIO, np.ndarray, Audio]
"""A file path, a file's bytes, a binary file object, a waveform [samples] or [channels,
samples] (or [samples, channels]; float in [-1, 1] or integer PCM), or an `Audio`."""


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """High-quality resampling of [channels, n] float32 with libsoxr."""
    if orig_rate == new_rate:
        return samples
    import soxr

    out = soxr.resample(samples.T, orig_rate, new_rate, quality="HQ")
    return np.ascontiguousarray(out.reshape(out.shape[0], -1).T, dtype=np.float32)


def _decode(source: str | BinaryIO, name: str) -> Audio:
    """All samples of the first audio stream; a decoding error after some audio was read is
    a warning that says how much was kept."""
    import av

    try:
        container = av.open(source, metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(
            f"cannot decode {name}: not a supported audio or video file ({exc})"
        ) from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{name} has no audio track")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise AudioError(f"cannot decode {name}: unknown sample rate")
        to_float = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks += [out.to_ndarray() for out in to_float.resample(frame)]
            chunks += [out.to_ndarray() for out in to_float.resample(None)]
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioError(
                    f"cannot decode {name}: corrupt or unsupported audio ({exc})"
                ) from None
            read = sum(c.shape[1] for c in chunks) / rate
            total = f" of {container.duration / 1e6:.1f} s" if container.duration else ""
            warnings.warn(
                f"{name}: decoding stopped after {read:.1f} s{total} ({exc}); "
                "transcribing the audio that was read",
                AudioWarning,
                stacklevel=3,
            )
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    if samples.shape[1] == 0:
        raise AudioError(f"{name} contains no audio samples")
    return Audio(samples.astype(np.float32, copy=False), int(rate))


def _from_array(array: np.ndarray) -> np.ndarray:
    """float32 [channels, n] from a waveform in either layout, float or integer PCM."""
    samples = np.asarray(array)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.size == 0:
        raise AudioError(
            "audio array must be non-empty with shape [samples], [channels, samples] or "
            f"[samples, channels], not {list(samples.shape)}"
        )
    if samples.shape[0] > samples.shape[1]:  # [samples, channels], as soundfile returns
        samples = samples.T
    if samples.shape[0] > MAX_CHANNELS:
        raise AudioError(f"audio array has {samples.shape[0]} channels; is it a waveform?")
    kind = samples.dtype.kind
    if kind == "i":
        scale = float(2 ** (8 * samples.dtype.itemsize - 1))
        samples = samples.astype(np.float32) / scale
    elif kind == "u":
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        samples = (samples.astype(np.float32) - half) / half
    elif kind != "f":
        raise AudioError(f"audio array of type {samples.dtype} (expected float or integer PCM)")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _name_of(source: object) -> str:
    return str(getattr(source, "name", None) or f"<{type(source).__name__} audio>")


def load_audio(
    source: AudioInput, sample_rate: int = SAMPLE_RATE, *, input_rate: int | None = None
) -> Audio:
    """Decode `source` and resample it to `sample_rate`, channels kept.

    Files (wav, flac, ogg/opus, mp3, m4a, video containers...) carry their own rate; an array
    is taken at `input_rate` (default: `sample_rate`). Integer arrays are PCM and scaled to
    [-1, 1]. Raises `AudioError` for missing, empty, corrupt or invalid audio.
    """
    if isinstance(source, Audio):
        audio = Audio(_from_array(source.samples), source.sample_rate)
        name = "the audio array"
    elif isinstance(source, np.ndarray):
        audio = Audio(_from_array(source), input_rate or sample_rate)
        name = "the audio array"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise AudioError("the audio data is empty")
        name = "<audio bytes>"
        audio = _decode(io.BytesIO(bytes(source)), name)
    elif hasattr(source, "read"):
        name = _name_of(source)
        audio = _decode(source, name)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise AudioError(f"audio file not found: {path}")
        if not path.is_file():
            raise AudioError(f"not a file: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"audio file is empty: {path}")
        audio = _decode(str(path), name)
    else:
        raise AudioError(
            f"unsupported audio input of type {type(source).__name__} (use a path, bytes, a "
            "binary file object or a waveform array)"
        )
    if audio.sample_rate <= 0:
        raise AudioError(f"invalid sample rate {audio.sample_rate}")
    if not np.isfinite(audio.samples).all():
        raise AudioError(f"{name} contains invalid (NaN or infinite) samples")
    source_path = str(source) if isinstance(source, (str, os.PathLike)) else None
    return Audio(resample(audio.samples, audio.sample_rate, sample_rate), sample_rate, source_path)
