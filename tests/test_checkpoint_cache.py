"""The checkpoint cache: a second load comes from the memory-mapped copy without reading the
published files and gives the same model; a changed source, a broken copy, an unwritable
folder and a disabled cache all still load correctly."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path

import polyasr
from polyasr.models import gigaam, parakeet, qwen3asr, whisper
from polyasr.models.checkpoint_cache import cache_file
from polyasr.registry import read_checkpoint

GOLDEN = Path(__file__).parent / "golden"
READERS = [
    (whisper, "read_whisper"),
    (gigaam, "read_gigaam"),
    (parakeet, "read_parakeet"),
    (qwen3asr, "read_qwen3asr"),
]
NOISE = np.random.default_rng(5).standard_normal(32000).astype(np.float32) * 0.1
OPTIONS = dict(vad=False, beam_size=1, temperatures=(0.0,), max_new_tokens=8)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder, the cache on."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("POLYASR_CACHE", str(folder))
    monkeypatch.delenv("POLYASR_CHECKPOINT_CACHE", raising=False)
    return folder


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """How often each family's `read` runs (the registry imports it at each load)."""
    counts: Counter = Counter()

    def counting(name, read):
        def counted(path):
            counts[name] += 1
            return read(path)

        return counted

    for module, name in READERS:
        monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    return counts


def copy_model(name: str, target: Path) -> Path:
    """A private copy of a small model of each family (its files may then be changed)."""
    if name == "gigaam":
        folder = shutil.copytree(GOLDEN / "gigaam-v3-e2e-rnnt", target)
        return folder / "v3_e2e_rnnt.ckpt"  # a file with its tokenizer beside it
    if name == "parakeet":
        target.mkdir()
        nemo = GOLDEN / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"
        return Path(shutil.copy(nemo, target))
    if name == "whisper":
        folder = shutil.copytree(shared_path("golden", "whisper-tiny-80"), target)
        for path in folder.iterdir():
            path.chmod(0o644)
        return folder
    spec = importlib.util.spec_from_file_location("make_qwen3asr", GOLDEN / "make_qwen3asr.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make.materialize(GOLDEN / "qwen3-asr-tiny", target)


def weights(model) -> dict[str, torch.Tensor]:
    recognizer = model.recognizer
    modules = [m for m in vars(recognizer).values() if isinstance(m, torch.nn.Module)]
    return {f"{i}.{k}": v for i, m in enumerate(modules) for k, v in m.state_dict().items()}


def cache_files(cache: Path) -> list[Path]:
    folder = cache / "checkpoints"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("family", ["gigaam", "parakeet"])
def test_second_load_comes_from_the_copy_and_gives_the_same_model(
    family, cache, reads, tmp_path, monkeypatch
):
    path = copy_model(family, tmp_path / "model")
    monkeypatch.setenv("POLYASR_CHECKPOINT_CACHE", "off")
    published = polyasr.load(path, device="cpu")
    monkeypatch.delenv("POLYASR_CHECKPOINT_CACHE")
    first = polyasr.load(path, device="cpu")
    assert sum(reads.values()) == 2
    assert cache_files(cache) == [cache_file(str(path.resolve()))]
    second = polyasr.load(path, device="cpu")
    assert sum(reads.values()) == 2, "the second load read the published files"
    expected = weights(published)
    for model in (first, second):
        got = weights(model)
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected)
    texts = {m.transcribe(NOISE, **OPTIONS).text for m in (published, first, second)}
    assert len(texts) == 1


@pytest.mark.parametrize("family", ["whisper", "qwen3-asr"])
def test_memory_mapped_weights_are_not_copied(family, cache, reads, tmp_path):
    """Safetensors are memory-mapped as read: a copy would mostly cost disk space."""
    path = copy_model(family, tmp_path / "model")
    polyasr.load(path, device="cpu")
    polyasr.load(path, device="cpu")
    assert sum(reads.values()) == 2 and cache_files(cache) == []


