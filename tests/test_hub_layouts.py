"""Every short name of `polyasr models` loads from a Hugging Face cache laid out as a real
download of its repository leaves it (issue 15; the layouts and their sources are in
docs/hub-layouts.md, the fixtures in `hub_fixtures.py`), from a plain directory and from the
file; and the differences the evidence showed stay fixed."""

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import SHARED, shared_path
from hub_fixtures import (
    PARAKEET_NEMO,
    build_all,
    gigaam_builder,
    gigaam_ckpt,
    layouts,
    populate,
    selected,
)

import polyasr
from polyasr.cli import cli
from polyasr.errors import ModelError
from polyasr.hub import HUB_FILES, IGNORED, _patterns
from polyasr.registry import KNOWN_MODELS, MODELS, resolve_directory

LAYOUTS = {layout.short_name: layout for layout in layouts()}
OPTIONS = dict(vad=False, beam_size=1, temperatures=(0.0,), max_new_tokens=6)
FAMILIES = {"whisper": "whisper", "gigaam": "gigaam", "parakeet": "parakeet", "qwen3": "qwen3-asr"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    shared_path("golden", "whisper-tiny-80")
    return build_all(tmp_path_factory.mktemp("hub-layouts"), SHARED)


def offline(monkeypatch, cache: Path) -> None:
    """HF_HUB_OFFLINE=1 and HF_HUB_CACHE=cache, for this process (huggingface_hub read its
    settings at import) and for subprocesses."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    # scan_cache_dir (`polyasr models`) copied the setting when its module was first imported
    monkeypatch.setattr("huggingface_hub.utils._cache_manager.HF_HUB_CACHE", str(cache))


@pytest.fixture
def cache(built, monkeypatch):
    offline(monkeypatch, built[0])
    return built[0]


@pytest.fixture(scope="module")
def clip():
    from polyasr.audio import load_audio

    return load_audio(shared_path("data", "en", "jfk.16k.flac")).samples[0, :32000]


_loaded: dict[str, polyasr.AsrModel] = {}


def from_cache(name: str) -> polyasr.AsrModel:
    """The model `name` as the short name loads it (once per test session)."""
    if name not in _loaded:
        _loaded[name] = polyasr.load(name, device="cpu")
    return _loaded[name]


def weights(model: polyasr.AsrModel) -> dict[str, torch.Tensor]:
    recognizer = model.recognizer
    network = getattr(recognizer, "thinker", None) or recognizer.model
    return network.state_dict()


def assert_same_weights(a: polyasr.AsrModel, b: polyasr.AsrModel, tolerance: float = 0.0):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=tolerance, atol=tolerance, msg=key)


# --- the layouts and what the download patterns fetch ---------------------------------------


def test_every_short_name_has_a_published_layout():
    assert set(LAYOUTS) == set(KNOWN_MODELS)
    for name, layout in LAYOUTS.items():
        revision = "" if layout.revision == "main" else f"@{layout.revision}"
        assert KNOWN_MODELS[name] == layout.repo_id + revision


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_download_patterns_select_only_what_the_loader_reads(name):
    """From the real repository's file list: large-v2/v3 no longer fetch their sharded and
    fp32 copies, Parakeet only its .nemo, GigaAM and Qwen3-ASR no side files."""
    layout = LAYOUTS[name]
    assert selected(layout) == sorted(layout.fetched)


def test_unknown_repositories_skip_the_fp32_copies_and_pyannote_gets_its_weights():
    from huggingface_hub.utils import filter_repo_objects

    v3 = LAYOUTS["whisper-large-v3"].files
    generic = sorted(filter_repo_objects(v3, allow_patterns=HUB_FILES, ignore_patterns=IGNORED))
    assert "model.safetensors" in generic and not [f for f in generic if "fp32" in f]
    segmentation = [".gitattributes", "LICENSE", "README.md", "config.yaml", "example.png"]
    segmentation.append("pytorch_model.bin")
    patterns = _patterns("pyannote/segmentation-3.0")
    fetched = filter_repo_objects(segmentation, allow_patterns=patterns, ignore_patterns=IGNORED)
    assert sorted(fetched) == ["config.yaml", "pytorch_model.bin"]


def test_snapshot_download_finds_every_snapshot_offline(built):
    """huggingface_hub itself, in a fresh process with HF_HUB_OFFLINE=1 and HF_HUB_CACHE set,
    resolves every short name's revision to its snapshot and finds it complete."""
    cache = built[0]
    requests = [
        [it.repo_id, it.revision, _patterns(it.repo_id), it.commit, list(it.fetched)]
        for it in LAYOUTS.values()
    ]
    script = (
        "import json, os, sys\n"
        "from huggingface_hub import snapshot_download\n"
        "for repo, revision, patterns, commit, fetched in json.loads(sys.argv[1]):\n"
        "    path = snapshot_download(repo, revision=revision, allow_patterns=patterns,\n"
        f"        ignore_patterns={IGNORED!r}, local_files_only=True)\n"
        "    assert os.path.basename(path) == commit, (repo, path)\n"
        "    assert sorted(os.listdir(path)) == sorted(fetched), (repo, os.listdir(path))\n"
        "print('ok', len(json.loads(sys.argv[1])))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(requests)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", str(len(LAYOUTS))]


# --- every short name, from the cache, a directory and the file -----------------------------


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_short_name_loads_from_the_cache_and_transcribes(cache, clip, name):
    layout = LAYOUTS[name]
    directory, display = resolve_directory(name)
    assert directory.parent.name == "snapshots" and directory.name == layout.commit
    assert directory.parent.parent.name == "models--" + layout.repo_id.replace("/", "--")
    model = from_cache(name)
    assert model.name == name == display
    assert model.family == FAMILIES[next(k for k in FAMILIES if name.startswith(k))]
    transcript = model.transcribe(clip, sample_rate=16000, **OPTIONS)
    assert isinstance(transcript.text, str)
    assert transcript.duration == pytest.approx(2.0)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_same_fixture_loads_from_a_directory_and_from_the_file(cache, built, tmp_path, name):
    layout, directory = LAYOUTS[name], built[1][name]
    assert_same_weights(polyasr.load(directory, device="cpu"), from_cache(name))
    if layout.single_file and layout.single_file.endswith(".nemo"):
        assert_same_weights(
            polyasr.load(directory / layout.single_file, device="cpu"), from_cache(name)
        )
    elif layout.single_file:  # GigaAM: the same model as the published fp32 .ckpt
        ckpt = gigaam_ckpt(layout.revision, tmp_path)
        assert_same_weights(polyasr.load(ckpt, device="cpu"), from_cache(name), 1e-3)


def test_models_command_shows_the_verified_column_and_the_cached_models(cache):
    output = CliRunner().invoke(cli, ["models"]).output
    header, *rows = output.splitlines()
    assert header.split() == ["name", "hub", "id", "verified", "downloaded"]
    for name, model in MODELS.items():
        row = next(r for r in rows if r.split()[:1] == [name]).split()
        assert row[2] == ("yes" if model.verified else "no")
        assert row[3] != "-"  # every fixture repo, GigaAM's branches too, is in the cache
        assert model.verified or name in output.split("not verified", 1)[1]


# --- what a real snapshot can lack -----------------------------------------------------------


def test_an_incomplete_snapshot_is_not_used_offline(built, tmp_path, monkeypatch):
    """A selected file missing from the snapshot (an interrupted download): the tree listing
    says so, and offline the load stops with the one-line "unreachable" message."""
    layout = LAYOUTS["whisper-large-v3-turbo"]
    snapshot = populate(tmp_path / "hub", layout, built[1][layout.short_name])
    (snapshot / "tokenizer.json").unlink()
    offline(monkeypatch, tmp_path / "hub")
    with pytest.raises(ModelError, match="hub is unreachable .* not in the local cache"):
        polyasr.load(layout.short_name, device="cpu")


def test_a_nemo_repository_without_a_nemo_file_is_one_clear_line(tmp_path, monkeypatch):
    layout = LAYOUTS["parakeet-tdt-0.6b-v3"]
    files = {k: v for k, v in layout.files.items() if not k.endswith(".nemo")}
    layout = replace(layout, files=files, fetched=())
    (tmp_path / "files").mkdir()
    populate(tmp_path / "hub", layout, tmp_path / "files")
    offline(monkeypatch, tmp_path / "hub")
    with pytest.raises(ModelError) as info:
        polyasr.load(layout.short_name, device="cpu")
    assert str(info.value) == (
        "model 'nvidia/parakeet-tdt-0.6b-v3' has no .nemo file on the hub: polyasr reads NVIDIA "
        "models from their .nemo archive; pass a local .nemo with --model PATH"
    )


# --- regressions for the differences the evidence showed -------------------------------------


def test_gigaam_hub_weights_in_bfloat16_load_as_in_float16(tmp_path):
    """The 16-bit dtype of the hub's pytorch_model.bin is not known (fp16 or bf16): both load."""
    models = []
    for dtype in (torch.float16, torch.bfloat16):
        out = tmp_path / str(dtype)
        out.mkdir()
        gigaam_builder("e2e_rnnt", dtype)(out, SHARED)
        models.append(polyasr.load(out, device="cpu"))
    assert_same_weights(*models, tolerance=2e-2)


def test_gigaam_character_revisions_read_their_vocabulary_from_config_json(built):
    for name in ("gigaam-v3-ctc", "gigaam-v3-rnnt"):
        directory = built[1][name]
        assert not (directory / "tokenizer.model").exists()
        config = json.loads((directory / "config.json").read_text())
        vocabulary = config["cfg"]["model"]["cfg"]["decoding"]["vocabulary"]
        tokenizer = polyasr.load(directory, device="cpu").recognizer.tokenizer
        assert tokenizer.vocabulary == vocabulary and len(vocabulary) == 33


def _edited_nemo(tmp_path: Path, edit) -> Path:
    target = tmp_path / "edited.nemo"
    with tarfile.open(PARAKEET_NEMO) as source, tarfile.open(target, "w:") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""
            if member.name.endswith("model_config.yaml"):
                config = yaml.safe_load(data)
                edit(config)
                data = yaml.safe_dump(config).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return target


def test_parakeet_without_use_bias_in_its_yaml_follows_the_weights(tmp_path, clip):
    """NeMo's default is use_bias true; a YAML that omits the key must not build bias
    modules the bias-free weights lack."""
    original = polyasr.load(PARAKEET_NEMO, device="cpu")
    edited = polyasr.load(
        _edited_nemo(tmp_path, lambda c: c["encoder"].pop("use_bias")), device="cpu"
    )
    assert edited.recognizer.model.dims.use_bias is False
    assert_same_weights(original, edited)
    options = dict(OPTIONS, max_new_tokens=None)
    first = original.transcribe(clip, sample_rate=16000, **options)
    assert edited.transcribe(clip, sample_rate=16000, **options).text == first.text


def test_parakeet_without_xscaling_in_its_yaml_takes_nemos_default(tmp_path):
    edited = polyasr.load(
        _edited_nemo(tmp_path, lambda c: c["encoder"].pop("xscaling")), device="cpu"
    )
    assert edited.recognizer.model.dims.xscaling is True


def _qwen_tokenizer_assets(gap: bool) -> dict[str, bytes]:
    """A byte-level BPE of 258 tokens and five added tokens, the last two after a gap of two
    ids when `gap` (the files transformers was checked on)."""
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    vocab.update({"Ġt": 256, "he": 257})
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_pad|>", "<asr_text>"]
    ids = [258, 259, 260, 263, 264] if gap else [258, 259, 260, 261, 262]
    added = {
        str(i): {"content": name, "special": name != "<asr_text>", "normalized": False}
        for i, name in zip(ids, names)
    }
    config = {"added_tokens_decoder": added, "eos_token": "<|im_end|>"}
    return {
        "vocab.json": json.dumps(vocab).encode(),
        "merges.txt": b"#version: 0.2\n\xc4\xa0 t\nh e\n",
        "tokenizer_config.json": json.dumps(config).encode(),
    }


@pytest.mark.parametrize("gap", [False, True])
def test_qwen3asr_added_token_ids_with_a_gap_close_up_as_in_transformers(gap):
    """transformers' fast Qwen2 tokenizer (4.57.6 and 5.24.0, what qwen-asr and vLLM load)
    gives these tokens 258..262 whether or not tokenizer_config.json skips ids; the check
    ran on the same files (the slow tokenizer alone keeps 263 and 264)."""
    from polyasr.models.qwen3asr.tokenizer import Qwen3AsrTokenizer

    tokenizer = Qwen3AsrTokenizer.from_assets(_qwen_tokenizer_assets(gap), "fixture")
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_pad|>", "<asr_text>"]
    assert [tokenizer.token_id(n) for n in names] == [258, 259, 260, 261, 262]
    assert tokenizer.encode("<|im_start|>the<|audio_pad|><asr_text>") == [259, 83, 257, 261, 262]


def test_qwen3asr_with_a_gap_after_the_audio_pad_loads(built, tmp_path, clip):
    """Ids 151671-151703 were not seen: a gap there must not break loading."""
    import shutil

    directory = tmp_path / "qwen"
    shutil.copytree(built[1]["qwen3-asr-0.6b"], directory)
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["added_tokens_decoder"].pop("151690")
    path.write_text(json.dumps(config))
    model = polyasr.load(directory, device="cpu")
    assert model.recognizer.tokenizer.token_id("<asr_text>") == 151703
    assert isinstance(model.transcribe(clip, sample_rate=16000, **OPTIONS).text, str)
