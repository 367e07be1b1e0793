"""Whisper as the pipeline sees it: batches of up-to-30-s pieces, language detection, and
openai-whisper's sequential long form when VAD is off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ...audio import FeatureConfig, log_mel
from ...errors import OptionError
from ...pipeline.planning import is_silent
from ...pipeline.recognizer import Decoded, Recognizer
from ...types import Segment, TranscribeOptions
from .decoding import DecodeConfig, decode_windows
from .model import Whisper
from .timing import add_word_timestamps
from .tokenizer import WhisperTokenizer
from .windows import (
    N_FRAMES,
    build_prompt,
    decode_config,
    decode_with_fallback,
    is_no_speech,
    needs_fallback,
    split_segments,
    transcribe_features,
)

HOP = 160


class WhisperRecognizer(Recognizer):
    """A loaded Whisper checkpoint (network, tokenizer, generation settings)."""

    family = "whisper"
    max_piece_seconds = 30.0
    pads_to_max_input = True
    has_long_form = True
    words_on_request = True

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
        return self.model.decoder.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.decoder.embed_tokens.weight.dtype

    def check(self, options: TranscribeOptions) -> None:
        if options.language is not None and options.language not in self.languages:
            raise OptionError(
                f"language {options.language!r} is not supported by {self.name}; "
                f"use one of: {', '.join(self.languages)}"
            )
        if options.task == "translate" and not self.tokenizer.multilingual:
            raise OptionError(f"{self.name} is English-only and cannot translate")

    def log_mel(self, samples: torch.Tensor) -> torch.Tensor:
        """Features of the whole recording plus 30 s of zeros (one global dynamic range)."""
        padded = torch.nn.functional.pad(samples, (0, N_FRAMES * HOP))
        return log_mel(padded, self.features)

    def window(self, samples: np.ndarray) -> torch.Tensor:
        """The [n_mels, 3000] window of a piece of at most 30 s."""
        mel = self.log_mel(torch.from_numpy(samples))[:, : min(len(samples) // HOP, N_FRAMES)]
        return torch.nn.functional.pad(mel, (0, N_FRAMES - mel.shape[-1]))

    @torch.inference_mode()
    def detect_language(self, samples: np.ndarray) -> tuple[str, float | None]:
        """Most likely language of a piece of at most 30 s, and its probability."""
        if not self.tokenizer.multilingual:
            return "en", None
        probabilities = self.language_probabilities(self.window(samples[: N_FRAMES * HOP]))
        best = max(probabilities, key=probabilities.get)
        return best, probabilities[best]

    @torch.inference_mode()
    def language_probabilities(self, window: torch.Tensor) -> dict[str, float]:
        """Probability of every language for a [n_mels, 3000] window."""
        states = self.model.encoder(window[None].to(self.device, self.dtype))
        cache = self.model.new_cache(1)
        self.model.decoder.set_audio(cache, states)
        hidden, _ = self.model.decoder(
            torch.tensor([[self.tokenizer.sot]], device=self.device), cache
        )
        logits = self.model.decoder.logits(hidden[0, 0])
        codes = list(self.tokenizer.language_ids)
        ids = torch.tensor([self.tokenizer.language_ids[c] for c in codes], device=logits.device)
        return dict(zip(codes, logits[ids].softmax(dim=-1).tolist()))

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

    @torch.inference_mode()
    def decode(self, pieces: list[np.ndarray], options: TranscribeOptions) -> list[Decoded]:
        """One batched 30 s window per piece, without previous-text conditioning.

        Whisper ends a window at its last complete segment; the rest of the piece is left to
        the pipeline, which decodes it in the next round. A window whose result is too
        repetitive or unlikely is redone alone at the next temperatures.
        """
        windows = torch.stack([self.window(p) for p in pieces])
        states = self.model.encoder(windows.to(self.device, self.dtype))
        prompt_text = options.initial_prompt
        history = self.tokenizer.encode(" " + prompt_text.strip()) if prompt_text else []
        prompt = build_prompt(
            self.tokenizer, history, options.language, options, self.model.dims.n_text_ctx
        )
        base = self.decode_base(options)
        first = decode_config(base, options, options.temperatures[0])
        results = decode_windows(self.model, self.tokenizer, states, prompt, first)
        out = []
        for k, (piece, result) in enumerate(zip(pieces, results)):
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
                out.append(Decoded([]))
                continue
            frames = min(len(piece) // HOP, N_FRAMES)
            found, seek, single_ending = split_segments(
                result.tokens, self.tokenizer, result, 0.0, frames
            )
            resume = options.timestamps and not single_ending and 0 < seek < frames - 100
            if (
                not resume
                and options.timestamps
                and result.tokens[-1:] < [self.tokenizer.timestamp_begin]
            ):
                # the last segment has no closing timestamp: close it at the piece's end
                closed = result.tokens + [self.tokenizer.timestamp_begin + frames // 2]
                found, _, _ = split_segments(closed, self.tokenizer, result, 0.0, frames)
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
            segments = [
                f.segment
                for f in found
                if f.segment.end > f.segment.start and f.segment.text.strip()
            ]
            out.append(Decoded(segments, seek * HOP / 16000 if resume else None))
        return out

    @torch.inference_mode()
    def transcribe_long(
        self,
        recordings: list[np.ndarray],
        options: TranscribeOptions,
        advance: Callable[[float], None],
    ) -> list[list[Segment]]:
        """openai-whisper's long form: 30 s windows one after another, seeking to the last
        complete segment, conditioned on the previous text."""
        results = []
        for samples in recordings:
            mel = self.log_mel(torch.from_numpy(samples)).to(self.device, self.dtype)
            done = [0.0]

            def report(seconds: float, done: list[float] = done) -> None:
                advance(seconds - done[0])
                done[0] = seconds

            results.append(
                transcribe_features(
                    self.model,
                    self.tokenizer,
                    mel,
                    len(samples) // HOP,
                    options.language,
                    options,
                    self.decode_base(options),
                    report,
                    lambda start, end, x=samples: is_silent(x[start * HOP : end * HOP]),
                )
            )
        return results
