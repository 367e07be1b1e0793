"""The command line: outputs, several files, errors as one line with a non-zero exit."""

import json

import pytest
from conftest import shared_path

from polyasr.cli import main


@pytest.fixture(scope="module")
def base_dir():
    return str(shared_path("models", "whisper-base"))


def test_transcribe_to_stdout(base_dir, capsys):
    code = main(
        [
            "transcribe",
            str(shared_path("data", "en", "jfk.flac")),
            "-m",
            base_dir,
            "--beam-size",
            "1",
            "-l",
            "en",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ask not what your country can do for you" in out


def test_all_formats_written_for_several_files_and_failures_reported(base_dir, tmp_path, capsys):
    files = [
        str(shared_path("data", "en", "mfa_thoughts.flac")),
        str(tmp_path / "missing.wav"),
        str(shared_path("data", "ru", "pisets_test_sound_ru.flac")),
    ]
    code = main(
        [
            "transcribe",
            *files,
            "-m",
            base_dir,
            "--beam-size",
            "1",
            "-f",
            "all",
            "-o",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"error: audio file not found: {tmp_path / 'missing.wav'}"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(
        f"{stem}.{ext}"
        for stem in ("mfa_thoughts", "pisets_test_sound_ru")
        for ext in ("txt", "json", "srt", "vtt")
    )
    data = json.loads((tmp_path / "out" / "pisets_test_sound_ru.json").read_text())
    assert data["language"] == "ru" and data["segments"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["transcribe", "x.wav", "--bogus"], 2, "No such option"),
        (["transcribe", "x.wav", "-m", "no-such-model"], 1, "unknown model"),
        (["transcribe", "x.wav", "-f", "all"], 2, "--output-dir"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_are_one_line(args, code, message, capsys):
    assert main(args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_models_lists_known_names(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "whisper-large-v3-turbo" in out and "openai/whisper-base" in out
