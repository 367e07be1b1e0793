"""`polyasr bench`: each model measured in a process of its own, side by side."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import shared_path

from polyasr.cli import cli, main

GOLDEN = Path(__file__).parent / "golden"
JFK = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country."  # noqa: E501


def test_two_models_side_by_side_with_wer(tmp_path):
    audio = shared_path("data", "en", "jfk.16k.flac")
    whisper = shared_path("models", "whisper-base")
    reference = tmp_path / "jfk.txt"
    reference.write_text(JFK, encoding="utf-8")
    args = ["bench", str(audio), "-m", str(whisper), "-m", str(GOLDEN / "gigaam-v3-ctc")]
    args += ["--reference", f"@{reference}", "--beam-size", "1", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.output)
    assert (first["family"], second["family"]) == ("whisper", "gigaam")
    for row in (first, second):
        assert row["audio_s"] == 11.0 and row["rounds"] == 2
        assert 0 < row["load_s"] < row["cold_start_s"] < 120
        assert 0 < row["rtf"] < 5 and row["speed"] == 1 / row["rtf"]
        assert 50 < row["peak_rss_mb"] < 8000
    assert first["wer"] < 0.05 and "ask not what your country" in first["text"].lower()
    assert first["text_tokens"] > 15 and first["tokens_per_s"] > 0
    assert second["text_tokens"] is None and second["wer"] > 0.5  # random weights


def test_a_table_and_a_failing_model_that_does_not_stop_the_others(tmp_path, capsys):
    audio = shared_path("data", "en", "jfk.16k.flac")
    missing = tmp_path / "no-model"
    args = ["bench", str(audio), "-m", str(missing), "-m", str(GOLDEN / "gigaam-v3-ctc")]
    assert main([*args, "--rounds", "1"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and str(missing) in err and len(err.splitlines()) == 1
    header, row, footer = out.splitlines()
    assert header.split()[:3] == ["model", "family", "RTF"] and row.split()[1] == "gigaam"
    assert footer.endswith("11.0 s of audio, 1 round(s) per model")


def test_bad_audio_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVE")
    assert main(["bench", str(bad), "-m", str(GOLDEN / "gigaam-v3-ctc")]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
