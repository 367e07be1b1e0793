"""Speaker turns, and speakers on segments and words from them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..types import Segment, Turn, Word


def label(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def turns_from_activity(
    activity: np.ndarray, frame_start: float, frame_step: float, by_appearance: bool = True
) -> list[Turn]:
    """Turns from a binary activity [frames, speakers] whose frame t is centred on
    `frame_start + t * frame_step`; speakers are named by order of first appearance (or by
    their column)."""
    turns: list[tuple[float, float, int]] = []
    for speaker in range(activity.shape[1]):
        active = np.concatenate([[0], activity[:, speaker] > 0, [0]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(active))
        for on, off in zip(edges[::2], edges[1::2]):
            start = frame_start + on * frame_step
            end = frame_start + off * frame_step
            turns.append((round(float(start), 3), round(float(end), 3), speaker))
    order = {s: i for i, s in enumerate(dict.fromkeys(s for _, _, s in sorted(turns)))}
    if not by_appearance:
        order = {s: s for _, _, s in turns}
    return sorted(Turn(a, b, label(order[s])) for a, b, s in turns)


def speaker_of(start: float, end: float, turns: list[Turn]) -> str | None:
    """The speaker who talks most within [start, end]; if nobody does, the one whose turn is
    nearest; None without turns."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=overlap.get)
    middle = (start + end) / 2
    return min(turns, key=lambda t: max(t.start - middle, middle - t.end)).speaker


def join_words(words: list[Word]) -> str:
    """Words back into text: Whisper's carry their leading space, other families' do not."""
    if all(w.text.startswith(" ") for w in words):
        return "".join(w.text for w in words).strip()
    return " ".join(w.text.strip() for w in words)


def with_speakers(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Segments with a speaker on every word and segment; a segment whose words belong to
    several speakers is split where the speaker changes. Segments without words get the
    speaker who talks most within them."""
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            out.append(replace(segment, speaker=speaker_of(segment.start, segment.end, turns)))
            continue
        words = [replace(w, speaker=speaker_of(w.start, w.end, turns)) for w in segment.words]
        runs: list[list[Word]] = []
        for word in words:
            if runs and runs[-1][-1].speaker == word.speaker:
                runs[-1].append(word)
            else:
                runs.append([word])
        if len(runs) == 1:
            out.append(replace(segment, words=words, speaker=words[0].speaker))
            continue
        for run in runs:
            out.append(
                replace(
                    segment,
                    start=run[0].start,
                    end=run[-1].end,
                    text=join_words(run),
                    words=run,
                    speaker=run[0].speaker,
                )
            )
    return out


def turns_from_segments(segments: list[Segment]) -> list[Turn]:
    """Turns of labelled segments: each speaker's segments, joined where they touch."""
    turns: list[Turn] = []
    for segment in sorted(segments, key=lambda s: (s.speaker or "", s.start)):
        if segment.speaker is None:
            continue
        last = turns[-1] if turns else None
        if last and last.speaker == segment.speaker and segment.start <= last.end:
            turns[-1] = Turn(last.start, max(last.end, segment.end), last.speaker)
        else:
            turns.append(Turn(segment.start, segment.end, segment.speaker))
    return sorted(turns, key=lambda t: (t.start, t.end))
