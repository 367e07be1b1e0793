"""Speaker embedders behind one small interface: features of a whole recording are computed
once, then any selection of their frames (one speaker's speech in one window) is embedded.

`CamPlusPlusEmbedder` wraps 3D-Speaker's CAM++ (Kaldi fbank, 192-d); `MeanMelEmbedder` is the
seed's baseline, the mean log-mel vector. Other models (ECAPA-TDNN, WeSpeaker ResNet) fit the
same interface.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

SAMPLE_RATE = 16000
BLOCK_FRAMES = 6000
"""Fbank frames computed at a time (one minute): bounded memory for long recordings."""


@torch.inference_mode()
def fbank(samples: np.ndarray) -> Tensor:
    """Kaldi log-mel fbank [frames, 80] of a whole 16 kHz recording (25 ms windows every 10 ms,
    edges snipped), a minute of frames at a time so that memory stays bounded."""
    from .campplus import FRAME_LENGTH, FRAME_SHIFT, kaldi_fbank

    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    total = 1 + (len(waveform) - FRAME_LENGTH) // FRAME_SHIFT
    blocks = []
    for first in range(0, max(total, 0), BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, total - first)
        piece = waveform[first * FRAME_SHIFT : (first + count - 1) * FRAME_SHIFT + FRAME_LENGTH]
        feats, _ = kaldi_fbank(piece[None], torch.tensor([len(piece)]))
        blocks.append(feats[0, :count])
    return torch.cat(blocks) if blocks else torch.zeros(0, 80)


class SpeakerEmbedder(Protocol):
    frame_step: float
    """Seconds between feature frames."""
    frame_centre: float
    """Centre of frame 0, in seconds."""
    min_frames: int
    """Fewest frames an embedding can be computed from."""

    def features(self, samples: np.ndarray) -> Tensor:
        """Features [frames, dim] of a whole 16 kHz recording."""

    def embed(self, clips: list[Tensor]) -> np.ndarray:
        """Embeddings [N, E] of clips of feature frames [frames_i, dim]."""


class CamPlusPlusEmbedder:
    """CAM++ on Kaldi fbank frames (25 ms windows every 10 ms, edges snipped); each clip is
    mean-normalized over its own frames, as 3D-Speaker does per utterance."""

    frame_step = 0.01
    frame_centre = 0.0125
    min_frames = 10

    def __init__(self, model, batch_frames: int = 32 * 1000) -> None:
        self.model = model
        self.batch_frames = batch_frames

    def features(self, samples: np.ndarray) -> Tensor:
        return fbank(samples)

    def embed(self, clips: list[Tensor]) -> np.ndarray:
        from .campplus import length_batches, mean_normalize

        out = np.zeros((len(clips), self.model.embedding_size), np.float32)
        for chunk in length_batches([len(c) for c in clips], self.batch_frames):
            group = [clips[i] for i in chunk]
            frames = torch.tensor([len(c) for c in group])
            batch = torch.zeros(len(group), int(frames.max()), group[0].shape[1])
            for row, clip in enumerate(group):
                batch[row, : len(clip)] = clip
            out[chunk] = self.model.embed_features(mean_normalize(batch, frames), frames).numpy()
        return out


class MeanMelEmbedder:
    """The seed's baseline: the mean of 80-bin log-mel frames, centred on the recording's
    mean (what varies from speaker to speaker is the spectral envelope)."""

    frame_step = 0.01
    frame_centre = 0.0125
    min_frames = 10

    def features(self, samples: np.ndarray) -> Tensor:
        feats = fbank(samples)
        return feats - feats.mean(dim=0) if len(feats) else feats

    def embed(self, clips: list[Tensor]) -> np.ndarray:
        return np.stack([c.mean(dim=0).numpy() for c in clips]) if clips else np.zeros((0, 80))
