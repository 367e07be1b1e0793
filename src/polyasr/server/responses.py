"""A `Transcript` in OpenAI's response formats, as server-sent events, and back from
verbose_json for the web page's downloads (SRT, VTT and TXT come from `polyasr.formats`)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from ..formats import WRITERS
from ..types import Segment, Transcript
from .errors import ApiError

MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "diarized_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
EXPORTS = ("txt", "srt", "vtt", "json")


def _usage(transcript: Transcript) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(transcript.duration)}


def _segment(index: int, segment: Segment) -> dict[str, Any]:
    """One segment of verbose_json (Whisper's fields, `speaker` when diarized)."""
    item: dict[str, Any] = {
        "id": index,
        "seek": round(segment.start * 100),
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": [],
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }
    if segment.speaker is not None:
        item["speaker"] = segment.speaker
    return item


def _speaker_segment(index: int, segment: Segment) -> dict[str, Any]:
    """One segment of diarized_json, also the payload of a `transcript.text.segment` event."""
    return {
        "type": "transcript.text.segment",
        "id": f"seg_{index}",
        "start": segment.start,
        "end": segment.end,
        "text": segment.text.strip(),
        "speaker": segment.speaker,
    }


def _verbose(transcript: Transcript, task: str, words: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        "language": transcript.language,
        "duration": transcript.duration,
        "text": transcript.text,
        "segments": [_segment(i, s) for i, s in enumerate(transcript.segments)],
    }
    if words:
        body["words"] = [
            {"word": w.text.strip(), "start": w.start, "end": w.end}
            | ({"speaker": w.speaker} if w.speaker is not None else {})
            for s in transcript.segments
            for w in s.words
        ]
    body["usage"] = _usage(transcript)
    return body


def render(transcript: Transcript, response_format: str, task: str, words: bool) -> str:
    """The response body for `response_format`."""
    if response_format == "text":
        return transcript.text + "\n"
    if response_format in ("srt", "vtt"):
        return WRITERS[response_format](transcript)
    if response_format == "verbose_json":
        body = _verbose(transcript, task, words)
    elif response_format == "diarized_json":
        body = {
            "task": task,
            "duration": transcript.duration,
            "text": transcript.text,
            "segments": [
                _speaker_segment(i, s) for i, s in enumerate(transcript.segments) if s.text.strip()
            ],
            "usage": _usage(transcript),
        }
    else:
        body = {"text": transcript.text, "usage": _usage(transcript)}
    return json.dumps(body, ensure_ascii=False)


def segment_events(segments: list[Segment], first: int, spoken: bool) -> Iterator[str]:
    """Per segment with text a `transcript.text.delta` and a `transcript.text.segment` (with
    times and speaker). `first`: the index of the first of `segments` in the transcript;
    `spoken`: whether text was sent before (then a delta starts with a space)."""
    for index, segment in enumerate(segments, first):
        text = segment.text.strip()
        if text:
            delta = " " + text if spoken else text
            yield _event({"type": "transcript.text.delta", "delta": delta})
            yield _event(_speaker_segment(index, segment))
            spoken = True


def done_event(transcript: Transcript) -> str:
    """The closing `transcript.text.done` event, with the whole text."""
    done = {"type": "transcript.text.done", "text": transcript.text, "usage": _usage(transcript)}
    return _event(done)


def error_event(message: str) -> str:
    """An error after the response has begun (its status can no longer change)."""
    return _event({"type": "error", "error": {"message": message, "type": "server_error"}})


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def export(data: Any, fmt: str) -> str:
    """A verbose_json transcript (as this server sends it) written as txt, srt, vtt or json."""
    if fmt not in EXPORTS:
        raise ApiError(
            400, f"unknown format {fmt!r}; use one of: {', '.join(EXPORTS)}", param="format"
        )
    try:
        segments = [
            Segment(float(s["start"]), float(s["end"]), str(s["text"]), speaker=s.get("speaker"))
            for s in data["segments"]
        ]
        transcript = Transcript(str(data["text"]), segments, duration=float(data["duration"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(
            400, f"not a verbose_json transcript: {exc.__class__.__name__} {exc}", param="body"
        ) from None
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    return WRITERS[fmt](transcript)
