"""Load the Hugging Face Whisper layout and expose it through the `AsrModel` protocol."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ...audio import FeatureConfig, load_audio, log_mel
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError, OptionError
from ...safetensors_io import load_safetensors
from ...types import AudioInput, TranscribeOptions, Transcript
from .decoding import DecodeConfig
from .model import Whisper, WhisperDims, sinusoids
from .tokenizer import WhisperTokenizer
from .transcribe import N_FRAMES, transcribe_features

_RENAMES = [
    (r"^model\.", ""),
    (r"^(encoder|decoder)\.layers\.", r"\1.blocks."),
    (r"\.self_attn\.q_proj\.", ".attn.query."),
    (r"\.self_attn\.k_proj\.", ".attn.key."),
    (r"\.self_attn\.v_proj\.", ".attn.value."),
    (r"\.self_attn\.out_proj\.", ".attn.out."),
    (r"\.encoder_attn\.q_proj\.", ".cross_attn.query."),
    (r"\.encoder_attn\.k_proj\.", ".cross_attn.key."),
    (r"\.encoder_attn\.v_proj\.", ".cross_attn.value."),
    (r"\.encoder_attn\.out_proj\.", ".cross_attn.out."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.fc1\.", ".mlp.fc1."),
    (r"\.fc2\.", ".mlp.fc2."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"^encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^decoder\.layer_norm\.", "decoder.ln."),
    (r"^encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^decoder\.embed_tokens\.weight$", "decoder.token_embedding_t"),
]
_LINEAR = re.compile(r"\.(qkv|kv|query|out|fc1|fc2)\.weight$")


def hf_to_native(name: str) -> str:
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


def fuse_attention(state: dict[str, torch.Tensor]) -> None:
    """Stack q|k|v (self-attention) and k|v (cross-attention) into one matrix each, in place.

    The key projection has no bias; its rows of the fused bias are zeros.
    """
    for name in [k for k in state if k.endswith("attn.key.weight")]:
        prefix = name[: -len("key.weight")]
        k, v, bv = (state.pop(prefix + n) for n in ("key.weight", "value.weight", "value.bias"))
        if prefix.endswith(".cross_attn."):
            state[prefix + "kv.weight"] = torch.cat([k, v])
            state[prefix + "kv.bias"] = torch.cat([torch.zeros_like(bv), bv])
        else:
            q, bq = state.pop(prefix + "query.weight"), state.pop(prefix + "query.bias")
            state[prefix + "qkv.weight"] = torch.cat([q, k, v])
            state[prefix + "qkv.bias"] = torch.cat([bq, torch.zeros_like(bv), bv])


def is_whisper_dir(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "whisper"
    except (OSError, json.JSONDecodeError):
        return False


def _read_json(path: Path, required: bool = True) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ModelError(
                f"incomplete Whisper model directory: {path.name} is missing in {path.parent}"
            )
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


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
        raise ModelError(f"Whisper config.json lacks the field {exc}") from exc


class WhisperAsr:
    """A loaded Whisper checkpoint: transcribe files or waveforms of any length."""

    family = "whisper"
    sample_rate = 16000

    def __init__(
        self, model: Whisper, tokenizer: WhisperTokenizer, generation: dict[str, Any], name: str
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.features = FeatureConfig(
            n_mels=model.dims.n_mels, drop_last_frame=True, normalize="whisper"
        )
        suppress = generation.get("suppress_tokens")
        if suppress is None:
            t = tokenizer
            suppress = t.non_speech_tokens + [
                t.translate,
                t.transcribe,
                t.sot,
                t.sot_prev,
                t.sot_lm,
                t.no_speech,
            ]
        self.suppress_tokens = tuple(suppress)
        self.max_initial_timestamp_index = generation.get("max_initial_timestamp_index", 50)

    @property
    def languages(self) -> tuple[str, ...]:
        return self.tokenizer.languages

    @property
    def device(self) -> torch.device:
        return self.model.decoder.positional_embedding.device

    def _options(
        self, options: TranscribeOptions | None, overrides: dict[str, Any]
    ) -> TranscribeOptions:
        options = TranscribeOptions.resolve(options, overrides)
        if options.language is not None and options.language not in self.languages:
            raise OptionError(
                f"language {options.language!r} is not supported by {self.name}; "
                f"use one of: {', '.join(self.languages)}"
            )
        if options.task == "translate" and not self.tokenizer.multilingual:
            raise OptionError(f"{self.name} is English-only and cannot translate")
        return options

    def log_mel(self, samples: torch.Tensor) -> torch.Tensor:
        """Features of the whole recording plus 30 s of zeros (one global dynamic range)."""
        padded = torch.nn.functional.pad(samples, (0, N_FRAMES * 160))
        return log_mel(padded, self.features)

    @torch.inference_mode()
    def detect_language(self, mel_window: torch.Tensor) -> tuple[str, float, dict[str, float]]:
        """Most likely language of a [n_mels, 3000] window and all language probabilities."""
        if not self.tokenizer.multilingual:
            return "en", 1.0, {"en": 1.0}
        states = self.model.encoder(mel_window[None].to(self.device, self._dtype))
        cache = self.model.new_cache(1)
        self.model.decoder.set_audio(cache, states)
        hidden, _ = self.model.decoder(
            torch.tensor([[self.tokenizer.sot]], device=self.device), cache
        )
        logits = self.model.decoder.logits(hidden[0, 0])
        codes = list(self.tokenizer.language_ids)
        ids = torch.tensor([self.tokenizer.language_ids[c] for c in codes], device=logits.device)
        probs = logits[ids].softmax(dim=-1).tolist()
        table = dict(zip(codes, probs))
        best = max(table, key=table.get)
        return best, table[best], table

    @property
    def _dtype(self) -> torch.dtype:
        return self.model.decoder.positional_embedding.dtype

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions | None = None,
        progress: Callable[[float, float], None] | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Transcribe one recording; `progress(done_s, total_s)` is called after each window."""
        started = time.perf_counter()
        options = self._options(options, overrides)
        samples = torch.from_numpy(load_audio(audio, self.sample_rate).mono())
        duration = samples.shape[0] / self.sample_rate
        mel = self.log_mel(samples).to(self.device, self._dtype)
        content_frames = samples.shape[0] // 160
        language, language_prob = options.language, None
        if language is None:
            if self.tokenizer.multilingual:
                language, language_prob, _ = self.detect_language(mel[:, :N_FRAMES])
            else:
                language = "en"
        generator = torch.Generator(device=self.device).manual_seed(options.seed)
        base = DecodeConfig(
            sample_len=options.max_new_tokens or self.model.dims.n_text_ctx // 2,
            timestamps=options.timestamps,
            suppress_tokens=self.suppress_tokens,
            max_initial_timestamp_index=self.max_initial_timestamp_index,
            patience=options.patience,
            length_penalty=options.length_penalty,
            generator=generator,
        )
        report = (lambda done: progress(done, duration)) if progress else None
        segments = transcribe_features(
            self.model, self.tokenizer, mel, content_frames, language, options, base, report
        )
        return Transcript(
            text="".join(s.text for s in segments).strip(),
            segments=segments,
            language=language,
            language_probability=language_prob,
            duration=duration,
            processing_seconds=time.perf_counter() - started,
        )

    def transcribe_batch(
        self, audios: list[AudioInput], options: TranscribeOptions | None = None, **overrides: Any
    ) -> list[Transcript]:
        return [self.transcribe(a, options, **overrides) for a in audios]


