"""Durability setting for the embedded Dagster instance's SQLite files.

Dagster's SQLite storage opens a connection per operation and commits every event (two per
partition of a ranged run, plus a planned event each). With SQLite's default
``synchronous=FULL`` each commit waits for the disk: about 20-30 ms per commit on this lab's
machine, which made ingestion through Dagster run at 3 files/s. With ``synchronous=OFF`` the
same commit costs about 1 ms.

The trade-off: after a power loss (not a process crash) the last seconds of Dagster's own run
and event history may be lost or its SQLite files damaged; the lake is unaffected (it syncs its
own files before every catalog commit and is the source of truth), and the nightly
reconciliation re-queues any file whose ingestion record went missing. Deployments that need
durable orchestration history use PostgreSQL (deploy/dagster.yaml), where this does not apply.

Every process that loads the instance needs the hook, not only those that import the code
location: the embedded ``dagster.yaml`` (``cli/instance.py``) names :class:`TunedQueuedRunCoordinator`
as run coordinator, so the daemon and the webserver install it too.

Set ``PROGRAL_DAGSTER_SQLITE_SYNC=FULL`` (or ``NORMAL``) to keep SQLite's durability.
Only databases under ``DAGSTER_HOME`` are affected, never MLflow's.
"""

from __future__ import annotations

import os

import dagster as dg

_installed = False


def install() -> None:
    """Register the SQLAlchemy connect hook once per process."""
    global _installed
    if _installed:
        return
    mode = os.environ.get("PROGRAL_DAGSTER_SQLITE_SYNC", "OFF").strip().upper()
    if mode not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"PROGRAL_DAGSTER_SQLITE_SYNC={mode!r}: expected OFF, NORMAL, FULL or EXTRA")
    if mode == "FULL":
        _installed = True
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _set_sync(dbapi_con, _record):  # pragma: no cover - exercised through Dagster
        if not type(dbapi_con).__module__.startswith("sqlite3"):
            return
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            return
        try:
            rows = dbapi_con.execute("PRAGMA database_list").fetchall()
        except Exception:  # noqa: BLE001
            return
        if any(r[2] and os.path.abspath(r[2]).startswith(os.path.abspath(home) + os.sep) for r in rows):
            dbapi_con.execute(f"PRAGMA synchronous={mode}")

    _installed = True


class TunedQueuedRunCoordinator(dg.QueuedRunCoordinator):
    """Dagster's queued run coordinator, unchanged but for installing the hook. The service's
    dagster.yaml names this class so that every process that loads the instance installs it:
    the daemon and the webserver never import the code location, and the daemon writes a planned
    event per partition when it creates a ranged run (at ``synchronous=FULL`` that took 16-22 s
    per 200-partition run on this machine, blocking the sensor for minutes)."""

    def __init__(self, *args, **kwargs):
        install()
        super().__init__(*args, **kwargs)
