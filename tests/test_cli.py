"""The command line: outputs, several files, errors as one line with a non-zero exit."""

import json
from pathlib import Path

import pytest
from conftest import shared_path

import polyasr
import polyasr.audio.io
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


GIGAAM = Path(__file__).parent / "golden" / "gigaam-v3-ctc"


def test_inputs_with_the_same_stem_get_distinct_outputs(tmp_path, capsys):
    clip = shared_path("data", "ru", "pisets_test_sound_ru.flac").read_bytes()
    inputs = [tmp_path / "x" / "a.flac", tmp_path / "x" / "a.ogg", tmp_path / "y" / "a.flac"]
    for path in inputs:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(clip)
    out = tmp_path / "out"
    args = ["transcribe", *map(str, inputs), str(inputs[0]), "-m", str(GIGAAM), "-q"]
    assert main([*args, "-f", "json", "-o", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.ogg.json", "x_a.flac.json", "y_a.flac.json"]
    for name in written:
        assert json.loads((out / name).read_text())["text"]


def test_a_failed_write_is_one_line_and_the_other_files_are_written(tmp_path, capsys):
    clip = shared_path("data", "ru", "pisets_test_sound_ru.flac")
    other = tmp_path / "b.flac"
    other.write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    (out / "b.txt").mkdir(parents=True)  # a folder where the output file should go
    code = main(["transcribe", str(other), str(clip), "-m", str(GIGAAM), "-q", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {out / 'b.txt'}: ")
    assert (out / "pisets_test_sound_ru.txt").read_text().strip()


def test_a_partly_decodable_file_is_a_one_line_warning(tmp_path, capsys, monkeypatch):
    import warnings

    from polyasr.errors import AudioWarning

    real = polyasr.audio.io._decode

    def partial(source, name):
        warnings.warn(f"{name}: decoding stopped after 1.0 s", AudioWarning, stacklevel=2)
        return real(source, name)

    monkeypatch.setattr(polyasr.audio.io, "_decode", partial)
    clip = shared_path("data", "ru", "pisets_test_sound_ru.flac")
    assert main(["transcribe", str(clip), "-m", str(GIGAAM), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"warning: {clip}: decoding stopped after 1.0 s"]
    assert captured.out.strip()


def test_vad_flags_reach_the_pipeline(capsys, monkeypatch):
    import polyasr.pipeline.transcriber as transcriber

    seen = []
    real = transcriber.plan
    monkeypatch.setattr(
        transcriber, "plan", lambda s, vad, *a: seen.append(vad) or real(s, vad, *a)
    )
    clip = str(shared_path("data", "ru", "pisets_test_sound_ru.flac"))
    flags = ["--vad-threshold", "0.6", "--vad-min-speech", "0.5", "--vad-min-silence", "1"]
    flags += ["--vad-pad", "0.2", "--vad-veto", "0.3"]
    assert main(["transcribe", clip, "-m", str(GIGAAM), "-q", "-f", "json", *flags]) == 0
    expected = polyasr.VadOptions(0.6, 0.5, 1.0, 0.2, 0.3)
    assert seen == [expected]
    recorded = json.loads(capsys.readouterr().out)["options"]["vad_options"]
    assert polyasr.VadOptions(**recorded) == expected
