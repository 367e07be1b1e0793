"""GGUF files: every family quantized, read back and transcribed; the block formats exactly as
ggml defines them; malformed, truncated and hostile files refused with one line."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from conftest import shared_path

import polyasr
from polyasr.audio import load_audio
from polyasr.cli import main
from polyasr.errors import ModelError
from polyasr.metrics import agreement, wer
from polyasr.models.gguf import QUANTIZED, dequantize, int8_matrix, quantize, read_gguf, write_gguf
from polyasr.models.quantized import Int8Matrix, PackedMatrix, packed_kernels
from polyasr.registry import read_checkpoint

GOLDEN = Path(__file__).parent / "golden"
JFK = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country."  # noqa: E501


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_0", "Q4_K"])
def test_blocks_dequantize_exactly_as_the_gguf_reference(kind):
    """Our blocks read by gguf's own reference dequantizer give our values, and they are
    close to the input (each element within a fraction of its block's range)."""
    qtype = gguf.GGMLQuantizationType[kind]
    x = np.random.default_rng(0).standard_normal((48, 512)).astype(np.float32) * 3
    x[0, :256] = 0.0  # all-zero blocks (scale 0)
    x[1] = np.abs(x[1])  # no negative weight (Q4_K's min is 0)
    x[2] *= 1e-3
    blocks = quantize(torch.from_numpy(x), kind)
    assert blocks.nbytes == 48 * 512 // gguf.GGML_QUANT_SIZES[qtype][0] * QUANTIZED[kind]
    ours = dequantize(blocks, kind, (48, 512))
    reference = gguf.quants.dequantize(blocks, qtype)
    assert torch.equal(ours, torch.from_numpy(reference))
    error = (ours - torch.from_numpy(x)).abs().amax(dim=1)
    bound = {"Q8_0": 1 / 254, "Q4_0": 1 / 8, "Q4_K": 1 / 6}[kind] * 1.01
    assert bool((error <= torch.from_numpy(np.abs(x)).amax(dim=1) * bound + 1e-7).all())


def test_gguf_reference_q4_0_blocks_read_identically():
    """Blocks from gguf's own Q4_0 quantizer dequantize to its values."""
    x = np.random.default_rng(1).standard_normal((8, 256)).astype(np.float32)
    blocks = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q4_0)
    reference = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q4_0)
    assert torch.equal(dequantize(blocks, "Q4_0", (8, 256)), torch.from_numpy(reference))


def test_q8_0_rows_run_exactly_the_stored_values():
    """polyasr's Q8_0 gives a row's blocks one scale, so the int8 kernels' weights are the
    file's exactly; Q8_0 with per-block scales (another writer's) is rounded once more."""
    x = torch.randn(64, 256)
    ours = quantize(x, "Q8_0")
    matrix = int8_matrix(ours, "Q8_0", (64, 256))
    assert torch.equal(matrix.dequantize(), dequantize(ours, "Q8_0", (64, 256)))
    per_block = gguf.quants.quantize(x.numpy(), gguf.GGMLQuantizationType.Q8_0)
    matrix = int8_matrix(per_block, "Q8_0", (64, 256))
    stored = dequantize(per_block, "Q8_0", (64, 256))
    assert not torch.equal(matrix.dequantize(), stored)
    assert float((matrix.dequantize() - stored).norm() / stored.norm()) < 0.01


def test_q8_0_rows_are_read_in_place_and_others_a_few_rows_at_a_time(monkeypatch):
    """Row-uniform Q8_0 is a view of the blocks (no copy of the file's bytes); the 4-bit types
    are rounded to int8 when first used, in chunks of rows, as all at once."""
    x = torch.randn(40, 256)
    blocks = quantize(x, "Q8_0")
    matrix = int8_matrix(blocks, "Q8_0", (40, 256))
    assert matrix.values.untyped_storage().data_ptr() == blocks.ctypes.data
    ids = torch.tensor([[0, 39], [7, 7]])
    assert torch.equal(matrix[ids], dequantize(blocks, "Q8_0", (40, 256))[ids])
    assert torch.equal(matrix[3], matrix.dequantize()[3])
    q4 = quantize(x, "Q4_K")
    whole = Int8Matrix.quantize(dequantize(q4, "Q4_K", (40, 256)))
    monkeypatch.setattr("polyasr.models.gguf.REQUANTIZE_CHUNK", 256 * 3)
    chunked = int8_matrix(q4, "Q4_K", (40, 256))
    assert "values" not in vars(chunked)  # rounded when first used (packing), not when read
    assert torch.equal(chunked.values, whole.values) and torch.equal(chunked.scales, whole.scales)


