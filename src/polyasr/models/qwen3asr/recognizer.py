"""Qwen3-ASR as the pipeline sees it: audio encoder, ChatML prompt with the audio spliced in,
batched greedy generation, language tags."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ...audio import FeatureConfig, log_mel
from ...errors import OptionError
from ...pipeline.recognizer import Decoded, Recognizer
from ...types import Segment, TranscribeOptions
from .decoding import GenerationConfig, greedy_generate, parse_output
from .model import Qwen3AsrThinker
from .tokenizer import LANGUAGE_CODES, Qwen3AsrTokenizer, language_name

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


class Qwen3AsrRecognizer(Recognizer):
    """A loaded Qwen3-ASR model (0.6B / 1.7B): transcribe files or waveforms of any length.

    Greedy decoding as the reference; `language` forces the output language (else the model's
    `language X` tag is parsed), `initial_prompt` is the context text (hot words, domain text)
    put into the system turn. Pieces of up to 30 s are decoded in batches; each gives one
    segment spanning the piece (the model emits no timestamps).
    """

    family = "qwen3-asr"
    max_piece_seconds = 30.0

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

    def check(self, options: TranscribeOptions) -> None:
        if options.task != "transcribe":
            raise OptionError(f"{self.name} transcribes only (no translation)")
        if options.word_timestamps:
            raise OptionError(
                f"{self.name} gives segment times only; word times need Qwen3-ForcedAligner"
            )
        if options.language is not None:
            language_name(options.language)

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

    def decode(self, pieces: list[np.ndarray], options: TranscribeOptions) -> list[Decoded]:
        """One segment per piece with text, spanning the piece (the model gives no times)."""
        results = self.recognize(
            pieces,
            options.initial_prompt or "",
            options.language,
            self.token_budget(pieces, options),
        )
        out = []
        for piece, r in zip(pieces, results):
            if not r.text:
                out.append(Decoded([]))
                continue
            code = LANGUAGE_CODES.get(r.language, r.language.lower() or None)
            end = round(len(piece) / SAMPLE_RATE, 3)
            out.append(Decoded([Segment(start=0.0, end=end, text=r.text, language=code)]))
        return out
