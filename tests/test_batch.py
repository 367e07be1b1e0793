"""`polyasr batch`: input expansion, outputs, resume after a kill, failures, the Ray engine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, shared_path

import polyasr
import polyasr.formats
from polyasr.batch import ModelSpec, run_batch
from polyasr.batch.inputs import expand_inputs
from polyasr.batch.records import RECORDS
from polyasr.cli import main

GIGAAM = REPO / "tests" / "golden" / "gigaam-v3-ctc"
"""A tiny random-weight CTC model: deterministic output, fast enough to transcribe many files."""

CLIPS = ["en/mfa_thoughts.flac", "ru/pisets_test_sound_ru.flac", "ru/transcribe_rs_russian.flac"]
TEXT_FORMATS = ("txt", "json", "srt", "vtt")
UNTIMED = ("processing_seconds", "rtf")


def comparable(data: dict) -> dict:
    """A transcript's JSON without the fields that depend on the run's timing."""
    return {k: v for k, v in data.items() if k not in UNTIMED}


def batch(*args: str) -> int:
    return main(["batch", *args, "-m", str(GIGAAM), "-q"])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.fixture()
def clips(tmp_path) -> list[Path]:
    """Copies of three short real recordings (copies, so a test may change them)."""
    folder = tmp_path / "audio"
    folder.mkdir()
    copies = []
    for clip in CLIPS:
        target = folder / Path(clip).name
        shutil.copy(shared_path("data", clip), target)
        copies.append(target)
    return copies


def test_inputs_expand_files_folders_globs_and_manifests(tmp_path):
    for name in ("a/x.wav", "a/sub/y.flac", "a/notes.txt", "b/z.mp3", "c/w.ogg", "c/v.opus"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"\0")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "m.jsonl").write_text(
        '{"path": "../b/z.mp3"}\n\n{"path": "gone.wav"}\n{"text": "no path"}\nnot json\n'
    )
    (lists / "m.csv").write_text(f"path,text\n{tmp_path / 'a/notes.txt'},hi\n../c/w.ogg,x\n")
    (lists / "other.csv").write_text("file,text\nx.wav,hi\n")
    found = expand_inputs(
        [
            tmp_path / "a",
            str(tmp_path / "c" / "*.opus"),
            lists / "m.jsonl",
            lists / "m.csv",
            lists / "other.csv",
            tmp_path / "a" / "x.wav",
            tmp_path / "missing.wav",
            str(tmp_path / "*.nothing"),
            tmp_path / "lists",
        ]
    )
    expected = ["a/sub/y.flac", "a/x.wav", "c/v.opus", "b/z.mp3", "a/notes.txt", "c/w.ogg"]
    assert found.paths == [tmp_path / p for p in expected]
    reasons = [reason for _, reason in found.problems]
    assert reasons[0] == f"audio file not found: {lists / 'gone.wav'} ({lists / 'm.jsonl'} line 3)"
    assert reasons[1:3] == [
        f"{lists / 'm.jsonl'} line 4: no 'path' in this entry",
        f"{lists / 'm.jsonl'} line 5: no 'path' in this entry",
    ]
    assert reasons[3:] == [
        f"{lists / 'other.csv'} (no 'path' column): no 'path' in this entry",
        f"no such file or folder: {tmp_path / 'missing.wav'}",
        f"no audio files match {tmp_path / '*.nothing'}",
        f"no audio files in folder {tmp_path / 'lists'}",
    ]


def test_every_format_is_written_as_the_model_transcribes(clips, tmp_path):
    out = tmp_path / "out"
    assert batch(str(clips[0].parent), "-o", str(out), "-f", "all") == 0
    model = polyasr.load(GIGAAM, device="cpu")
    for clip in clips:
        direct = model.transcribe(clip)
        data = json.loads((out / f"{clip.stem}.json").read_text())
        assert comparable(data) == comparable(json.loads(polyasr.formats.to_json(direct)))
        for name in ("txt", "srt", "vtt"):
            written = (out / f"{clip.stem}.{name}").read_text()
            assert written == polyasr.formats.WRITERS[name](direct)
    report = summary(out)
    assert sorted(report["done"]) == sorted(map(str, clips))
    assert report["failed"] == [] and report["skipped"] == []


def test_speaker_turns_written_as_rttm(tmp_path):
    stereo = shared_path("data", "stereo", "faster_whisper_stereo_diarization.flac")
    out = tmp_path / "out"
    speakers = ["--diarize", "--speaker-mode", "channel"]
    assert batch(str(stereo), "-o", str(out), "-f", "rttm", *speakers) == 0
    lines = (out / f"{stereo.stem}.rttm").read_text().splitlines()
    assert {line.split()[7] for line in lines} == {"SPEAKER_00", "SPEAKER_01"}


def test_missing_and_corrupt_inputs_fail_while_the_others_succeed(clips, tmp_path, capsys):
    bad = clips[0].parent / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    out = tmp_path / "out"
    missing = str(tmp_path / "missing.flac")
    assert batch(*map(str, clips), str(bad), missing, "-o", str(out)) == 1
    report = summary(out)
    assert sorted(report["done"]) == sorted(map(str, clips))
    failed = {f["input"]: f["error"] for f in report["failed"]}
    assert set(failed) == {str(bad), missing}
    assert str(bad) in failed[str(bad)]
    err = capsys.readouterr().err
    assert f"failed: {bad}: " in err and f"failed: {missing}: no such file" in err
    assert not (out / "bad.txt").exists()
    assert batch(*map(str, clips), str(bad), "-o", str(out)) == 1  # retried, not skipped
    assert [f["input"] for f in summary(out)["failed"]] == [str(bad)]
    assert len(summary(out)["skipped"]) == len(clips)


def test_changed_options_or_source_are_redone(clips, tmp_path):
    out = tmp_path / "out"
    inputs = [str(c) for c in clips]
    assert batch(*inputs, "-o", str(out)) == 0
    assert batch(*inputs, "-o", str(out)) == 0
    assert sorted(summary(out)["skipped"]) == sorted(inputs) and summary(out)["done"] == []
    assert batch(*inputs, "-o", str(out), "--vad-pad", "0.2") == 0
    assert sorted(summary(out)["done"]) == sorted(inputs)
    record = json.loads((out / RECORDS / f"{clips[0].stem}.json").read_text())
    assert record["options"]["vad_options"]["speech_pad_s"] == 0.2
    stat = clips[1].stat()
    os.utime(clips[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert batch(*inputs, "-o", str(out), "--vad-pad", "0.2") == 0
    assert summary(out)["done"] == [inputs[1]]
    assert batch(*inputs, "-o", str(out), "--vad-pad", "0.2", "-f", "srt") == 0
    assert summary(out)["done"] == inputs  # srt was never written: redone


KILLED_RUN = """
import sys
import polyasr.pipeline.transcriber as transcriber
from polyasr.cli import main
transcriber.GROUP_FILES = 1  # one file per group: each result is written as soon as it is done
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_kill_loses_nothing_and_redoes_nothing(tmp_path):
    """SIGKILL a batch after some results are on disk; the re-run completes the rest only."""
    folder = tmp_path / "audio"
    folder.mkdir()
    sources = [shared_path("data", clip) for clip in CLIPS]
    inputs = []
    for i in range(12):
        inputs.append(folder / f"clip{i:02d}{sources[i % 3].suffix}")
        shutil.copy(sources[i % 3], inputs[-1])
    out = tmp_path / "out"
    args = ["batch", str(folder), "-m", str(GIGAAM), "-o", str(out), "-f", "all", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, *args], env=env)
    records = out / RECORDS
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if records.is_dir() and len(list(records.glob("*.json"))) >= 3:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, "the batch ended before it could be killed"
    finished = {p.stem for p in records.glob("*.json")}
    assert 3 <= len(finished) < len(inputs)
    for path in out.glob("*.json"):
        json.loads(path.read_text())  # every output on disk is complete
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.stem in finished}

    assert main(args) == 0
    report = summary(out)
    assert sorted(Path(p).stem for p in report["skipped"]) == sorted(finished)
    assert sorted(report["skipped"] + report["done"]) == sorted(map(str, inputs))
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.stem in finished} == before
    assert not [p for p in out.rglob("*.tmp")]
    expected = sorted(f"{p.stem}.{name}" for p in inputs for name in TEXT_FORMATS)
    assert sorted(p.name for p in out.iterdir() if p.is_file() and p.stem != "summary") == expected
    model = polyasr.load(GIGAAM, device="cpu")
    for source in sources:
        direct = comparable(json.loads(polyasr.formats.to_json(model.transcribe(source))))
        for path in inputs:
            if path.read_bytes() == source.read_bytes():
                data = comparable(json.loads((out / f"{path.stem}.json").read_text()))
                assert {**data, "source": None} == {**direct, "source": None}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray cluster (2 CPUs) for the module: starting Ray takes seconds."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'polyasr[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def engine_outputs(inputs: list[Path], out: Path, spec: ModelSpec, options, engine: str) -> dict:
    """Every output file `run_batch` writes with `engine`, by name (JSON without timings)."""
    report = run_batch(inputs, out, spec, options, list(TEXT_FORMATS), engine=engine)
    assert sorted(report.done) == sorted(str(p) for p in inputs if p.exists())
    assert [f["input"] for f in report.failed] == [str(p) for p in inputs if not p.exists()]
    return {
        p.name: comparable(json.loads(p.read_text())) if p.suffix == ".json" else p.read_text()
        for p in out.iterdir()
        if p.is_file() and p.name != "summary.json"
    }


