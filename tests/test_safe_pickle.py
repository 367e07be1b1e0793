"""Model files are untrusted: no layout of any loader's pickle may run code.

Every hostile file below carries a payload that would create a marker file when unpickled by
`pickle.load` (proved by `test_the_payload_really_runs_under_plain_pickle`); each test asserts
that the load is refused with one line and that the marker does not exist afterwards.
"""

import io
import json
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import shared_path

import polyasr
from polyasr.cli import main
from polyasr.errors import ModelError
from polyasr.safe_pickle import load_pickle, plain

GOLDEN = Path(__file__).parent / "golden"
LAYOUTS = ["plain", "legacy", "zip"]


class Payload:
    """Unpickling this calls os.system: it touches `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickled(obj, layout: str) -> bytes:
    """`obj` saved in one of the three layouts a checkpoint can have."""
    buffer = io.BytesIO()
    if layout == "plain":
        pickle.dump(obj, buffer, protocol=4)
    else:
        torch.save(obj, buffer, _use_new_zipfile_serialization=layout == "zip")
    return buffer.getvalue()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned.txt"


def refused(load, marker: Path) -> str:
    """Run `load`, expect one ModelError line, and check that nothing ran."""
    with pytest.raises(ModelError) as info:
        load()
    message = str(info.value)
    assert "\n" not in message
    assert not marker.exists(), "the payload ran"
    return message


def test_the_payload_really_runs_under_plain_pickle(marker):
    pickle.loads(pickled({"x": Payload(marker)}, "plain"))
    assert marker.exists()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_load_pickle_refuses_code_in_every_layout(tmp_path, marker, layout):
    path = tmp_path / "model.bin"
    path.write_bytes(pickled({"state_dict": {"w": [1.0]}, "cfg": Payload(marker)}, layout))
    message = refused(lambda: load_pickle(path, str(path)), marker)
    assert message == (
        f"refusing {path}: it names posix.system, which could run code (nothing was executed)"
    )


def test_code_in_the_legacy_header_pickles_is_refused_too(tmp_path, marker):
    head = pickled({}, "legacy")[:15]  # the magic-number pickle
    path = tmp_path / "model.pt"
    path.write_bytes(head + pickle.dumps(Payload(marker), protocol=2))
    assert "refusing" in refused(lambda: load_pickle(path, "model.pt"), marker)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a checkpoint at all",
        b"cos\nsystem\n(S'true'\ntR.",  # protocol 0: no PROTO opcode
    ],
)
def test_a_file_in_no_known_layout_is_refused_before_unpickling(tmp_path, marker, data):
    path = tmp_path / "model.ckpt"
    path.write_bytes(data)
    assert "unknown file layout" in refused(lambda: load_pickle(path, "model.ckpt"), marker)


def _state() -> dict:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "matrix": base,
        "transposed": base.t(),
        "slice": base[1:3, 2:5],
        "half": torch.randn(3, dtype=torch.float16),
        "bf16": torch.randn(3, dtype=torch.bfloat16),
        "ints": torch.arange(5),
        "mask": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
    }


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_tensors_load_exactly_as_torch_saved_them(tmp_path, layout):
    expected = _state()
    path = tmp_path / "weights.pt"
    path.write_bytes(pickled({"state_dict": expected, "epoch": 3}, layout))
    loaded = load_pickle(path, "weights.pt")
    assert loaded["epoch"] == 3
    for key, tensor in expected.items():
        got = loaded["state_dict"][key]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, key
        assert torch.equal(got, tensor), key


def test_stand_ins_keep_config_data_without_importing_anything():
    for path in (GOLDEN / "gigaam-v3-ctc" / "v3_ctc.ckpt",):
        data = load_pickle(path, str(path), inert=("omegaconf",))
        cfg = plain(data["cfg"])
        assert cfg["encoder"]["subsampling"] == "conv1d"
        assert isinstance(cfg["decoding"]["vocabulary"], list)
    path = GOLDEN / "gigaam-v3-ctc" / "v3_ctc.ckpt"
    assert "omegaconf.dictconfig.DictConfig" in refused(
        lambda: load_pickle(path, str(path)), Path("/nonexistent")
    )


class _Storage:
    """Pickled as a reference to storage '0' that declares `numel` float32 elements."""

    def __init__(self, numel: int) -> None:
        self.numel = numel


class _Tensor:
    def __init__(self, declared: int, size: int) -> None:
        self.storage, self.size = _Storage(declared), size

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.size,), (1,), False, {}))


def handmade(layout: str, declared: int, size: int, stored: bytes) -> bytes:
    """A checkpoint whose one tensor of `size` elements views a storage declared to hold
    `declared` elements, with `stored` as the storage's bytes."""
    legacy = layout == "legacy"

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                pid = ("storage", torch.FloatStorage, "0", "cpu", obj.numel)
                return pid + (None,) if legacy else pid
            return None

    def dumps(obj) -> bytes:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(obj)
        return buffer.getvalue()

    body = dumps({"w": _Tensor(declared, size)})
    if legacy:
        head = pickled({}, "legacy")[:15]
        keys = pickle.dumps(["0"], protocol=2)
        raw = declared.to_bytes(8, "little") + stored
        return (
            head + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2) + body + keys + raw
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/data/0", stored)
    return buffer.getvalue()


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_handmade_checkpoints_load_when_consistent(tmp_path, layout):
    path = tmp_path / "ok.pt"
    path.write_bytes(handmade(layout, 4, 4, torch.arange(4.0).numpy().tobytes()))
    assert torch.equal(load_pickle(path, "ok.pt")["w"], torch.arange(4.0))


