"""Word timestamps from the alignment heads' cross-attention and dynamic time warping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...types import Word
from .model import Whisper
from .tokenizer import WhisperTokenizer

if TYPE_CHECKING:
    from .transcribe import WindowSegment

TOKENS_PER_SECOND = 50
PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END = ".。!！?？"


@dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float
    end: float
    probability: float


def median_filter(x: Tensor, width: int) -> Tensor:
    """Median over the last axis of [heads, tokens, frames] with reflect padding (width odd)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = F.pad(x, (pad, pad, 0, 0), mode="reflect")
    return padded.unfold(-1, width, 1).sort(dim=-1).values[..., pad]


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment path through `cost` [N, M]; ties prefer the horizontal step.

    Cells on one anti-diagonal only depend on the two previous ones, so each diagonal is
    computed in one vectorized step.
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c0, c1, c2 = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        choice = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        acc[i, j] = cost[i - 1, j - 1] + np.choose(choice, [c0, c1, c2])
        trace[i, j] = choice
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        t = trace[i, j]
        if t == 0:
            i, j = i - 1, j - 1
        elif t == 1:
            i -= 1
        else:
            j -= 1
    path_arr = np.array(path[::-1])
    return path_arr[:, 0], path_arr[:, 1]


def find_alignment(
    model: Whisper,
    tokenizer: WhisperTokenizer,
    audio_states: Tensor,
    sot_sequence: list[int],
    text_tokens: list[int],
    num_frames: int,
    alignment_heads: list[tuple[int, int]],
    language: str | None,
    medfilt_width: int = 7,
) -> list[WordTiming]:
    if not text_tokens:
        return []
    tokens = [*sot_sequence, tokenizer.no_timestamps, *text_tokens, tokenizer.eot]
    with torch.inference_mode():
        cache = model.new_cache(1)
        model.decoder.set_audio(cache, audio_states)
        hidden, scores = model.decoder(
            torch.tensor([tokens], device=audio_states.device), cache, True
        )
        logits = model.decoder.logits(hidden[0, len(sot_sequence) :])
    probs = logits[:, : tokenizer.eot].softmax(dim=-1)
    token_probs = probs[torch.arange(len(text_tokens)), torch.tensor(text_tokens)].tolist()

    weights = torch.stack([scores[layer][0, head] for layer, head in alignment_heads])
    weights = weights[:, :, : num_frames // 2].softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = median_filter((weights - mean) / std, medfilt_width)
    matrix = weights.mean(dim=0)[len(sot_sequence) : -1]
    text_idx, time_idx = dtw(-matrix.double().cpu().numpy())

    words, word_tokens = tokenizer.split_to_words(text_tokens + [tokenizer.eot], language)
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / TOKENS_PER_SECOND
    starts, ends = jump_times[boundaries[:-1]], jump_times[boundaries[1:]]
    return [
        WordTiming(word, toks, float(s), float(e), float(np.mean(token_probs[i:j])))
        for word, toks, s, e, i, j in zip(
            words, word_tokens, starts, ends, boundaries[:-1], boundaries[1:]
        )
    ]


def merge_punctuations(alignment: list[WordTiming]) -> None:
    """Attach leading punctuation to the next word and trailing punctuation to the previous."""
    i, j = len(alignment) - 2, len(alignment) - 1
    while i >= 0:
        prev, nxt = alignment[i], alignment[j]
        if prev.word.startswith(" ") and prev.word.strip() in PREPEND_PUNCTUATION:
            nxt.word, nxt.tokens = prev.word + nxt.word, prev.tokens + nxt.tokens
            prev.word, prev.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        prev, nxt = alignment[i], alignment[j]
        if not prev.word.endswith(" ") and nxt.word in APPEND_PUNCTUATION:
            prev.word, prev.tokens = prev.word + nxt.word, prev.tokens + nxt.tokens
            nxt.word, nxt.tokens = "", []
        else:
            i = j
        j += 1


def add_word_timestamps(
    segments: list[WindowSegment],
    model: Whisper,
    tokenizer: WhisperTokenizer,
    audio_states: Tensor,
    prompt: list[int],
    language: str | None,
    num_frames: int,
    last_speech_end: float,
) -> float:
    """Fill `segment.words` of one window's segments; return the end of the last speech."""
    if not segments:
        return last_speech_end
    per_segment = [[t for t in ws.tokens if t < tokenizer.eot] for ws in segments]
    text_tokens = [t for toks in per_segment for t in toks]
    sot_at = prompt.index(tokenizer.sot)
    sot_sequence = [t for t in prompt[sot_at:] if t != tokenizer.no_timestamps]
    alignment = find_alignment(
        model,
        tokenizer,
        audio_states,
        sot_sequence,
        text_tokens,
        num_frames,
        model.alignment_heads,
        language,
    )
    durations = np.array([w.end - w.start for w in alignment])
    durations = durations[durations.nonzero()]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    max_duration = median * 2
    if len(durations):
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in SENTENCE_END:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in SENTENCE_END:
                    alignment[i].start = alignment[i].end - max_duration
    merge_punctuations(alignment)

    time_offset = segments[0].window_offset
    index = 0
    for ws, toks in zip(segments, per_segment):
        seg = ws.segment
        saved = 0
        words: list[Word] = []
        while index < len(alignment) and saved < len(toks):
            timing = alignment[index]
            if timing.word:
                words.append(
                    Word(
                        start=round(time_offset + timing.start, 2),
                        end=round(time_offset + timing.end, 2),
                        text=timing.word,
                        probability=timing.probability,
                    )
                )
            saved += len(timing.tokens)
            index += 1
        if words:
            first, last = words[0], words[-1]
            if first.end - last_speech_end > median * 4 and (
                first.end - first.start > max_duration
                or (len(words) > 1 and words[1].end - first.start > max_duration * 2)
            ):
                if len(words) > 1 and words[1].end - words[1].start > max_duration:
                    boundary = max(words[1].end / 2, words[1].end - max_duration)
                    first.end = words[1].start = boundary
                first.start = max(0.0, first.end - max_duration)
            if seg.start < first.end and seg.start - 0.5 > first.start:
                first.start = max(0.0, min(first.end - median, seg.start))
            else:
                seg.start = first.start
            if seg.end > last.start and seg.end + 0.5 < last.end:
                last.end = max(last.start + median, seg.end)
            else:
                seg.end = last.end
            last_speech_end = seg.end
            for word in words:
                word.start, word.end = round(word.start, 3), round(word.end, 3)
            seg.start, seg.end = round(seg.start, 3), round(seg.end, 3)
        seg.words = words
    return last_speech_end
