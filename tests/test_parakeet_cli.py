"""Parakeet end to end: `polyasr transcribe x.flac --model PATH.nemo` on real speech.

The fixture model has random weights, so its text is meaningless; these tests check the
mechanics: timestamps inside the audio, monotonic, segments covering the speech.
"""

import json
from pathlib import Path

import numpy as np
from conftest import shared_path

from polyasr.audio import load_audio
from polyasr.audio.vad import speech_regions
from polyasr.cli import main

ARCHIVE = Path(__file__).parent / "golden" / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"


def _check_timeline(result: dict, duration: float) -> None:
    segments = result["segments"]
    assert segments, "no segments"
    previous_end = 0.0
    for segment in segments:
        assert 0.0 <= segment["start"] <= segment["end"] <= duration + 1e-3
        assert segment["start"] >= previous_end - 1e-3
        previous_end = segment["end"]
        starts = [w["start"] for w in segment["words"]]
        assert starts == sorted(starts)
        for word in segment["words"]:
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"]


def test_cli_transcribes_english_and_german_to_json(tmp_path):
    files = [
        shared_path("data", "en", "picovoice_test_en.flac"),
        shared_path("data", "other", "picovoice_test_de.flac"),
    ]
    args = ["transcribe", *map(str, files), "--model", str(ARCHIVE), "-f", "all", "-o"]
    assert main([*args, str(tmp_path), "-q"]) == 0
    for path in files:
        result = json.loads((tmp_path / f"{path.stem}.json").read_text(encoding="utf-8"))
        assert result["text"].strip()
        _check_timeline(result, result["duration"])
        srt = (tmp_path / f"{path.stem}.srt").read_text(encoding="utf-8")
        assert srt.startswith("1\n00:00:0") and " --> " in srt


def test_cli_long_recording_segments_cover_the_speech(tmp_path):
    path = shared_path("data", "en", "derived_longform_dev.flac")  # 97 s, pauses between clips
    assert (
        main(["transcribe", str(path), "-m", str(ARCHIVE), "-f", "json", "-o", str(tmp_path)]) == 0
    )
    result = json.loads((tmp_path / "derived_longform_dev.json").read_text(encoding="utf-8"))
    _check_timeline(result, result["duration"])
    audio = load_audio(path).mono()
    for start, end in speech_regions(audio):
        covered = sum(
            max(0.0, min(end, s["end"]) - max(start, s["start"])) for s in result["segments"]
        )
        assert covered >= 0.5 * (end - start), (start, end)


def test_noise_gives_no_invented_text():
    """VAD finds no speech in noise, so even a model that would emit tokens transcribes
    nothing."""
    import polyasr

    model = polyasr.load(ARCHIVE, device="cpu")
    noise = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.05
    result = model.transcribe(noise)
    assert result.text == "" and result.segments == []


def test_cli_rejects_translation_for_parakeet(capsys):
    path = shared_path("data", "en", "picovoice_test_en.flac")
    code = main(["transcribe", str(path), "-m", str(ARCHIVE), "--task", "translate", "-q"])
    assert code != 0
    assert "cannot translate" in capsys.readouterr().err
