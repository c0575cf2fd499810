"""The Dagster instance of a PROGRAL_HOME and in-process materialisation (no daemon needed)."""

from __future__ import annotations

import fcntl
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..settings import Settings
from .recovery import process_tags

DAGSTER_YAML = """\
# Embedded default: SQLite storage under this folder. Production: see deploy/dagster.yaml.
telemetry:
  enabled: false
nux:
  # no "join the community" dialog asking for an e-mail address in the lab's UI
  enabled: false
run_coordinator:
  # dagster's QueuedRunCoordinator; this name makes every process install sqlite_tuning
  module: progral_dagster.sqlite_tuning
  class: TunedQueuedRunCoordinator
  config:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: progral/training
        limit: 1
run_retries:
  enabled: true
  max_retries: 1
sensors:
  use_threads: true
  num_workers: 2
"""


def ensure_dagster_home(s: Settings) -> Path:
    s.dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = s.dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return s.dagster_home


def get_instance(s: Settings):
    import dagster as dg

    from .. import sqlite_tuning

    home = ensure_dagster_home(s)
    os.environ["DAGSTER_HOME"] = str(home)
    sqlite_tuning.install()
    # two processes opening a fresh instance at once both create its SQLite tables and one fails
    # ("table ... already exists"): the first opening is serialised
    with open(home / ".instance.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()


def materialize(s: Settings, assets: Sequence, *, instance=None, tags: dict | None = None,
                selection=None, partition_key: str | None = None, raise_on_error: bool = True,
                quiet: bool = False):
    """Materialise assets in this process with the service's resources for home ``s``."""
    import dagster as dg

    from ..definitions import resources_for

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    instance = instance or get_instance(s)
    return dg.materialize(
        assets,
        instance=instance,
        resources=resources_for(s),
        # the process is named so that a later `progral serve` can tell a run whose process was
        # killed from one still going (cli/recovery.py)
        tags={**process_tags(), **(tags or {})},
        selection=selection,
        partition_key=partition_key,
        raise_on_error=raise_on_error,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}} if quiet else None,
    )
