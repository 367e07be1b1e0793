"""Shared fixtures: the `../shared` folder (POLYASR_SHARED) and cached models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
REQUIRE_SHARED = os.environ.get("POLYASR_REQUIRE_SHARED") == "1"


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
