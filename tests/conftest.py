"""Shared fixtures: the `../shared` folder (POLYASR_SHARED) and cached models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
REQUIRE_SHARED = os.environ.get("POLYASR_REQUIRE_SHARED") == "1"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """polyasr's cache (checkpoint copies, downloads) in a temp folder for the whole session,
    its subprocesses included: the tests never write to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYASR_CACHE", str(tmp_path_factory.mktemp("polyasr-cache")))
        yield


def shared_path(*parts: str) -> Path:
    """A path under the shared folder; skips (or fails in CI) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared test data not found: {path} (set POLYASR_SHARED)"
        if REQUIRE_SHARED:
            pytest.fail(message)
        pytest.skip(message)
    return path


def manifest() -> list[dict]:
    lines = shared_path("data", "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def whisper_base():
    import polyasr

    return polyasr.load(shared_path("models", "whisper-base"), device="cpu", dtype="float32")


def assert_log_features_close(ours, reference, raw_log, span: float) -> None:
    """Log-mel features [n_mels, T] against a reference computed on another CPU.

    Bins within `span` log units of their frame's loudest bin (by `raw_log`, the features
    before any normalization) must match to 1e-4. Quieter bins may differ up to 2e-3: float32
    FFT rounding is relative to the frame's energy, so it is large in the log of a near-silent
    bin, and FFT/BLAS code paths differ between CPUs (measured on an AMD EPYC: 1.9e-4 at
    log values near -13 while every loud bin matched).
    """
    import numpy as np

    ours, reference, raw_log = (np.asarray(a, dtype=np.float64) for a in (ours, reference, raw_log))
    assert ours.shape == reference.shape == raw_log.shape
    error = np.abs(ours - reference)
    loud = raw_log >= raw_log.max(axis=0, keepdims=True) - span
    assert error[loud].max() <= 1e-4, f"loud bins differ by {error[loud].max():.2e}"
    assert error.max() <= 2e-3, f"quiet bins differ by {error.max():.2e}"
