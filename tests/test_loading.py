"""Model resolution and loading: names, local directories, broken directories, options."""

import json
import shutil

import pytest
from conftest import shared_path

import polyasr
from polyasr import ModelError, OptionError, TranscribeOptions
from polyasr.registry import resolve_directory


@pytest.fixture
def tiny_copy(tmp_path):
    source = shared_path("golden", "whisper-tiny-80")
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


def test_loaded_model_follows_the_protocol(tiny_copy):
    model = polyasr.load(tiny_copy, device="cpu")
    assert isinstance(model, polyasr.AsrModel)
    assert model.family == "whisper" and model.sample_rate == 16000
    assert len(model.languages) == 99 and "ru" in model.languages


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("config.json", "is not a model polyasr recognizes"),
        ("tokenizer.json", "tokenizer.json is missing in"),
        ("model.safetensors", "no model.safetensors .or sharded index. in"),
    ],
)
def test_incomplete_directory_is_a_clear_error(tiny_copy, missing, message):
    (tiny_copy / missing).unlink()
    with pytest.raises(ModelError, match=message):
        polyasr.load(tiny_copy, device="cpu")


def test_corrupt_weights_and_wrong_shapes_are_clear_errors(tiny_copy):
    (tiny_copy / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot read weights"):
        polyasr.load(tiny_copy, device="cpu")


def test_config_that_does_not_match_weights(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    config["d_model"] = 64
    (tiny_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="do not match the model.s configuration"):
        polyasr.load(tiny_copy, device="cpu")


def test_pickled_checkpoints_are_never_loaded(tiny_copy):
    (tiny_copy / "model.safetensors").unlink()
    (tiny_copy / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match="no model.safetensors"):
        polyasr.load(tiny_copy, device="cpu")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelError, match="whisper-large-v3-turbo"):
        resolve_directory("whisper-gigantic")


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("whisper-large-v3-turbo", "openai/whisper-large-v3-turbo"),
        ("whisper-base.en", "openai/whisper-base.en"),
        ("gigaam-v3-e2e-rnnt", "ai-sage/GigaAM-v3@e2e_rnnt"),
        ("parakeet-tdt-0.6b-v3", "nvidia/parakeet-tdt-0.6b-v3"),
        ("qwen3-asr-1.7b", "Qwen/Qwen3-ASR-1.7B"),
        ("openai/whisper-small", "openai/whisper-small"),
    ],
)
def test_names_resolve_to_hub_downloads(monkeypatch, tmp_path, name, repo):
    asked = []
    monkeypatch.setattr("polyasr.hub.download", lambda r: asked.append(r) or tmp_path)
    assert resolve_directory(name) == (tmp_path, name)
    assert asked == [repo]


def test_invalid_options_are_rejected(tiny_copy):
    with pytest.raises(OptionError):
        TranscribeOptions(task="summarize")
    with pytest.raises(OptionError):
        TranscribeOptions(beam_size=0)
    model = polyasr.load(tiny_copy, device="cpu")
    with pytest.raises(OptionError, match="unknown option"):
        model.transcribe([0.0], no_such_option=1)
    with pytest.raises(OptionError, match="not supported"):
        model.transcribe([0.0], language="xx")
    with pytest.raises(OptionError, match="unknown device"):
        polyasr.load(tiny_copy, device="tpu")


def test_a_model_directory_is_named_after_its_whole_name(tmp_path):
    """A folder such as `qwen3-asr-0.6b` keeps its dot (a file drops its extension)."""
    from polyasr.registry import resolve_directory

    folder = tmp_path / "qwen3-asr-0.6b"
    folder.mkdir()
    assert resolve_directory(folder)[1] == "qwen3-asr-0.6b"
    file = tmp_path / "v3_ctc.ckpt"
    file.write_bytes(b"")
    assert resolve_directory(file)[1] == "v3_ctc"
