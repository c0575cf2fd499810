"""The lake in an S3-compatible object store, through pyarrow's filesystem layer.

``PROGRAL_LAKE=s3://bucket/prefix`` puts the lake's files (raw copies, Parquet tables, catalog,
arrays, feature tables; the layout of ``layout.py`` under ``bucket/prefix``) into an object store
(AWS S3, MinIO, Ceph RGW, ...). The endpoint comes from ``PROGRAL_S3_ENDPOINT`` (or the AWS SDK's
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; none: AWS itself), credentials and region from
the usual ``AWS_*`` variables. What an object store cannot hold stays on local disk, in the state
folder (``PROGRAL_STATE_DIR``, default ``$PROGRAL_HOME/state``): the sensor's SQLite share index,
lock files, and a cache of raw copies being parsed (readers read local files).

It follows the semantics of the Amazon S3 API: a PUT (or a multipart upload, or a CopyObject)
makes a whole object visible at once, and reads after a write see it (strong read-after-write
consistency). So a Parquet file is built in memory (or, streamed, in a local temporary file) and
PUT once: no temporary name and rename as on a local disk, and the lake's commit order (data
files first, catalog rows last) gives the same guarantee as locally. A raw copy is uploaded under
a temporary key while it is hashed, then copied server-side to its content address.

Why pyarrow's ``S3FileSystem`` rather than s3fs or boto3: pyarrow is already the lake's Parquet
engine, and its S3 filesystem (the AWS SDK for C++) reads and writes Parquet files and datasets
with the same calls as a local lake, against any S3-compatible endpoint, with no new
dependency. DuckDB reads the same objects through its httpfs extension: :func:`duckdb_preamble`
gives the statements that load it and declare the credentials; the views then read
``s3://...`` globs.

Compaction works on both (``compaction.py``, through ``filesystem``). Not done for an
object-store lake: removing stale temporary files of other hosts' writers beyond ``cleanup``;
see docs/deployment.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .lake import CHUNK, Lake, RawCopy, new_batch_id
from .layout import LakeLayout, default_state_dir, is_remote

INCOMING = "_incoming"


def endpoint_from_env() -> str | None:
    """The S3 endpoint named in the environment (None: AWS itself)."""
    env = os.environ
    return (
        env.get("PROGRAL_S3_ENDPOINT")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or None
    )


def _endpoint_parts(endpoint: str) -> tuple[str, str]:
    """``http://host:9000`` -> ("http", "host:9000"); a bare ``host:port`` means https."""
    u = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return u.scheme, (u.netloc + u.path).rstrip("/")


