"""Read the Hugging Face Whisper layout: config.json, generation_config.json, tokenizer.json and
safetensors weights (single or sharded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ...model_files import load_safetensors, model_type, read_json
from ..blocks import sinusoids
from ..materialize import materialize
from .model import Whisper, WhisperDims
from .recognizer import WhisperRecognizer
from .tokenizer import WhisperTokenizer


def is_whisper_dir(path: Path) -> bool:
    return path.is_dir() and model_type(path) == "whisper"


def dims_from_config(config: dict[str, Any]) -> WhisperDims:
    try:
        return WhisperDims(
            n_mels=config["num_mel_bins"],
            vocab_size=config["vocab_size"],
            d_model=config["d_model"],
            encoder_layers=config["encoder_layers"],
            decoder_layers=config["decoder_layers"],
            encoder_heads=config["encoder_attention_heads"],
            decoder_heads=config["decoder_attention_heads"],
            encoder_ffn=config["encoder_ffn_dim"],
            decoder_ffn=config["decoder_ffn_dim"],
            n_audio_ctx=config.get("max_source_positions", 1500),
            n_text_ctx=config.get("max_target_positions", 448),
        )
    except KeyError as exc:
        raise ModelError(f"Whisper config.json lacks the field {exc}") from None


def read_state(directory: Path, dims: WhisperDims) -> dict[str, torch.Tensor]:
    """The weights under the model's names: the checkpoint's without its `model.` prefix and
    without the output projection, which is tied to the token embeddings."""
    state = {k.removeprefix("model."): v for k, v in load_safetensors(directory).items()}
    state.pop("proj_out.weight", None)
    if "encoder.embed_positions.weight" not in state:  # fixed sinusoids, omitted by some files
        state["encoder.embed_positions.weight"] = sinusoids(dims.n_audio_ctx, dims.d_model)
    return state


def load_whisper(
    directory: Path,
    device: str = "auto",
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> WhisperRecognizer:
    """A `WhisperRecognizer` from a directory in the Hugging Face layout."""
    config = read_json(directory / "config.json")
    generation = read_json(directory / "generation_config.json", required=False)
    dims = dims_from_config(config)
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(
            f"incomplete Whisper model directory: tokenizer.json is missing in {directory}"
        )
    tokenizer = WhisperTokenizer.from_file(tokenizer_file, dims.vocab_size)
    dev = resolve_device(device)
    state = read_state(directory, dims)
    what = f"the weights in {directory}"
    model = materialize(lambda: Whisper(dims), state, dev, resolve_dtype(dtype, dev), what)
    heads = generation.get("alignment_heads")
    if heads:
        model.alignment_heads = [tuple(h) for h in heads]
    return WhisperRecognizer(model, tokenizer, generation, name or directory.name)
