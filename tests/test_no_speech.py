"""Silence and noise give empty transcripts, never invented words, with the VAD off too.

With the VAD off every model sees the audio, so this tests each family's own no-speech path:
Whisper's no-speech rule on real weights, and for the random-weight fixtures the handling of
an all-blank CTC / RNN-T / TDT output and of an immediate end token (their heads are biased so
that the untrained network "hears nothing"). Digital silence is never sent to a model at all.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

import polyasr
from polyasr.pipeline.transcriber import Transcriber

GOLDEN = Path(__file__).parent / "golden"
RATE = 16000


def audio(kind: str, seconds: float = 12.0) -> np.ndarray:
    n = int(seconds * RATE)
    if kind == "silence":
        return np.zeros(n, np.float32)
    return (np.random.default_rng(0).standard_normal(n) * 0.05).astype(np.float32)


@pytest.mark.parametrize("vad", [True, False])
@pytest.mark.parametrize("kind", ["silence", "noise"])
@pytest.mark.parametrize("beam_size", [1, 5])
def test_whisper_transcribes_nothing(whisper_base, kind, vad, beam_size):
    result = whisper_base.transcribe(audio(kind), vad=vad, beam_size=beam_size)
    assert result.text == "" and result.segments == []


class Counting:
    """Wraps a recognizer's `decode` to count the pieces it is asked for."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.pieces = 0
        recognizer = transcriber.recognizer
        original = recognizer.decode

        def decode(pieces, options):
            self.pieces += len(pieces)
            return original(pieces, options)

        recognizer.decode = decode


def _blank_biased(name: str) -> Transcriber:
    model = polyasr.load(GOLDEN / name, device="cpu")
    net = model.recognizer.model
    with torch.no_grad():
        if name == "gigaam-v3-ctc":
            net.head.decoder_layers[0].bias[-1] += 1e4  # blank is the last class
        elif name == "gigaam-v3-e2e-rnnt":
            net.head.joint.joint_net[1].bias[-1] += 1e4
        else:  # Parakeet TDT: blank follows the vocabulary, durations come after it
            net.joint.joint_net[2].bias[net.dims.blank] += 1e4
    return model


@pytest.mark.parametrize("name", ["gigaam-v3-ctc", "gigaam-v3-e2e-rnnt", "parakeet-tdt-tiny"])
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_all_blank_outputs_give_empty_transcripts_without_vad(name, kind):
    model = _blank_biased(name)
    counter = Counting(model)
    result = model.transcribe(audio(kind, 70.0), vad=False)
    assert result.text == "" and result.segments == []
    windows = int(np.ceil(70.0 / model.recognizer.max_piece_seconds))
    assert counter.pieces == (0 if kind == "silence" else windows)  # silence never reaches one


def test_qwen3asr_immediate_end_gives_an_empty_transcript(tmp_path, monkeypatch):
    from test_qwen3asr import FIXTURE, MAKE

    model = polyasr.load(MAKE.materialize(FIXTURE, tmp_path / "hub"), device="cpu")
    thinker = model.recognizer.thinker
    logits = thinker.logits
    end = model.recognizer.tokenizer.end_ids[0]

    def ending(hidden):
        out = logits(hidden)
        out[..., end] += 1e4
        return out

    monkeypatch.setattr(thinker, "logits", ending)
    counter = Counting(model)
    for kind in ("silence", "noise"):
        result = model.transcribe(audio(kind, 40.0), vad=False)
        assert result.text == "" and result.segments == [] and result.language is None
    assert counter.pieces == 2  # the noise's two windows; the silence's none
