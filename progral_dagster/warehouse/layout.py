"""Where things live in the lake. The only module that knows paths inside the lake.

::

    lake/
      raw/<sha[:2]>/<sha256>/<original file name>          content-addressed copies of every file
      tables/<table>/ingest_date=YYYY-MM-DD/<batch>.parquet  measurement data (long form)
      catalog/<table>/ingest_date=YYYY-MM-DD/<batch>.parquet catalog rows (append-only)
      arrays/<measurement_id>/<name>.npy                    n-dimensional arrays (label volumes)
      features/<name>/<file>.parquet                        derived tables (replaced atomically)
      _state/                                               sensor index, locks

Parquet files are hive-partitioned by ingestion date so that compaction works on bounded
folders; the views select explicit columns, so the partition column never reaches users.

A lake may also live in an S3-compatible object store (``PROGRAL_LAKE=s3://bucket/prefix``,
see ``storage.py``): the same layout under ``bucket/prefix`` (paths as pyarrow's S3 filesystem
takes them; ``scheme`` is prepended only to the globs handed to DuckDB). An object store cannot
hold the sensor's SQLite index or lock files, so ``state_dir`` then names a local folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

REMOTE_SCHEMES = ("s3://",)


def default_state_dir() -> Path:
    """The local state folder of an object-store lake when none was given: ``PROGRAL_STATE_DIR``,
    else ``$PROGRAL_HOME/state`` (the rule of ``settings.load``)."""
    if os.environ.get("PROGRAL_STATE_DIR"):
        return Path(os.environ["PROGRAL_STATE_DIR"]).expanduser().absolute()
    return Path(os.environ.get("PROGRAL_HOME", "./var")).expanduser().absolute() / "state"


def is_remote(location: object) -> bool:
    """Whether a lake location names an object store (``s3://bucket/prefix``), not a folder."""
    return isinstance(location, str) and location.startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class LakeLayout:
    root: PurePath
    state_dir: Path | None = None  # None: ``root/_state`` (a local lake)
    scheme: str = ""  # "s3://" for a lake in an object store (globs for DuckDB only)

    def __post_init__(self) -> None:
        if is_remote(self.root):  # s3://bucket/prefix -> bucket/prefix, as pyarrow's S3 paths
            url = self.root
            scheme, _, path = str(url).partition("://")
            object.__setattr__(self, "root", PurePosixPath(path.rstrip("/")))
            object.__setattr__(self, "scheme", scheme + "://")
            if self.state_dir is None:
                object.__setattr__(self, "state_dir", getattr(url, "state_dir", None) or default_state_dir())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def arrays(self) -> Path:
        return self.root / "arrays"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def state(self) -> Path:
        return self.state_dir if self.state_dir is not None else self.root / "_state"

    def raw_path(self, sha256: str, name: str) -> Path:
        return self.raw / sha256[:2] / sha256 / _safe_name(name)

    @property
    def superseded(self) -> Path:
        """Rows of superseded versions and duplicate parses, moved out of the active files by
        compaction (so that the views of current data scan without a join)."""
        return self.root / "superseded"

    def table_dir(self, table: str) -> Path:
        return (self.catalog if table.startswith("catalog_") else self.tables) / table

    def superseded_dir(self, table: str) -> Path:
        return self.superseded / table

    def superseded_glob(self, table: str) -> str:
        return self.scheme + str(self.superseded_dir(table) / "**" / "*.parquet")

    def table_glob(self, table: str) -> str:
        return self.scheme + str(self.table_dir(table) / "**" / "*.parquet")

    def batch_file(self, table: str, batch: str, when: dt.datetime, part: int = 0) -> Path:
        suffix = f"-{part}" if part else ""
        return self.table_dir(table) / f"ingest_date={when:%Y-%m-%d}" / f"{batch}{suffix}.parquet"


    def array_path(self, measurement_id: str, name: str) -> Path:
        return self.arrays / measurement_id / f"{_safe_name(name)}.npy"

    def feature_dir(self, name: str) -> Path:
        return self.features / name

    def feature_glob(self, name: str) -> str:
        return self.scheme + str(self.feature_dir(name) / "**" / "*.parquet")

    @property
    def share_index(self) -> Path:
        return self.state / "share_index.sqlite"



PENDING_SUFFIX = ".pending"
_BATCH = re.compile(r"^\.(\d{8}T\d{6}-[^-]+-(\d+)-[0-9a-f]+)(?:-\d+)?\.parquet\.pending$")


def pending_name(final: PurePath) -> PurePath:
    """Where a batch's data file waits until its catalog rows are written (hidden from every
    ``*.parquet`` glob)."""
    return final.with_name(f".{final.name}{PENDING_SUFFIX}")


def final_name(pending: PurePath) -> PurePath:
    return pending.with_name(pending.name[1 : -len(PENDING_SUFFIX)])


def pending_batch(name: str) -> tuple[str, int] | None:
    """(batch id, writer pid) of a pending data file name, else None."""
    m = _BATCH.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def _safe_name(name: str) -> str:
    """A file name safe to use inside the lake (no separators, no leading dots, bounded length)."""
    n = name.replace("/", "_").replace("\\", "_").replace("\0", "_").lstrip(".") or "file"
    if len(n.encode("utf-8")) > 200:
        stem, dot, ext = n.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        n = n.encode("utf-8")[: 180].decode("utf-8", "ignore") + ("." + ext if ext else "")
    return n


class LakeURL(str):
    """The location of a lake in an object store (``s3://bucket/prefix``), carrying the local
    folder for its state (sensor index, locks) and the S3 endpoint (None: AWS itself).

    A ``str``, so that it travels wherever a lake location does (settings, ``Lake(...)``,
    ``connect(...)``); ``Lake`` opens an object-store lake for it (see ``storage.py``)."""

    state_dir: Path | None
    endpoint: str | None

    def __new__(cls, url: str, state_dir: str | Path | None = None, endpoint: str | None = None) -> LakeURL:
        if not is_remote(url):
            raise ValueError(f"{url!r} is not an object-store location (expected s3://bucket/prefix)")
        obj = super().__new__(cls, url.rstrip("/"))
        obj.state_dir = Path(state_dir) if state_dir is not None else None
        obj.endpoint = endpoint or None
        return obj