def _region() -> str:
    env = os.environ
    # a fixed default: without one the AWS SDK may ask the EC2 metadata service, which hangs off EC2
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_filesystem(endpoint: str | None = None):
    """A ``pyarrow.fs.S3FileSystem`` for ``endpoint`` (None: AWS), credentials from ``AWS_*``
    variables (else the AWS SDK's default chain: config files, instance roles)."""
    import pyarrow.fs as pafs

    env = os.environ
    kw: dict = {"region": _region()}
    if endpoint:
        kw["scheme"], kw["endpoint_override"] = _endpoint_parts(endpoint)
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        kw["access_key"] = env["AWS_ACCESS_KEY_ID"]
        kw["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            kw["session_token"] = env["AWS_SESSION_TOKEN"]
    return pafs.S3FileSystem(**kw)


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    if not is_remote(url):
        raise ValueError(f"{url!r} is not an s3:// location")
    bucket, _, prefix = str(url).split("://", 1)[1].partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    return bucket, prefix.strip("/")


def _q(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def duckdb_preamble(url: str, endpoint: str | None = None) -> list[str]:
    """Statements that let DuckDB read the lake at ``url`` through httpfs.

    ``LOAD httpfs`` needs the extension installed beforehand (``INSTALL httpfs``, done when the
    deployment image is built: nothing is downloaded at run time). The secret is a temporary
    one (``CREATE SECRET`` without ``PERSISTENT``): it is never written into ``warehouse.duckdb``.
    """
    env = os.environ
    bucket, _ = split_url(url)
    parts = ["TYPE s3"]
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        parts += [
            f"KEY_ID {_q(env['AWS_ACCESS_KEY_ID'])}",
            f"SECRET {_q(env['AWS_SECRET_ACCESS_KEY'])}",
        ]
        if env.get("AWS_SESSION_TOKEN"):
            parts.append(f"SESSION_TOKEN {_q(env['AWS_SESSION_TOKEN'])}")
    else:
        parts.append("PROVIDER credential_chain")  # needs DuckDB's aws extension as well
    parts.append(f"REGION {_q(_region())}")
    if endpoint:
        scheme, host = _endpoint_parts(endpoint)
        parts += [
            f"ENDPOINT {_q(host)}",
            "URL_STYLE 'path'",
            f"USE_SSL {'true' if scheme == 'https' else 'false'}",
        ]
    parts.append(f"SCOPE {_q('s3://' + bucket)}")
    return ["LOAD httpfs", f"CREATE OR REPLACE SECRET progral_lake ({', '.join(parts)})"]


@dataclass(frozen=True)
class ObjectFile:
    """A file of the lake in the object store (what ``Lake.feature_files`` lists there)."""

    store: ObjectStore
    path: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def unlink(self, missing_ok: bool = False) -> None:
        self.store.delete(self.path, missing_ok=missing_ok)

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True)
class ObjectStore:
    """A pyarrow filesystem and the operations the lake needs on it (paths ``bucket/key``)."""

    fs: object  # pyarrow.fs.FileSystem

    def info(self, path: str):
        return self.fs.get_file_info(str(path))

    def exists(self, path: str) -> bool:
        import pyarrow.fs as pafs

        return self.info(path).type != pafs.FileType.NotFound

    def list(self, folder: str, *, suffix: str = "", recursive: bool = True) -> list[str]:
        """Files below ``folder`` whose name ends with ``suffix``, hidden names excluded, sorted."""
        return [i.path for i in self.list_info(folder, suffix=suffix, recursive=recursive)]

    def list_info(self, folder: str, *, suffix: str = "", recursive: bool = True) -> list:
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(str(folder), recursive=recursive, allow_not_found=True)
        out = [
            i
            for i in self.fs.get_file_info(sel)
            if i.type == pafs.FileType.File
            and not i.base_name.startswith(".")
            and i.base_name.endswith(suffix)
        ]
        return sorted(out, key=lambda i: i.path)

    def subdirs(self, folder: str) -> list[str]:
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(str(folder), recursive=False, allow_not_found=True)
        return sorted(
            i.base_name for i in self.fs.get_file_info(sel) if i.type == pafs.FileType.Directory
        )

    def put_bytes(self, path: str, data: bytes | pa.Buffer) -> None:
        """One PUT: the object appears whole or not at all."""
        with self.fs.open_output_stream(str(path)) as out:
            out.write(data)

    def get_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(str(path)) as f:
            return f.read()

    def upload(self, local: Path, path: str) -> None:
        with open(local, "rb") as fin, self.fs.open_output_stream(str(path)) as out:
            while chunk := fin.read(CHUNK):
                out.write(chunk)

    def download(self, path: str, local: Path) -> None:
        with self.fs.open_input_stream(str(path)) as fin, open(local, "wb") as out:
            while chunk := fin.read(CHUNK):
                out.write(chunk)

    def delete(self, path: str, *, missing_ok: bool = True) -> None:
        try:
            self.fs.delete_file(str(path))
        except FileNotFoundError:
            if not missing_ok:
                raise

    def write_parquet(self, table: pa.Table, path: str, **kwargs) -> None:
        """Build the Parquet file in memory and PUT it once (zstd, statistics on)."""
        kwargs.setdefault("compression", "zstd")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **kwargs)
        self.put_bytes(path, sink.getvalue())