def test_ray_engine_writes_what_the_local_engine_writes(local_ray, clips, tmp_path):
    options = polyasr.TranscribeOptions(word_timestamps=True)
    spec = ModelSpec(str(GIGAAM), device="cpu")
    inputs = [*clips, tmp_path / "missing.wav"]
    local = engine_outputs(inputs, tmp_path / "local", spec, options, "local")
    on_ray = engine_outputs(inputs, tmp_path / "ray", spec, options, "ray")
    assert len(on_ray) == len(clips) * len(TEXT_FORMATS)
    assert on_ray == local
    assert any(s["words"] for s in on_ray[f"{clips[0].stem}.json"]["segments"])
    again = run_batch(inputs, tmp_path / "local", spec, options, list(TEXT_FORMATS), engine="ray")
    assert sorted(again.skipped) == sorted(map(str, clips)) and again.done == []


def timed_text(output: str | dict) -> object:
    """An output file's text and times: TXT/SRT/VTT as they are, from JSON the text and the
    (start, end, text) of every segment and word."""
    if isinstance(output, str):
        return output
    return output["text"], [
        (s["start"], s["end"], s["text"], [(w["start"], w["end"], w["text"]) for w in s["words"]])
        for s in output["segments"]
    ]


def test_ray_engine_matches_the_local_engine_with_whisper(local_ray, tmp_path):
    """Real text and word times: whisper-base on two short English recordings."""
    spec = ModelSpec(str(shared_path("models", "whisper-base")), device="cpu", dtype="float32")
    options = polyasr.TranscribeOptions(language="en", beam_size=1, word_timestamps=True)
    inputs = [shared_path("data", "en", name) for name in ("mfa_thoughts.flac", "jfk.flac")]
    local = engine_outputs(inputs, tmp_path / "local", spec, options, "local")
    on_ray = engine_outputs(inputs, tmp_path / "ray", spec, options, "ray")
    # files are batched differently (scores differ in the 7th digit): text and times must match
    assert {k: timed_text(v) for k, v in on_ray.items()} == {
        k: timed_text(v) for k, v in local.items()
    }
    assert "ask not what your country can do for you" in on_ray["jfk.txt"]
    assert all(w["end"] > w["start"] for s in on_ray["jfk.json"]["segments"] for w in s["words"])


