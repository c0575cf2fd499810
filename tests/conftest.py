"""Shared test fixtures and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("PROGRAL_SAMPLES", ROOT.parent / "shared" / "samples")).resolve()


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"sample files not found at {SAMPLES} (set PROGRAL_SAMPLES)")
    return SAMPLES
