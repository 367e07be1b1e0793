"""Read the Qwen3-ASR hub layout: nested config.json, safetensors (single or sharded), the
Qwen2 tokenizer files and preprocessor_config.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...audio import FeatureConfig
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ...model_files import load_safetensors, model_type, read_json
from ..checkpoint import Checkpoint
from ..materialize import materialize
from .model import AudioDims, Qwen3AsrThinker, TextDims
from .recognizer import SAMPLE_RATE, Qwen3AsrRecognizer
from .tokenizer import LANGUAGE_CODES, LANGUAGE_NAMES, Qwen3AsrTokenizer


def is_qwen3asr_dir(path: Path) -> bool:
    """Whether `path` is a directory whose config.json says `model_type` "qwen3_asr"."""
    return path.is_dir() and model_type(path) == "qwen3_asr"


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    config = read_json(path)
    if not isinstance(config.get("thinker_config"), dict):
        raise ModelError(f"{path} is not a Qwen3-ASR config (no thinker_config)")
    return config


def dims_from_config(config: dict[str, Any]) -> tuple[AudioDims, TextDims]:
    """Encoder and decoder sizes from the nested `thinker_config` (defaults as qwen-asr's)."""
    thinker = config["thinker_config"]
    if "forced_aligner" in str(thinker.get("model_type", "")):
        raise ModelError("this is a Qwen3-ForcedAligner checkpoint, not a Qwen3-ASR model")
    try:
        audio, text = thinker["audio_config"], thinker["text_config"]
        n_window = audio.get("n_window", 50)
        if n_window != 50 or audio.get("scale_embedding", False):
            raise ModelError(
                f"unsupported Qwen3-ASR audio config (n_window {n_window}, scale_embedding "
                f"{audio.get('scale_embedding')}): the published models use 50 and false"
            )
        rope = text.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise ModelError(f"unsupported rope_scaling {rope} in the Qwen3-ASR config")
        if text.get("hidden_act", "silu") != "silu" or text.get("attention_bias", False):
            raise ModelError("unsupported Qwen3-ASR text config (hidden_act / attention_bias)")
        audio_dims = AudioDims(
            n_mels=audio.get("num_mel_bins", 128),
            d_model=audio["d_model"],
            layers=audio["encoder_layers"],
            heads=audio["encoder_attention_heads"],
            ffn=audio["encoder_ffn_dim"],
            conv_channels=audio.get("downsample_hidden_size", 480),
            output_dim=audio["output_dim"],
            window_chunks=audio.get("n_window_infer", 400) // (2 * n_window),
        )
        text_dims = TextDims(
            vocab_size=text["vocab_size"],
            hidden=text["hidden_size"],
            intermediate=text["intermediate_size"],
            layers=text["num_hidden_layers"],
            heads=text["num_attention_heads"],
            kv_heads=text.get("num_key_value_heads") or text["num_attention_heads"],
            head_dim=text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"],
            rope_theta=float(text.get("rope_theta", 5_000_000.0)),
            rms_eps=float(text.get("rms_norm_eps", 1e-6)),
            tie_embeddings=bool(text.get("tie_word_embeddings", False)),
        )
    except KeyError as exc:
        raise ModelError(f"the Qwen3-ASR config.json lacks the field {exc}") from None
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ModelError(f"invalid Qwen3-ASR config.json: {exc}") from None
    if audio_dims.output_dim != text_dims.hidden or audio_dims.window_chunks < 1:
        raise ModelError(
            f"invalid Qwen3-ASR config.json: audio output_dim {audio_dims.output_dim} must equal "
            f"the text hidden_size {text_dims.hidden}, n_window_infer must be at least 100"
        )
    return audio_dims, text_dims


def _features(pre: dict[str, Any], n_mels: int, where: str) -> FeatureConfig:
    """Whisper's log-mel recipe with the sizes of preprocessor_config.json (no 30 s padding)."""
    config = FeatureConfig(
        sample_rate=pre.get("sampling_rate", SAMPLE_RATE),
        n_fft=pre.get("n_fft", 400),
        hop_length=pre.get("hop_length", 160),
        n_mels=pre.get("feature_size", n_mels),
        drop_last_frame=True,
        normalize="whisper",
    )
    if config.sample_rate != SAMPLE_RATE or config.n_mels != n_mels:
        raise ModelError(
            f"{where}: expected {SAMPLE_RATE} Hz and {n_mels} mel bins, got "
            f"{config.sample_rate} Hz and {config.n_mels}"
        )
    return config


TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")


def read_qwen3asr(path: Path) -> Checkpoint:
    """A directory in the hub layout (config.json, safetensors single or sharded, vocab.json
    + merges.txt + tokenizer_config.json or tokenizer.json, preprocessor_config.json) as a
    `Checkpoint`; the weights lose their `thinker.` prefix."""
    if not path.is_dir():
        raise ModelError(f"{path} is not a Qwen3-ASR model directory")
    config = _read_config(path)
    dims_from_config(config)
    preprocessor = read_json(path / "preprocessor_config.json", required=False)
    assets = {n: (path / n).read_bytes() for n in TOKENIZER_FILES if (path / n).is_file()}
    Qwen3AsrTokenizer.from_assets(assets, str(path))
    state = {}
    for key, tensor in load_safetensors(path).items():
        if not key.startswith("thinker."):
            raise ModelError(f"unexpected tensor {key} in the Qwen3-ASR weights in {path}")
        state[key.removeprefix("thinker.")] = tensor
    return Checkpoint(
        "qwen3-asr", {"model": config, "preprocessor": preprocessor}, state, assets, str(path)
    )


def build_qwen3asr(
    checkpoint: Checkpoint, device: str = "auto", dtype: Any = None, name: str | None = None
) -> Qwen3AsrRecognizer:
    """A `Qwen3AsrRecognizer`; with tied embeddings a stored lm_head is dropped (qwen-asr ties
    it to the embedding at load, whatever the file holds). bfloat16 by default on CUDA."""
    config, where = checkpoint.config["model"], checkpoint.source
    audio_dims, text_dims = dims_from_config(config)
    tokenizer = Qwen3AsrTokenizer.from_assets(checkpoint.assets, where)
    audio_id = config["thinker_config"].get("audio_token_id", tokenizer.audio_pad)
    if audio_id != tokenizer.audio_pad:
        raise ModelError(
            f"config.json says audio_token_id {audio_id}, the tokenizer has <|audio_pad|> = "
            f"{tokenizer.audio_pad}"
        )
    preprocessor = checkpoint.config.get("preprocessor") or {}
    features = _features(preprocessor, audio_dims.n_mels, f"{where}/preprocessor_config.json")
    dev = resolve_device(device)
    if dtype in (None, "auto") and dev.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16  # the published weights are bf16; fp16 can overflow
    state = checkpoint.state
    if text_dims.tie_embeddings:
        state.pop("lm_head.weight", None)
    thinker = materialize(
        lambda: Qwen3AsrThinker(audio_dims, text_dims),
        state,
        dev,
        resolve_dtype(dtype, dev),
        f"the weights in {where}",
    )
    names = config.get("support_languages") or list(LANGUAGE_NAMES.values())
    languages = tuple(LANGUAGE_CODES[n] for n in names if n in LANGUAGE_CODES)
    return Qwen3AsrRecognizer(thinker, tokenizer, features, languages, name or Path(where).name)
