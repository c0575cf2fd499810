"""Compaction: many small Parquet files of one table and ingest date become one file.

Each ingestion batch writes its own files, so a lab's steady trickle leaves thousands of small
files; scanning them costs a file open each. Compaction merges the files of each
``ingest_date=`` folder that holds more than ``min_files`` files into one (sorted by
measurement, row groups of ~1M rows), atomically (new file renamed into place before the inputs
are deleted), and drops orphan data rows: rows of batches that no catalog row references and
that are older than ``orphan_age_s`` (left by runs killed before their commit). Rows of
superseded versions are kept. One compaction at a time (a lock file in ``_state``).
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import schemas
from .atomic import write_parquet
from .catalog import read_catalog
from .lake import Lake, utcnow


@dataclass
class CompactionReport:
    folders: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    orphan_rows_dropped: int = 0
    tables: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def _lock(lake: Lake):
    lake.layout.state.mkdir(parents=True, exist_ok=True)
    with open(lake.layout.state / "compaction.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError("another compaction is running") from None
        yield


def _batch_age_s(batch: str, now: float) -> float:
    """Batches are named ``YYYYmmddTHHMMSS-...``; unknown names count as old."""
    try:
        t = calendar.timegm(time.strptime(batch[:15], "%Y%m%dT%H%M%S"))
    except (ValueError, TypeError):
        return float("inf")
    return now - t


MAX_ROWS_PER_FILE = 20_000_000  # bounds the memory of a merge (~0.5 GB for a spectra table)


def _chunks(files: list[Path], max_rows: int) -> list[list[Path]]:
    """Consecutive runs of files whose rows add up to at most ``max_rows`` (a file larger than
    that stays alone)."""
    out: list[list[Path]] = []
    cur: list[Path] = []
    n = 0
    for f in files:
        rows = pq.ParquetFile(f).metadata.num_rows
        if cur and n + rows > max_rows:
            out.append(cur)
            cur, n = [], 0
        cur.append(f)
        n += rows
    if cur:
        out.append(cur)
    return out


def compact(lake: Lake, *, min_files: int = 8, orphan_age_s: float = 3600.0,
            max_rows_per_file: int = MAX_ROWS_PER_FILE) -> CompactionReport:
    if lake.filesystem is not None:
        raise NotImplementedError("compaction of a lake in an object store is not implemented "
                                  "(see docs/deployment.md); its views read the files as they are")
    rep = CompactionReport()
    with _lock(lake):
        lake.cleanup(max_age_s=orphan_age_s)
        referenced = set(read_catalog(lake, "catalog_measurements", columns=["batch"]).column("batch").to_pylist())
        now = time.time()
        for table in [*schemas.DATA_TABLES, *schemas.CATALOG_TABLES]:
            tdir = lake.layout.table_dir(table)
            if not tdir.exists():
                continue
            for part in sorted(p for p in tdir.iterdir() if p.is_dir()):
                files = sorted(f for f in part.glob("*.parquet") if not f.name.startswith("."))
                if len(files) < min_files:
                    continue
                rep.folders += 1
                for chunk in _chunks(files, max_rows_per_file):
                    if len(chunk) == 1 and chunk[0].name.startswith("compact-"):
                        continue  # already compacted and full
                    merged = _merge(table, chunk, referenced, now, orphan_age_s, rep)
                    target = part / f"compact-{utcnow():%Y%m%dT%H%M%S%f}.parquet"
                    if merged.num_rows:
                        write_parquet(merged, target, row_group_size=1 << 20)
                    for f in chunk:
                        with contextlib.suppress(FileNotFoundError):
                            f.unlink()
                    rep.files_before += len(chunk)
                    rep.files_after += 1 if merged.num_rows else 0
                    rep.rows += merged.num_rows
                    rep.tables[table] = rep.tables.get(table, 0) + len(chunk)
    return rep


def _merge(table: str, files: list[Path], referenced: set, now: float, orphan_age_s: float,
           rep: CompactionReport) -> pa.Table:
    parts = [pq.read_table(f) for f in files]
    t = pa.concat_tables(parts, promote_options="permissive")
    if table in schemas.DATA_TABLES and "_batch" in t.column_names:
        batches = pc.unique(t.column("_batch").cast(pa.string())).to_pylist()
        orphans = [b for b in batches if b not in referenced and _batch_age_s(b, now) > orphan_age_s]
        if orphans:
            keep = pc.invert(pc.is_in(t.column("_batch").cast(pa.string()), pa.array(orphans)))
            rep.orphan_rows_dropped += t.num_rows - pc.sum(keep.cast(pa.int64())).as_py()
            t = t.filter(keep)
        t = t.sort_by([("measurement_id", "ascending")])
    return t
