"""The one pipeline: inputs of every kind, per-item results, progress, language grouping, rests
of pieces, silence, and what a transcript records. A scripted recognizer stands in for a family
where the pipeline itself is under test; the GigaAM fixture where real decoding is wanted."""

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

import polyasr
from polyasr import AudioError, OptionError, Segment, Transcript, VadOptions
from polyasr.pipeline.planning import plan
from polyasr.pipeline.recognizer import Decoded, Recognizer
from polyasr.pipeline.transcriber import Transcriber, join_text

GIGAAM = Path(__file__).parent / "golden" / "gigaam-v3-ctc"
RATE = 16000


class Scripted(Recognizer):
    """Each piece becomes one segment "<language>:<seconds>"; pieces longer than `split_at`
    seconds are only half decoded (the rest comes back); the language is the sign of the
    piece's mean (+ "en", - "de")."""

    family = "scripted"
    name = "scripted"
    languages = ("en", "de")
    max_piece_seconds = 10.0

    def __init__(self, split_at: float = 1e9) -> None:
        self.split_at = split_at
        self.calls: list[tuple[str | None, list[float]]] = []

    def check(self, options):
        if options.task != "transcribe":
            raise OptionError("scripted models cannot translate")

    def detect_language(self, samples):
        return ("en" if samples.mean() > 0 else "de"), 0.9

    def decode(self, pieces, options):
        seconds = [len(p) / RATE for p in pieces]
        self.calls.append((options.language, seconds))
        out = []
        for s in seconds:
            text = f"{options.language}:{s:.1f}"
            half = s / 2 if s > self.split_at else None
            out.append(Decoded([Segment(0.0, half or s, text)], half))
        return out


def tone(seconds: float, sign: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.1 * np.sin(2 * np.pi * 220 * t) + sign * 0.05).astype(np.float32)


def test_pieces_of_several_files_are_batched_per_language_with_absolute_times():
    recognizer = Scripted()
    model = Transcriber(recognizer)
    audios = [tone(4.0), tone(25.0, -1.0), tone(3.0)]
    results = model.transcribe_batch(audios, vad=False, batch_size=8)
    assert [r.language for r in results] == ["en", "de", "en"]
    assert [r.language_probability for r in results] == [0.9, 0.9, 0.9]
    assert [(lang, sorted(s)) for lang, s in recognizer.calls] == [
        ("en", [3.0, 4.0]),
        ("de", [5.0, 10.0, 10.0]),
    ]
    assert [(s.start, s.end) for s in results[1].segments] == [
        (0.0, 10.0),
        (10.0, 20.0),
        (20.0, 25.0),
    ]
    assert results[1].text == "de:10.0 de:10.0 de:5.0"


def test_rests_of_pieces_are_decoded_in_later_rounds_and_progress_adds_up():
    recognizer = Scripted(split_at=2.0)
    reports = []
    result = Transcriber(recognizer).transcribe(
        tone(8.0), vad=False, language="en", progress=reports.append
    )
    # 8 s -> 4 s decoded, rest 4 s -> 2 s decoded, rest 2 s: decoded whole
    assert [s for _, seconds in recognizer.calls for s in seconds] == [8.0, 4.0, 2.0]
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
    done = [r.seconds_done for r in reports]
    assert done == sorted(done) and done[-1] == pytest.approx(8.0)
    assert reports[-1].pieces_done == reports[-1].pieces_total == 1


def test_segments_are_passed_on_in_time_order_as_they_become_final():
    recognizer = Scripted(split_at=6.0)
    received: list[tuple[int, list[float], int]] = []
    model = Transcriber(recognizer)
    results = model.transcribe_batch(
        [tone(25.0), tone(3.0, -1.0)],
        vad=False,
        batch_size=1,
        on_segments=lambda i, found: received.append(
            (i, [s.start for s in found], len(recognizer.calls))
        ),
    )
    for index, result in enumerate(results):
        passed = [start for i, starts, _ in received if i == index for start in starts]
        assert passed == [s.start for s in result.segments]  # all of them, in time order
    # one piece per batch, decoded in time order: the first 10 s piece is passed on after the
    # first call, before its rest and the other pieces are decoded
    assert received[0] == (0, [0.0], 1)
    assert [calls for _, _, calls in received] == sorted(calls for _, _, calls in received)
    assert len(received) >= 4


def test_segments_changed_by_a_later_step_come_only_with_the_transcript():
    received = []
    Transcriber(Scripted()).transcribe(
        np.stack([tone(3.0), tone(3.0, -1.0)]),
        vad=False,
        diarize=polyasr.DiarizeOptions(mode="channel"),
        on_segments=lambda i, found: received.append(found),
    )
    assert received == []


