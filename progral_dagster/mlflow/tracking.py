"""Tracking: the tracking URI and per-experiment artifact locations under the home.

With a SQLite tracking URI MLflow would put artifacts into ``./mlruns`` of whatever directory a
process runs in; every experiment created here gets its artifact location under
``PROGRAL_MLFLOW_ARTIFACTS`` instead, so the home holds everything.

Why not ``dagster_mlflow.mlflow_tracking``: that resource binds one experiment and one MLflow
run to a Dagster run and configures MLflow through environment variables; one Dagster run here
often trains several models (``progral train``), each with its own experiment, run and registry
entry, so runs are opened per model asset with :func:`start_run` and tagged with the Dagster
run id and asset key instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def configure(tracking_uri: str, artifact_root: str | os.PathLike | None = None) -> None:
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if artifact_root is not None:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def experiment_id(name: str, artifact_root: str | os.PathLike | None) -> str:
    """The experiment's id, creating it with its artifact location under ``artifact_root``."""
    import mlflow

    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    loc = (Path(artifact_root) / name.replace("/", "_")).as_uri() if artifact_root else None
    try:
        return mlflow.create_experiment(name, artifact_location=loc)
    except mlflow.exceptions.MlflowException:
        # created concurrently by another process
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


@contextlib.contextmanager
def start_run(experiment: str, run_name: str, *, artifact_root=None, tags: dict | None = None) -> Iterator:
    import mlflow

    eid = experiment_id(experiment, artifact_root)
    with mlflow.start_run(experiment_id=eid, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()}) as run:
        yield run


def metric_name(name: str) -> str:
    """A name MLflow accepts for a metric or parameter (alphanumerics, _ - . space : /)."""
    import re

    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name)


def log_metrics(metrics: dict) -> None:
    import math

    import mlflow

    clean = {metric_name(k): float(v) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
    mlflow.log_metrics(clean)


def log_figure(fig, name: str) -> None:
    """Log a matplotlib figure as a PNG artifact under ``plots/``."""
    import mlflow

    mlflow.log_figure(fig, f"plots/{name}.png")


def log_table(df, name: str) -> None:
    """Log a pandas DataFrame as a CSV artifact under ``tables/``."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{name}.csv"
        df.to_csv(p, index=False)
        mlflow.log_artifact(str(p), artifact_path="tables")


def log_json(obj, name: str) -> None:
    import mlflow

    mlflow.log_dict(obj, f"{name}.json")
