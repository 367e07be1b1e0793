"""Read Parakeet TDT `.nemo` archives (v2, v3) without NeMo: config, weights, tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...audio import FeatureConfig
from ...audio.features import analysis_window, mel_filters
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ..checkpoint import Checkpoint
from ..materialize import materialize
from .archive import NemoArchive
from .model import ParakeetDims, ParakeetTDT
from .recognizer import ParakeetRecognizer
from .tokenizer import ParakeetTokenizer

SAMPLE_RATE = 16000


def find_nemo(path: Path) -> Path | None:
    """The `.nemo` file at `path`, or the only one in a directory (a hub snapshot)."""
    if path.is_file():
        return path if path.suffix == ".nemo" else None
    found = sorted(path.glob("*.nemo")) if path.is_dir() else []
    return found[0] if len(found) == 1 else None


def is_parakeet(path: Path) -> bool:
    return find_nemo(path) is not None


def parakeet_inputs(path: Path) -> list[Path]:
    """The file `read_parakeet` reads: the `.nemo` archive (none when there is no single one)."""
    nemo = find_nemo(path)
    return [nemo] if nemo else []


def _section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    value = cfg.get(name) or {}
    if not isinstance(value, dict):
        raise ModelError(f"model_config.yaml: section {name!r} is not a mapping")
    return value


def _dims(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> ParakeetDims:
    enc = _section(cfg, "encoder")
    if enc.get("subsampling", "dw_striding") != "dw_striding":
        raise ModelError(f"unsupported subsampling {enc.get('subsampling')!r} (dw_striding only)")
    attention = enc.get("self_attention_model", "rel_pos")
    if attention not in ("rel_pos", "rel_pos_local_attn"):
        raise ModelError(f"unsupported self-attention {attention!r} (rel_pos only)")
    if enc.get("conv_norm_type", "batch_norm") != "batch_norm":
        raise ModelError(f"unsupported conv normalization {enc.get('conv_norm_type')!r}")
    context = list(enc.get("att_context_size") or [-1, -1])
    window = None if context[0] < 0 and context[-1] < 0 else int(max(context))
    needed = ("joint.joint_net.2.weight", "decoder.prediction.embed.weight", "joint.enc.weight")
    if any(state.get(k) is None or state[k].dim() != 2 for k in needed):
        raise ModelError("the .nemo file holds no RNN-T/TDT decoder and joint (not a Parakeet TDT)")
    durations = (
        _section(cfg, "decoding").get("durations")
        or _section(cfg, "model_defaults").get("tdt_durations")
        or (_section(cfg, "loss").get("tdt_kwargs") or {}).get("durations")
    )
    if not durations:
        raise ModelError("only Token-and-Duration Transducer (TDT) models are supported")
    vocab = state["decoder.prediction.embed.weight"].shape[0] - 1
    prednet = _section(_section(cfg, "decoder"), "prednet")
    use_bias = enc.get("use_bias")
    if use_bias is None:  # NeMo's default is True; the weights say which modules the file has
        use_bias = "encoder.layers.0.feed_forward1.linear1.bias" in state
    dims = ParakeetDims(
        feat_in=int(enc.get("feat_in", 128)),
        n_layers=int(enc.get("n_layers", 24)),
        d_model=int(enc.get("d_model", 1024)),
        n_heads=int(enc.get("n_heads", 8)),
        ff_expansion=int(enc.get("ff_expansion_factor", 4)),
        conv_kernel=int(enc.get("conv_kernel_size", 9)),
        subsampling_factor=int(enc.get("subsampling_factor", 8)),
        subsampling_channels=int(enc.get("subsampling_conv_channels", 256)),
        xscaling=bool(enc.get("xscaling", True)),  # NeMo's default (not in the weights)
        use_bias=bool(use_bias),
        attention_window=window,
        vocab_size=vocab,
        pred_hidden=state["decoder.prediction.embed.weight"].shape[1],
        pred_layers=int(prednet.get("pred_rnn_layers", 1)),
        joint_hidden=state["joint.enc.weight"].shape[0],
        durations=tuple(int(d) for d in durations),
    )
    return dims


def dims_from_config(cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> ParakeetDims:
    """Model dimensions from the archive's config, checked against what we implement."""
    try:
        dims = _dims(cfg, state)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"invalid model_config.yaml: {exc}") from None
    outputs, vocab = state["joint.joint_net.2.weight"].shape[0], dims.vocab_size
    if outputs != vocab + 1 + len(dims.durations):
        raise ModelError(
            f"joint has {outputs} outputs, expected {vocab} tokens + blank + "
            f"{len(dims.durations)} durations"
        )
    return dims


