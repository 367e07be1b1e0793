"""Silero VAD: the native PyTorch network against the silero-vad package's own model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

from polyasr.audio import load_audio
from polyasr.audio.vad import (
    SAMPLE_RATE,
    WINDOW,
    regions_from_probabilities,
    speech_probabilities,
    speech_regions,
)
from polyasr.types import VadOptions

FILES = ["en/derived_longform_dev.flac", "ru/deepspeech_ru.flac"]
SILERO = VadOptions(threshold=0.5, min_speech_s=0.25, min_silence_s=0.1, speech_pad_s=0.03)
"""`silero_vad.get_speech_timestamps`' own defaults, which the reference runs with."""


class _Recorder:
    """Wraps the reference model so one `get_speech_timestamps` run also yields its probs."""

    def __init__(self, model) -> None:
        self.model = model
        self.probs: list[float] = []

    def reset_states(self) -> None:
        self.model.reset_states()
        self.probs = []

    def __call__(self, chunk: torch.Tensor, sampling_rate: int) -> torch.Tensor:
        out = self.model(chunk, sampling_rate)
        self.probs.append(out.item())
        return out


@pytest.fixture(scope="module")
def reference_model():
    """The package's TorchScript model (`load_silero_vad()`), used only as the reference."""
    threads = torch.get_num_threads()
    import silero_vad  # a core dependency; its import calls torch.set_num_threads(1)

    torch.set_num_threads(threads)
    return silero_vad, _Recorder(silero_vad.load_silero_vad())


@pytest.fixture(scope="module")
def reference(reference_model):
    """Per file: audio, reference probs, reference timestamps (samples and seconds)."""
    silero_vad, recorder = reference_model
    results = {}
    for name in FILES:
        audio = load_audio(shared_path("data", *name.split("/"))).mono()
        samples = silero_vad.get_speech_timestamps(torch.from_numpy(audio), recorder)
        probs = np.array(recorder.probs)
        seconds = silero_vad.get_speech_timestamps_from_probs(
            list(probs), audio_length_samples=len(audio), return_seconds=True
        )
        results[name] = (audio, probs, samples, seconds)
    return results


@pytest.mark.parametrize("name", FILES)
def test_probabilities_match_reference(reference, name):
    audio, ref_probs, _, _ = reference[name]
    probs = speech_probabilities(audio)
    assert probs.shape == ref_probs.shape == (-(-len(audio) // WINDOW),)
    diff = float(np.abs(probs - ref_probs).max())
    print(f"{name}: {len(probs)} windows, max |p - p_ref| = {diff:.2e}")
    assert diff <= 1e-4


@pytest.mark.parametrize("name", FILES)
def test_regions_match_reference(reference, name):
    audio, _, ref_samples, ref_seconds = reference[name]
    regions = speech_regions(audio, SILERO)
    assert len(regions) == len(ref_samples) > 0
    starts_ends = np.array([(round(s * SAMPLE_RATE), round(e * SAMPLE_RATE)) for s, e in regions])
    ref = np.array([(r["start"], r["end"]) for r in ref_samples])
    assert np.abs(starts_ends - ref).max() <= WINDOW
    rounded = np.array([(r["start"], r["end"]) for r in ref_seconds])
    assert np.abs(np.array(regions) - rounded).max() <= 0.05 + 1e-9  # reference rounds to 0.1 s


def test_max_speech_splitting_matches_reference(reference_model, reference):
    """Splitting of long regions (max_speech_s) follows the reference rules on real probs."""
    silero_vad, _ = reference_model
    audio, probs, _, _ = reference["en/derived_longform_dev.flac"]
    for max_speech_s in (1.0, 3.0):
        ref = silero_vad.get_speech_timestamps_from_probs(
            list(probs), audio_length_samples=len(audio), max_speech_duration_s=max_speech_s
        )
        ours = regions_from_probabilities(probs, len(audio), SILERO, max_speech_s=max_speech_s)
        assert ours == [(r["start"], r["end"]) for r in ref]
        assert all(end - start <= max_speech_s * SAMPLE_RATE for start, end in ours)


def _digital_silences(audio: np.ndarray, min_s: float) -> list[tuple[int, int]]:
    """(start, end) sample runs of exact zeros at least min_s long."""
    zero = np.concatenate([[False], audio == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    runs = edges.reshape(-1, 2)
    return [(a, b) for a, b in runs if b - a >= min_s * SAMPLE_RATE]


def test_longform_regions_cover_each_utterance():
    audio = load_audio(shared_path("data", "en", "derived_longform_dev.flac")).mono()
    regions = speech_regions(audio, SILERO)
    gaps = [(a, b) for a, b in _digital_silences(audio, 1.4) if b < len(audio)]  # not the tail
    assert len(gaps) == 10  # 11 utterances joined by 1.5 s of digital silence
    assert len(regions) >= 10
    flat = [t for region in regions for t in region]
    assert flat == sorted(flat) and all(s < e for s, e in regions)  # ordered, non-overlapping
    bounds = [0, *[t for gap in gaps for t in gap], len(audio)]
    utterances = list(zip(bounds[::2], bounds[1::2]))
    for start, end in regions:  # no region spans a join (padding may reach into it)
        assert not any(
            start * SAMPLE_RATE < a + 0.1 * SAMPLE_RATE
            and end * SAMPLE_RATE > b - 0.1 * SAMPLE_RATE
            for a, b in gaps
        )
    for a, b in utterances:  # every utterance has speech found inside it
        assert any(s * SAMPLE_RATE < b and e * SAMPLE_RATE > a for s, e in regions)


def test_silence_and_noise_give_no_regions():
    assert speech_regions(np.zeros(10 * SAMPLE_RATE, dtype=np.float32), SILERO) == []
    noise = 0.05 * np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE)
    probs = speech_probabilities(noise.astype(np.float32))
    print(f"white noise 0.05: max p = {probs.max():.3f}")
    assert speech_regions(noise.astype(np.float32)) == []


@pytest.mark.parametrize("length", [0, 1, 100, 511, 512, 513])
def test_short_inputs(length):
    audio = np.full(length, 0.1, dtype=np.float32)
    probs = speech_probabilities(audio)
    assert probs.shape == (-(-length // WINDOW),) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    assert speech_regions(audio) == []
