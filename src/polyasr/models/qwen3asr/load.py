"""Load the Qwen3-ASR hub layout and expose it through the `AsrModel` protocol."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from ..whisper.tokenizer import UNSPACED_LANGUAGES
from .decoding import GenerationConfig, greedy_generate, parse_output
from .model import AudioDims, Qwen3AsrThinker, TextDims
from .tokenizer import LANGUAGE_CODES, LANGUAGE_NAMES, Qwen3AsrTokenizer, language_name

SAMPLE_RATE = 16000
MIN_SAMPLES = SAMPLE_RATE // 2  # shorter pieces are zero-padded to 0.5 s (qwen-asr's minimum)
ATTENTION = ("windowed", "full")


@dataclass
class Recognition:
    """One piece of audio decoded: generated ids, their raw text and the parsed result."""

    tokens: list[int]
    raw: str
    language: str  # the model's language name ("English"), "" when none
    text: str
    audio_tokens: int = 0
    prompt: list[int] = field(default_factory=list)


def is_qwen3asr_dir(path: Path) -> bool:
    """Whether `path` is a directory whose config.json says `model_type` "qwen3_asr"."""
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "qwen3_asr"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("thinker_config"), dict):
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


def _features(directory: Path, n_mels: int) -> FeatureConfig:
    """Whisper's log-mel recipe with the sizes of preprocessor_config.json (no 30 s padding)."""
    path = directory / "preprocessor_config.json"
    pre: dict[str, Any] = {}
    if path.is_file():
        try:
            pre = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read {path}: {exc}") from None
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
            f"{path}: expected {SAMPLE_RATE} Hz and {n_mels} mel bins, got "
            f"{config.sample_rate} Hz and {config.n_mels}"
        )
    return config