def feature_config(cfg: dict[str, Any]) -> FeatureConfig:
    """The preprocessor settings, or one `ModelError` line for a value of the wrong type."""
    try:
        return _feature_config(cfg)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"invalid preprocessor in model_config.yaml: {exc}") from None


def _feature_config(cfg: dict[str, Any]) -> FeatureConfig:
    """NeMo's `AudioToMelSpectrogramPreprocessor` settings as a `FeatureConfig` (NeMo >= 2.5
    framing: zero-padded STFT, floor(N / hop) valid frames; dither off at inference)."""
    pre = _section(cfg, "preprocessor")
    sample_rate = int(pre.get("sample_rate", SAMPLE_RATE))
    if sample_rate != SAMPLE_RATE:
        raise ModelError(f"unsupported preprocessor sample rate {sample_rate}")
    normalize = pre.get("normalize", "per_feature")
    if normalize not in ("per_feature", None, "None"):
        raise ModelError(f"unsupported feature normalization {normalize!r}")
    if int(pre.get("frame_splicing", 1)) != 1 or pre.get("window", "hann") != "hann":
        raise ModelError("unsupported preprocessor (frame splicing or a non-Hann window)")
    guard = pre.get("log_zero_guard_type", "add")
    guard_value = pre.get("log_zero_guard_value", 2**-24)
    if not isinstance(guard_value, (int, float)):
        raise ModelError(f"unsupported log zero guard value {guard_value!r}")
    return FeatureConfig(
        sample_rate=sample_rate,
        n_fft=int(pre.get("n_fft") or 512),
        hop_length=round(float(pre.get("window_stride", 0.01)) * sample_rate),
        win_length=round(float(pre.get("window_size", 0.025)) * sample_rate),
        window="hann_symmetric",
        n_mels=int(pre.get("features", 128)),
        f_min=float(pre.get("lowfreq") or 0.0),
        f_max=pre.get("highfreq"),
        center=True,
        pad_mode="constant",
        preemphasis=pre.get("preemph", 0.97),
        power=float(pre.get("mag_power", 2.0)),
        log="ln",
        log_guard="add" if guard == "add" else "clamp",
        log_eps=float(guard_value),
        normalize="per_feature" if normalize == "per_feature" else None,
        valid_frames_only=True,
    )


def read_parakeet(path: Path) -> Checkpoint:
    """A `.nemo` file (or a directory holding exactly one) as a `Checkpoint`: its YAML
    config, its weights and its SentencePiece model (the `tokenizer.model` asset)."""
    nemo = find_nemo(path)
    if nemo is None:
        raise ModelError(f"no .nemo file found at {path}")
    with NemoArchive(nemo) as archive:
        cfg = archive.config()
        tokenizer_cfg = _section(cfg, "tokenizer")
        if tokenizer_cfg.get("type", "bpe") != "bpe" or not tokenizer_cfg.get("model_path"):
            raise ModelError(f"{nemo}: only SentencePiece (bpe) tokenizers are supported")
        sp_model = archive.read_bytes(str(tokenizer_cfg["model_path"]))
        state = archive.state_dict()
    return Checkpoint("parakeet", cfg, state, {"tokenizer.model": sp_model}, str(nemo))


def build_parakeet(
    checkpoint: Checkpoint, device: str = "auto", dtype: Any = None, name: str | None = None
) -> ParakeetRecognizer:
    """A `ParakeetRecognizer` from a checkpoint."""
    cfg, state, where = checkpoint.config, checkpoint.state, Path(checkpoint.source)
    dims = dims_from_config(cfg, state)
    tokenizer = ParakeetTokenizer(checkpoint.assets["tokenizer.model"])
    if len(tokenizer) != dims.vocab_size:
        raise ModelError(f"tokenizer has {len(tokenizer)} pieces, the decoder {dims.vocab_size}")
    features = feature_config(cfg)
    greedy = _section(_section(cfg, "decoding"), "greedy")
    try:
        max_symbols = int(greedy.get("max_symbols") or 10)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: invalid decoding.greedy.max_symbols") from None
    dev = resolve_device(device)
    window = state.pop("preprocessor.featurizer.window", None)
    filters = state.pop("preprocessor.featurizer.fb", None)
    window = (window if window is not None else analysis_window(features)).float()
    filters = (filters[0] if filters is not None else mel_filters(features)).float()
    what = f"the weights in {where}"
    model = materialize(lambda: ParakeetTDT(dims), state, dev, resolve_dtype(dtype, dev), what)
    return ParakeetRecognizer(
        model,
        tokenizer,
        features,
        filters.to(dev),
        window.to(dev),
        name or where.stem,
        max_symbols,
    )