def load_whisper(
    directory: Path,
    device: str = "auto",
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> WhisperAsr:
    """Build a `WhisperAsr` from a directory in the Hugging Face layout."""
    config = _read_json(directory / "config.json")
    generation = _read_json(directory / "generation_config.json", required=False)
    dims = dims_from_config(config)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    state = {hf_to_native(k): v for k, v in load_safetensors(directory).items()}
    state.pop("proj_out.weight", None)
    try:
        fuse_attention(state)
    except KeyError as exc:
        raise ModelError(f"the Whisper weights in {directory} lack the tensor {exc}") from exc
    for key in [k for k in state if _LINEAR.search(k)] + ["decoder.token_embedding_t"]:
        state[key] = state[key].t()  # matrices are stored as [in, out] (model.Linear)
    if "encoder.positional_embedding" not in state:
        state["encoder.positional_embedding"] = sinusoids(dims.n_audio_ctx, dims.d_model)
    with torch.device("meta"):
        model = Whisper(dims)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing:
        raise ModelError(
            f"the Whisper weights in {directory} lack {len(missing)} tensors, e.g. {missing[:3]}"
        )
    if unexpected:
        raise ModelError(
            f"unexpected tensors in the Whisper weights in {directory}: {unexpected[:3]}"
        )
    state = {k: v.to(dev, torch_dtype).contiguous() for k, v in state.items()}
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise ModelError(
            f"the Whisper weights in {directory} do not match config.json: {exc}"
        ) from exc
    model.eval()
    heads = generation.get("alignment_heads")
    if heads:
        model.alignment_heads = [tuple(h) for h in heads]
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(
            f"incomplete Whisper model directory: tokenizer.json is missing in {directory}"
        )
    tokenizer = WhisperTokenizer.from_file(tokenizer_file, dims.vocab_size)
    return WhisperAsr(model, tokenizer, generation, name or directory.name)