def golden_source(name: str, tmp_path_factory) -> Path:
    if name != "qwen3-asr-tiny":
        return GOLDEN / name
    spec = importlib.util.spec_from_file_location("make_qwen3asr", GOLDEN / "make_qwen3asr.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make.materialize(GOLDEN / name, tmp_path_factory.mktemp(name))


def test_quantized_weights_stay_close_to_the_originals(tmp_path):
    """Relative error of every quantized matrix of a real-structure checkpoint."""
    _, checkpoint = read_checkpoint(GOLDEN / "parakeet-tdt-tiny")
    worst = {}
    for qtype in ("q8_0", "q4_0", "q4_k"):
        path = tmp_path / f"p.{qtype}.gguf"
        write_gguf(checkpoint, qtype, path)
        for quantized in (False, True):
            again = read_gguf(path, quantized=quantized).state
            worst[qtype, quantized] = max(
                float((dense(again[k]) - v.float()).norm() / v.float().norm())
                for k, v in checkpoint.state.items()
                if v.is_floating_point() and v.norm() > 0
            )
        assert any(isinstance(t, Int8Matrix) for t in again.values()) == packed_kernels()
    assert worst["q8_0", False] == worst["q8_0", True] < 0.01, worst
    assert max(worst["q4_0", True], worst["q4_k", True]) < 0.15, worst


def dense(tensor: torch.Tensor | PackedMatrix) -> torch.Tensor:
    return tensor.dequantize() if isinstance(tensor, PackedMatrix) else tensor.float()


@pytest.mark.parametrize(
    "name", ["gigaam-v3-ctc", "gigaam-v3-e2e-rnnt", "parakeet-tdt-tiny", "qwen3-asr-tiny"]
)
def test_every_family_runs_from_a_gguf_file(name, tmp_path, tmp_path_factory):
    """f16 gives fp32's text; Q8_0 (run by the int8 kernels) nearly: the untrained fixtures
    have near-ties that the int8 rounding tips (Parakeet's joint is all near-ties: once one
    tips, its decoding drifts; 0.44 of its characters agree). The 4-bit types are checked on
    real weights (whisper-base, below)."""
    source = golden_source(name, tmp_path_factory)
    samples = load_audio(shared_path("data", "en", "jfk.16k.flac")).mono()[: 16000 * 8]
    reference = polyasr.load(source, device="cpu").transcribe(samples, vad=False).text
    family, checkpoint = read_checkpoint(source)
    texts = {}
    for qtype in ("f16", "q8_0", "q4_0", "q4_k"):
        path = tmp_path / f"{name}.{qtype}.gguf"
        write_gguf(checkpoint, qtype, path, name)
        model = polyasr.load(path, device="cpu")
        assert model.family == family.name
        texts[qtype] = model.transcribe(samples, vad=False).text
        again = read_gguf(path)
        assert again.assets == checkpoint.assets and again.config == checkpoint.config
        assert set(again.state) == set(checkpoint.state)
    assert texts["f16"] == reference
    lowest = 0.3 if name == "parakeet-tdt-tiny" else 0.95
    assert agreement(reference, texts["q8_0"]) >= lowest


def test_whisper_base_quantized_keeps_its_words(tmp_path):
    source = shared_path("models", "whisper-base")
    sizes = {}
    for qtype in ("q8_0", "q4_0"):
        path = tmp_path / f"whisper-base.{qtype}.gguf"
        assert main(["quantize", str(source), "--qtype", qtype, "-o", str(path)]) == 0
        sizes[qtype] = path.stat().st_size
        result = polyasr.load(path, device="cpu").transcribe(
            shared_path("data", "en", "jfk.16k.flac"), beam_size=1
        )
        assert wer(JFK, result.text) <= 0.05
    published = (source / "model.safetensors").stat().st_size  # fp16
    assert sizes["q8_0"] < 0.6 * published and sizes["q4_0"] < 0.35 * published


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "ctc.gguf"
    write_gguf(read_checkpoint(GOLDEN / "gigaam-v3-ctc")[1], "q8_0", path)
    return path


def refused(path: Path) -> str:
    with pytest.raises(ModelError) as info:
        polyasr.load(path, device="cpu")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_truncated_and_garbled_files_are_one_line(small_file, tmp_path):
    data = small_file.read_bytes()
    for keep in (5, 40, len(data) // 2, len(data) * 9 // 10):
        cut = tmp_path / f"cut{keep}.gguf"
        cut.write_bytes(data[:keep])
        refused(cut)
    garbled = tmp_path / "garbled.gguf"
    garbled.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    refused(garbled)


def _patch_tensor_info(data: bytes, name: bytes, what: str, value: int) -> bytes:
    """`data` with one field of the tensor info of `name` replaced: its first dimension or
    its data offset."""
    at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    dims = struct.unpack_from("<I", data, at)[0]
    place = at + 4 if what == "dim" else at + 4 + 8 * dims + 4
    return data[:place] + struct.pack("<Q", value) + data[place + 8 :]


@pytest.mark.parametrize("what, value", [("offset", 1 << 40), ("dim", 1 << 40), ("dim", 7)])
def test_bad_offsets_and_sizes_are_refused(small_file, tmp_path, what, value):
    data = small_file.read_bytes()
    name = next(t.name for t in gguf.GGUFReader(small_file).tensors if not t.name.startswith("a"))
    hostile = tmp_path / "hostile.gguf"
    hostile.write_bytes(_patch_tensor_info(data, name.encode(), what, value))
    refused(hostile)


def test_a_gguf_file_of_another_program_is_one_line(tmp_path):
    other = tmp_path / "llama.gguf"
    writer = gguf.GGUFWriter(other, "llama")
    writer.add_tensor("w", np.zeros((4, 32), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert "not a polyasr model" in refused(other)


def test_a_gguf_file_is_rewritten_in_another_type(tmp_path, capsys):
    """`polyasr quantize FILE.gguf` reads the file's weights as plain tensors: its f32
    rewrite holds exactly the Q8_0 file's values and gives its text."""
    q8, f32 = tmp_path / "m.q8_0.gguf", tmp_path / "m.f32.gguf"
    assert main(["quantize", str(GOLDEN / "gigaam-v3-ctc"), "-o", str(q8)]) == 0
    assert main(["quantize", str(q8), "--qtype", "f32", "-o", str(f32)]) == 0
    assert "F32" in capsys.readouterr().out
    original = read_gguf(q8, quantized=False).state
    rewritten = read_gguf(f32).state
    assert all(torch.equal(rewritten[k].float(), v.float()) for k, v in original.items())
    samples = load_audio(shared_path("data", "en", "jfk.16k.flac")).mono()[: 16000 * 8]
    texts = [polyasr.load(p, device="cpu").transcribe(samples, vad=False).text for p in (q8, f32)]
    assert agreement(texts[1], texts[0]) >= 0.95


def test_quantize_errors_are_one_line(tmp_path, capsys):
    assert main(["quantize", str(GOLDEN / "gigaam-v3-ctc"), "--qtype", "q3", "-o", "x"]) == 2
    missing_dir = tmp_path / "no" / "such" / "dir" / "m.gguf"
    assert main(["quantize", str(GOLDEN / "gigaam-v3-ctc"), "-o", str(missing_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("error: ") for line in err) and len(err) == 2