class Qwen3Asr:
    """A loaded Qwen3-ASR model (0.6B / 1.7B): transcribe files or waveforms of any length.

    Greedy decoding as the reference; `language` forces the output language (else the model's
    `language X` tag is parsed), `initial_prompt` is the context text (hot words, domain text)
    put into the system turn. Pieces of up to 30 s are decoded in batches; each gives one
    segment spanning the piece (the model emits no timestamps).
    """

    family = "qwen3-asr"
    sample_rate = SAMPLE_RATE
    max_input_seconds = 30.0
    pads_to_max_input = False

    def __init__(
        self,
        thinker: Qwen3AsrThinker,
        tokenizer: Qwen3AsrTokenizer,
        features: FeatureConfig,
        languages: tuple[str, ...],
        name: str,
    ) -> None:
        self.thinker = thinker
        self.tokenizer = tokenizer
        self.features = features
        self.languages = languages
        self.name = name
        self.attention = "windowed"
        self.generation = GenerationConfig(stop_ids=tokenizer.end_ids)
        """Generation limits; `max_new_tokens` is replaced per call (see `token_budget`)."""

    @property
    def attention(self) -> str:
        """Audio encoder attention: "windowed" (8 s windows: vLLM, FlashAttention-2 and
        transformers 5) or "full" (every token sees the whole piece: qwen-asr's transformers
        backend with its default sdpa/eager attention)."""
        return self._attention

    @attention.setter
    def attention(self, value: str) -> None:
        if value not in ATTENTION:
            raise OptionError(f"attention must be one of {', '.join(ATTENTION)}, not {value!r}")
        self._attention = value

    @property
    def device(self) -> torch.device:
        return self.thinker.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.thinker.model.embed_tokens.weight.dtype

    def _options(
        self, options: TranscribeOptions | None, overrides: dict[str, Any]
    ) -> TranscribeOptions:
        options = TranscribeOptions.resolve(options, overrides)
        if options.task != "transcribe":
            raise OptionError(f"{self.name} transcribes only (no translation)")
        if options.word_timestamps:
            raise OptionError(
                f"{self.name} gives segment times only; word times need Qwen3-ForcedAligner"
            )
        if options.language is not None:
            language_name(options.language)
        return options

    def log_mel(self, samples: torch.Tensor | np.ndarray) -> torch.Tensor:
        """[n_mels, samples // 160] of one piece, its own dynamic range (no 30 s padding)."""
        return log_mel(samples, self.features)

    @torch.inference_mode()
    def encode(self, chunks: list[np.ndarray]) -> list[torch.Tensor]:
        """Audio vectors [N_i, hidden] of each piece (features computed piece by piece)."""
        mels = [self.log_mel(torch.from_numpy(c)).to(self.device, self.dtype) for c in chunks]
        return self.thinker.audio_tower(mels, windowed=self.attention == "windowed")

    def embed_prompt(self, ids: list[int], audio: torch.Tensor) -> torch.Tensor:
        """Token embeddings [L, hidden] with the `<|audio_pad|>` rows replaced, in order, by
        the audio vectors."""
        tokens = torch.tensor(ids, device=self.device)
        embedded = self.thinker.model.embed_tokens(tokens)
        embedded[tokens == self.tokenizer.audio_pad] = audio.to(embedded.dtype)
        return embedded

    def token_budget(self, chunks: list[np.ndarray], options: TranscribeOptions) -> int:
        """`max_new_tokens` or 64 + 16 per second of the longest piece (speech rarely exceeds
        8 tokens a second; the slack only bounds a runaway decode)."""
        if options.max_new_tokens:
            return options.max_new_tokens
        return 64 + math.ceil(16 * max(len(c) for c in chunks) / SAMPLE_RATE)

    @torch.inference_mode()
    def recognize(
        self,
        chunks: list[np.ndarray],
        context: str = "",
        language: str | None = None,
        max_new_tokens: int | None = None,
    ) -> list[Recognition]:
        """Decode pieces of at most a few minutes as one batch; `language` (ISO code or name)
        forces the output language, `context` goes into the system turn."""
        forced = language_name(language) if language else None
        pieces = [self._fit(c) for c in chunks]
        audio = self.encode(pieces)
        prompts = [self.tokenizer.prompt(len(a), context, forced) for a in audio]
        config = self.generation
        if max_new_tokens is not None:
            config = replace(config, max_new_tokens=max_new_tokens)
        embedded = [self.embed_prompt(p, a) for p, a in zip(prompts, audio)]
        results = []
        for ids, prompt, a in zip(greedy_generate(self.thinker, embedded, config), prompts, audio):
            raw = self.tokenizer.decode(ids)
            name, text = parse_output(raw, forced)
            results.append(Recognition(ids, raw, name, text, len(a), prompt))
        return results

    @staticmethod
    def _fit(chunk: np.ndarray) -> np.ndarray:
        """float32 in [-1, 1] (divided by its peak when louder, as qwen-asr), at least 0.5 s."""
        chunk = np.asarray(chunk, dtype=np.float32)
        peak = float(np.abs(chunk).max()) if chunk.size else 0.0
        if peak > 1.0:
            chunk = np.clip(chunk / peak, -1.0, 1.0)
        if len(chunk) < MIN_SAMPLES:
            chunk = np.pad(chunk, (0, MIN_SAMPLES - len(chunk)))
        return chunk

    def transcribe_chunks(
        self, chunks: list[np.ndarray], options: TranscribeOptions
    ) -> list[list[Segment]]:
        """One segment per piece with text, spanning the piece (the model gives no times)."""
        results = self.recognize(
            chunks,
            options.initial_prompt or "",
            options.language,
            self.token_budget(chunks, options),
        )
        out: list[list[Segment]] = []
        for chunk, r in zip(chunks, results):
            if not r.text:
                out.append([])
                continue
            code = LANGUAGE_CODES.get(r.language, r.language.lower() or None)
            end = round(len(chunk) / SAMPLE_RATE, 3)
            out.append([Segment(start=0.0, end=end, text=r.text, language=code)])
        return out

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions | None = None,
        progress: Callable[[float, float], None] | None = None,
        **overrides: Any,
    ) -> Transcript:
        """Transcribe one recording of any length (VAD pieces, or fixed 30 s windows)."""
        options = self._options(options, overrides)
        return self._transcribe_many([audio], options, progress)[0]

    def transcribe_batch(
        self, audios: list[AudioInput], options: TranscribeOptions | None = None, **overrides: Any
    ) -> list[Transcript]:
        """Several recordings whose pieces are decoded in shared batches."""
        return self._transcribe_many(audios, self._options(options, overrides), None)

    def _transcribe_many(
        self,
        audios: list[AudioInput],
        options: TranscribeOptions,
        progress: Callable[[float, float], None] | None,
    ) -> list[Transcript]:
        started = time.perf_counter()
        recordings = [load_audio(a, SAMPLE_RATE).mono() for a in audios]
        segment_lists = transcribe_samples(self, recordings, options, progress)
        elapsed = time.perf_counter() - started
        total = sum(len(r) for r in recordings) or 1
        forced = LANGUAGE_CODES[language_name(options.language)] if options.language else None
        return [
            Transcript(
                text=join_segments(segments),
                segments=segments,
                language=forced or main_language(segments),
                duration=len(samples) / SAMPLE_RATE,
                processing_seconds=elapsed * len(samples) / total,
            )
            for samples, segments in zip(recordings, segment_lists)
        ]