class ObjectStoreLake(Lake):
    """The lake at ``s3://bucket/prefix``; ``Lake("s3://...")`` returns one of these.

    Same layout, same batches and catalog, same reads as a local lake; local state (share index,
    locks, the cache of raw copies being parsed) under ``layout.state``."""

    def __init__(self, root: str, state_dir: str | os.PathLike | None = None, *, filesystem=None):
        if not is_remote(root):
            raise ValueError(f"{root!r} is not an object-store location (s3://bucket/prefix)")
        split_url(str(root))
        endpoint = getattr(root, "endpoint", None) or endpoint_from_env()
        state = state_dir or getattr(root, "state_dir", None) or default_state_dir()
        self.url = str(root).rstrip("/")
        self.endpoint = endpoint
        self.store = ObjectStore(filesystem if filesystem is not None else s3_filesystem(endpoint))
        self.layout = LakeLayout(self.url, state_dir=Path(state))

    @property
    def filesystem(self):
        return self.store.fs

    def duckdb_preamble(self) -> list[str]:
        return duckdb_preamble(self.url, self.endpoint)

    # ------------------------------------------------------------------ raw store
    def store_raw(self, src: Path, name: str | None = None) -> RawCopy:
        """Upload ``src`` under a temporary key while hashing it, then copy it server-side to its
        content address (or drop it: these bytes are there already). The source is only read."""
        name = name or Path(src).name
        st0 = os.stat(src)
        h = hashlib.sha256()
        tmp = str(self.layout.raw / INCOMING / f".{secrets.token_hex(8)}.{os.getpid()}.x.tmp")
        try:
            with open(src, "rb") as fin, self.store.fs.open_output_stream(tmp) as out:
                while chunk := fin.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            st1 = os.stat(src)
            if (st1.st_size, st1.st_mtime_ns) != (st0.st_size, st0.st_mtime_ns):
                return RawCopy("", Path(), st1.st_size, st1.st_mtime_ns, changed=True)
            sha = h.hexdigest()
            existing = self.raw_exists(sha)
            if existing is not None:
                return RawCopy(sha, existing, st0.st_size, st0.st_mtime_ns, existed=True)
            target = self.layout.raw_path(sha, name)
            self.store.fs.copy_file(tmp, str(target))
            return RawCopy(sha, target, st0.st_size, st0.st_mtime_ns)
        finally:
            self.store.delete(tmp)

    def raw_exists(self, sha256: str) -> PurePosixPath | None:
        files = self.store.list(str(self.layout.raw / sha256[:2] / sha256), recursive=False)
        return PurePosixPath(files[0]) if files else None

    def raw_file(self, raw_path: str) -> Path:
        """A local copy of a raw file (downloaded into the state folder's cache once)."""
        local = self.layout.state / "raw_cache" / raw_path
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                self.store.download(str(self.root / raw_path), tmp)
                os.replace(tmp, local)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return local

    def relative(self, p) -> str:
        return str(PurePosixPath(str(p)).relative_to(self.root))

    def cleanup(self, max_age_s: float = 3600.0) -> int:
        """Remove cached raw copies and upload leftovers (``raw/_incoming``) older than
        ``max_age_s``, and local temporary files of dead processes. Returns the count removed."""
        from .atomic import remove_stale_tmp

        published, deleted = self.recover_pending(max_age_s)
        removed = published + deleted
        now = time.time()
        cache = self.layout.state / "raw_cache"
        if cache.exists():
            removed += remove_stale_tmp(cache, max_age_s=max_age_s)
            for p in cache.rglob("*"):
                with contextlib.suppress(FileNotFoundError):
                    if p.is_file() and now - p.stat().st_mtime > max_age_s:
                        p.unlink()
                        removed += 1
        for i in self._incoming_infos():
            mtime = i.mtime.timestamp() if isinstance(i.mtime, dt.datetime) else now
            if now - mtime > max_age_s:
                self.store.delete(i.path)
                removed += 1
        return removed

    def _incoming_infos(self) -> list:
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(
            str(self.layout.raw / INCOMING), recursive=False, allow_not_found=True
        )
        return [i for i in self.store.fs.get_file_info(sel) if i.type == pafs.FileType.File]

    # ------------------------------------------------------------------ arrays / features
    def write_array(self, measurement_id: str, name: str, array: np.ndarray) -> PurePosixPath:
        target = self.layout.array_path(measurement_id, name)
        if not self.store.exists(str(target)):
            buf = io.BytesIO()
            np.save(buf, np.asarray(array), allow_pickle=False)
            self.store.put_bytes(str(target), buf.getvalue())
        return target

    def read_array(self, measurement_id: str, name: str) -> np.ndarray:
        data = self.store.get_bytes(str(self.layout.array_path(measurement_id, name)))
        return np.load(io.BytesIO(data), allow_pickle=False)

    def write_feature_table(self, name: str, table: pa.Table, *, part: str = "data") -> ObjectFile:
        return self._feature_put(name, f"{part}.parquet", table)

    def append_feature_part(self, name: str, table: pa.Table) -> ObjectFile:
        return self._feature_put(name, f"part-{new_batch_id()}.parquet", table)

    def _feature_put(self, name: str, file: str, table: pa.Table) -> ObjectFile:
        path = str(self.layout.feature_dir(name) / file)
        self.store.write_parquet(table, path)
        return ObjectFile(self.store, path)

    def feature_files(self, name: str) -> list[ObjectFile]:
        paths = self.store.list(
            str(self.layout.feature_dir(name)), suffix=".parquet", recursive=False
        )
        return [ObjectFile(self.store, p) for p in paths]

    def read_feature(self, name: str, columns: list[str] | None = None) -> pa.Table | None:
        files = self.feature_files(name)
        if not files:
            return None
        import pyarrow.dataset as pads

        return pads.dataset(
            [f.path for f in files], format="parquet", filesystem=self.store.fs
        ).to_table(columns=columns)

    def replace_feature(self, name: str, table: pa.Table) -> ObjectFile:
        old = self.feature_files(name)
        target = self._feature_put(name, f"data-{new_batch_id()}.parquet", table)
        for f in old:
            if f.path != target.path:
                f.unlink(missing_ok=True)
        return target

    # ------------------------------------------------------------------ file primitives
    def parquet_files(self, folder) -> list[str]:
        return self.store.list(str(folder), suffix=".parquet", recursive=True)

    def _write_parquet(self, table: pa.Table, target, **kwargs) -> PurePosixPath:
        kwargs.pop("fsync", None)  # a PUT is durable once acknowledged
        self.store.write_parquet(table, str(target), **kwargs)
        return target

    @contextlib.contextmanager
    def _stream_target(self, target) -> Iterator[Path]:
        """A local temporary file for a streamed table, uploaded in one piece when complete."""
        tmpdir = self.layout.state / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        tmp = (
            tmpdir / f".{PurePosixPath(str(target)).name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        try:
            yield tmp
            self.store.upload(tmp, str(target))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _sync(self) -> None:
        """Nothing to do: the object store acknowledged each PUT once it was durable."""

    def _publish(self, pending, final) -> bool:
        """Move a pending object to its final key (copy + delete: readers see it whole)."""
        # copy then delete (not fs.move, which may leave a directory marker object behind);
        # the final object is in the same "folder", so the folder never becomes empty
        try:
            self.store.fs.copy_file(str(pending), str(final))
        except (FileNotFoundError, OSError):
            return self.store.exists(str(final))
        self.store.delete(str(pending))
        return True

    def _discard(self, pending) -> None:
        self.store.delete(str(pending))

    def pending_files(self) -> list:
        import pyarrow.fs as pafs

        from .layout import PENDING_SUFFIX

        sel = pafs.FileSelector(str(self.layout.tables), recursive=True, allow_not_found=True)
        now = time.time()
        out = []
        for i in self.store.fs.get_file_info(sel):
            if i.type == pafs.FileType.File and i.base_name.startswith(".") and i.base_name.endswith(PENDING_SUFFIX):
                mtime = i.mtime.timestamp() if isinstance(i.mtime, dt.datetime) else now
                out.append((PurePosixPath(i.path), now - mtime))
        return out


def copy_tree_to_local(lake: ObjectStoreLake, dest: Path) -> int:
    """Download every file of the lake into ``dest`` (same layout); returns the file count.

    For moving a lake off an object store, and for tests comparing it with a local lake."""
    n = 0
    base = str(lake.root)
    paths = lake.store.list(base, recursive=True)
    folders = {str(PurePosixPath(p).parent) for p in paths}
    for p in paths:
        if p.rstrip("/") in folders:
            continue  # an empty "directory marker" object some S3 clients leave behind
        local = dest / PurePosixPath(p).relative_to(base)
        local.parent.mkdir(parents=True, exist_ok=True)
        lake.store.download(p, local)
        n += 1
    return n


__all__ = [
    "ObjectFile",
    "ObjectStore",
    "ObjectStoreLake",
    "copy_tree_to_local",
    "duckdb_preamble",
    "endpoint_from_env",
    "s3_filesystem",
    "split_url",
]
