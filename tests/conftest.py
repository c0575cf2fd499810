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


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory) -> Path:
    """A migrated MLflow SQLite database, created once per session (migrations take seconds)."""
    import mlflow

    d = tmp_path_factory.mktemp("mlflow-template")
    uri = f"sqlite:///{d / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()
    return d / "mlflow.db"


@pytest.fixture
def mlflow_home(tmp_path, monkeypatch, mlflow_template_db):
    """Settings of a fresh home whose MLflow database is a copy of the migrated template."""
    import shutil

    from .helpers import make_settings

    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    (s.home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template_db, s.home / "mlflow" / "mlflow.db")
    return s
