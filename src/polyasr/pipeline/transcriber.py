"""The one transcription pipeline. `polyasr.load` returns a `Transcriber` over the family's
`Recognizer`; the flow only goes down:

inputs -> audio (channels kept) -> channel step -> [language] -> VAD pieces or fixed windows
(or the family's own long-form strategy) -> batches across files -> `Recognizer.decode`
-> stitched segments with absolute times -> `Transcript`.

Inputs are read a group at a time (up to `GROUP_SECONDS` of audio), so memory stays bounded
however many files a call gets.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..audio.io import Audio, AudioInput, load_audio
from ..diarization.channels import distinct_channels, merge_channels
from ..diarization.speakers import turns_from_segments, with_speakers
from ..errors import AudioError, PolyasrError
from ..languages import UNSPACED_LANGUAGES
from ..types import (
    Progress,
    ProgressCallback,
    Segment,
    SegmentsCallback,
    TranscribeOptions,
    Transcript,
    Turn,
    with_overrides,
)
from .planning import SAMPLE_RATE, batches, is_silent, plan
from .recognizer import Recognizer

GROUP_SECONDS = 1800.0
GROUP_FILES = 64


def join_text(segments: Sequence[Segment], language: str | None = None) -> str:
    """Segment texts joined by single spaces, without a space next to a language written
    without spaces between words (a segment's own language, else `language`)."""
    text, previous = "", None
    for segment in segments:
        piece = segment.text.strip()
        if not piece:
            continue
        current = segment.language or language
        unspaced = previous in UNSPACED_LANGUAGES or current in UNSPACED_LANGUAGES
        text += ("" if not text or unspaced else " ") + piece
        previous = current
    return text


def shift(segment: Segment, offset: float) -> Segment:
    """The segment and its words moved by `offset` seconds (rounded to milliseconds)."""
    words = [
        replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3))
        for w in segment.words
    ]
    return replace(
        segment,
        start=round(segment.start + offset, 3),
        end=round(segment.end + offset, 3),
        words=words,
    )


class _Tracker:
    """Pieces and audio seconds done / known so far, reported to the caller's callback; and
    the segments of each input passed on in time order as they become final."""

    def __init__(
        self, callback: ProgressCallback | None, on_segments: SegmentsCallback | None = None
    ) -> None:
        self.callback = callback
        self.on_segments = on_segments
        self.pieces = [0, 0]
        self.seconds = [0.0, 0.0]
        self.inputs: list[int] | None = None
        """Input index of each recording of the group being decoded, when its segments are
        passed on (recordings are the inputs themselves: no channel or speaker step)."""
        self._open: list[list[float]] = []
        self._ready: list[list[Segment]] = []

    def expect(self, inputs: list[int] | None, pieces: list[_Piece]) -> None:
        """Start a group: the input of each recording, and the pieces still to decode."""
        self.inputs = inputs if self.on_segments is not None else None
        if self.inputs is not None:
            self._open = [[] for _ in inputs]
            for piece in sorted(pieces, key=lambda p: p.start):
                self._open[piece.item].append(piece.start)
            self._ready = [[] for _ in inputs]

    def decoded(self, piece: _Piece, segments: list[Segment], rest: float | None) -> None:
        """`piece` is decoded (its rest, starting at `rest`, is still to come): pass on the
        segments of its input that no undecoded piece precedes."""
        if self.inputs is None:
            return
        waiting = self._open[piece.item]
        waiting.remove(piece.start)
        if rest is not None:
            waiting.append(rest)
            waiting.sort()
        ready = sorted(self._ready[piece.item] + segments, key=lambda s: s.start)
        frontier = waiting[0] if waiting else float("inf")
        final = [s for s in ready if s.start < frontier]
        self._ready[piece.item] = ready[len(final) :]
        if final:
            self.on_segments(self.inputs[piece.item], final)

    def add(self, pieces: int, seconds: float) -> None:
        self.pieces[1] += pieces
        self.seconds[1] += seconds
        self._report()

    def advance(self, seconds: float, pieces: int = 0) -> None:
        self.pieces[0] += pieces
        self.seconds[0] += seconds
        self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(Progress(self.pieces[0], self.pieces[1], *self.seconds))


