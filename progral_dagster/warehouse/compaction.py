"""Compaction: many small Parquet files of one table and ingest date become few large ones, and
rows that the views of current data must not show leave the active files.

Each ingestion batch writes its own files, so a lab's steady trickle leaves thousands of small
files; scanning them costs a file open each. Compaction merges the files of each
``ingest_date=`` folder holding at least ``min_files`` files (in chunks of at most
``max_rows_per_file`` rows, sorted by measurement). Rows of superseded versions and of older or
duplicate parses are moved to ``superseded/<table>/`` (recorded in ``catalog_moved``), so the
current-data views scan the active files with an anti-join against an (usually empty) set
instead of a join against every measurement. Rows of batches no catalog row references (only
possible in lakes written before pending files existed) are dropped after ``orphan_age_s``.

Crash safety: outputs are written under pending names, then a journal in ``_state/compaction``
lists inputs, outputs and moved rows, then outputs are published, inputs deleted and the moved
rows recorded, then the journal goes. :func:`replay_journals` (run by ``Lake.cleanup`` and at
the start of every compaction) finishes a journal whose outputs were all published and rolls
back one whose were not, so no row is ever lost or shown twice after a crash. One compaction at
a time (a lock file in ``_state``).

The same code compacts a local lake and one in an object store (``storage.py``): files are
listed, read and deleted through the lake's pyarrow filesystem (the local one for a folder),
written and published with the lake's own primitives (a rename locally, copy + delete of whole
objects in S3, which readers see whole or not at all), and the rows to move are found from the
catalog tables read with pyarrow, so no DuckDB httpfs is needed. The lock and the journals live
in the lake's local state folder: on an object store, run compaction from one host (the
service's nightly schedule does).
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import json
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import schemas
from .atomic import write_bytes
from .catalog import read_catalog
from .lake import Lake, utcnow
from .layout import pending_name

MAX_ROWS_PER_FILE = 20_000_000  # bounds the memory of a merge (~0.5 GB for a spectra table)


@dataclass
class CompactionReport:
    folders: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    rows_moved: int = 0
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


class _Files:
    """Listing, reading and deleting the lake's files through its pyarrow filesystem."""

    def __init__(self, lake: Lake):
        self.lake = lake
        self.fs = lake.filesystem if lake.filesystem is not None else pafs.LocalFileSystem()
        self.local = lake.filesystem is None

    def _infos(self, folder) -> list:
        sel = pafs.FileSelector(str(folder), recursive=False, allow_not_found=True)
        return self.fs.get_file_info(sel)

    def subdirs(self, folder) -> list[PurePosixPath]:
        return sorted(PurePosixPath(i.path) for i in self._infos(folder) if i.type == pafs.FileType.Directory)

    def parquet(self, folder) -> list[PurePosixPath]:
        """The visible Parquet files directly in ``folder`` (not pending or temporary ones)."""
        return sorted(PurePosixPath(i.path) for i in self._infos(folder)
                      if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
                      and not i.base_name.startswith("."))

    def rows(self, path) -> int:
        return pq.read_metadata(str(path), filesystem=self.fs).num_rows

    def read(self, path, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(str(path), columns=columns, filesystem=self.fs)

    def exists(self, path) -> bool:
        return self.fs.get_file_info(str(path)).type != pafs.FileType.NotFound

    def delete(self, path) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(str(path))

    def _target(self, path):
        if not self.local:
            return path
        path = Path(str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, table: pa.Table, path, **kwargs) -> None:
        self.lake._write_parquet(table, self._target(path), **kwargs)

    def publish(self, pending, final) -> None:
        self.lake._publish(self._target(pending), self._target(final))


def _chunks(files: _Files, paths: list[PurePosixPath], max_rows: int) -> list[list[PurePosixPath]]:
    """Consecutive runs of files whose rows add up to at most ``max_rows`` (a file larger than
    that stays alone)."""
    out: list[list[PurePosixPath]] = []
    cur: list[PurePosixPath] = []
    n = 0
    for f in paths:
        rows = files.rows(f)
        if cur and n + rows > max_rows:
            out.append(cur)
            cur, n = [], 0
        cur.append(f)
        n += rows
    if cur:
        out.append(cur)
    return out


def hidden_pairs(lake: Lake) -> set[tuple[str, str]]:
    """(measurement_id, batch) of data rows the current views do not show: batches of older or
    duplicate catalog rows of a measurement, and the batch of every superseded measurement.

    The views' own SQL (``views.catalog_statements``), run on the catalog tables read with
    pyarrow, so local and object-store lakes are treated alike."""
    import duckdb

    from .views import CATALOG_TABLE_VIEWS, catalog_statements

    con = duckdb.connect(":memory:")
    try:
        for view, table in CATALOG_TABLE_VIEWS.items():
            con.register(view, read_catalog(lake, table))
        for st in catalog_statements():
            con.execute(st)
        rows = con.execute("SELECT measurement_id, batch FROM _dup_losers UNION "
                           "SELECT measurement_id, batch FROM _superseded_pairs").fetchall()
    finally:
        con.close()
    return {(m, b) for m, b in rows}


def _journal_dir(lake: Lake):
    return lake.layout.state / "compaction"


def replay_journals(lake: Lake) -> int:
    """Finish or roll back compactions interrupted by a crash (see the module docstring)."""
    d = _journal_dir(lake)
    if not d.exists():
        return 0
    files = _Files(lake)
    n = 0
    for j in sorted(d.glob("*.json")):
        doc = json.loads(j.read_text())
        outputs = [PurePosixPath(p) for p in doc["outputs"]]
        if all(files.exists(p) for p in outputs):
            _finish(lake, files, doc)
        else:
            for p in outputs:
                files.delete(p)
                files.delete(pending_name(p))
        j.unlink()
        n += 1
    return n


def _finish(lake: Lake, files: _Files, doc: dict) -> None:
    for p in doc["inputs"]:
        files.delete(p)
    if doc["moved"]:
        now = utcnow()
        t = pa.table({"measurement_id": [m[0] for m in doc["moved"]], "batch": [m[1] for m in doc["moved"]],
                      "table_name": [m[2] for m in doc["moved"]], "moved_at": [now] * len(doc["moved"])},
                     schema=schemas.CATALOG_TABLES["catalog_moved"])
        files.write(t, lake.layout.batch_file("catalog_moved", f"{doc['id']}", now))


def compact(lake: Lake, *, min_files: int = 8, orphan_age_s: float = 3600.0,
            max_rows_per_file: int = MAX_ROWS_PER_FILE) -> CompactionReport:
    rep = CompactionReport()
    files = _Files(lake)
    with _lock(lake):
        replay_journals(lake)
        lake.cleanup(max_age_s=orphan_age_s)
        referenced = set(read_catalog(lake, "catalog_measurements", columns=["batch"]).column("batch").to_pylist())
        hidden = hidden_pairs(lake)
        now = time.time()
        for table in [*schemas.DATA_TABLES, *schemas.CATALOG_TABLES]:
            for part in files.subdirs(lake.layout.table_dir(table)):
                paths = files.parquet(part)
                if table in schemas.DATA_TABLES:
                    needs = len(paths) >= min_files or (hidden and _holds_hidden(files, paths, hidden))
                else:
                    needs = len(paths) >= min_files
                if not needs:
                    continue
                rep.folders += 1
                for chunk in _chunks(files, paths, max_rows_per_file):
                    if (len(chunk) == 1 and chunk[0].name.startswith("compact-")
                            and not (table in schemas.DATA_TABLES and _holds_hidden(files, chunk, hidden))):
                        continue  # already compacted, full and clean
                    _compact_chunk(lake, files, table, part, chunk, referenced, hidden, now, orphan_age_s, rep)
    return rep


def _holds_hidden(files: _Files, paths: list[PurePosixPath], hidden: set[tuple[str, str]]) -> bool:
    batches = {b for _, b in hidden}
    for f in paths:
        col = files.read(f, columns=["_batch"]).column("_batch").cast(pa.string())
        if batches & set(pc.unique(col).to_pylist()):
            return True
    return False


def _compact_chunk(lake: Lake, files: _Files, table: str, part: PurePosixPath, chunk: list[PurePosixPath],
                   referenced: set, hidden: set, now: float, orphan_age_s: float, rep: CompactionReport) -> None:
    t = pa.concat_tables([files.read(f) for f in chunk], promote_options="permissive")
    n_in = t.num_rows
    moved: list[list[str]] = []
    outputs: list[tuple[pa.Table, PurePosixPath]] = []
    stamp = f"{utcnow():%Y%m%dT%H%M%S%f}"
    if table in schemas.DATA_TABLES and "_batch" in t.column_names:
        batch = t.column("_batch").cast(pa.string())
        batches = pc.unique(batch).to_pylist()
        orphans = [b for b in batches if b not in referenced and _batch_age_s(b, now) > orphan_age_s]
        if orphans:
            keep = pc.invert(pc.is_in(batch, pa.array(orphans)))
            rep.orphan_rows_dropped += t.num_rows - pc.sum(keep.cast(pa.int64())).as_py()
            t = t.filter(keep)
        if hidden and t.num_rows:
            key = pc.binary_join_element_wise(t.column("measurement_id"), t.column("_batch").cast(pa.string()), "\x00")
            hid = pa.array([f"{m}\x00{b}" for m, b in hidden])
            out = pc.is_in(key, hid)
            n_out = pc.sum(out.cast(pa.int64())).as_py() or 0
            if n_out:
                gone = t.filter(out)
                pairs = {(m, b) for m, b in zip(gone.column("measurement_id").to_pylist(),
                                                gone.column("_batch").cast(pa.string()).to_pylist(), strict=True)}
                moved = [[m, b, table] for m, b in sorted(pairs)]
                store = PurePosixPath(str(lake.layout.superseded_dir(table))) / part.name / f"moved-{stamp}.parquet"
                outputs.append((gone.sort_by([("measurement_id", "ascending")]), store))
                t = t.filter(pc.invert(out))
                rep.rows_moved += n_out
        t = t.sort_by([("measurement_id", "ascending")])
    if t.num_rows:
        outputs.append((t, part / f"compact-{stamp}.parquet"))
    doc = {"id": f"compact-{stamp}", "inputs": [str(f) for f in chunk], "outputs": [str(p) for _, p in outputs],
           "moved": moved}
    for data, path in outputs:
        files.write(data, pending_name(path), row_group_size=1 << 20)
    jdir = _journal_dir(lake)
    jdir.mkdir(parents=True, exist_ok=True)
    journal = jdir / f"{doc['id']}.json"
    write_bytes(json.dumps(doc).encode(), journal)
    for _, path in outputs:
        files.publish(pending_name(path), path)
    _finish(lake, files, doc)
    journal.unlink()
    rep.files_before += len(chunk)
    rep.files_after += 1 if t.num_rows else 0
    rep.rows += n_in
    rep.tables[table] = rep.tables.get(table, 0) + len(chunk)