def test_ray_engine_without_ray_says_how_to_install(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert batch(str(clips[0]), "-o", str(tmp_path / "out"), "--engine", "ray") == 1
    assert capsys.readouterr().err == (
        "error: the ray engine needs Ray: pip install 'polyasr[ray]'\n"
    )


def test_address_needs_the_ray_engine(clips, tmp_path, capsys):
    code = batch(str(clips[0]), "-o", str(tmp_path / "out"), "--address", "auto")
    assert code == 2
    assert "--address and --workers need --engine ray" in capsys.readouterr().err


def test_ray_engine_stops_with_one_line_on_options_the_model_cannot_honour(local_ray, clips):
    spec = ModelSpec(str(GIGAAM), device="cpu")
    options = polyasr.TranscribeOptions(task="translate")
    out = clips[0].parent / "out"
    with pytest.raises(polyasr.PolyasrError, match="^gigaam-v3-ctc cannot translate$"):
        run_batch(clips, out, spec, options, ["txt"], engine="ray")
    assert not list(out.glob("*.txt"))


def test_unknown_model_fails_before_any_work(clips, tmp_path, capsys):
    args = [str(clips[0]), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "no-model")]
    for engine in ("local", "ray"):
        assert main(["batch", *args, "--engine", engine, "-q"]) == 1
        assert capsys.readouterr().err.startswith(f"error: unknown model '{tmp_path}/no-model'")


def test_unreachable_ray_address_is_one_line(clips, tmp_path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'polyasr[ray]')")
    code = batch(
        str(clips[0]), "-o", str(tmp_path / "out"), "--engine", "ray", "--address", "127.0.0.1:9"
    )
    assert code == 1
    assert capsys.readouterr().err.startswith(
        "error: cannot reach the Ray cluster at 127.0.0.1:9: "
    )


def test_an_input_named_summary_does_not_replace_the_report(clips, tmp_path):
    named = clips[0].with_name("summary.flac")
    shutil.copy(clips[0], named)
    out = tmp_path / "out"
    assert batch(str(named), "-o", str(out), "-f", "json") == 0
    assert summary(out)["done"] == [str(named)]
    assert json.loads((out / "summary.flac.json").read_text())["source"] == str(named)


def test_importing_polyasr_and_its_cli_does_not_import_ray():
    code = "import sys, polyasr, polyasr.cli, polyasr.batch; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
