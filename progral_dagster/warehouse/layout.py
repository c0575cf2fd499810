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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LakeLayout:
    root: Path

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
        return self.root / "_state"

    def raw_path(self, sha256: str, name: str) -> Path:
        return self.raw / sha256[:2] / sha256 / _safe_name(name)

    def table_dir(self, table: str) -> Path:
        return (self.catalog if table.startswith("catalog_") else self.tables) / table

    def table_glob(self, table: str) -> str:
        return str(self.table_dir(table) / "**" / "*.parquet")

    def batch_file(self, table: str, batch: str, when: dt.datetime, part: int = 0) -> Path:
        suffix = f"-{part}" if part else ""
        return self.table_dir(table) / f"ingest_date={when:%Y-%m-%d}" / f"{batch}{suffix}.parquet"

    def array_path(self, measurement_id: str, name: str) -> Path:
        return self.arrays / measurement_id / f"{_safe_name(name)}.npy"

    def feature_dir(self, name: str) -> Path:
        return self.features / name

    def feature_glob(self, name: str) -> str:
        return str(self.feature_dir(name) / "**" / "*.parquet")

    @property
    def share_index(self) -> Path:
        return self.state / "share_index.sqlite"


def _safe_name(name: str) -> str:
    """A file name safe to use inside the lake (no separators, no leading dots, bounded length)."""
    n = name.replace("/", "_").replace("\\", "_").replace("\0", "_").lstrip(".") or "file"
    if len(n.encode("utf-8")) > 200:
        stem, dot, ext = n.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        n = n.encode("utf-8")[: 180].decode("utf-8", "ignore") + ("." + ext if ext else "")
    return n
