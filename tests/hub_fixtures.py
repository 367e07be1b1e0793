"""Hugging Face caches laid out as a real download of the repositories behind `polyasr models`.

Each `Layout` is one short name: its repository and revision, the commit a download resolves
it to, the repository's real file list (docs/hub-layouts.md) and a builder that writes tiny
random-weight files under the real names, keys, prefixes and dtypes. `populate` stores them
with huggingface_hub's own layout and functions: `models--org--name/blobs/<git sha1 or LFS
sha256>`, `snapshots/<commit>/<file>` symlinks, `refs/<revision>` and the tree listing
`trees/<commit>.json` a download records, so `snapshot_download(local_files_only=True)` checks
the snapshot holds every file its patterns select from the real list.

Commits pinned in public manifests are used as such; the others (`pinned=False`) are stand-ins
derived from the repository and revision names.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from polyasr.safe_pickle import load_pickle, plain

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
LFS_SUFFIXES = (".bin", ".safetensors", ".nemo", ".model", ".msgpack", ".h5", ".ckpt", ".pt")
"""Stored through git LFS by the hub's default .gitattributes (blob named by sha256)."""

Builder = Callable[[Path, Path], None]
"""(output directory, shared folder) -> writes the fixture's files."""


@dataclass(frozen=True)
class Layout:
    short_name: str
    repo_id: str
    revision: str
    """The branch a short name downloads ("main" when it names none)."""
    commit: str
    pinned: bool
    """Whether `commit` is the real one, seen pinned in a public manifest."""
    files: dict[str, int | None]
    """The repository's files at `commit` and their sizes where known."""
    fetched: tuple[str, ...]
    """What polyasr's download patterns must select from `files`."""
    build: Builder = field(repr=False)
    single_file: str | None = None
    """A file of the fixture that loads on its own (`.nemo`; GigaAM's published `.ckpt`)."""


def stand_in_commit(repo_id: str, revision: str) -> str:
    return hashlib.sha1(f"polyasr fixture {repo_id}@{revision}".encode()).hexdigest()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --- Whisper ----------------------------------------------------------------------------------

WHISPER_SIDE_FILES = {
    ".gitattributes": None,
    "README.md": None,
    "added_tokens.json": 34604,
    "config.json": None,
    "generation_config.json": None,
    "merges.txt": None,
    "normalizer.json": None,
    "preprocessor_config.json": None,
    "special_tokens_map.json": None,
    "tokenizer.json": None,
    "tokenizer_config.json": None,
    "vocab.json": None,
}
WHISPER_OLD_WEIGHTS = {
    "model.safetensors": None,
    "pytorch_model.bin": None,
    "tf_model.h5": None,
    "flax_model.msgpack": None,
}
WHISPER_FETCHED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json")


def _whisper_weights(source: Path, dtype: torch.dtype, vocab: int) -> dict[str, torch.Tensor]:
    state = load_file(str(source / "model.safetensors"))
    state["model.decoder.embed_tokens.weight"] = state["model.decoder.embed_tokens.weight"][:vocab]
    return {k: v.to(dtype).contiguous() for k, v in state.items()}


def _save_shards(state: dict[str, torch.Tensor], out: Path, name: str, index: str) -> None:
    """Two shards named `name`.format(k) and their index, as transformers writes them."""
    names = sorted(state)
    weight_map = {}
    for k, part in enumerate((names[::2], names[1::2]), start=1):
        file = name.format(k)
        save_file({n: state[n] for n in part}, str(out / file), metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    index_data = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / index).write_text(json.dumps(index_data, indent=2) + "\n")


