"""Helpers for tests: temporary homes, shares, file writing with controlled mtimes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from progral_dagster import settings as settings_mod


def make_settings(tmp_path: Path, *, share: Path | None = None, settle: int = 0, per_run: int = 200,
                  runs_per_tick: int = 5, monkeypatch=None) -> settings_mod.Settings:
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PROGRAL_HOME": str(home),
        "PROGRAL_SHARE": str(share or home / "share"),
        "PROGRAL_SETTLE_SECONDS": str(settle),
        "PROGRAL_MAX_PARTITIONS_PER_RUN": str(per_run),
        "PROGRAL_MAX_RUNS_PER_TICK": str(runs_per_tick),
        "DAGSTER_HOME": str(home / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
    }
    for k, v in env.items():
        if monkeypatch is not None:
            monkeypatch.setenv(k, v)
        else:
            os.environ[k] = v
    s = settings_mod.load()
    s.share.mkdir(parents=True, exist_ok=True)
    return s


def write(path: Path, data: bytes | str, *, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def spectrum_text(n: int = 50, seed: int = 0, scale: float = 1.0) -> str:
    """A small IONTOF spectrum export (format of the real exports) with deterministic values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ch = np.arange(n) * 200 + 100
    mz = ((ch + 365) / 32985.0) ** 2
    inten = rng.poisson(50 * scale, n)
    lines = ["# Binning: 200 channels", "# Deadtime Correction: on", "Channel\tm/z\tIntensity"]
    lines += [f"{c}\t{m:.6f}\t{i}" for c, m, i in zip(ch, mz, inten, strict=True)]
    return "\r\n".join(lines) + "\r\n"


def past(seconds: float) -> float:
    return time.time() - seconds


def ingest_files(s, paths):
    """Ingest files without Dagster (copy + parse), as the assets do; returns the outcomes."""
    from progral_dagster.warehouse import ingest
    from progral_dagster.warehouse.lake import Lake

    lake = Lake(s.lake)
    keys = [it.partition_key for it in ingest.items_for_paths(paths, s.share)]
    ingest.copy_items(lake, s.share, keys)
    return ingest.parse_items(lake, keys)
