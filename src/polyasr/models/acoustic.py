"""What the frame-synchronous families (GigaAM CTC/RNN-T, Parakeet TDT) share: a log-mel
frontend with the checkpoint's own filters, a batched encoder over padded features and option
checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio import FeatureConfig, log_mel
from ..errors import OptionError
from ..pipeline.recognizer import Recognizer
from ..types import TranscribeOptions


class AcousticRecognizer(Recognizer):
    """Base of an encoder + frame-level decoder model; subclasses set the class attributes and
    implement `decode`."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        features: FeatureConfig,
        filters: torch.Tensor,
        window: torch.Tensor,
        name: str,
        max_symbols: int = 10,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.features = features
        self.filters = filters
        self.window = window
        self.name = name
        self.max_symbols = max_symbols

    @property
    def device(self) -> torch.device:
        return self.filters.device

    def check(self, options: TranscribeOptions) -> None:
        if options.language is not None and self.languages:
            if options.language not in self.languages:
                known = ", ".join(repr(code) for code in self.languages)
                raise OptionError(f"{self.name} transcribes only language {known}")
        if options.task != "transcribe":
            raise OptionError(f"{self.name} cannot translate")

    def log_mel(self, samples: torch.Tensor) -> torch.Tensor:
        """[n_mels, frames] with the checkpoint's filter bank and window."""
        return log_mel(samples, self.features, filters=self.filters, window=self.window)

    def feature_length(self, samples: int, frames: int) -> int:
        """Valid feature frames of a waveform of `samples` that gave `frames` frames."""
        return frames

    @torch.inference_mode()
    def encode(self, chunks: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched encoder over waveforms of different lengths: states [B, T', d], lengths."""
        feats = [self.log_mel(torch.from_numpy(c).to(self.device)) for c in chunks]
        lengths = [self.feature_length(len(c), f.shape[-1]) for c, f in zip(chunks, feats)]
        width = max(lengths)
        batch = torch.zeros(len(feats), feats[0].shape[0], width, device=self.device)
        for i, f in enumerate(feats):
            batch[i, :, : min(f.shape[-1], width)] = f[:, :width]
        dtype = next(self.model.parameters()).dtype
        lengths_t = torch.tensor(lengths, device=self.device)
        return self.model.encoder(batch.to(dtype), lengths_t)
