"""Broken model files give one clear line naming the file and what is wrong, never a traceback."""

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import shared_path

import polyasr
from polyasr.errors import ModelError
from polyasr.safe_pickle import load_pickle, plain

GOLDEN = Path(__file__).parent / "golden"
NEMO = GOLDEN / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"


def one_line_error(target) -> str:
    with pytest.raises(ModelError) as info:
        polyasr.load(target, device="cpu")
    message = str(info.value)
    assert "\n" not in message and message
    return message


# --- GigaAM ---------------------------------------------------------------------------------


def _gigaam(tmp_path: Path, source: str, edit) -> Path:
    """A copy of a GigaAM fixture checkpoint with (cfg, state_dict) changed by `edit`."""
    directory = GOLDEN / source
    ckpt = next(directory.glob("*.ckpt"))
    data = load_pickle(ckpt, str(ckpt), inert=("omegaconf",))
    cfg, state = plain(data["cfg"]), dict(data["state_dict"])
    target = tmp_path / ckpt.name
    for extra in directory.glob("*tokenizer.model"):
        shutil.copy(extra, tmp_path)
    torch.save(edit(cfg, state), target)
    return target


def test_gigaam_rnnt_checkpoint_without_its_prediction_network(tmp_path):
    def edit(cfg, state):
        del state["head.decoder.embed.weight"]
        return {"cfg": cfg, "state_dict": state}

    target = _gigaam(tmp_path, "gigaam-v3-e2e-rnnt", edit)
    assert one_line_error(target) == (
        f"{target} lacks the tensor head.decoder.embed.weight (an incomplete or different "
        "checkpoint)"
    )


def test_gigaam_state_dict_of_the_wrong_type(tmp_path):
    target = _gigaam(tmp_path, "gigaam-v3-ctc", lambda cfg, state: {"cfg": cfg, "state_dict": [1]})
    assert one_line_error(target) == f"{target} is not a GigaAM checkpoint (no state_dict)"


def test_gigaam_config_values_of_the_wrong_type(tmp_path):
    def edit(cfg, state):
        cfg["encoder"]["n_layers"] = "sixteen"
        return {"cfg": cfg, "state_dict": state}

    target = _gigaam(tmp_path, "gigaam-v3-ctc", edit)
    assert "invalid encoder configuration" in one_line_error(target)


def test_gigaam_weights_of_another_size(tmp_path):
    def edit(cfg, state):
        state["encoder.layers.0.norm_out.weight"] = torch.ones(3)
        return {"cfg": cfg, "state_dict": state}

    message = one_line_error(_gigaam(tmp_path, "gigaam-v3-ctc", edit))
    assert "tensor encoder.layers.0.norm_out.weight is torch.float32 [3]" in message


def test_gigaam_hub_copy_with_a_corrupt_config(tmp_path):
    data = load_pickle(GOLDEN / "gigaam-v3-ctc" / "v3_ctc.ckpt", "x", inert=("omegaconf",))
    torch.save(dict(data["state_dict"]), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text('{"model_type": "gigaam", "cfg": ')
    assert one_line_error(tmp_path).startswith(f"cannot read {tmp_path / 'config.json'}: ")


# --- Parakeet -------------------------------------------------------------------------------


def _nemo(tmp_path: Path, edit_config=None, edit_state=None, cut: str = "") -> Path:
    """A copy of the Parakeet fixture with its config or weights edited, or cut in the middle
    of the member whose name ends with `cut`."""
    target = tmp_path / "edited.nemo"
    with tarfile.open(NEMO) as source, tarfile.open(target, "w:") as out:
        for member in source.getmembers():
            if not member.isfile():
                continue
            data = source.extractfile(member).read()
            if member.name.endswith("model_config.yaml") and edit_config:
                cfg = yaml.safe_load(data)
                edit_config(cfg)
                data = yaml.safe_dump(cfg).encode()
            if member.name.endswith("model_weights.ckpt") and edit_state:
                state = load_pickle(io.BytesIO(data), "weights")
                edit_state(state)
                buffer = io.BytesIO()
                torch.save(state, buffer)
                data = buffer.getvalue()
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    if cut:
        with tarfile.open(target) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith(cut))
        target.write_bytes(target.read_bytes()[: member.offset_data + member.size // 2])
    return target


def test_parakeet_config_values_of_the_wrong_type(tmp_path):
    nemo = _nemo(tmp_path, edit_config=lambda cfg: cfg["encoder"].update(n_layers="many"))
    assert one_line_error(nemo).startswith("invalid model_config.yaml: ")


def test_parakeet_preprocessor_values_of_the_wrong_type(tmp_path):
    nemo = _nemo(tmp_path, edit_config=lambda cfg: cfg["preprocessor"].update(n_fft="big"))
    assert one_line_error(nemo).startswith("invalid preprocessor in model_config.yaml: ")


def test_parakeet_without_the_joint_encoder_projection(tmp_path):
    nemo = _nemo(tmp_path, edit_state=lambda state: state.pop("joint.enc.weight"))
    assert "holds no RNN-T/TDT decoder and joint" in one_line_error(nemo)


@pytest.mark.parametrize("member", ["model_config.yaml", "model_weights.ckpt", "tokenizer.model"])
def test_parakeet_archive_truncated_inside_a_member(tmp_path, member):
    nemo = _nemo(tmp_path, cut=member)
    message = one_line_error(nemo)
    assert str(nemo) in message, message


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_parakeet_archive_is_closed_when_it_is_refused(tmp_path):
    target = tmp_path / "link.nemo"
    with tarfile.open(target, "w:") as out:
        info = tarfile.TarInfo("./link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        out.addfile(info)
    before = _open_files()
    for _ in range(5):
        assert "unsafe .nemo archive" in one_line_error(target)
    assert _open_files() == before


# --- Whisper --------------------------------------------------------------------------------


@pytest.fixture
def whisper_copy(tmp_path):
    target = tmp_path / "whisper"
    shutil.copytree(shared_path("golden", "whisper-tiny-80"), target)
    return target


def test_whisper_missing_tokenizer_is_reported_before_reading_weights(whisper_copy):
    (whisper_copy / "tokenizer.json").unlink()
    (whisper_copy / "model.safetensors").write_bytes(b"\0" * 64)  # would fail if read first
    assert one_line_error(whisper_copy) == (
        f"incomplete Whisper model directory: tokenizer.json is missing in {whisper_copy}"
    )


def test_whisper_config_values_of_the_wrong_type(whisper_copy):
    config = json.loads((whisper_copy / "config.json").read_text())
    config["encoder_layers"] = "two"
    (whisper_copy / "config.json").write_text(json.dumps(config))
    assert "the configuration describes no valid model" in one_line_error(whisper_copy)
