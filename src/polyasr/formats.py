"""Transcript writers (txt, json, srt, vtt, rttm) and atomic file output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from .atomic import atomic_path
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
    if speaker and text:
        return f"[{speaker}] {text}"
    return speaker or text


def _cues(transcript: Transcript) -> list[tuple[float, float, str, str | None]]:
    """(start, end, text, speaker) of every segment with text, or of every speaker turn when
    there is no text (speaker turns only)."""
    cues = [(s.start, s.end, s.text.strip(), s.speaker) for s in transcript.segments]
    cues = [c for c in cues if c[2]]
    if not cues and transcript.turns:
        cues = [(t.start, t.end, "", t.speaker) for t in transcript.turns]
    return cues


def to_txt(transcript: Transcript) -> str:
    """One line per segment; with speakers, one line per speaker turn: `SPEAKER_00: text`
    (speaker turns only: `SPEAKER_00 start end`)."""
    cues = _cues(transcript)
    if not any(speaker for *_, speaker in cues):
        lines = [text for _, _, text, _ in cues]
    elif not any(text for _, _, text, _ in cues):
        lines = [f"{speaker} {start:.2f} {end:.2f}" for start, end, _, speaker in cues]
    else:
        lines = []
        current = None
        for _, _, text, speaker in cues:
            if lines and speaker == current:
                lines[-1] += " " + text
            else:
                lines.append(f"{speaker}: {text}" if speaker else text)
                current = speaker
    return "\n".join(lines) + "\n" if lines else ""


def to_json(transcript: Transcript) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_srt(transcript: Transcript) -> str:
    cues = []
    for i, (start, end, text, speaker) in enumerate(_cues(transcript), 1):
        times = f"{_clock(start, ',')} --> {_clock(end, ',')}"
        cues.append(f"{i}\n{times}\n{_cue_text(text, speaker)}\n")
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT; a speaker is a voice span `<v SPEAKER_00>`."""
    cues = ["WEBVTT\n"]
    for start, end, text, speaker in _cues(transcript):
        times = f"{_clock(start, '.')} --> {_clock(end, '.')}"
        cues.append(f"{times}\n{f'<v {speaker}>' if speaker else ''}{text or speaker}\n")
    return "\n".join(cues)


def to_rttm(transcript: Transcript) -> str:
    """NIST RTTM speaker turns (`SPEAKER file 1 start duration <NA> <NA> speaker <NA> <NA>`):
    the transcript's turns, or its segments with speakers."""
    uri = Path(transcript.source).stem if transcript.source else "audio"
    uri = "_".join(uri.split()) or "audio"
    turns = [(t.start, t.end, t.speaker) for t in transcript.turns] or [
        (s.start, s.end, s.speaker) for s in transcript.segments if s.speaker
    ]
    return "".join(
        f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n"
        for start, end, speaker in sorted(turns)
    )


WRITERS: dict[str, Callable[[Transcript], str]] = {
    "txt": to_txt,
    "json": to_json,
    "srt": to_srt,
    "vtt": to_vtt,
    "rttm": to_rttm,
}


def formats_for(name: str, speakers: bool = False) -> list[str]:
    """The list of formats that a --format value stands for ("all" = every format, RTTM only
    with `speakers`)."""
    if name == "all":
        return [f for f in WRITERS if speakers or f != "rttm"]
    if name not in WRITERS:
        raise OptionError(f"unknown format {name!r}; use one of: {', '.join(WRITERS)}, all")
    if name == "rttm" and not speakers:
        raise OptionError("the rttm format holds speaker turns: add --diarize")
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
    """Write `text` whole or not at all (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="\n")
