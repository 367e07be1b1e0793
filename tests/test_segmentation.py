"""pyannote segmentation-3.0 in native PyTorch against pyannote.audio 3.3.2 on the real weights
(fixture `golden/pyannote-segmentation`, made by `golden/make_segmentation.py`), and its loader
against hostile, truncated and wrong files."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from test_safe_pickle import LAYOUTS, Payload, marker, pickled, refused  # noqa: F401

from polyasr.diarization.segmentation import (
    FrameTiming,
    Segmentation,
    load_segmentation,
    powerset_mapping,
    powerset_to_speakers,
    sliding_windows,
)
from polyasr.errors import ModelError
from polyasr.safe_pickle import load_pickle, plain

GOLDEN = Path(__file__).parent / "golden" / "pyannote-segmentation"
REFERENCE = json.loads((GOLDEN / "reference.json").read_text(encoding="utf-8"))


def checkpoint_path() -> Path:
    return shared_path("models", "pyannote-segmentation-3.0", "pytorch_model.bin")


@pytest.fixture(scope="module")
def model() -> Segmentation:
    return load_segmentation(checkpoint_path())


@pytest.fixture(scope="module")
def windows() -> torch.Tensor:
    samples = np.load(GOLDEN / "windows.npz")["samples"]
    return torch.from_numpy(samples.astype(np.float32) / 32768.0)[:, None]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def test_log_probs_and_speakers_match_pyannote(model, windows, reference):
    with torch.inference_mode():
        log_probs = model(windows)
    assert log_probs.shape == (4, REFERENCE["frames"], 7) == reference["log_probs"].shape
    error = np.abs(log_probs.numpy() - reference["log_probs"]).max()
    assert error <= 1e-4, f"log-probs differ from pyannote's by {error:.2e}"
    speakers = powerset_to_speakers(log_probs).numpy()
    assert speakers.dtype == np.float32 and set(np.unique(speakers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(speakers.astype(np.uint8), reference["multilabel"])
    np.testing.assert_array_equal(model.to_speakers(log_probs).numpy(), speakers)
    # the fixture exercises silence, one speaker and overlapped speech
    assert {0, 1, 2} <= set(reference["multilabel"].sum(-1).flatten().tolist())


def test_a_batch_equals_single_windows(model, windows):
    with torch.inference_mode():
        batch = model(windows)
        single = torch.cat([model(w[None]) for w in windows])
        flat = model(windows[:, 0])  # [B, samples] is accepted too
    assert (batch - single).abs().max().item() <= 1e-5
    assert torch.equal(powerset_to_speakers(batch), powerset_to_speakers(single))
    assert torch.equal(flat, batch)


def test_powerset_conversion_is_pyannotes(reference):
    mapping = powerset_mapping(3, 2)
    assert mapping.int().tolist() == REFERENCE["powerset_mapping"]
    converted = powerset_to_speakers(torch.from_numpy(reference["log_probs"]))
    np.testing.assert_array_equal(converted.numpy().astype(np.uint8), reference["multilabel"])
    with pytest.raises(ValueError, match="5 powerset classes"):
        powerset_to_speakers(torch.zeros(1, 2, 5))


def test_frame_timing_is_pyannotes(model):
    field = REFERENCE["receptive_field"]
    assert model.timing == FrameTiming(field["start"], field["duration"], field["step"])
    assert model.timing.step == 270 / 16000 and model.timing.duration == 991 / 16000
    assert model.timing.middle(2) == pytest.approx(2 * 270 / 16000 + 991 / 32000)
    for samples, frames in REFERENCE["num_frames"].items():
        assert model.num_frames(int(samples)) == frames, samples
    assert model.window_samples == 160000 and model.sample_rate == 16000


def test_sliding_windows_pad_the_last_one_like_pyannote():
    rate = 16000
    audio = torch.arange(25 * rate, dtype=torch.float32)
    chunks = sliding_windows(audio, 10 * rate, rate)
    assert chunks.shape == (16, 1, 10 * rate)
    assert torch.equal(chunks[3, 0], audio[3 * rate : 13 * rate])
    longer = torch.arange(25 * rate + 8000, dtype=torch.float32)
    chunks = sliding_windows(longer, 10 * rate, rate)
    assert chunks.shape == (17, 1, 10 * rate)
    tail = longer[16 * rate :]
    assert torch.equal(chunks[16, 0, : len(tail)], tail)
    assert not chunks[16, 0, len(tail) :].any()
    short = sliding_windows(torch.ones(5 * rate), 10 * rate, rate)
    assert short.shape == (1, 1, 10 * rate) and short.sum() == 5 * rate


def test_wrong_input_shapes_are_refused(model):
    with pytest.raises(ValueError, match="windows"):
        model(torch.zeros(1, 2, 16000))


# --- files --------------------------------------------------------------------------------


def _real_parts() -> dict:
    """The real checkpoint as plain data (the task classes turned into dicts)."""
    data = load_pickle(checkpoint_path(), "real", inert=("pyannote",))
    return {
        "state_dict": dict(data["state_dict"]),
        "hyper_parameters": plain(data["hyper_parameters"]),
        "pyannote.audio": plain(data["pyannote.audio"]),
    }


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_copy_with_code_is_refused_in_every_layout(tmp_path, marker, layout):  # noqa: F811
    parts = _real_parts()
    path = tmp_path / "pytorch_model.bin"
    if layout != "plain":  # a plain pickle of tensors would need torch.load: never supported
        path.write_bytes(pickled(parts, layout))
        with torch.inference_mode():
            ok = load_segmentation(path)(torch.zeros(1, 1, 16000))  # the layout itself loads
        assert ok.shape == (1, 56, 7)
    parts["hyper_parameters"]["sincnet"]["stride"] = Payload(marker)
    hostile = {"hyper_parameters": parts.pop("hyper_parameters"), **parts}  # payload first
    path.write_bytes(pickled(hostile, layout))
    message = refused(lambda: load_segmentation(path), marker)
    assert message.startswith(f"refusing {path}: it names posix.system")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_a_truncated_checkpoint_is_one_line(tmp_path, keep):
    data = checkpoint_path().read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match=f"cannot read {path}") as info:
        load_segmentation(path)
    assert "\n" not in str(info.value)


def _one_line(path: Path, match: str) -> None:
    with pytest.raises(ModelError, match=match) as info:
        load_segmentation(path)
    assert "\n" not in str(info.value)


def _edited(tmp_path: Path, edit) -> Path:
    parts = _real_parts()
    edit(parts)
    path = tmp_path / "edited.bin"
    buffer = io.BytesIO()
    torch.save(parts, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_incomplete_or_inconsistent_weights_are_one_line(tmp_path):
    path = _edited(tmp_path, lambda p: p["state_dict"].pop("lstm.weight_hh_l3_reverse"))
    _one_line(path, r"do not match the model: lacks 1 tensors, e.g. \['lstm.weight_hh_l3_reverse")
    path = _edited(tmp_path, lambda p: p["state_dict"].update(extra=torch.zeros(1)))
    _one_line(path, r"has 1 unknown ones, e.g. \['extra'\]")
    path = _edited(tmp_path, lambda p: p["hyper_parameters"]["lstm"].update(hidden_size=64))
    _one_line(path, "tensor lstm.weight_ih_l0 is torch.float32 \\[512, 60\\], the configuration")


def test_other_models_and_files_are_one_line(tmp_path):
    def architecture(parts):
        parts["pyannote.audio"]["architecture"]["class"] = "SSeRiouSS"

    def multilabel(parts):
        parts["pyannote.audio"]["specifications"]["powerset_max_classes"] = None

    _one_line(_edited(tmp_path, architecture), "unsupported architecture 'SSeRiouSS'")
    _one_line(_edited(tmp_path, multilabel), "not a speaker powerset")
    _one_line(_edited(tmp_path, lambda p: p.pop("hyper_parameters")), "no hyper_parameters")
    campplus = shared_path("models", "campplus-zh-en-common", "campplus_cn_en_common.pt")
    _one_line(campplus, "is not a pyannote segmentation checkpoint")
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    _one_line(text, "unknown file layout")
    _one_line(tmp_path, "no segmentation model file")
    _one_line(tmp_path / "missing.bin", "no segmentation model file")


def test_single_thread_blocks_nest_and_restore_the_thread_count():
    import threading

    from polyasr.devices import single_thread

    before = torch.get_num_threads()
    seen = []
    with single_thread():
        seen.append(torch.get_num_threads())
        with single_thread():
            seen.append(torch.get_num_threads())
        seen.append(torch.get_num_threads())
    assert seen == [1, 1, 1] and torch.get_num_threads() == before
    inside = threading.Barrier(2)

    def worker():
        with single_thread():
            inside.wait()

    other = threading.Thread(target=worker)
    other.start()
    with single_thread():
        inside.wait()
    other.join()
    assert torch.get_num_threads() == before
