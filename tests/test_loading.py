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


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json", "model.safetensors"])
def test_incomplete_directory_is_a_clear_error(tiny_copy, missing):
    (tiny_copy / missing).unlink()
    with pytest.raises(ModelError, match="tokenizer.json|model.safetensors|not a model directory"):
        polyasr.load(tiny_copy, device="cpu")


def test_corrupt_weights_and_wrong_shapes_are_clear_errors(tiny_copy):
    (tiny_copy / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot read weights"):
        polyasr.load(tiny_copy, device="cpu")


def test_config_that_does_not_match_weights(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    config["d_model"] = 64
    (tiny_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="do not match config.json"):
        polyasr.load(tiny_copy, device="cpu")


def test_pickled_checkpoints_are_never_loaded(tiny_copy):
    (tiny_copy / "model.safetensors").unlink()
    (tiny_copy / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match="no model.safetensors"):
        polyasr.load(tiny_copy, device="cpu")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelError, match="whisper-large-v3-turbo"):
        resolve_directory("whisper-gigantic")


def test_hub_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelError, match="unreachable|offline"):
        polyasr.load("whisper-tiny", device="cpu")


def test_short_names_map_to_hub_ids():
    assert polyasr.KNOWN_MODELS["whisper-large-v3-turbo"] == "openai/whisper-large-v3-turbo"
    assert polyasr.KNOWN_MODELS["whisper-base.en"] == "openai/whisper-base.en"


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
