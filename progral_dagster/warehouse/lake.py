"""Writing to the lake: the raw store, and batches of Parquet rows committed atomically.

The lake is append-only. A batch commits in three steps: (1) its data files are written under
hidden *pending* names (``.<file>.parquet.pending``, invisible to every ``*.parquet`` glob),
(2) its catalog rows are written (path records, rejections, then the measurement rows: the
commit point), (3) the pending files are renamed to their final names. A run killed before (2)
leaves only pending files, which ``cleanup`` deletes once their writer is gone; one killed
between (2) and (3) is rolled forward by ``cleanup`` (its batch is in the catalog). So the views
never see data without catalog rows. They take, per measurement, the newest catalog row, and
exclude the data rows of older or duplicate parses and of superseded versions (column
``_batch``), which compaction moves out of the active files.

``Lake(root)`` with ``root`` an object-store location (``s3://bucket/prefix``) gives the
object-store flavour of the lake (``storage.ObjectStoreLake``); the file primitives below
(``_write_parquet``, ``_stream_target``, ``_sync``, ``raw_file``, ``parquet_files``) are what it
replaces, so a local lake writes exactly the files it always wrote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import schemas
from .atomic import _pid_alive, atomic_path, remove_stale_tmp, write_parquet
from .layout import PENDING_SUFFIX, LakeLayout, final_name, is_remote, pending_batch, pending_name

CHUNK = 1 << 20
FLUSH_BYTES = 64 << 20


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_batch_id(run_id: str | None = None) -> str:
    prefix = (run_id or "local")[:8]
    return f"{utcnow():%Y%m%dT%H%M%S}-{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class RawCopy:
    """Result of copying one file into the raw store."""

    sha256: str
    raw_path: Path
    size: int
    mtime_ns: int
    changed: bool = False  # the file changed while it was being copied
    existed: bool = False  # these bytes were already in the raw store


class Lake:
    """The lake under ``root`` (see ``layout.py``); an object-store lake for ``s3://...``."""

    filesystem = None  # pyarrow filesystem of the lake's files (None: the local one)

    def __new__(cls, root: str | os.PathLike | None = None, *args, **kwargs):
        if cls is Lake and is_remote(root):
            from .storage import ObjectStoreLake

            return super().__new__(ObjectStoreLake)
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike):
        self.layout = LakeLayout(Path(root))

    @property
    def root(self) -> Path:
        return self.layout.root

    # ------------------------------------------------------------------ file primitives
    def raw_file(self, raw_path: str) -> Path:
        """A local path to read a raw copy from (``raw_path`` as recorded in ``catalog_files``)."""
        return self.root / raw_path

    def parquet_files(self, folder: Path) -> list[str]:
        """Every Parquet file below ``folder`` (temporary files excluded), as ``filesystem`` paths."""
        if not folder.exists():
            return []
        return [str(p) for p in folder.rglob("*.parquet") if not p.name.startswith(".")]

    def _write_parquet(self, table: pa.Table, target: Path, **kwargs) -> Path:
        return write_parquet(table, target, **kwargs)

    def _stream_target(self, target: Path):
        """Context manager: a local path to write ``target``'s content to, committed on success."""
        return atomic_path(target, fsync=False)

    def _sync(self) -> None:
        os.sync()

    def _publish(self, pending: Path, final: Path) -> bool:
        """Give a pending data file its final name (False if it is gone: published by another
        process's cleanup already)."""
        try:
            os.replace(pending, final)
        except FileNotFoundError:
            return Path(final).exists()
        return True

    def _discard(self, pending: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            Path(pending).unlink()

    def pending_files(self) -> list[tuple[Path, float]]:
        """Pending data files with their age in seconds."""
        if not self.layout.tables.exists():
            return []
        now = time.time()
        out = []
        for p in self.layout.tables.rglob(f".*{PENDING_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                out.append((p, now - p.stat().st_mtime))
        return out

    def recover_pending(self, max_age_s: float = 3600.0) -> tuple[int, int]:
        """Roll forward pending files of committed batches, delete those of writers that died
        before their commit. Returns (published, deleted)."""
        pend = self.pending_files()
        if not pend:
            return 0, 0
        from .catalog import read_catalog

        committed = set(read_catalog(self, "catalog_measurements", columns=["batch"]).column("batch").to_pylist())
        published = deleted = 0
        for p, age in pend:
            info = pending_batch(Path(str(p)).name)
            if info is None:
                continue
            batch, pid = info
            if batch in committed:
                published += self._publish(p, final_name(p))
            elif age > max_age_s or not _pid_alive(pid):
                self._discard(p)
                deleted += 1
        return published, deleted

    # ------------------------------------------------------------------ raw store
    def store_raw(self, src: Path, name: str | None = None) -> RawCopy:
        """Copy ``src`` into the content-addressed raw store, hashing in the same pass.

        The source is only ever opened for reading. If its size or mtime changes during the
        copy, the copy is discarded and ``changed`` is set (it will be taken as a new version).
        The copy is not fsynced here: the batch that records it syncs once before its commit.
        """
        name = name or src.name
        st0 = os.stat(src)
        incoming = self.layout.raw / "_incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        tmp = incoming / f".{secrets.token_hex(8)}.{os.getpid()}.x.tmp"
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    h.update(chunk)
                    fout.write(chunk)
            st1 = os.stat(src)
            if (st1.st_size, st1.st_mtime_ns) != (st0.st_size, st0.st_mtime_ns):
                tmp.unlink()
                return RawCopy("", Path(), st1.st_size, st1.st_mtime_ns, changed=True)
            sha = h.hexdigest()
            folder = self.layout.raw / sha[:2] / sha
            existing = next(iter(_files_in(folder)), None)
            if existing is not None:
                tmp.unlink()
                return RawCopy(sha, existing, st0.st_size, st0.st_mtime_ns, existed=True)
            target = self.layout.raw_path(sha, name)
            try:
                os.mkdir(target.parent)
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                pass
            os.replace(tmp, target)
            return RawCopy(sha, target, st0.st_size, st0.st_mtime_ns)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def raw_exists(self, sha256: str) -> Path | None:
        return next(iter(_files_in(self.layout.raw / sha256[:2] / sha256)), None)

    # ------------------------------------------------------------------ batches
    def batch(self, run_id: str | None = None) -> BatchWriter:
        return BatchWriter(self, new_batch_id(run_id))

    def cleanup(self, max_age_s: float = 3600.0) -> int:
        """Remove temporary files of dead writers (see ``atomic.remove_stale_tmp``) and settle
        pending data files (see :meth:`recover_pending`)."""
        from .compaction import replay_journals

        replayed = replay_journals(self)
        published, deleted = self.recover_pending(max_age_s)
        return remove_stale_tmp(self.root, max_age_s=max_age_s) + published + deleted + replayed

    def relative(self, p: Path) -> str:
        return str(Path(p).relative_to(self.root))

    # ------------------------------------------------------------------ arrays / features
    def write_array(self, measurement_id: str, name: str, array: np.ndarray) -> Path:
        target = self.layout.array_path(measurement_id, name)
        with atomic_path(target, overwrite=False) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(array), allow_pickle=False)
        return target

    def read_array(self, measurement_id: str, name: str) -> np.ndarray:
        return np.load(self.layout.array_path(measurement_id, name), allow_pickle=False)

    def write_feature_table(self, name: str, table: pa.Table, *, part: str = "data") -> Path:
        """Replace one file of a derived table (``features/<name>/<part>.parquet``) atomically."""
        return write_parquet(table, self.layout.feature_dir(name) / f"{part}.parquet")

    def append_feature_part(self, name: str, table: pa.Table) -> Path:
        """Add rows to a derived table as a new part file."""
        return write_parquet(table, self.layout.feature_dir(name) / f"part-{new_batch_id()}.parquet")

    def feature_files(self, name: str) -> list[Path]:
        d = self.layout.feature_dir(name)
        return sorted(p for p in d.glob("*.parquet") if not p.name.startswith(".")) if d.exists() else []

    def read_feature(self, name: str, columns: list[str] | None = None) -> pa.Table | None:
        """A derived table (None if it does not exist yet)."""
        files = self.feature_files(name)
        if not files:
            return None
        import pyarrow.dataset as pads

        return pads.dataset([str(f) for f in files], format="parquet").to_table(columns=columns)

    def replace_feature(self, name: str, table: pa.Table) -> Path:
        """Replace a derived table by one file (new file first, then the old ones go)."""
        old = self.feature_files(name)
        target = write_parquet(table, self.layout.feature_dir(name) / f"data-{new_batch_id()}.parquet")
        for f in old:
            if f != target:
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        return target


def _files_in(folder: Path) -> Iterator[Path]:
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.is_file() and not e.name.startswith("."):
                    yield Path(e.path)
    except FileNotFoundError:
        return


@dataclass
class BatchWriter:
    """Collects rows of one ingestion batch and commits them (data first, then catalog)."""

    lake: Lake
    batch_id: str
    started: dt.datetime = field(default_factory=utcnow)
    _data: dict[str, list[pa.Table]] = field(default_factory=dict)
    _data_bytes: int = 0
    _parts: dict[str, int] = field(default_factory=dict)
    _catalog: dict[str, list[dict]] = field(default_factory=dict)
    _pending: list[tuple[Path, Path]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    # data ------------------------------------------------------------------------------
    def add_table(self, table_name: str, measurement_id: str, data) -> int:
        """Add a reader table (pyarrow Table or iterator of RecordBatches). Returns row count.

        Iterators (exports larger than memory) are streamed to their own file right away.
        """
        if isinstance(data, pa.Table):
            t = self._stamp(table_name, measurement_id, data)
            self._data.setdefault(table_name, []).append(t)
            self._data_bytes += t.nbytes
            if self._data_bytes > FLUSH_BYTES:
                self.flush_data()
            return t.num_rows
        return self._stream(table_name, measurement_id, data)

    def _stamp(self, table_name: str, measurement_id: str, data: pa.Table) -> pa.Table:
        t = schemas.conform(table_name, data)
        n = t.num_rows
        t = t.add_column(0, "_batch", pa.array([self.batch_id] * n, pa.string()).dictionary_encode())
        return t.add_column(0, "measurement_id", pa.array([measurement_id] * n, pa.string()))

    def _stream(self, table_name: str, measurement_id: str, batches) -> int:
        target = self._next_file(table_name)
        pending = pending_name(target)
        n = 0
        with self.lake._stream_target(pending) as tmp:
            writer = None
            try:
                for rb in batches:
                    t = self._stamp(table_name, measurement_id, pa.Table.from_batches([rb]))
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, t.schema, compression="zstd")
                    writer.write_table(t)
                    n += t.num_rows
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:  # no batch at all: write an empty file of the right schema
                empty = self._stamp(table_name, measurement_id, schemas.reader_schema(table_name).empty_table())
                pq.write_table(empty, tmp)
        self._pending.append((pending, target))
        return n

    def _next_file(self, table_name: str) -> Path:
        part = self._parts.get(table_name, 0)
        self._parts[table_name] = part + 1
        return self.lake.layout.batch_file(table_name, self.batch_id, self.started, part)

    def flush_data(self) -> None:
        for name, tables in self._data.items():
            if not tables:
                continue
            t = pa.concat_tables(tables, promote_options="permissive")
            target = self._next_file(name)
            pending = pending_name(target)
            self.lake._write_parquet(t, pending, row_group_size=1 << 20, fsync=False)
            self._pending.append((pending, target))
        self._data.clear()
        self._data_bytes = 0

    # catalog ---------------------------------------------------------------------------
    def add_row(self, catalog_table: str, row: dict) -> None:
        self._catalog.setdefault(catalog_table, []).append(row)

    def commit(self) -> None:
        """Write pending data, sync, then path records and rejections, then measurement rows
        (the commit point), then publish the data files.

        One ``sync`` per batch makes raw copies and data files durable before any catalog row
        refers to them (a per-file fsync would cost ~10 ms per file here)."""
        self.flush_data()
        if self._catalog or self._pending:
            self.lake._sync()
        order = [t for t in self._catalog if t != "catalog_measurements"]
        if "catalog_measurements" in self._catalog:
            order.append("catalog_measurements")
        for name in order:
            rows = self._catalog[name]
            if not rows:
                continue
            schema = schemas.schema_of(name)
            table = pa.Table.from_pylist([_jsonify(r, schema) for r in rows], schema=schema)
            target = self.lake.layout.batch_file(name, self.batch_id, self.started)
            self.lake._write_parquet(table, target)
            self.written.append(target)
        committed = "catalog_measurements" in order
        self._catalog.clear()
        for pending, final in self._pending:
            if committed:
                self.lake._publish(pending, final)
                self.written.append(final)
            else:  # data without a measurement row would be an orphan
                self.lake._discard(pending)
        self._pending.clear()


def _jsonify(row: dict, schema: pa.Schema) -> dict:
    out = {}
    for f in schema:
        v = row.get(f.name)
        if isinstance(v, (dict, list)) and pa.types.is_string(f.type):
            v = json.dumps(v, default=str, sort_keys=True)
        out[f.name] = v
    return out