def main_language(segments: list[Segment]) -> str | None:
    """The language tagged on the most seconds of speech (None when nothing was tagged)."""
    seconds: Counter[str] = Counter()
    for s in segments:
        language = getattr(s, "language", None)
        if language:
            seconds[language] += s.end - s.start
    return seconds.most_common(1)[0][0] if seconds else None


def join_segments(segments: list[Segment]) -> str:
    """Segment texts joined by spaces, without one next to a language written unspaced."""
    text = ""
    previous: str | None = None
    for s in segments:
        language = getattr(s, "language", None)
        unspaced = previous in UNSPACED_LANGUAGES or language in UNSPACED_LANGUAGES
        text += ("" if not text or unspaced else " ") + s.text.strip()
        previous = language
    return text


def load_qwen3asr(
    path: Path, device: str = "auto", dtype: Any = None, name: str | None = None
) -> Qwen3Asr:
    """Build a `Qwen3Asr` from a directory in the hub layout (config.json, safetensors single or
    sharded, vocab.json + merges.txt + tokenizer_config.json, preprocessor_config.json)."""
    if not path.is_dir():
        raise ModelError(f"{path} is not a Qwen3-ASR model directory")
    config = _read_config(path)
    audio_dims, text_dims = dims_from_config(config)
    tokenizer = Qwen3AsrTokenizer.from_directory(path)
    audio_id = config["thinker_config"].get("audio_token_id", tokenizer.audio_pad)
    if audio_id != tokenizer.audio_pad:
        raise ModelError(
            f"config.json says audio_token_id {audio_id}, the tokenizer has <|audio_pad|> = "
            f"{tokenizer.audio_pad}"
        )
    features = _features(path, audio_dims.n_mels)
    dev = resolve_device(device)
    if dtype in (None, "auto") and dev.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16  # the published weights are bf16; fp16 can overflow
    torch_dtype = resolve_dtype(dtype, dev)
    state = _thinker_state(load_safetensors(path), text_dims, path)
    thinker = materialize(
        lambda: Qwen3AsrThinker(audio_dims, text_dims),
        state,
        dev,
        torch_dtype,
        f"the weights in {path}",
    )
    names = config.get("support_languages") or list(LANGUAGE_NAMES.values())
    languages = tuple(LANGUAGE_CODES[n] for n in names if n in LANGUAGE_CODES)
    return Qwen3Asr(thinker, tokenizer, features, languages, name or path.name)


def _thinker_state(
    state: dict[str, torch.Tensor], text: TextDims, path: Path
) -> dict[str, torch.Tensor]:
    """The `thinker.*` tensors without their prefix; with tied embeddings a stored lm_head is
    dropped (qwen-asr ties it to the embedding at load, whatever the file holds)."""
    out = {}
    for key in list(state):
        tensor = state.pop(key)
        if not key.startswith("thinker."):
            raise ModelError(f"unexpected tensor {key} in the Qwen3-ASR weights in {path}")
        out[key.removeprefix("thinker.")] = tensor
    if text.tie_embeddings:
        out.pop("lm_head.weight", None)
    return out