@dataclass(eq=False)
class _Piece:
    item: int
    """Index of the recording in its group."""
    start: float
    """Seconds from the start of the recording."""
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class Transcriber:
    """A loaded model: transcribe recordings of any length, one or many at a time, with any
    family behind it. `recognizer` is the family's model (its network, tokenizer, decoding)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer

    @property
    def family(self) -> str:
        return self.recognizer.family

    @property
    def name(self) -> str:
        return self.recognizer.name

    @property
    def languages(self) -> tuple[str, ...]:
        return self.recognizer.languages

    def __repr__(self) -> str:
        return f"<polyasr {self.family} model {self.name!r}>"

    def resolve_options(
        self, options: TranscribeOptions | None, overrides: dict[str, Any]
    ) -> TranscribeOptions:
        """`options` with keyword overrides, checked against what this model can do."""
        options = with_overrides(TranscribeOptions, options, overrides)
        self.recognizer.check(options)
        return options

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int | None = None,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Transcribe one recording of any length: a path, a file's bytes, a binary file
        object, or a waveform at `sample_rate` (default 16 kHz). Options are a
        `TranscribeOptions` or its fields as keywords; `progress` gets `Progress` reports;
        `on_segments(0, segments)` gets the segments as they are final, in time order."""
        (result,) = self.transcribe_batch(
            [audio],
            options,
            sample_rate=sample_rate,
            progress=progress,
            on_segments=on_segments,
            **overrides,
        )
        if isinstance(result, PolyasrError):
            raise result
        return result

    def transcribe_batch(
        self,
        audios: Sequence[AudioInput],
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int | None = None,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        **overrides: Any,
    ) -> list[Transcript | PolyasrError]:
        """Transcribe several recordings, their pieces decoded in shared batches. Returns, per
        input, its `Transcript` or the `PolyasrError` that stopped it (a bad input never stops
        the others); invalid options raise at once."""
        results: list[Transcript | PolyasrError | None] = [None] * len(audios)
        stream = self.transcribe_stream(
            audios,
            options,
            sample_rate=sample_rate,
            progress=progress,
            on_segments=on_segments,
            **overrides,
        )
        for index, result in stream:
            results[index] = result
        return results  # type: ignore[return-value]

    def transcribe_stream(
        self,
        audios: Iterable[AudioInput],
        options: TranscribeOptions | None = None,
        *,
        sample_rate: int | None = None,
        progress: ProgressCallback | None = None,
        on_segments: SegmentsCallback | None = None,
        **overrides: Any,
    ) -> Iterator[tuple[int, Transcript | PolyasrError]]:
        """`transcribe_batch` as results come: (input index, transcript or error), each
        group of inputs as soon as it is done, so that a long job can save as it goes.
        Invalid options raise here, before any input is read.

        `on_segments(index, segments)` receives each input's segments as soon as they are
        final, in time order (the pieces are then decoded in time order). Segments that a
        later step changes (speakers, Whisper's sequential windows with the VAD off) come
        only with the transcript."""
        options = self.resolve_options(options, overrides)
        return self._stream(audios, options, sample_rate, _Tracker(progress, on_segments))

    def _stream(
        self,
        audios: Iterable[AudioInput],
        options: TranscribeOptions,
        sample_rate: int | None,
        tracker: _Tracker,
    ) -> Iterator[tuple[int, Transcript | PolyasrError]]:
        group: list[tuple[int, Audio]] = []
        seconds = 0.0
        for index, source in enumerate(audios):
            try:
                audio = load_audio(source, SAMPLE_RATE, input_rate=sample_rate)
            except PolyasrError as exc:
                yield index, exc
                continue
            group.append((index, audio))
            seconds += audio.duration
            if seconds >= GROUP_SECONDS or len(group) >= GROUP_FILES:
                yield from self._transcribe_group(group, options, tracker)
                group, seconds = [], 0.0
        if group:
            yield from self._transcribe_group(group, options, tracker)

    def _transcribe_group(
        self, group: list[tuple[int, Audio]], options: TranscribeOptions, tracker: _Tracker
    ) -> Iterator[tuple[int, Transcript | PolyasrError]]:
        started = time.perf_counter()
        speakers = options.diarize
        decoding = options
        if speakers is not None and self.recognizer.words_on_request:
            decoding = replace(options, word_timestamps=True)  # to split segments by speaker
        tracks: list[np.ndarray] = []  # the channel step: a downmix, or each channel alone
        owners: list[int] = []
        errors: dict[int, PolyasrError] = {}
        for g, (_, audio) in enumerate(group):
            if speakers is not None and speakers.mode != "cluster":
                if distinct_channels(audio.samples):
                    tracks += list(audio.samples)
                    owners += [g, g]
                    continue
                if speakers.mode == "channel":
                    what = "two identical" if audio.channels == 2 else audio.channels
                    errors[g] = AudioError(
                        f"channel mode needs two distinct channels; input {group[g][0]} has "
                        f"{what} channel(s)"
                    )
                    continue
            tracks.append(audio.mono())
            owners.append(g)
        long_form = not options.vad and self.recognizer.has_long_form
        vad = options.vad_options if options.vad else None
        limit = self.recognizer.max_piece_seconds
        grow = self.recognizer.pads_to_max_input
        plans = [[] if long_form else plan(t, vad, limit, grow) for t in tracks]
        languages = [self._language(t, p, options) for t, p in zip(tracks, plans)]
        if long_form:
            segments = self._decode_long(tracks, languages, decoding, tracker)
        else:
            inputs = [index for index, _ in group] if speakers is None else None
            segments = self._decode_pieces(tracks, plans, languages, decoding, tracker, inputs)
        recorded = asdict(options)
        sources = [audio.source for _, audio in group]
        results: list[tuple[int, Transcript | PolyasrError]] = []
        for g, (index, audio) in enumerate(group):
            if g in errors:
                results.append((index, errors[g]))
                continue
            mine = [t for t, owner in enumerate(owners) if owner == g]
            language, probability = next(
                (languages[t] for t in mine if languages[t][0]), languages[mine[0]]
            )
            turns: list[Turn] = []
            if len(mine) == 2:
                found = merge_channels(audio.samples, [segments[t] for t in mine])
                turns = turns_from_segments(found)
            else:
                found = sorted(segments[mine[0]], key=lambda s: s.start)
                if speakers is not None:
                    from ..diarization.diarizer import load_diarizer

                    turns = load_diarizer(speakers)(tracks[mine[0]], speakers)
                    found = with_speakers(found, turns)
            language = language or _main_language(found) or self._only_language()
            transcript = Transcript(
                text=join_text(found, language),
                segments=found,
                language=language,
                language_probability=probability,
                duration=audio.duration,
                model=self.recognizer.name,
                family=self.recognizer.family,
                options=recorded,
                turns=turns,
                source=sources[g],
            )
            results.append((index, transcript))
        elapsed = time.perf_counter() - started
        total = sum(audio.duration for _, audio in group) or 1.0
        for index, result in results:
            if isinstance(result, Transcript):
                result.processing_seconds = elapsed * result.duration / total
            yield index, result

    def _only_language(self) -> str | None:
        languages = self.recognizer.languages
        return languages[0] if len(languages) == 1 else None

    def _language(
        self, samples: np.ndarray, pieces: list[tuple[float, float]], options: TranscribeOptions
    ) -> tuple[str | None, float | None]:
        """The requested language, or the one the model detects in the first piece that is
        not silent (None when all are)."""
        if options.language is not None:
            return options.language, None
        limit = self.recognizer.max_piece_seconds
        windows = pieces or [
            (s, s + limit) for s in np.arange(0, len(samples) / SAMPLE_RATE, limit)
        ]
        for start, end in windows:
            piece = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            if not is_silent(piece):
                return self.recognizer.detect_language(piece) or (None, None)
        return None, None

    def _decode_pieces(
        self,
        recordings: list[np.ndarray],
        plans: list[list[tuple[float, float]]],
        languages: list[tuple[str | None, float | None]],
        options: TranscribeOptions,
        tracker: _Tracker,
        inputs: list[int] | None = None,
    ) -> list[list[Segment]]:
        """Pieces of every recording, decoded in batches per language, longest first (in time
        order when segments are passed on as they come); rests of pieces the model stopped
        early are decoded in the next round. `inputs`: the input index of each recording."""
        pending = []
        for item, (samples, pieces) in enumerate(zip(recordings, plans)):
            for start, end in pieces:
                a, b = int(round(start * SAMPLE_RATE)), int(round(end * SAMPLE_RATE))
                pending.append(_Piece(item, a / SAMPLE_RATE, samples[a:b]))
        tracker.add(len(pending), sum(p.seconds for p in pending))
        silent = [p for p in pending if is_silent(p.samples)]
        tracker.advance(sum(p.seconds for p in silent), len(silent))
        pending = [p for p in pending if not is_silent(p.samples)]
        tracker.expect(inputs, pending)
        out: list[list[Segment]] = [[] for _ in recordings]
        while pending:
            rests: list[_Piece] = []
            for language in dict.fromkeys(languages[p.item][0] for p in pending):
                members = [p for p in pending if languages[p.item][0] == language]
                rests += self._decode_round(
                    members, replace(options, language=language), out, tracker
                )
            pending = rests
        return out

    def _decode_round(
        self,
        pieces: list[_Piece],
        options: TranscribeOptions,
        out: list[list[Segment]],
        tracker: _Tracker,
    ) -> list[_Piece]:
        lengths = [len(p.samples) for p in pieces]
        if tracker.inputs is None:
            order = sorted(range(len(pieces)), key=lambda i: -lengths[i])
        else:
            order = sorted(range(len(pieces)), key=lambda i: (pieces[i].item, pieces[i].start))
        rests = []
        padded = self.recognizer.pads_to_max_input
        for batch in batches(order, lengths, options.batch_size, padded):
            decoded = self.recognizer.decode([pieces[j].samples for j in batch], options)
            for j, result in zip(batch, decoded):
                piece = pieces[j]
                found = [shift(s, piece.start) for s in result.segments]
                out[piece.item] += found
                consumed = result.consumed
                rest = None
                if consumed is not None and 0 < consumed < piece.seconds:
                    rest = piece.samples[int(round(consumed * SAMPLE_RATE)) :]
                if rest is None or is_silent(rest):
                    tracker.advance(piece.seconds, 1)
                    tracker.decoded(piece, found, None)
                else:
                    rests.append(_Piece(piece.item, piece.start + consumed, rest))
                    tracker.advance(piece.seconds - len(rest) / SAMPLE_RATE)
                    tracker.decoded(piece, found, rests[-1].start)
        return rests

    def _decode_long(
        self,
        recordings: list[np.ndarray],
        languages: list[tuple[str | None, float | None]],
        options: TranscribeOptions,
        tracker: _Tracker,
    ) -> list[list[Segment]]:
        """The family's own long-form strategy, per language."""
        tracker.add(len(recordings), sum(len(r) for r in recordings) / SAMPLE_RATE)
        out: list[list[Segment]] = [[] for _ in recordings]
        for language in dict.fromkeys(code for code, _ in languages):
            members = [i for i, (code, _) in enumerate(languages) if code == language]
            found = self.recognizer.transcribe_long(
                [recordings[i] for i in members],
                replace(options, language=language),
                tracker.advance,
            )
            for i, segments in zip(members, found):
                out[i] = segments
            tracker.advance(0.0, len(members))
        return out


def _main_language(segments: list[Segment]) -> str | None:
    """The language tagged on the most seconds of speech (None when nothing was tagged)."""
    seconds: Counter[str] = Counter()
    for s in segments:
        if s.language:
            seconds[s.language] += s.end - s.start
    return seconds.most_common(1)[0][0] if seconds else None
