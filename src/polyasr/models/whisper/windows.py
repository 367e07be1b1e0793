"""Long-form transcription: 30 s windows, temperature fallback, seeking on timestamps.

Follows openai-whisper's `transcribe()` so results match the reference implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ...types import Segment, TranscribeOptions
from .decoding import DecodeConfig, DecodingResult, decode_windows
from .model import Whisper
from .timing import add_word_timestamps
from .tokenizer import WhisperTokenizer

N_FRAMES = 3000
HOP_SECONDS = 0.01
TIME_PRECISION = 0.02
INPUT_STRIDE = 2


@dataclass
class WindowSegment:
    segment: Segment
    tokens: list[int]
    window_offset: float


def needs_fallback(result: DecodingResult, options: TranscribeOptions) -> bool:
    """Too repetitive or too unlikely, unless it is confidently silence."""
    too_repetitive = (
        options.compression_ratio_threshold is not None
        and result.compression_ratio > options.compression_ratio_threshold
    )
    too_unlikely = (
        options.log_prob_threshold is not None and result.avg_logprob < options.log_prob_threshold
    )
    is_silence = (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and too_unlikely
    )
    return not is_silence and (too_repetitive or too_unlikely)


def decode_config(
    base: DecodeConfig, options: TranscribeOptions, temperature: float
) -> DecodeConfig:
    return replace(
        base,
        temperature=temperature,
        beam_size=options.beam_size if temperature == 0 else 1,
        best_of=options.best_of if temperature > 0 else 1,
    )


def decode_with_fallback(
    model: Whisper,
    tokenizer: WhisperTokenizer,
    audio_states: Tensor,
    prompt: list[int],
    options: TranscribeOptions,
    base: DecodeConfig,
    temperatures: tuple[float, ...] | None = None,
) -> DecodingResult:
    """Try each temperature until the result is neither too repetitive nor too unlikely."""
    result = None
    for temperature in temperatures or options.temperatures:
        config = decode_config(base, options, temperature)
        result = decode_windows(model, tokenizer, audio_states, prompt, config)[0]
        if not needs_fallback(result, options):
            break
    assert result is not None
    return result


def is_no_speech(result: DecodingResult, options: TranscribeOptions) -> bool:
    """openai's skip rule (probably silence and not confidently decoded), and also a window
    that is probably silence and was only decoded after falling back to sampling: what
    sampling finds in noise is invented (white noise gave "1.5g of water" at temperature 0.6,
    with a log-probability just above the threshold)."""
    if options.no_speech_threshold is None:
        return False
    if result.no_speech_prob <= options.no_speech_threshold:
        return False
    threshold = options.log_prob_threshold
    return threshold is None or result.avg_logprob <= threshold or result.temperature > 0


def build_prompt(
    tokenizer: WhisperTokenizer,
    history: list[int],
    language: str | None,
    options: TranscribeOptions,
    n_ctx: int,
) -> list[int]:
    prompt = []
    if history:
        prompt = [tokenizer.sot_prev] + history[-(n_ctx // 2 - 1) :]
    prompt += tokenizer.sot_sequence(language, options.task)
    if not options.timestamps:
        prompt.append(tokenizer.no_timestamps)
    return prompt


def split_segments(
    tokens: list[int],
    tokenizer: WhisperTokenizer,
    result: DecodingResult,
    time_offset: float,
    segment_size: int,
) -> tuple[list[WindowSegment], int, bool]:
    """Cut a window's tokens into segments at timestamp pairs; return them and the seek step."""
    ts_begin = tokenizer.timestamp_begin
    is_ts = [t >= ts_begin for t in tokens]
    single_ending = is_ts[-2:] == [False, True]
    consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]

    def make(piece: list[int], start: float, end: float) -> WindowSegment:
        text = tokenizer.decode(piece)
        seg = Segment(
            start=round(start, 3),
            end=round(end, 3),
            text=text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=result.compression_ratio,
            temperature=result.temperature,
        )
        return WindowSegment(seg, piece, time_offset)

    segments = []
    if consecutive:
        slices = consecutive + ([len(tokens)] if single_ending else [])
        last = 0
        for cut in slices:
            piece = tokens[last:cut]
            start = time_offset + (piece[0] - ts_begin) * TIME_PRECISION
            end = time_offset + (piece[-1] - ts_begin) * TIME_PRECISION
            segments.append(make(piece, start, end))
            last = cut
        if single_ending:
            seek_step = segment_size
        else:
            seek_step = (tokens[last - 1] - ts_begin) * INPUT_STRIDE
    else:
        duration = segment_size * HOP_SECONDS
        stamps = [t for t in tokens if t >= ts_begin]
        if stamps and stamps[-1] != ts_begin:
            duration = (stamps[-1] - ts_begin) * TIME_PRECISION
        segments.append(make(tokens, time_offset, time_offset + duration))
        seek_step = segment_size
    return segments, seek_step, single_ending


def transcribe_features(
    model: Whisper,
    tokenizer: WhisperTokenizer,
    mel: Tensor,
    content_frames: int,
    language: str | None,
    options: TranscribeOptions,
    base: DecodeConfig,
    progress: Callable[[float], None] | None = None,
    silent: Callable[[int, int], bool] = lambda start, end: False,
) -> list[Segment]:
    """Transcribe log-mel `mel` [n_mels, content_frames + 3000] window by window; windows
    for which `silent(first frame, end frame)` holds are skipped without decoding."""
    n_ctx = model.dims.n_text_ctx
    history: list[int] = []
    if options.initial_prompt:
        history = tokenizer.encode(" " + options.initial_prompt.strip())
    reset_since = 0
    segments: list[Segment] = []
    last_speech_end = 0.0
    seek = 0
    while seek < content_frames:
        time_offset = seek * HOP_SECONDS
        segment_size = min(N_FRAMES, content_frames - seek)
        if silent(seek, seek + segment_size):
            seek += segment_size
            if progress:
                progress(min(seek, content_frames) * HOP_SECONDS)
            continue
        window = mel[:, seek : seek + segment_size]
        if segment_size < N_FRAMES:
            window = torch.nn.functional.pad(window, (0, N_FRAMES - window.shape[-1]))
        with torch.inference_mode():
            states = model.encoder(window[None])
        prompt = build_prompt(tokenizer, history[reset_since:], language, options, n_ctx)
        result = decode_with_fallback(model, tokenizer, states, prompt, options, base)

        if is_no_speech(result, options):
            seek += segment_size
            if progress:
                progress(min(seek, content_frames) * HOP_SECONDS)
            continue

        current, seek_step, single_ending = split_segments(
            result.tokens, tokenizer, result, time_offset, segment_size
        )
        seek += seek_step
        if options.word_timestamps:
            last_speech_end = add_word_timestamps(
                current, model, tokenizer, states, prompt, language, segment_size, last_speech_end
            )
            if not single_ending:
                ends = [w.end for ws in current for w in ws.segment.words]
                if ends and ends[-1] > time_offset:
                    seek = round(ends[-1] / HOP_SECONDS)
        for ws in current:
            if ws.segment.start == ws.segment.end or not ws.segment.text.strip():
                continue
            segments.append(ws.segment)
            history.extend(ws.tokens)
        if not options.condition_on_previous_text or result.temperature > 0.5:
            reset_since = len(history)
        if progress:
            progress(min(seek, content_frames) * HOP_SECONDS)
    return segments