@pytest.mark.parametrize("layout", ["legacy", "zip"])
@pytest.mark.parametrize(
    ("declared", "size", "stored", "message"),
    [
        (4, 10, 16, "reaches past its storage"),
        (4, 4, 8, "ends inside a tensor|holds 8 bytes"),
        (10**12, 4, 16, "larger than the file|holds 16 bytes"),
    ],
)
def test_sizes_read_from_the_file_are_checked_before_use(
    tmp_path, layout, declared, size, stored, message
):
    path = tmp_path / "bad.pt"
    path.write_bytes(handmade(layout, declared, size, bytes(stored)))
    with pytest.raises(ModelError, match=message) as info:
        load_pickle(path, "bad.pt")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_truncated_checkpoints_are_one_line_errors(tmp_path, layout):
    data = pickled({"w": torch.ones(1000)}, layout)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) - 2000])
    with pytest.raises(ModelError, match="cannot read cut.pt") as info:
        load_pickle(path, "cut.pt")
    assert "\n" not in str(info.value)


# --- every loader that reads a pickle, with its files named as it expects -------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("as_file", [False, True])
def test_gigaam_checkpoint_with_code_is_refused(tmp_path, marker, layout, as_file):
    directory = tmp_path / "m"
    directory.mkdir()
    ckpt = directory / "v3_ctc.ckpt"
    ckpt.write_bytes(pickled({"cfg": Payload(marker), "state_dict": {}}, layout))
    target = ckpt if as_file else directory
    message = refused(lambda: polyasr.load(target, device="cpu"), marker)
    assert message.startswith(f"refusing {ckpt}: it names posix.system")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gigaam_hub_copy_with_code_is_refused(tmp_path, marker, layout):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gigaam"}))
    (tmp_path / "pytorch_model.bin").write_bytes(pickled({"x": Payload(marker)}, layout))
    refused(lambda: polyasr.load(tmp_path, device="cpu"), marker)


def _nemo_with_weights(tmp_path: Path, weights: bytes) -> Path:
    target = tmp_path / "model.nemo"
    source_path = GOLDEN / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"
    with tarfile.open(source_path) as source, tarfile.open(target, "w:") as out:
        for member in source.getmembers():
            if not member.isfile():
                continue
            data = source.extractfile(member).read()
            if member.name.endswith("model_weights.ckpt"):
                data = weights
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return target


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nemo_weights_with_code_are_refused_in_one_line(tmp_path, marker, layout):
    nemo = _nemo_with_weights(tmp_path, pickled({"encoder.x": Payload(marker)}, layout))
    message = refused(lambda: polyasr.load(nemo, device="cpu"), marker)
    assert message == (
        f"refusing {nemo}:model_weights.ckpt: it names posix.system, which could run code "
        "(nothing was executed)"
    )


def test_cli_refuses_a_hostile_model_with_one_line(tmp_path, marker, capsys):
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "v3_ctc.ckpt").write_bytes(pickled({"cfg": Payload(marker)}, "plain"))
    audio = Path(__file__).parent / "golden" / "gigaam-v3-ctc" / "inputs.npz"
    assert main(["transcribe", str(audio), "--model", str(directory), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: refusing") and "posix.system" in err[0]
    assert not marker.exists()


def test_whisper_never_reads_a_pickle(tmp_path, marker):
    target = tmp_path / "whisper"
    shutil.copytree(shared_path("golden", "whisper-tiny-80"), target)
    (target / "model.safetensors").unlink()
    (target / "pytorch_model.bin").write_bytes(pickled({"x": Payload(marker)}, "zip"))
    assert "no model.safetensors" in refused(lambda: polyasr.load(target, device="cpu"), marker)
