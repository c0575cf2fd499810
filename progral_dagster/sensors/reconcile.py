"""Nightly reconciliation of the share with the lake (pure; the schedule runs it).

Every settled file on the share must be in the lake exactly once (as a path record of a
measurement, a sample sheet, or a rejection). Files that are not (a tick that never ran, a run
that failed) are handed back to the sensor by clearing their state in the share index, so the
next tick queues them; nothing depends on the sensor never having missed a tick. What is odd is
reported: a path version recorded under two contents, measurements recorded twice by racing
runs, files rejected.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from ..settings import Settings
from ..warehouse.catalog import read_catalog
from ..warehouse.lake import Lake
from ..warehouse.share_index import FileState, ShareIndex
from .scan import scan


@dataclass
class Reconciliation:
    files_on_share: int = 0
    settled: int = 0
    in_lake: int = 0
    requeued: list[str] = field(default_factory=list)
    rejected: int = 0
    path_versions_with_two_contents: list[str] = field(default_factory=list)
    measurements_recorded_twice: int = 0


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _us(t: dt.datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (t - _EPOCH) // dt.timedelta(microseconds=1)


def reconcile(s: Settings, *, now: float | None = None, requeue: bool = True) -> Reconciliation:
    now = time.time() if now is None else now
    lake = Lake(s.lake)
    listing = scan(s.share)
    rep = Reconciliation(files_on_share=len(listing.files))
    seen: dict[tuple[str, int, int], set[str]] = {}
    finished: set[tuple[str, int, int]] = set()  # copied and parsed (or read as a sample sheet)
    parsed = set(read_catalog(lake, "catalog_measurements", columns=["measurement_id"]).column(0).to_pylist())
    sheets = set(read_catalog(lake, "catalog_sheet_rows", columns=["partition_key"]).column(0).to_pylist())
    cols = ["source_path", "size_bytes", "mtime", "member_sha256", "measurement_id", "partition_key"]
    files = read_catalog(lake, "catalog_files", columns=cols)
    for p, size, mt, sha, mid, pk in zip(*(files.column(c).to_pylist() for c in cols), strict=True):
        key = (p, size, _us(mt))
        seen.setdefault(key, set()).add(sha)
        if mid in parsed or pk in sheets:
            finished.add(key)
    rej = read_catalog(lake, "catalog_rejected", columns=["source_path", "size_bytes", "mtime"])
    rejected = {(p, size, _us(mt)) for p, size, mt in
                zip(*(rej.column(c).to_pylist() for c in rej.column_names), strict=True)}
    rep.rejected = len(rejected)
    rep.path_versions_with_two_contents = sorted(f"{k[0]} ({k[1]} bytes)" for k, v in seen.items() if len(v) > 1)
    m = read_catalog(lake, "catalog_measurements", columns=["measurement_id", "batch"])
    by_mid: dict[str, set] = {}
    for mid, b in zip(m.column("measurement_id").to_pylist(), m.column("batch").to_pylist(), strict=True):
        by_mid.setdefault(mid, set()).add(b)
    rep.measurements_recorded_twice = sum(1 for v in by_mid.values() if len(v) > 1)
    missing = []
    for path, (size, mtime_ns) in listing.files.items():
        if now - mtime_ns / 1e9 < s.settle_seconds:
            continue
        rep.settled += 1
        k = (path, size, mtime_ns // 1000)
        # a raw copy alone is not enough: a run killed between copy and parse left it unparsed
        if k in finished or k in rejected:
            rep.in_lake += 1
        else:
            missing.append(path)
    rep.requeued = sorted(missing)
    if requeue and missing:
        with ShareIndex(lake.layout.share_index) as idx:
            known = idx.load()
            ups = []
            for p in missing:
                size, mtime_ns = listing.files[p]
                # first seen long ago: settled at the next tick, key cleared: taken again
                ups.append((p, FileState(size, mtime_ns, 0.0, None)))
                known.pop(p, None)
            idx.apply(ups, [])
    return rep
