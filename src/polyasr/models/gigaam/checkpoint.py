"""Read GigaAM v3 checkpoints: the published `v3_*.ckpt` (+ SentencePiece model for the e2e
variants) or the Hugging Face copy (`pytorch_model.bin` + `config.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...audio import FeatureConfig
from ...audio.features import analysis_window, mel_filters
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ...model_files import read_json
from ...safe_pickle import load_pickle, plain
from ..checkpoint import Checkpoint
from ..materialize import materialize
from .model import GigaAM, GigaAMDims
from .recognizer import GigaAMRecognizer
from .tokenizer import GigaAMTokenizer

SAMPLE_RATE = 16000


def find_checkpoint(path: Path) -> Path | None:
    """The GigaAM checkpoint at `path`: a `.ckpt` file, the only `.ckpt` in a directory, or the
    Hugging Face copy's `pytorch_model.bin` beside a GigaAM `config.json`."""
    if path.is_file():
        return path if path.suffix == ".ckpt" else None
    found = sorted(path.glob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    config = path / "config.json"
    if (path / "pytorch_model.bin").is_file() and config.is_file():
        if "gigaam" in config.read_text(encoding="utf-8", errors="replace").lower():
            return path / "pytorch_model.bin"
    return None


def is_gigaam(path: Path) -> bool:
    ckpt = find_checkpoint(path)
    return ckpt is not None and (
        ckpt.name == "pytorch_model.bin" or ckpt.name.startswith(("v3_", "gigaam"))
    )


def tokenizer_file(ckpt_path: Path) -> Path | None:
    """The SentencePiece model beside a checkpoint: `<stem>_tokenizer.model`, else any
    `*tokenizer.model` there (the hub copy's `tokenizer.model`)."""
    found = sorted(ckpt_path.parent.glob(f"{ckpt_path.stem}_tokenizer.model")) or sorted(
        ckpt_path.parent.glob("*tokenizer.model")
    )
    return found[0] if found else None


def gigaam_inputs(path: Path) -> list[Path]:
    """The files `read_gigaam` reads: the checkpoint, the tokenizer beside it and, for the hub
    copy, its config.json (none when there is no single checkpoint)."""
    ckpt_path = find_checkpoint(path)
    if ckpt_path is None:
        return []
    files = [ckpt_path, tokenizer_file(ckpt_path)]
    if ckpt_path.suffix == ".bin":
        files.append(ckpt_path.parent / "config.json")
    return [f for f in files if f is not None]


def _hub_config(config: Path) -> dict[str, Any]:
    """The model cfg nested in the hub copy's config.json (the dict with encoder and head)."""
    stack: list[Any] = [read_json(config)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "encoder" in node and "head" in node:
                return node
            stack.extend(node.values())
    raise ModelError(f"{config} holds no GigaAM model configuration (encoder and head)")


def _section(cfg: dict[str, Any], name: str, where: Path) -> dict[str, Any]:
    value = cfg.get(name) or {}
    if not isinstance(value, dict):
        raise ModelError(f"{where}: the {name} configuration is not a mapping")
    return value


def _tensor(state: dict[str, torch.Tensor], key: str, ndim: int, where: Path) -> torch.Tensor:
    value = state.get(key)
    if value is None or value.dim() != ndim:
        raise ModelError(f"{where} lacks the tensor {key} (an incomplete or different checkpoint)")
    return value


def dims_from_config(
    cfg: dict[str, Any], state: dict[str, torch.Tensor], head: str, where: Path
) -> GigaAMDims:
    enc = _section(cfg, "encoder", where)
    if head == "ctc":
        num_classes = _tensor(state, "head.decoder_layers.0.weight", 3, where).shape[0]
        pred_hidden = joint_hidden = 0
    else:
        num_classes = _tensor(state, "head.joint.joint_net.1.weight", 2, where).shape[0]
        pred_hidden = _tensor(state, "head.decoder.embed.weight", 2, where).shape[1]
        joint_hidden = _tensor(state, "head.joint.enc.weight", 2, where).shape[0]
    if (
        enc.get("subsampling", "conv1d") != "conv1d"
        or enc.get("self_attention_model", "rotary") != "rotary"
    ):
        raise ModelError(
            f"{where}: only GigaAM v3 checkpoints (conv1d subsampling, rotary attention) "
            "are supported"
        )
    try:
        return GigaAMDims(
            feat_in=int(enc.get("feat_in", 64)),
            n_layers=int(enc.get("n_layers", 16)),
            d_model=int(enc.get("d_model", 768)),
            n_heads=int(enc.get("n_heads", 16)),
            ff_expansion=int(enc.get("ff_expansion_factor", 4)),
            subs_kernel=int(enc.get("subs_kernel_size", 5)),
            conv_kernel=int(enc.get("conv_kernel_size", 5)),
            rope_base=float(enc.get("pos_emb_max_len", 5000)),
            num_classes=num_classes,
            pred_hidden=pred_hidden,
            joint_hidden=joint_hidden,
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: invalid encoder configuration ({exc})") from None


def read_gigaam(path: Path) -> Checkpoint:
    """A `.ckpt` file or a directory holding one (or the hub copy) as a `Checkpoint`; the
    SentencePiece model beside it becomes the `tokenizer.model` asset."""
    ckpt_path = find_checkpoint(path)
    if ckpt_path is None:
        raise ModelError(f"no GigaAM .ckpt file found at {path}")
    data = load_pickle(ckpt_path, str(ckpt_path), inert=("omegaconf",))
    if ckpt_path.suffix == ".bin":  # hub copy: bare state dict under "model.", cfg in JSON
        data = {"cfg": _hub_config(ckpt_path.parent / "config.json"), "state_dict": data}
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ModelError(f"{ckpt_path} is not a GigaAM checkpoint (no state_dict)")
    cfg = plain(data.get("cfg") or {})
    if not isinstance(cfg, dict):
        raise ModelError(f"{ckpt_path}: its cfg is not a mapping")
    state = {
        str(k).removeprefix("model."): v
        for k, v in data["state_dict"].items()
        if isinstance(v, torch.Tensor)
    }
    tokenizer = tokenizer_file(ckpt_path)
    assets = {"tokenizer.model": tokenizer.read_bytes()} if tokenizer else {}
    return Checkpoint("gigaam", cfg, state, assets, str(ckpt_path))


def build_gigaam(
    checkpoint: Checkpoint, device: str = "auto", dtype: Any = None, name: str | None = None
) -> GigaAMRecognizer:
    """A `GigaAMRecognizer` (CTC or RNN-T, by the head the weights hold)."""
    cfg, state, where = checkpoint.config, checkpoint.state, Path(checkpoint.source)
    head = "ctc" if "head.decoder_layers.0.weight" in state else "rnnt"
    if head == "rnnt" and not any(k.startswith("head.") for k in state):
        raise ModelError(f"{where} has no CTC or RNN-T head (an SSL-only checkpoint?)")
    dims = dims_from_config(cfg, state, head, where)
    dev = resolve_device(device)
    window = state.pop("preprocessor.featurizer.0.spectrogram.window", None)
    filters = state.pop("preprocessor.featurizer.0.mel_scale.fb", None)
    pre = _section(cfg, "preprocessor", where)
    try:
        features = FeatureConfig(
            sample_rate=int(pre.get("sample_rate", SAMPLE_RATE)),
            n_fft=int(pre.get("n_fft", 320)),
            win_length=int(pre.get("win_length", 320)),
            hop_length=int(pre.get("hop_length", 160)),
            n_mels=int(pre.get("features", dims.feat_in)),
            mel_scale="htk",
            mel_norm=None,
            center=bool(pre.get("center", False)),
            log="ln",
            log_eps=1e-9,
            log_max=1e9,
        )
        decoding = _section(cfg, "decoding", where)
        max_symbols = int(decoding.get("max_symbols_per_step") or 10)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: invalid preprocessor or decoding setting ({exc})") from None
    if features.sample_rate != SAMPLE_RATE:
        raise ModelError(f"{where}: unsupported sample rate {features.sample_rate}")
    window = (window if window is not None else analysis_window(features)).float().to(dev)
    filters = (filters.T if filters is not None else mel_filters(features)).float().to(dev)
    bins = features.n_fft // 2 + 1
    if tuple(window.shape) != (features.win_length,) or tuple(filters.shape) != (
        features.n_mels,
        bins,
    ):
        raise ModelError(
            f"{where}: the preprocessor's window {list(window.shape)} or mel filters "
            f"{list(filters.shape)} do not fit its settings (window {features.win_length}, "
            f"{features.n_mels} x {bins} filters)"
        )
    if decoding.get("vocabulary"):
        tokenizer = GigaAMTokenizer(vocabulary=[str(t) for t in decoding["vocabulary"]])
    elif "tokenizer.model" in checkpoint.assets:
        tokenizer = GigaAMTokenizer(sp_model=checkpoint.assets["tokenizer.model"])
    else:
        raise ModelError(f"the SentencePiece tokenizer model for {where.name} is missing beside it")
    if len(tokenizer) != dims.num_classes - 1:
        raise ModelError(
            f"tokenizer has {len(tokenizer)} tokens, the head {dims.num_classes - 1} (+ blank)"
        )
    model = materialize(
        lambda: GigaAM(dims, head), state, dev, resolve_dtype(dtype, dev), f"the weights in {where}"
    )
    return GigaAMRecognizer(
        model, tokenizer, features, filters, window, name or where.stem, max_symbols
    )
