"""Ingesting sample sheets and sidecars: rows into ``catalog_sheet_rows`` (append-only; the
views take the newest version of each sheet path). Linking to measurements happens in the views,
so a corrected sheet relinks without re-parsing any measurement."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from ..readers import ReaderError
from ..readers.sample_sheet import STANDARD, is_sheet, read_sheet
from .lake import BatchWriter, Lake, utcnow


def is_metadata_file(source_path: str) -> bool:
    return is_sheet(source_path)


def ingest_sheet(lake: Lake, key: str, rows: list[dict], batch: BatchWriter):
    from .ingest import Outcome

    r0 = rows[0]
    src = r0["source_path"]
    try:
        parsed = read_sheet(lake.raw_file(r0["raw_path"]), name=src)
    except ReaderError as exc:
        reason = exc.reason + (f" ({exc.position})" if exc.position else "")
        batch.add_row("catalog_rejected", {
            "source_path": src, "sha256": r0["sha256"], "size_bytes": r0["size_bytes"], "mtime": r0["mtime"],
            "reason": reason, "error_type": "sample-sheet", "rejected_at": utcnow(), "partition_key": key,
        })
        return Outcome(key, [src], "rejected", sha256=r0["sha256"], reason=reason)
    folder = posixpath.dirname(src) if not Path(src).is_absolute() else str(Path(src).parent)
    now = utcnow()
    n_problems = 0
    for sr in parsed:
        v = sr.values
        f = v.get("file")
        pattern = posixpath.join(folder, f) if (f and folder) else f
        n_problems += bool(sr.problems)
        rec = {k: (None if v.get(k) is None else v.get(k)) for k in STANDARD}
        for k in STANDARD:
            if k not in ("field_of_view_um", "dew_point_c", "storage_time_h") and rec[k] is not None:
                rec[k] = str(rec[k])
        batch.add_row("catalog_sheet_rows", {
            "sheet_path": src, "sheet_sha256": r0["sha256"], "sheet_mtime": r0["mtime"], "row": sr.row,
            "pattern": pattern, **rec, "extra": json.dumps(sr.extra, sort_keys=True) if sr.extra else None,
            "problems": "; ".join(sr.problems) if sr.problems else None, "ingested_at": now, "partition_key": key,
        })
    reason = f"{n_problems} row(s) with problems" if n_problems else None
    return Outcome(key, [src], "metadata", sha256=r0["sha256"], format="sample-sheet", rows=len(parsed), reason=reason)
