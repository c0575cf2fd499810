"""Reading the catalog tables from Python (pyarrow datasets; no DuckDB connection needed), from a
local lake or through the object-store lake's pyarrow filesystem."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from . import schemas
from .lake import Lake


def catalog_dataset(lake: Lake, table: str) -> ds.Dataset | None:
    files = lake.parquet_files(lake.layout.table_dir(table))
    if not files:
        return None
    return ds.dataset(files, schema=schemas.schema_of(table), format="parquet", filesystem=lake.filesystem)


def read_catalog(lake: Lake, table: str, columns: Sequence[str] | None = None, filter=None) -> pa.Table:
    d = catalog_dataset(lake, table)
    if d is None:
        s = schemas.schema_of(table)
        return s.empty_table() if columns is None else pa.schema([s.field(c) for c in columns]).empty_table()
    return d.to_table(columns=list(columns) if columns else None, filter=filter)


def raw_copies_for(lake: Lake, keys: Sequence[str]) -> dict[str, list[dict]]:
    """Path records of the raw copies made for these partitions (the newest copy of each)."""
    if not keys:
        return {}
    t = read_catalog(lake, "catalog_files", filter=pc.field("partition_key").isin(list(keys)))
    out: dict[str, list[dict]] = {}
    latest: dict[str, object] = {}
    for r in t.to_pylist():
        k = r["partition_key"]
        if k not in latest or r["seen_at"] > latest[k]:
            latest[k] = r["seen_at"]
            out[k] = []
        if r["seen_at"] == latest[k]:
            out[k].append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["source_path"])
    return out


def known_measurements(lake: Lake) -> dict[str, dict]:
    """measurement_id -> newest catalog row (technique, format, reader, reader_version)."""
    cols = ["measurement_id", "technique", "format", "reader", "reader_version", "ingested_at"]
    t = read_catalog(lake, "catalog_measurements", columns=cols)
    out: dict[str, dict] = {}
    for r in t.to_pylist():
        prev = out.get(r["measurement_id"])
        if prev is None or r["ingested_at"] > prev["ingested_at"]:
            out[r["measurement_id"]] = r
    return out


def finished_keys(lake: Lake, keys: Sequence[str]) -> set[str]:
    """The partition keys among ``keys`` whose ingestion is complete: copied and parsed into a
    measurement (under this or any other path), rejected with a reason, or read as a sample
    sheet. A key that was only copied (its run died before the parse committed) is not."""
    if not keys:
        return set()
    flt = pc.field("partition_key").isin(list(keys))
    copies = read_catalog(lake, "catalog_files", columns=["partition_key", "measurement_id"], filter=flt)
    parsed = set(read_catalog(lake, "catalog_measurements", columns=["measurement_id"]).column(0).to_pylist())
    done = {k for k, m in zip(copies.column(0).to_pylist(), copies.column(1).to_pylist(), strict=True) if m in parsed}
    for table in ("catalog_rejected", "catalog_sheet_rows"):
        done.update(read_catalog(lake, table, columns=["partition_key"], filter=flt).column(0).to_pylist())
    return done
