"""Transcript writers (txt, json, srt, vtt) and atomic file output."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OptionError
from .types import Transcript


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cue_text(text: str, speaker: str | None) -> str:
    text = text.strip()
    return f"[{speaker}] {text}" if speaker else text


def to_txt(transcript: Transcript) -> str:
    lines = [_cue_text(s.text, s.speaker) for s in transcript.segments if s.text.strip()]
    return "\n".join(lines) + "\n" if lines else ""


def to_json(transcript: Transcript) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_srt(transcript: Transcript) -> str:
    cues = []
    segments = [s for s in transcript.segments if s.text.strip()]
    for i, seg in enumerate(segments, 1):
        times = f"{_clock(seg.start, ',')} --> {_clock(seg.end, ',')}"
        cues.append(f"{i}\n{times}\n{_cue_text(seg.text, seg.speaker)}\n")
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    cues = ["WEBVTT\n"]
    for seg in transcript.segments:
        if seg.text.strip():
            times = f"{_clock(seg.start, '.')} --> {_clock(seg.end, '.')}"
            cues.append(f"{times}\n{_cue_text(seg.text, seg.speaker)}\n")
    return "\n".join(cues)


WRITERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "json": to_json,
    "srt": to_srt,
    "vtt": to_vtt,
}


def formats_for(name: str) -> list[str]:
    """The list of formats that a --format value stands for ("all" = every format)."""
    if name == "all":
        return list(WRITERS)
    if name not in WRITERS:
        raise OptionError(f"unknown format {name!r}; use one of: {', '.join(WRITERS)}, all")
    return [name]


def output_stems(paths: list[Path]) -> list[str]:
    """A distinct output name for each input: its stem, or where stems collide its file name,
    then its folders joined by "_" until the names differ (`a.wav a.mp3` -> `a.wav`, `a.mp3`;
    `x/a.wav y/a.wav` -> `x_a.wav`, `y_a.wav`)."""
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    names = [Path(p).stem for p in paths]
    for level in range(1, max((len(p) for p in parts), default=0) + 1):
        clashing = {n for n in names if names.count(n) > 1}
        if not clashing:
            break
        names = [
            "_".join(part[-level:]).lstrip("/") if name in clashing else name
            for name, part in zip(names, parts)
        ]
    return names


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