def test_every_kind_of_input_and_per_item_errors(tmp_path):
    model = polyasr.load(GIGAAM, device="cpu")
    path = shared_path("data", "ru", "pisets_test_sound_ru.flac")
    expected = model.transcribe(path)
    assert expected.text
    with open(path, "rb") as handle:
        from_file = model.transcribe(handle)
    samples = polyasr.audio.load_audio(path).samples
    import soxr

    at_44k = soxr.resample(samples.T, RATE, 44100).T.astype(np.float32)
    results = model.transcribe_batch(
        [
            path.read_bytes(),
            tmp_path / "missing.wav",
            io.BytesIO(b"garbage" * 200),
            polyasr.Audio(at_44k, 44100),
            str(path),
        ]
    )
    assert isinstance(results[1], AudioError) and isinstance(results[2], AudioError)
    texts = [r.text for r in (from_file, results[0], results[4])]
    assert texts == [expected.text] * 3
    assert isinstance(results[3], Transcript) and results[3].duration == pytest.approx(
        expected.duration, abs=1e-3
    )
    with pytest.raises(AudioError, match="not found"):
        model.transcribe(tmp_path / "missing.wav")
    with pytest.raises(OptionError):  # invalid options fail the whole call at once
        model.transcribe_batch([path], task="translate")


def test_a_transcript_records_what_made_it_and_reads_back():
    model = polyasr.load(GIGAAM, device="cpu")
    result = model.transcribe(shared_path("data", "ru", "pisets_test_sound_ru.flac"))
    assert result.model == "gigaam-v3-ctc" and result.family == "gigaam"
    assert result.options["vad"] is True and result.options["vad_options"]["threshold"] == 0.5
    assert Transcript.from_dict(result.to_dict()) == result


def test_pieces_cover_the_speech_and_leave_out_only_certain_silence():
    from polyasr.audio.vad import speech_regions

    speech = polyasr.audio.load_audio(shared_path("data", "en", "derived_longform_dev.flac"))
    samples = np.concatenate([speech.mono(), np.zeros(RATE * 40, np.float32)])
    regions = speech_regions(samples, VadOptions())
    for grow in (False, True):
        pieces = plan(samples, VadOptions(), 30.0, grow)
        assert all(0 < b - a <= 30.0 + 1e-6 for a, b in pieces)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(pieces, pieces[1:]))
        for start, end in regions:  # every speech region lies within the pieces
            covered = sum(max(0.0, min(end, b) - max(start, a)) for a, b in pieces)
            assert covered == pytest.approx(end - start, abs=1e-6)
        if grow:  # the last piece takes in some of the silence after the speech
            assert regions[-1][1] < pieces[-1][1] <= pieces[-1][0] + 30.0 + 1e-6
        else:  # the 40 s of silence at the end is left out
            assert pieces[-1][1] == pytest.approx(regions[-1][1], abs=1e-6)
    # speech the VAD scores below its threshold is kept as long as it reaches the veto
    falsetto = polyasr.audio.load_audio(Path(__file__).parent / "data/hard/falsetto_jfk.flac")
    assert speech_regions(falsetto.mono(), VadOptions()) == []
    assert plan(falsetto.mono(), VadOptions(), 30.0) == [(0.0, 11.0)]
    assert plan(falsetto.mono(), VadOptions(veto=0.45), 30.0) == []
    with pytest.raises(OptionError, match="between 0 and 1"):
        VadOptions(threshold=1.5)
    with pytest.raises(OptionError, match="the veto below it"):
        VadOptions(threshold=0.3, veto=0.4)


@pytest.mark.parametrize("vad", [True, False])
def test_digital_silence_is_never_sent_to_the_model(vad):
    recognizer = Scripted()
    result = Transcriber(recognizer).transcribe(np.zeros(RATE * 25, np.float32), vad=vad)
    assert recognizer.calls == [] and result.text == "" and result.language is None


def test_text_is_joined_with_spaces_except_next_to_unspaced_languages():
    segments = [Segment(0, 1, " Hello"), Segment(1, 2, "你好", language="zh"), Segment(2, 3, "ok ")]
    assert join_text(segments, "en") == "Hello你好ok"
    assert join_text([Segment(0, 1, "a"), Segment(1, 2, " "), Segment(2, 3, "b")]) == "a b"
    assert join_text([Segment(0, 1, "日本"), Segment(1, 2, "語")], "ja") == "日本語"