@pytest.mark.parametrize("change", ["mtime", "size", "tokenizer"])
def test_a_changed_model_file_is_read_again(change, cache, reads, tmp_path):
    ckpt = copy_model("gigaam", tmp_path / "model")
    polyasr.load(ckpt, device="cpu")
    if change == "mtime":
        info = ckpt.stat()
        os.utime(ckpt, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    elif change == "size":
        with open(ckpt, "ab") as handle:
            handle.write(b"\0")  # after the zip's end: torch still reads it
    else:  # the tokenizer beside the checkpoint is also one of its files
        tokenizer = ckpt.parent / "v3_e2e_rnnt_tokenizer.model"
        tokenizer.write_bytes(tokenizer.read_bytes())
        os.utime(tokenizer, ns=(0, 10**9))
    polyasr.load(ckpt, device="cpu")
    assert reads["read_gigaam"] == 2
    polyasr.load(ckpt, device="cpu")
    assert reads["read_gigaam"] == 2, "the rewritten copy was not used"
    assert len(cache_files(cache)) == 1


def test_every_spelling_of_a_path_shares_one_copy(cache, reads, tmp_path, monkeypatch):
    nemo = copy_model("parakeet", tmp_path / "model")
    (tmp_path / "link.nemo").symlink_to(nemo)
    monkeypatch.chdir(nemo.parent)
    for spelling in (nemo, Path(nemo.name), Path("..") / "link.nemo"):
        polyasr.load(spelling, device="cpu")
    assert reads["read_parakeet"] == 1 and len(cache_files(cache)) == 1


def test_files_written_beside_the_model_keep_the_copy_valid(cache, reads, tmp_path):
    nemo = copy_model("parakeet", tmp_path / "model")
    polyasr.load(nemo, device="cpu")
    (nemo.parent / "talk.srt").write_text("1\n")
    polyasr.load(nemo, device="cpu")
    assert reads["read_parakeet"] == 1


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "foreign"])
def test_a_broken_copy_is_rebuilt(damage, cache, reads, tmp_path):
    from safetensors.torch import save_file

    nemo = copy_model("parakeet", tmp_path / "model")
    polyasr.load(nemo, device="cpu")
    (copy,) = cache_files(cache)
    if damage == "truncated":
        data = copy.read_bytes()
        copy.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        copy.write_bytes(os.urandom(4096))
    elif damage == "empty":
        copy.write_bytes(b"")
    else:  # a valid safetensors file that is not a polyasr copy
        save_file({"x": torch.zeros(3)}, copy)
    model = polyasr.load(nemo, device="cpu")
    assert reads["read_parakeet"] == 2 and model.recognizer.family == "parakeet"
    polyasr.load(nemo, device="cpu")
    assert reads["read_parakeet"] == 2, "the copy was not rebuilt"


def test_an_unwritable_cache_folder_does_not_fail_the_load(reads, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("POLYASR_CACHE", str(blocker / "cache"))  # cannot be created
    ckpt = copy_model("gigaam", tmp_path / "model")
    with pytest.warns(UserWarning, match="checkpoint cache not written .*POLYASR_CHECKPOINT_CACHE"):
        model = polyasr.load(ckpt, device="cpu")
    assert model.recognizer.family == "gigaam" and reads["read_gigaam"] == 1


def test_a_full_disk_leaves_no_partial_file(cache, reads, tmp_path, monkeypatch):
    import safetensors.torch

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    ckpt = copy_model("gigaam", tmp_path / "model")
    with pytest.warns(UserWarning, match="No space left on device"):
        polyasr.load(ckpt, device="cpu")
    assert cache_files(cache) == []


def test_a_disabled_cache_writes_nothing(cache, reads, tmp_path, monkeypatch):
    monkeypatch.setenv("POLYASR_CHECKPOINT_CACHE", "off")
    nemo = copy_model("parakeet", tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        polyasr.load(nemo, device="cpu")
        polyasr.load(nemo, device="cpu")
    assert reads["read_parakeet"] == 2 and not cache.exists()


def test_leftovers_are_removed_at_the_next_write(cache, reads, tmp_path):
    gone = copy_model("parakeet", tmp_path / "gone")
    polyasr.load(gone, device="cpu")
    (stale_copy,) = cache_files(cache)
    shutil.rmtree(gone.parent)
    folder = cache / "checkpoints"
    killed, writing = folder / ".killed.tmp", folder / ".writing.tmp"
    killed.write_bytes(b"x")
    writing.write_bytes(b"x")
    day_ago = time.time() - 25 * 3600
    os.utime(killed, (day_ago, day_ago))
    polyasr.load(copy_model("gigaam", tmp_path / "model"), device="cpu")
    left = cache_files(cache)
    assert stale_copy not in left and killed not in left and writing in left
    assert len(left) == 2


def test_sixteen_bit_weights_are_stored_widened_and_used_without_a_copy(cache, tmp_path):
    """GigaAM's hub weights are a 16-bit pickle; the copy holds them in float32, which the
    CPU model then uses in place (memory-mapped), with no conversion at each load."""
    from hub_fixtures import gigaam_builder

    gigaam_builder("ctc")(tmp_path, tmp_path)
    read_checkpoint(tmp_path)
    _, checkpoint = read_checkpoint(tmp_path)
    floats = {t.dtype for t in checkpoint.state.values() if t.is_floating_point()}
    assert floats == {torch.float32}
    weight = checkpoint.state["encoder.layers.0.feed_forward1.linear1.weight"]
    recognizer = gigaam.build_gigaam(checkpoint, device="cpu", dtype="float32")
    assert recognizer.model.encoder.layers[0].feed_forward1.linear1.weight.data_ptr() == (
        weight.data_ptr()
    )