def english_tokenizer_json() -> str:
    """A stand-in for the English-only Whisper `tokenizer.json` (the real one, GPT-2's BPE, is
    not at hand): GPT-2's byte alphabet and first seven merges at their real ids (` the` is
    262), filler tokens up to 50255 and the real special tokens at 50256 .. 51863."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    rest = [b for b in range(256) if b not in printable]
    chars = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(rest))]
    vocab = {c: i for i, c in enumerate(chars)}
    merges = ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab.update({f"<fill_{i}>": i for i in range(len(vocab), 50256)})
    from polyasr.models.whisper.tokenizer import LANGUAGES

    specials = ["<|endoftext|>", "<|startoftranscript|>"]
    specials += [f"<|{code}|>" for code in LANGUAGES[:99]]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>"]
    specials += ["<|nocaptions|>", "<|notimestamps|>"]
    specials += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    added = [
        {
            "id": 50256 + i,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": i < 2 + 99 + 6,
        }
        for i, token in enumerate(specials)
    ]
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return json.dumps(
        {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", **byte_level},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", **byte_level},
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": "",
                "end_of_word_suffix": "",
                "fuse_unk": False,
                "byte_fallback": False,
                "vocab": vocab,
                "merges": merges,
            },
        },
        ensure_ascii=False,
    )


def whisper_builder(
    golden: str,
    dtype: torch.dtype,
    english: bool = False,
    fp32_shards: str | None = None,
) -> Builder:
    """A Whisper repository from a shared golden fixture (`whisper-tiny-80`: 51865 tokens,
    `whisper-tiny-128`: 51866): its config and tokenizer, weights in the repo's dtype;
    `english` makes the 51864-token `.en` layout; `fp32_shards` adds the sharded copies some
    repos hold beside `model.safetensors` ("v2": `model-0000k-of-00002`, "v3": `model.fp32-*`)."""

    def build(out: Path, shared: Path) -> None:
        source = shared / "golden" / golden
        config = json.loads((source / "config.json").read_text())
        generation = json.loads((source / "generation_config.json").read_text())
        vocab = 51864 if english else config["vocab_size"]
        config["torch_dtype"] = str(dtype).removeprefix("torch.")
        if english:
            config.update(vocab_size=vocab, bos_token_id=50256, eos_token_id=50256)
            config.update(pad_token_id=50256, decoder_start_token_id=50257)
            config["begin_suppress_tokens"] = [220, 50256]
            config["forced_decoder_ids"] = [[1, 50362]]
            config["suppress_tokens"] = [t for t in config["suppress_tokens"] if t < 50256]
            for key in ("lang_to_id", "task_to_id"):
                generation.pop(key, None)
            generation.update(is_multilingual=False, no_timestamps_token_id=50362)
            generation.update(bos_token_id=50257, eos_token_id=50256, pad_token_id=50256)
            generation.update(decoder_start_token_id=50257, prev_sot_token_id=50360)
            generation.update(begin_suppress_tokens=[220, 50256], forced_decoder_ids=[[1, 50362]])
            generation["suppress_tokens"] = config["suppress_tokens"]
            (out / "tokenizer.json").write_text(english_tokenizer_json(), encoding="utf-8")
        else:
            shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        state = _whisper_weights(source, dtype, vocab)
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        full = {k: v.float() for k, v in state.items()}
        if fp32_shards == "v2":
            names = ("model-{:05d}-of-00002.safetensors", "model.safetensors.index.json")
            _save_shards(full, out, *names)
        elif fp32_shards == "v3":
            names = ("model.fp32-{:05d}-of-00002.safetensors", "model.safetensors.index.fp32.json")
            _save_shards(full, out, *names)

    return build


def whisper_layouts() -> list[Layout]:
    v2_shards = {
        "model-00001-of-00002.safetensors": 4993448880,
        "model-00002-of-00002.safetensors": 1180663192,
        "model.safetensors.index.json": 112000,
    }
    v3_extra = {
        "model.fp32-00001-of-00002.safetensors": 4993448880,
        "model.fp32-00002-of-00002.safetensors": 1180663192,
        "model.safetensors.index.fp32.json": 117893,
        "pytorch_model.fp32-00001-of-00002.bin": None,
        "pytorch_model.fp32-00002-of-00002.bin": None,
        "pytorch_model.bin.index.fp32.json": None,
    }
    pins = {
        "base": "e37978b90ca9030d5170a5c07aadb050351a65bb",
        "small": "973afd24965f72e36ca33b3055d56a652f456b4d",
        "medium": "abdf7c39ab9d0397620ccaea8974cc764cd0953e",
        "large-v2": "b67b6db88a44a61b8c15f32f9a7fa892a1285aa0",
        "large-v3": "06f233fe06e710322aca913c1bc4249a0d71fce1",
        "large-v3-turbo": "41f01f3fe87f28c78e2fbf8b568835947dd65ed9",
    }
    fp32, fp16 = torch.float32, torch.float16
    old = {**WHISPER_SIDE_FILES, **WHISPER_OLD_WEIGHTS}
    specs: list[tuple[str, dict[str, int | None], Builder]] = []
    for size in ("tiny", "base", "small", "medium"):
        specs.append((size, old, whisper_builder("whisper-tiny-80", fp32)))
        specs.append((f"{size}.en", old, whisper_builder("whisper-tiny-80", fp32, english=True)))
    specs += [
        ("large", old, whisper_builder("whisper-tiny-80", fp32)),
        (
            "large-v2",
            {**old, **v2_shards},
            whisper_builder("whisper-tiny-80", fp32, fp32_shards="v2"),
        ),
        (
            "large-v3",
            {**old, "model.safetensors": 3087130976, **v3_extra},
            whisper_builder("whisper-tiny-128", fp16, fp32_shards="v3"),
        ),
        (
            "large-v3-turbo",
            {**WHISPER_SIDE_FILES, "model.safetensors": 1617824864},
            whisper_builder("whisper-tiny-128", fp16),
        ),
    ]  # fmt: skip
    layouts = []
    for size, files, build in specs:
        repo = f"openai/whisper-{size}"
        commit = pins.get(size) or stand_in_commit(repo, "main")
        layouts.append(
            Layout(
                f"whisper-{size}", repo, "main", commit, size in pins, files, WHISPER_FETCHED, build
            )
        )
    return layouts


# --- GigaAM v3 --------------------------------------------------------------------------------

GIGAAM_REPO = "ai-sage/GigaAM-v3"
GIGAAM_TARGETS = {
    "gigaam.preprocess.FeatureExtractor": "modeling_gigaam.FeatureExtractor",
    "gigaam.encoder.ConformerEncoder": "modeling_gigaam.ConformerEncoder",
    "gigaam.decoder.CTCHead": "modeling_gigaam.CTCHead",
    "gigaam.decoder.RNNTHead": "modeling_gigaam.RNNTHead",
    "gigaam.decoding.CTCGreedyDecoding": "modeling_gigaam.CTCGreedyDecoding",
    "gigaam.decoding.RNNTGreedyDecoding": "modeling_gigaam.RNNTGreedyDecoding",
}


def _golden_gigaam(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    ckpt = next((GOLDEN / name).glob("*.ckpt"))
    data = load_pickle(ckpt, str(ckpt), inert=("omegaconf",))
    return plain(data["cfg"]), dict(data["state_dict"])


def gigaam_checkpoint(variant: str) -> tuple[dict, dict[str, torch.Tensor], bytes | None]:
    """cfg (the `gigaam` package's), fp32 state and SentencePiece model of a tiny v3 model of
    `variant`, from the committed golden checkpoints: `ctc` and `e2e_rnnt` as they are,
    `e2e_ctc` the CTC encoder with a head over the 96 SentencePiece pieces, `rnnt` the RNN-T
    model with a head over the 33 characters (new head rows seeded)."""
    ctc_cfg, ctc_state = _golden_gigaam("gigaam-v3-ctc")
    rnnt_cfg, rnnt_state = _golden_gigaam("gigaam-v3-e2e-rnnt")
    sp = (GOLDEN / "gigaam-v3-e2e-rnnt" / "v3_e2e_rnnt_tokenizer.model").read_bytes()
    chars = ctc_cfg["decoding"]["vocabulary"]
    generator = torch.Generator().manual_seed(15)

    def rows(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.3

    if variant == "ctc":
        cfg, state, tokenizer = ctc_cfg, ctc_state, None
    elif variant == "e2e_rnnt":
        cfg, state, tokenizer = rnnt_cfg, rnnt_state, sp
        cfg["decoding"]["model_path"] = "tokenizer.model"
    elif variant == "e2e_ctc":
        cfg, state, tokenizer = ctc_cfg, ctc_state, sp
        d = state["head.decoder_layers.0.weight"].shape[1]
        state["head.decoder_layers.0.weight"] = rows(97, d, 1)
        state["head.decoder_layers.0.bias"] = rows(97)
        cfg["head"]["num_classes"] = 97
        cfg["decoding"] = {
            "_target_": "gigaam.decoding.CTCGreedyDecoding",
            "vocabulary": None,
            "model_path": "tokenizer.model",
        }
    else:  # rnnt: characters
        cfg, state, tokenizer = rnnt_cfg, rnnt_state, None
        classes = len(chars) + 1
        pred, joint = state["head.decoder.embed.weight"].shape[1], state["head.joint.enc.weight"]
        state["head.decoder.embed.weight"] = rows(classes, pred)
        state["head.joint.joint_net.1.weight"] = rows(classes, joint.shape[0])
        state["head.joint.joint_net.1.bias"] = rows(classes)
        cfg["head"]["decoder"]["num_classes"] = cfg["head"]["joint"]["num_classes"] = classes
        cfg["decoding"] = {"_target_": "gigaam.decoding.RNNTGreedyDecoding", "vocabulary": chars}
    cfg.pop("hashes", None)
    cfg["model_name"] = f"v3_{variant}"
    return cfg, state, tokenizer


def gigaam_hub_config(cfg: dict) -> dict:
    """config.json as `GigaAMConfig.save_pretrained` writes it: the package cfg nested under
    cfg.model.cfg with the remote-code class names."""

    def renamed(node):
        if isinstance(node, dict):
            return {
                k: GIGAAM_TARGETS.get(v, v) if k == "_target_" else renamed(v)
                for k, v in node.items()
            }
        return [renamed(v) for v in node] if isinstance(node, list) else node

    return {
        "architectures": ["GigaAMModel"],
        "auto_map": {
            "AutoConfig": "modeling_gigaam.GigaAMConfig",
            "AutoModel": "modeling_gigaam.GigaAMModel",
        },
        "cfg": {"model": {"_target_": "modeling_gigaam.GigaAMASR", "cfg": renamed(cfg)}},
        "model_type": "gigaam",
        "torch_dtype": "float16",
        "transformers_version": "4.57.1",
    }  # fmt: skip


def gigaam_builder(variant: str, dtype: torch.dtype = torch.float16) -> Builder:
    """The hub copy (`config.json`, `pytorch_model.bin`: the state under `model.` in 16 bits,
    `tokenizer.model` for e2e) and, beside it, the same model as the published
    `v3_<variant>.ckpt` (fp32, cfg + state_dict) with its `v3_<variant>_tokenizer.model`."""

    def build(out: Path, shared: Path) -> None:
        cfg, state, tokenizer = gigaam_checkpoint(variant)
        (out / "config.json").write_text(json.dumps(gigaam_hub_config(cfg), indent=2) + "\n")
        hub_state = {f"model.{k}": v.to(dtype).contiguous() for k, v in state.items()}
        torch.save(hub_state, out / "pytorch_model.bin")
        if tokenizer is not None:
            (out / "tokenizer.model").write_bytes(tokenizer)

    return build


def gigaam_ckpt(variant: str, out: Path) -> Path:
    """The same fixture in the layout of the published CDN file: `v3_<variant>.ckpt`."""
    cfg, state, tokenizer = gigaam_checkpoint(variant)
    if tokenizer is not None:
        (out / f"v3_{variant}_tokenizer.model").write_bytes(tokenizer)
        cfg["decoding"]["model_path"] = f"v3_{variant}_tokenizer.model"
    torch.save({"cfg": cfg, "state_dict": state}, out / f"v3_{variant}.ckpt")
    return out / f"v3_{variant}.ckpt"


def gigaam_layouts() -> list[Layout]:
    pins = {
        "e2e_rnnt": "ec1dc1f01d0d627ab2c0d3acc1e235702300d95e",
        "ctc": "15ef3b5a88da78f93134b3cb7f015c70aefa8946",
    }
    layouts = []
    for variant in ("ctc", "rnnt", "e2e_ctc", "e2e_rnnt"):
        files: dict[str, int | None] = {
            ".gitattributes": 1519,
            "README.md": 2928,
            "config.json": 1867,
            "modeling_gigaam.py": 49135,
            "pytorch_model.bin": 441719299 if variant == "ctc" else None,
        }
        fetched = ("config.json", "pytorch_model.bin")
        if variant.startswith("e2e"):
            files["tokenizer.model"] = 255336 if variant == "e2e_rnnt" else None
            fetched += ("tokenizer.model",)
        if variant == "e2e_rnnt":
            files["pytorch_model.bin"] = 448928167
        commit = pins.get(variant) or stand_in_commit(GIGAAM_REPO, variant)
        layouts.append(
            Layout(
                f"gigaam-v3-{variant.replace('_', '-')}",
                GIGAAM_REPO,
                variant,
                commit,
                variant in pins,
                files,
                fetched,
                gigaam_builder(variant),
                single_file=f"v3_{variant}.ckpt",
            )
        )
    return layouts


# --- Parakeet TDT -----------------------------------------------------------------------------

PARAKEET_NEMO = GOLDEN / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"


def parakeet_builder(name: str) -> Builder:
    """The `.nemo` NeMo's `save_to` wrote for the tiny golden model, under the repo's name."""

    def build(out: Path, shared: Path) -> None:
        shutil.copyfile(PARAKEET_NEMO, out / f"{name}.nemo")

    return build


def parakeet_layouts() -> list[Layout]:
    layouts = []
    for version in ("v2", "v3"):
        name = f"parakeet-tdt-0.6b-{version}"
        repo = f"nvidia/{name}"
        files: dict[str, int | None] = {".gitattributes": None, "README.md": None}
        files[f"{name}.nemo"] = None
        pinned = version == "v3"
        if pinned:  # the transformers copy published beside the .nemo (v3 at 541d1f99)
            files.update(
                {
                    "config.json": None,
                    "generation_config.json": None,
                    "model.safetensors": None,
                    "processor_config.json": None,
                    "tokenizer.json": None,
                }
            )
        commit = (
            "541d1f99c6b0c3cd0b11a95167540bb8edefd82b" if pinned else stand_in_commit(repo, "main")
        )
        layouts.append(
            Layout(
                name, repo, "main", commit, pinned, files, (f"{name}.nemo",),
                parakeet_builder(name), single_file=f"{name}.nemo",
            )
        )  # fmt: skip
    return layouts


# --- Qwen3-ASR --------------------------------------------------------------------------------


def _make_qwen3asr():
    spec = importlib.util.spec_from_file_location("make_qwen3asr", GOLDEN / "make_qwen3asr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def qwen3asr_builder(shards: int) -> Builder:
    """The golden tiny Qwen3-ASR in the hub layout (bf16, `thinker.` prefix, the tied
    `lm_head` stored, added tokens at their real ids), single file or two shards + index."""

    def build(out: Path, shared: Path) -> None:
        make = _make_qwen3asr()
        make.materialize(GOLDEN / "qwen3-asr-tiny", out, shards=shards)

    return build


def qwen3asr_layouts() -> list[Layout]:
    side = {
        ".gitattributes": None,
        "README.md": None,
        "chat_template.json": 1160,
        "config.json": None,
        "generation_config.json": None,
        "merges.txt": None,
        "preprocessor_config.json": 330,
        "tokenizer_config.json": None,
        "vocab.json": None,
    }
    tokenizer = ("config.json", "merges.txt", "preprocessor_config.json", "tokenizer_config.json")
    tokenizer += ("vocab.json",)
    sharded = {
        "model-00001-of-00002.safetensors": 4220320824,
        "model-00002-of-00002.safetensors": 478200688,
        "model.safetensors.index.json": None,
    }
    return [
        Layout(
            "qwen3-asr-0.6b", "Qwen/Qwen3-ASR-0.6B", "main",
            "5eb144179a02acc5e5ba31e748d22b0cf3e303b0", True,
            {**side, "model.safetensors": None}, (*tokenizer, "model.safetensors"),
            qwen3asr_builder(1),
        ),
        Layout(
            "qwen3-asr-1.7b", "Qwen/Qwen3-ASR-1.7B", "main",
            "7278e1e70fe206f11671096ffdd38061171dd6e5", True,
            {**side, **sharded}, (*tokenizer, *sharded), qwen3asr_builder(2),
        ),
    ]  # fmt: skip


def layouts() -> list[Layout]:
    return whisper_layouts() + gigaam_layouts() + parakeet_layouts() + qwen3asr_layouts()


# --- the cache --------------------------------------------------------------------------------


def selected(layout: Layout) -> list[str]:
    """The files of the real repository polyasr's download patterns select."""
    from huggingface_hub.utils import filter_repo_objects

    from polyasr.hub import IGNORED, _patterns

    return sorted(
        filter_repo_objects(
            layout.files, allow_patterns=_patterns(layout.repo_id), ignore_patterns=IGNORED
        )
    )


def populate(cache: Path, layout: Layout, built: Path) -> Path:
    """Store the fixture files in `built` into the huggingface_hub cache `cache` as a download
    of `layout` with polyasr's patterns leaves them; returns the snapshot folder."""
    from huggingface_hub.file_download import (
        _cache_commit_hash_for_specific_revision,
        _create_symlink,
        repo_folder_name,
    )

    storage = cache / repo_folder_name(repo_id=layout.repo_id, repo_type="model")
    snapshot = storage / "snapshots" / layout.commit
    unknown = sorted(p.name for p in built.iterdir() if p.name not in layout.files)
    assert not unknown, f"fixture files {unknown} are not in {layout.repo_id}"
    entries = {}
    for name, size in layout.files.items():
        path = built / name
        data = path.read_bytes() if path.is_file() else None
        lfs = name.endswith(LFS_SUFFIXES)
        if data is None:  # left on the hub: its listing entry only
            digest = hashlib.sha256(f"{layout.repo_id}/{name}".encode()).hexdigest()
            entries[name] = (size or 0, digest[:40], digest if lfs else None)
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        entries[name] = (len(data), git_blob_id(data), sha256 if lfs else None)
    for name in selected(layout):
        data_path = built / name
        assert data_path.is_file(), f"the fixture of {layout.short_name} lacks {name}"
        size, blob_id, sha256 = entries[name]
        blob = storage / "blobs" / (sha256 or blob_id)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(data_path, blob)
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        _create_symlink(str(blob), str(snapshot / name), new_blob=False)
    snapshot.mkdir(parents=True, exist_ok=True)
    _cache_commit_hash_for_specific_revision(str(storage), layout.revision, layout.commit)
    try:
        from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache
    except ImportError:  # huggingface_hub < 2.x records no tree listing
        return snapshot
    write_tree_cache(
        str(storage),
        layout.commit,
        {
            name: TreeCacheEntry(
                size=size,
                blob_id=blob_id,
                lfs_sha256=sha256,
                lfs_size=size if sha256 else None,
            )
            for name, (size, blob_id, sha256) in entries.items()
        },
    )
    return snapshot


def build_all(root: Path, shared: Path) -> tuple[Path, dict[str, Path]]:
    """Every layout built under `root/files/<short name>` and stored in `root/hub`: the cache
    folder and each short name's plain directory."""
    cache = root / "hub"
    directories = {}
    for layout in layouts():
        built = root / "files" / layout.short_name
        built.mkdir(parents=True)
        layout.build(built, shared)
        populate(cache, layout, built)
        directories[layout.short_name] = built
    return cache, directories
