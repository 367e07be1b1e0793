"""Parakeet TDT as the pipeline sees it: batched FastConformer, TDT greedy decoding, word and
sentence times."""

from __future__ import annotations

import numpy as np
import torch

from ...pipeline.recognizer import Decoded
from ...types import Segment, TranscribeOptions, Word
from ..acoustic import AcousticRecognizer
from .decoding import tdt_greedy

SAMPLE_RATE = 16000
SEGMENT_ENDINGS = (".", "?", "!")


class ParakeetRecognizer(AcousticRecognizer):
    """A loaded Parakeet TDT model: 8x-subsampled FastConformer + TDT greedy decoding. It finds
    the language itself; a requested language only labels the transcript."""

    family = "parakeet"
    max_piece_seconds = 60.0

    @property
    def frame_seconds(self) -> float:
        return self.features.hop_length * self.model.dims.subsampling_factor / SAMPLE_RATE

    def feature_length(self, samples: int, frames: int) -> int:
        """NeMo >= 2.5 counts floor(N / hop) valid frames (one fewer than the STFT gives)."""
        return max(samples // self.features.hop_length, 1)

    @torch.inference_mode()
    def recognize(self, chunks: list[np.ndarray]) -> list[list]:
        """Token spans (id, start frame, end frame) for each chunk."""
        states, lengths = self.encode(chunks)
        return tdt_greedy(self.model, states, lengths, self.max_symbols)

    def decode(self, pieces: list[np.ndarray], options: TranscribeOptions) -> list[Decoded]:
        """Segments split after sentence-ending words, with times relative to the piece."""
        out = []
        for chunk, spans in zip(pieces, self.recognize(pieces)):
            spans = [s for s in spans if s.id < self.model.dims.vocab_size]
            duration = len(chunk) / SAMPLE_RATE
            words = [
                Word(
                    start=round(min(start * self.frame_seconds, duration), 3),
                    end=round(min(end * self.frame_seconds, duration), 3),
                    text=text,
                )
                for text, start, end in self.tokenizer.words(spans)
            ]
            out.append(Decoded(self._segments(words)))
        return out

    @staticmethod
    def _segments(words: list[Word]) -> list[Segment]:
        """One segment per sentence (NeMo's `segment_seperators`: . ? !)."""
        segments: list[Segment] = []
        current: list[Word] = []
        for word in words:
            current.append(word)
            if word.text.endswith(SEGMENT_ENDINGS) or word is words[-1]:
                text = " ".join(w.text for w in current)
                segments.append(
                    Segment(start=current[0].start, end=current[-1].end, text=text, words=current)
                )
                current = []
        return segments
