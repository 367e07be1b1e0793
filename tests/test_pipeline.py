"""The family-independent long-audio pipeline, exercised with the GigaAM fixture model."""

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

import polyasr
from polyasr.audio import load_audio
from polyasr.cli import main
from polyasr.pipeline.planning import batches, fixed_chunks, plan_chunks

GIGAAM = Path(__file__).parent / "golden" / "gigaam-v3-ctc"


@pytest.fixture(scope="module")
def gigaam():
    return polyasr.load(GIGAAM, device="cpu")


def test_regions_merge_up_to_the_limit_and_long_ones_split_evenly():
    regions = [(0.5, 3.0), (4.0, 10.0), (11.0, 24.0), (30.0, 95.0)]
    chunks = plan_chunks(regions, 25.0)
    assert chunks[0] == (0.5, 24.0)
    assert len(chunks) == 4 and all(b - a <= 25.0 + 1e-9 for a, b in chunks)
    assert chunks[1][0] == 30.0 and chunks[-1][1] == 95.0
    assert fixed_chunks(10.0, 25.0) == [(0.0, 10.0)]
    assert fixed_chunks(60.0, 25.0) == [(0.0, 25.0), (25.0, 50.0), (50.0, 60.0)]


@pytest.fixture(scope="module")
def long_recording():
    """Over 5 minutes: real utterances joined with 2 s pauses (and the times they start)."""
    paths = [
        shared_path("data", "ru", n) for n in ("deepspeech_ru.flac", "pisets_test_sound_ru.flac")
    ]
    paths += [shared_path("data", "en", "derived_longform_dev.flac")]
    pieces, starts, t = [], [], 0.0
    while t < 320:
        for p in paths:
            audio = load_audio(p).mono()
            starts.append(t)
            pieces += [audio, np.zeros(32000, np.float32)]
            t += len(audio) / 16000 + 2.0
    return np.concatenate(pieces), starts


def test_long_recording_gives_ordered_segments_inside_the_audio(gigaam, long_recording):
    audio, starts = long_recording
    result = gigaam.transcribe(audio)
    assert result.duration > 300
    segs = result.segments
    assert len(segs) >= len(starts) // 4
    for prev, cur in zip(segs, segs[1:]):
        assert prev.start < prev.end <= cur.start + 1e-6
    assert 0.0 <= segs[0].start and segs[-1].end <= result.duration
    for seg in segs:
        assert seg.end - seg.start <= gigaam.recognizer.max_piece_seconds + 1e-6
        assert all(seg.start <= w.start <= w.end <= seg.end + 1e-3 for w in seg.words)


def test_without_vad_fixed_windows_cover_the_file(gigaam, long_recording):
    audio, _ = long_recording
    result = gigaam.transcribe(audio[: 16000 * 60], vad=False)
    assert result.segments and result.segments[-1].end <= 60.0


def test_batch_gives_the_same_texts_as_single_calls(gigaam):
    files = [
        shared_path("data", "ru", n)
        for n in ("deepspeech_ru.flac", "pisets_test_sound_ru.flac", "transcribe_rs_russian.flac")
    ]
    batch = gigaam.transcribe_batch(files, batch_size=8)
    single = [gigaam.transcribe(f, batch_size=1) for f in files]
    assert [t.text for t in batch] == [t.text for t in single]
    assert all(t.text for t in batch)


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_noise_give_empty_transcripts(gigaam, kind):
    n = 16000 * 10
    audio = (
        np.zeros(n, np.float32)
        if kind == "silence"
        else (np.random.default_rng(1).standard_normal(n).astype(np.float32) * 0.05)
    )
    result = gigaam.transcribe(audio)
    assert result.text == "" and result.segments == []


def test_cli_writes_srt_for_a_gigaam_checkpoint(tmp_path, capsys):
    path = shared_path("data", "ru", "deepspeech_ru.flac")
    code = main(
        [
            "transcribe",
            str(path),
            "--model",
            str(GIGAAM),
            "--format",
            "srt",
            "-o",
            str(tmp_path),
            "-q",
        ]
    )
    assert code == 0
    srt = (tmp_path / "deepspeech_ru.srt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:0") and " --> " in srt


def test_cli_long_recording_to_srt_with_gigaam(tmp_path):
    path = shared_path("data", "en", "derived_longform_dev.flac")  # 97 s, pauses between clips
    code = main(
        ["transcribe", str(path), "--model", str(GIGAAM), "-f", "srt", "-o", str(tmp_path), "-q"]
    )
    assert code == 0
    cues = (tmp_path / "derived_longform_dev.srt").read_text(encoding="utf-8").strip().split("\n\n")
    starts = [cue.splitlines()[1].split(" --> ")[0] for cue in cues]
    assert len(cues) >= 4 and starts == sorted(starts)
    assert cues[-1].splitlines()[1].split(" --> ")[1] <= "00:01:38,000"


_PEAK_RSS_SCRIPT = """
import resource, sys
import numpy as np
import polyasr
from polyasr.audio import load_audio
model = polyasr.load(sys.argv[1], device="cpu")
speech = load_audio(sys.argv[2]).mono()
unit = np.concatenate([speech, np.zeros(16000, np.float32)])
audio = np.tile(unit, int(float(sys.argv[3]) * 60 * 16000 / len(unit)) + 1)
model.transcribe(audio[:16000 * 10])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = model.transcribe(audio)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(result.segments), (after - before) / 1024, audio.nbytes / 2**20)
"""


def test_memory_stays_bounded_on_long_recordings():
    """Peak memory grows by little more than the waveform itself between 5 and 20 minutes."""
    import subprocess
    import sys

    speech = shared_path("data", "ru", "deepspeech_ru.flac")
    growth = {}
    for minutes in (5, 20):
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS_SCRIPT, str(GIGAAM), str(speech), str(minutes)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        segments, grew_mb, audio_mb = int(out[0]), float(out[1]), float(out[2])
        assert segments >= minutes * 2  # pieces of up to 25 s
        growth[minutes] = grew_mb - audio_mb
    assert growth[20] < growth[5] + 150, growth


def test_batches_keep_padding_waste_low_unless_inputs_are_padded_anyway():

    lengths = [100, 95, 90, 40, 38, 10]
    assert batches(list(range(6)), lengths, 8, padded_anyway=False) == [[0, 1, 2, 3], [4], [5]]
    assert batches(list(range(6)), lengths, 8, padded_anyway=True) == [[0, 1, 2, 3, 4, 5]]
    assert batches(list(range(6)), lengths, 2, padded_anyway=True) == [[0, 1], [2, 3], [4, 5]]
