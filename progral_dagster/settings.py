"""Paths and URIs from the environment, with the embedded defaults of DESIGN.md.

| variable                    | default                                   |
|-----------------------------|-------------------------------------------|
| ``PROGRAL_HOME``            | ``./var``                                 |
| ``PROGRAL_SHARE``           | ``$PROGRAL_HOME/share``                   |
| ``PROGRAL_LAKE``            | ``$PROGRAL_HOME/lake``                    |
| ``PROGRAL_SETTLE_SECONDS``  | ``60``                                    |
| ``PROGRAL_SHARE_KIND``      | ``local`` (``network``: list only changed directories between full listings) |
| ``PROGRAL_FULL_LISTING_SECONDS`` | ``300`` (network shares)             |
| ``PROGRAL_MAX_PARTITIONS_PER_RUN`` | ``200``                            |
| ``PROGRAL_MAX_RUNS_PER_TICK`` | ``5``                                   |
| ``MLFLOW_TRACKING_URI``     | ``sqlite:///$PROGRAL_HOME/mlflow/mlflow.db`` |
| ``PROGRAL_MLFLOW_ARTIFACTS``| ``$PROGRAL_HOME/mlflow/artifacts``        |
| ``DAGSTER_HOME``            | ``$PROGRAL_HOME/dagster``                 |
| ``PROGRAL_MLFLOW_UI_URL``   | ``http://127.0.0.1:5000`` (links in asset metadata) |
| ``PROGRAL_STATE_DIR``       | object-store lake only: ``$PROGRAL_HOME/state`` (a local lake keeps ``lake/_state``) |
| ``PROGRAL_S3_ENDPOINT``     | ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (None: AWS itself) |

Scale-out (see docs/deployment.md): ``PROGRAL_LAKE=s3://bucket/prefix`` puts the lake into an
S3-compatible object store (credentials from the usual ``AWS_*`` variables); it is taken from the
environment even when a home is given, since it lies outside any home. With a tracking server
(``MLFLOW_TRACKING_URI=http(s)://...``) and no ``PROGRAL_MLFLOW_ARTIFACTS``, the server's artifact
store decides where artifacts go (``mlflow_artifacts`` is None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .warehouse.layout import LakeURL, is_remote


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Settings:
    home: Path
    share: Path
    lake: Path | LakeURL  # a folder, or an object-store location (``LakeURL``, a str)
    settle_seconds: int
    share_kind: str
    full_listing_seconds: int
    max_partitions_per_run: int
    max_runs_per_tick: int
    mlflow_tracking_uri: str
    mlflow_artifacts: Path | None  # None: the tracking server's artifact store decides
    dagster_home: Path
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    state_dir: Path | None = None  # sensor index and locks (local disk, also for an S3 lake)
    s3_endpoint: str | None = None

    @property
    def lake_is_remote(self) -> bool:
        """Whether the lake is in an object store (``PROGRAL_LAKE=s3://...``)."""
        return is_remote(self.lake)

    @property
    def warehouse_file(self) -> Path:
        """The DuckDB file of views for outside tools (rebuilt atomically)."""
        return self.home / "warehouse.duckdb"

    def with_home(self, home: str | os.PathLike) -> Settings:
        """Settings for another home; paths derived from the home follow it unless set explicitly."""
        return load(home)


def load(home: str | os.PathLike | None = None) -> Settings:
    """Read the settings from the environment; ``home`` overrides ``PROGRAL_HOME``.

    When ``home`` is given, only variables that name paths *outside* a home (``PROGRAL_SHARE``,
    ``MLFLOW_TRACKING_URI``) are still taken from the environment if set.
    """
    env = os.environ
    h = Path(home if home is not None else env.get("PROGRAL_HOME", "./var")).expanduser().absolute()
    share = Path(env["PROGRAL_SHARE"]).expanduser().absolute() if env.get("PROGRAL_SHARE") else h / "share"
    endpoint = (env.get("PROGRAL_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3")
                or env.get("AWS_ENDPOINT_URL") or None)
    lake: Path | LakeURL
    if is_remote(env.get("PROGRAL_LAKE", "").strip()):
        state = (Path(env["PROGRAL_STATE_DIR"]).expanduser().absolute() if env.get("PROGRAL_STATE_DIR")
                 else h / "state")
        lake = LakeURL(env["PROGRAL_LAKE"].strip(), state_dir=state, endpoint=endpoint)
    else:
        lake = (
            Path(env["PROGRAL_LAKE"]).expanduser().absolute()
            if env.get("PROGRAL_LAKE") and home is None
            else h / "lake"
        )
        state = lake / "_state"
    mlflow_dir = h / "mlflow"
    uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    artifacts: Path | None = (
        Path(env["PROGRAL_MLFLOW_ARTIFACTS"]).expanduser().absolute()
        if env.get("PROGRAL_MLFLOW_ARTIFACTS")
        else None if uri.startswith(("http://", "https://")) else mlflow_dir / "artifacts"
    )
    dagster_home = (
        Path(env["DAGSTER_HOME"]).expanduser().absolute()
        if env.get("DAGSTER_HOME") and home is None
        else h / "dagster"
    )
    kind = env.get("PROGRAL_SHARE_KIND", "local").strip().lower()
    if kind not in ("local", "network"):
        raise ValueError(f"PROGRAL_SHARE_KIND={kind!r}: expected 'local' or 'network'")
    return Settings(
        home=h,
        share=share,
        lake=lake,
        settle_seconds=_int("PROGRAL_SETTLE_SECONDS", 60),
        share_kind=kind,
        full_listing_seconds=_int("PROGRAL_FULL_LISTING_SECONDS", 300),
        max_partitions_per_run=max(1, _int("PROGRAL_MAX_PARTITIONS_PER_RUN", 200)),
        max_runs_per_tick=max(1, _int("PROGRAL_MAX_RUNS_PER_TICK", 5)),
        mlflow_tracking_uri=uri,
        mlflow_artifacts=artifacts,
        dagster_home=dagster_home,
        mlflow_ui_url=env.get("PROGRAL_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/"),
        state_dir=state,
        s3_endpoint=endpoint,
    )


__all__ = ["Settings", "load", "replace"]
