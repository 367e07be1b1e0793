"""Load the Hugging Face Whisper layout and expose it through the `AsrModel` protocol."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...audio import FeatureConfig, load_audio, log_mel
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError, OptionError
from ...pipeline.longform import transcribe_samples
from ...safetensors_io import load_safetensors
from ...types import AudioInput, Segment, TranscribeOptions, Transcript
from ..materialize import materialize
from .decoding import DecodeConfig, decode_windows
from .model import Whisper, WhisperDims, sinusoids
from .timing import add_word_timestamps
from .tokenizer import WhisperTokenizer
from .transcribe import (
    N_FRAMES,
    build_prompt,
    decode_config,
    decode_with_fallback,
    is_no_speech,
    needs_fallback,
    split_segments,
    transcribe_features,
)

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
    max_input_seconds = 30.0
    pads_to_max_input = True

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

    def decode_base(self, options: TranscribeOptions) -> DecodeConfig:
        """Decoding settings shared by every window of one call (temperature set per try)."""
        return DecodeConfig(
            sample_len=options.max_new_tokens or self.model.dims.n_text_ctx // 2,
            timestamps=options.timestamps,
            suppress_tokens=self.suppress_tokens,
            max_initial_timestamp_index=self.max_initial_timestamp_index,
            patience=options.patience,
            length_penalty=options.length_penalty,
            generator=torch.Generator(device=self.device).manual_seed(options.seed),
        )

    def language_of(self, samples: torch.Tensor) -> tuple[str, float | None]:
        """Language detected on the first 30 s (English for English-only models)."""
        if not self.tokenizer.multilingual:
            return "en", None
        mel = self.log_mel(samples[: N_FRAMES * 160])[:, :N_FRAMES]
        language, probability, _ = self.detect_language(mel.to(self.device, self._dtype))
        return language, probability

    @torch.inference_mode()
    def transcribe_chunks(
        self, chunks: list[np.ndarray], options: TranscribeOptions
    ) -> list[list[Segment]]:
        """Decode up-to-30-s chunks in batches (the long-audio pipeline's entry point).

        Each chunk is decoded without previous-text conditioning. Whisper ends a window at its
        last complete segment and expects the next window to go on from there, so the rest of
        a chunk is decoded again in the next round, batched with the other chunks' rests. A
        window whose result is too repetitive or unlikely is redone alone at the next
        temperatures.
        """
        out: list[list[Segment]] = [[] for _ in chunks]
        pending = [(i, 0.0, chunk) for i, chunk in enumerate(chunks)]
        while pending:
            pending = self._decode_round(pending, options, out)
        return out

    def _decode_round(
        self,
        pieces: list[tuple[int, float, np.ndarray]],
        options: TranscribeOptions,
        out: list[list[Segment]],
    ) -> list[tuple[int, float, np.ndarray]]:
        """One batched window per piece; returns the rests that still need decoding."""
        windows = []
        for _, _, piece in pieces:
            mel = self.log_mel(torch.from_numpy(piece))[:, : min(len(piece) // 160, N_FRAMES)]
            windows.append(torch.nn.functional.pad(mel, (0, N_FRAMES - mel.shape[-1])))
        states = self.model.encoder(torch.stack(windows).to(self.device, self._dtype))
        prompt_text = options.initial_prompt
        history = self.tokenizer.encode(" " + prompt_text.strip()) if prompt_text else []
        prompt = build_prompt(
            self.tokenizer, history, options.language, options, self.model.dims.n_text_ctx
        )
        base = self.decode_base(options)
        first = decode_config(base, options, options.temperatures[0])
        results = decode_windows(self.model, self.tokenizer, states, prompt, first)
        rests = []
        for k, ((i, offset, piece), result) in enumerate(zip(pieces, results)):
            audio_states = states[k : k + 1]
            if needs_fallback(result, options) and len(options.temperatures) > 1:
                result = decode_with_fallback(
                    self.model,
                    self.tokenizer,
                    audio_states,
                    prompt,
                    options,
                    base,
                    options.temperatures[1:],
                )
            if is_no_speech(result, options):
                continue
            frames = min(len(piece) // 160, N_FRAMES)
            found, seek, single_ending = split_segments(
                result.tokens, self.tokenizer, result, offset, frames
            )
            resume = options.timestamps and not single_ending and 0 < seek < frames - 100
            if (
                not resume
                and options.timestamps
                and result.tokens[-1:] < [self.tokenizer.timestamp_begin]
            ):
                # the last segment has no closing timestamp: close it at the piece's end
                closed = result.tokens + [self.tokenizer.timestamp_begin + frames // 2]
                found, _, _ = split_segments(closed, self.tokenizer, result, offset, frames)
            if options.word_timestamps:
                add_word_timestamps(
                    found,
                    self.model,
                    self.tokenizer,
                    audio_states,
                    prompt,
                    options.language,
                    frames,
                    0.0,
                )
            out[i] += [
                f.segment
                for f in found
                if f.segment.end > f.segment.start and f.segment.text.strip()
            ]
            if resume:
                rests.append((i, offset + seek * 0.01, piece[seek * 160 :]))
        return rests

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions | None = None,
        progress: Callable[[float, float], None] | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Transcribe one recording of any length; `progress(done_s, total_s)` reports progress.

        With `vad` (default) speech pieces found by Silero VAD are decoded in batches; without,
        30 s windows are decoded one after another with seeking and previous-text conditioning.
        """
        started = time.perf_counter()
        options = self._options(options, overrides)
        samples = torch.from_numpy(load_audio(audio, self.sample_rate).mono())
        duration = samples.shape[0] / self.sample_rate
        language, language_prob = options.language, None
        if language is None:
            language, language_prob = self.language_of(samples)
        options = replace(options, language=language)
        if options.vad:
            segments = transcribe_samples(self, [samples.numpy()], options, progress)[0]
        else:
            mel = self.log_mel(samples).to(self.device, self._dtype)
            report = (lambda done: progress(done, duration)) if progress else None
            segments = transcribe_features(
                self.model,
                self.tokenizer,
                mel,
                samples.shape[0] // 160,
                language,
                options,
                self.decode_base(options),
                report,
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
        """Several recordings; with VAD their speech pieces share batches (per language)."""
        options = self._options(options, overrides)
        if not options.vad:
            return [self.transcribe(a, options) for a in audios]
        started = time.perf_counter()
        recordings = [torch.from_numpy(load_audio(a, self.sample_rate).mono()) for a in audios]
        languages = [options.language or self.language_of(r)[0] for r in recordings]
        segments: list[list[Segment]] = [[] for _ in recordings]
        for language in dict.fromkeys(languages):
            members = [i for i, code in enumerate(languages) if code == language]
            found = transcribe_samples(
                self, [recordings[i].numpy() for i in members], replace(options, language=language)
            )
            for i, segs in zip(members, found):
                segments[i] = segs
        elapsed = time.perf_counter() - started
        total = sum(r.shape[0] for r in recordings) or 1
        return [
            Transcript(
                text="".join(s.text for s in segs).strip(),
                segments=segs,
                language=code,
                duration=r.shape[0] / self.sample_rate,
                processing_seconds=elapsed * r.shape[0] / total,
            )
            for r, segs, code in zip(recordings, segments, languages)
        ]


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
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(
            f"incomplete Whisper model directory: tokenizer.json is missing in {directory}"
        )
    tokenizer = WhisperTokenizer.from_file(tokenizer_file, dims.vocab_size)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    state = {hf_to_native(k): v for k, v in load_safetensors(directory).items()}
    state.pop("proj_out.weight", None)
    try:
        fuse_attention(state)
    except KeyError as exc:
        raise ModelError(f"the Whisper weights in {directory} lack the tensor {exc}") from None
    for key in [k for k in state if _LINEAR.search(k)] + ["decoder.token_embedding_t"]:
        if key in state:
            state[key] = state[key].t()  # matrices are stored as [in, out] (model.Linear)
    if "encoder.positional_embedding" not in state:
        state["encoder.positional_embedding"] = sinusoids(dims.n_audio_ctx, dims.d_model)
    model = materialize(
        lambda: Whisper(dims), state, dev, torch_dtype, f"the weights in {directory}"
    )
    heads = generation.get("alignment_heads")
    if heads:
        model.alignment_heads = [tuple(h) for h in heads]
    return WhisperAsr(model, tokenizer, generation, name or directory.name)
