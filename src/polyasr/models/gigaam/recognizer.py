"""GigaAM v3 as the pipeline sees it: batched encoder, greedy CTC or RNN-T, word times."""

from __future__ import annotations

import numpy as np
import torch

from ...pipeline.recognizer import Decoded
from ...types import Segment, TranscribeOptions, Word
from ..acoustic import AcousticRecognizer
from .decoding import ctc_greedy, rnnt_greedy

SAMPLE_RATE = 16000


class GigaAMRecognizer(AcousticRecognizer):
    """A loaded GigaAM v3 model (CTC or RNN-T; plain or end-to-end punctuated)."""

    family = "gigaam"
    languages = ("ru",)
    max_piece_seconds = 25.0

    @property
    def blank(self) -> int:
        return self.model.dims.num_classes - 1

    @torch.inference_mode()
    def recognize(self, chunks: list[np.ndarray]) -> list[tuple[list[int], list[int], int]]:
        """Token ids, their encoder frames and the encoder length for each chunk."""
        short = [i for i, c in enumerate(chunks) if len(c) < self.features.n_fft]
        padded = [
            c if len(c) >= self.features.n_fft else np.zeros(self.features.n_fft, np.float32)
            for c in chunks
        ]
        states, lengths = self.encode(padded)
        results = []
        if self.model.head_type == "ctc":
            log_probs = self.model.head(states)
            for i in range(len(chunks)):
                n = int(lengths[i])
                results.append((*ctc_greedy(log_probs[i], n, self.blank), n))
        else:
            decoded = rnnt_greedy(self.model.head, states, lengths, self.blank, self.max_symbols)
            results = [(*d, int(n)) for d, n in zip(decoded, lengths)]
        for i in short:
            results[i] = ([], [], results[i][2])
        return results

    def decode(self, pieces: list[np.ndarray], options: TranscribeOptions) -> list[Decoded]:
        """One segment per piece with speech, word times relative to the piece start."""
        out = []
        for chunk, (tokens, frames, n_frames) in zip(pieces, self.recognize(pieces)):
            if not tokens:
                out.append(Decoded([]))
                continue
            shift = len(chunk) / SAMPLE_RATE / max(n_frames, 1)
            words = [
                Word(
                    start=round(frames[g[0]] * shift, 3),
                    end=round((frames[g[-1]] + 1) * shift, 3),
                    text=text,
                )
                for text, g in self.tokenizer.words(tokens)
            ]
            text = self.tokenizer.decode(tokens).strip()
            start = words[0].start if words else 0.0
            end = words[-1].end if words else len(chunk) / SAMPLE_RATE
            out.append(Decoded([Segment(start=start, end=end, text=text, words=words)]))
        return out
