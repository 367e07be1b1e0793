from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import assert_log_features_close, shared_path

from polyasr.audio.features import WHISPER_80, WHISPER_128, FeatureConfig, log_mel, mel_filters


@pytest.mark.parametrize(
    "fixture,config", [("whisper-tiny-80", WHISPER_80), ("whisper-tiny-128", WHISPER_128)]
)
def test_whisper_features_match_golden(fixture, config):
    inputs = np.load(shared_path("golden", fixture, "inputs.npz"))
    reference = np.load(shared_path("golden", fixture, "reference.npz"))["features"]
    audio = np.zeros(480000, dtype=np.float32)
    audio[: len(inputs["audio"])] = inputs["audio"]
    features = log_mel(audio, config).numpy()
    raw_log10 = log_mel(audio, replace(config, normalize=None)).numpy()
    # The reference itself carries float32 FFT rounding of ~3.5e-5 in quiet frames
    # (measured against a float64 STFT); loud bins match to ~1e-6.
    assert_log_features_close(features, reference, raw_log10, span=4.0)


def test_slaney_filters_have_unit_area_and_htk_filters_peak_at_one():
    slaney = mel_filters(WHISPER_80).numpy()
    bin_hz = 16000 / 400
    hz_edges_area = slaney.sum(axis=1) * bin_hz
    assert np.allclose(hz_edges_area[5:], 1.0, atol=0.08)
    htk = mel_filters(FeatureConfig(n_fft=320, n_mels=64, mel_scale="htk", mel_norm=None)).numpy()
    assert htk.shape == (64, 161)
    assert htk.max() <= 1.0 and (htk.max(axis=1) > 0).all()


def test_gigaam_style_recipe_frames_without_center():
    config = FeatureConfig(
        n_fft=320,
        hop_length=160,
        n_mels=64,
        mel_scale="htk",
        mel_norm=None,
        center=False,
        log="ln",
        log_eps=1e-9,
        log_max=1e9,
    )
    audio = torch.randn(16000)
    feats = log_mel(audio, config)
    assert feats.shape == (64, 1 + (16000 - 320) // 160)


def test_per_feature_normalization_zero_mean_unit_std_on_valid_frames():
    config = FeatureConfig(
        n_fft=512,
        win_length=400,
        window="hann_symmetric",
        n_mels=128,
        pad_mode="constant",
        preemphasis=0.97,
        log="ln",
        log_guard="add",
        log_eps=2**-24,
        normalize="per_feature",
        valid_frames_only=True,
    )
    audio = torch.randn(16000 + 37)
    feats = log_mel(audio, config)
    valid = (16000 + 37) // 160
    assert feats.shape == (128, valid + 1)
    assert torch.allclose(feats[:, :valid].mean(dim=1), torch.zeros(128), atol=1e-4)
    assert torch.allclose(feats[:, :valid].std(dim=1), torch.ones(128), atol=1e-3)
    assert (feats[:, valid:] == 0).all()


def test_chunked_spectrum_equals_one_pass():
    audio = torch.randn(16000 * 7 + 123)
    for config in (WHISPER_80, FeatureConfig(n_fft=320, n_mels=64, mel_scale="htk", center=False)):
        whole = log_mel(audio, config, chunk_frames=10**9)
        chunked = log_mel(audio, config, chunk_frames=97)
        assert whole.shape == chunked.shape
        assert torch.allclose(whole, chunked, atol=1e-6, rtol=0)
