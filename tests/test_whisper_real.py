"""Real whisper-base weights on real speech from ../shared/data.

Measured (greedy, fp32, CPU): English 12 utterances WER 0.052, Russian 3 utterances WER 0.20,
derived 97 s long-form recording WER 0.037.
"""

import numpy as np
import pytest
from conftest import manifest, shared_path

from polyasr.metrics import wer


def _utterances(language):
    return [r for r in manifest() if r["language"] == language and r["task"] == "asr"]


@pytest.mark.parametrize("language,bound", [("en", 0.08), ("ru", 0.30)])
def test_wer_on_real_speech(whisper_base, language, bound):
    refs, hyps = [], []
    for row in _utterances(language):
        result = whisper_base.transcribe(
            shared_path("data", row["path"]), language=language, beam_size=1
        )
        refs.append(row["text"])
        hyps.append(result.text)
        assert result.duration == pytest.approx(row["duration_s"], abs=0.05)
    assert wer(refs, hyps) <= bound


def test_language_is_detected(whisper_base):
    result = whisper_base.transcribe(shared_path("data", "ru", "deepspeech_ru.flac"), beam_size=1)
    assert result.language == "ru"
    assert result.language_probability > 0.5
    english = whisper_base.transcribe(shared_path("data", "en", "jfk.flac"), beam_size=1)
    assert english.language == "en"


def test_translate_task_gives_english(whisper_base):
    result = whisper_base.transcribe(
        shared_path("data", "ru", "deepspeech_ru.flac"),
        language="ru",
        task="translate",
        beam_size=1,
    )
    letters = [c for c in result.text if c.isalpha()]
    assert letters and all(c.isascii() for c in letters)


def test_beam_search_matches_reference_text(whisper_base):
    row = next(r for r in _utterances("en") if r["path"].endswith("jfk.flac"))
    result = whisper_base.transcribe(shared_path("data", row["path"]), language="en", beam_size=5)
    assert wer(row["text"], result.text) <= 0.05


@pytest.mark.parametrize("vad", [True, False], ids=["vad-batched", "sequential"])
def test_long_recording_gives_ordered_segments_covering_speech(whisper_base, vad):
    path = shared_path("data", "en", "derived_longform_dev.flac")
    reference = shared_path("data", "en", "derived_longform_dev.txt").read_text(encoding="utf-8")
    result = whisper_base.transcribe(
        path, language="en", beam_size=1, word_timestamps=True, vad=vad
    )
    segs = result.segments
    assert result.duration > 90 and len(segs) >= 6
    for prev, cur in zip(segs, segs[1:]):
        assert prev.start < prev.end <= cur.start + 1e-6
    assert segs[0].start < 2.0 and segs[-1].end > result.duration - 6.0
    assert max(b.start - a.end for a, b in zip(segs, segs[1:])) < 4.0  # pauses are 1.5 s
    assert wer(reference, result.text) <= 0.07  # measured: 0.052 with VAD, 0.037 without
    words = [w for s in segs for w in s.words]
    assert len(words) >= 150
    for seg in segs:
        # openai's word rules may start a word up to one median word length before its segment
        assert seg.words and seg.start - 0.7 <= seg.words[0].start and seg.words[-1].end <= seg.end
    for prev, cur in zip(words, words[1:]):
        assert prev.start <= prev.end <= cur.start + 0.7
    assert all(0.0 <= w.probability <= 1.0 for w in words)


def test_word_timestamps_fall_on_the_spoken_words(whisper_base):
    # jfk.flac: "...fellow Americans, [pause] ask not what your country..."; "not" is spoken
    # at about 3.7-4.2 s and the clip ends with "country." at about 10.4 s.
    result = whisper_base.transcribe(
        shared_path("data", "en", "jfk.flac"), language="en", beam_size=1, word_timestamps=True
    )
    words = [w for s in result.segments for w in s.words]
    not_ = next(w for w in words if w.text.strip(" ,").lower() == "not")
    assert 3.3 <= not_.start <= 4.3
    assert words[-1].text.strip().startswith("country")
    assert 9.5 <= words[-1].end <= result.duration


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_noise_give_an_empty_transcript(whisper_base, kind):
    n = 16000 * 12
    audio = (
        np.zeros(n, np.float32)
        if kind == "silence"
        else (np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.05)
    )
    result = whisper_base.transcribe(audio, beam_size=1)
    assert result.text == "" and result.segments == []


def test_initial_prompt_and_temperature_options_are_used(whisper_base):
    path = shared_path("data", "en", "mfa_words.flac")
    plain = whisper_base.transcribe(path, language="en", beam_size=1)
    primed = whisper_base.transcribe(
        path, language="en", beam_size=1, initial_prompt="Montreal Forced Aligner, MFA."
    )
    assert "aligner" in primed.text.lower()
    assert plain.text != primed.text
    sampled = whisper_base.transcribe(path, language="en", temperatures=(0.4,), seed=1)
    again = whisper_base.transcribe(path, language="en", temperatures=(0.4,), seed=1)
    assert sampled.text == again.text and sampled.segments[0].temperature == 0.4


def test_batch_of_files_gives_the_same_texts_as_single_calls(whisper_base):
    files = [
        shared_path("data", "en", name)
        for name in ("jfk.flac", "mfa_thoughts.flac", "librispeech_61-70968-0000.flac")
    ]
    batch = whisper_base.transcribe_batch(files, language="en", beam_size=1)
    single = [whisper_base.transcribe(f, language="en", beam_size=1) for f in files]
    assert [t.text for t in batch] == [t.text for t in single]
    assert all(t.text and t.segments for t in batch)
