"""Read the Hugging Face Whisper layout: config.json, generation_config.json, tokenizer.json and
safetensors weights (single or sharded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ...model_files import load_safetensors, model_type, read_json
from ..blocks import sinusoids
from ..checkpoint import Checkpoint
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


def read_whisper(directory: Path) -> Checkpoint:
    """The Hugging Face layout as a `Checkpoint`: the weights without their `model.` prefix
    and without the output projection, which is tied to the token embeddings."""
    config = read_json(directory / "config.json")
    generation = read_json(directory / "generation_config.json", required=False)
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(
            f"incomplete Whisper model directory: tokenizer.json is missing in {directory}"
        )
    dims_from_config(config)
    state = {k.removeprefix("model."): v for k, v in load_safetensors(directory).items()}
    state.pop("proj_out.weight", None)
    return Checkpoint(
        family="whisper",
        config={"model": config, "generation": generation},
        state=state,
        assets={"tokenizer.json": tokenizer_file.read_bytes()},
        source=str(directory),
    )


def build_whisper(
    checkpoint: Checkpoint, device: str = "auto", dtype: Any = None, name: str | None = None
) -> WhisperRecognizer:
    """A `WhisperRecognizer` from a checkpoint (the fixed audio positions, which some files
    omit, are computed)."""
    dims = dims_from_config(checkpoint.config["model"])
    generation = checkpoint.config.get("generation") or {}
    tokenizer = WhisperTokenizer.from_bytes(
        checkpoint.assets["tokenizer.json"], dims.vocab_size, f"{checkpoint.source} tokenizer"
    )
    state = checkpoint.state
    if "encoder.embed_positions.weight" not in state:
        state["encoder.embed_positions.weight"] = sinusoids(dims.n_audio_ctx, dims.d_model)
    dev = resolve_device(device)
    what = f"the weights in {checkpoint.source}"
    model = materialize(lambda: Whisper(dims), state, dev, resolve_dtype(dtype, dev), what)
    heads = generation.get("alignment_heads")
    if heads:
        model.alignment_heads = [tuple(h) for h in heads]
    return WhisperRecognizer(model, tokenizer, generation, name or Path(checkpoint.source).name)
