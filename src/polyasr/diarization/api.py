"""`polyasr.diarize`: speaker turns of a recording, without transcribing it."""

from __future__ import annotations

from typing import Any

from ..audio.io import AudioInput, load_audio
from ..errors import AudioError
from ..types import DiarizeOptions, Turn, with_overrides
from .channels import channel_turns, distinct_channels


def diarize(
    audio: AudioInput,
    options: DiarizeOptions | None = None,
    *,
    sample_rate: int | None = None,
    **overrides: Any,
) -> list[Turn]:
    """Who spoke when: turns `(start, end, speaker)` in seconds, overlapping where two people
    talk at once. Audio as for `transcribe`; options a `DiarizeOptions` or its fields as
    keywords (`mode`, `num_speakers`, `min_speakers`, `max_speakers`, `embedding`, ...)."""
    options = with_overrides(DiarizeOptions, options, overrides)
    data = load_audio(audio, 16000, input_rate=sample_rate)
    if options.mode != "cluster" and distinct_channels(data.samples):
        return channel_turns(data.samples)
    if options.mode == "channel":
        raise AudioError("channel mode needs a recording with two distinct channels")
    from .diarizer import load_diarizer

    return load_diarizer(options)(data.mono(), options)
