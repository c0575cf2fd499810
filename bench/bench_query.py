"""Query latency on a lake of many spectra (default 100,000 at 200-channel binning, 4,827
channels each, like the real exports), before and after compaction.

The lake is written directly through the warehouse's batch writer (10 spectra per batch, as a
steady stream of small ingestion runs leaves it), with catalog rows, a sample sheet linking
each spectrum to a sample (10 spectra per sample) and the per-spectrum summary and peak-area
tables the feature assets produce. Then, best of 3 runs each:

- per-sample aggregate from the summary table (target < 1 s),
- per-sample mean peak area of one ion from the peak-area table (target < 1 s),
- catalog query on `measurements`,
- full channel scan (count, sum of intensity) and a per-spectrum maximum over all channels
  (target < 10 s after compaction),
before and after `warehouse.compaction.compact`.

    .venv/bin/python bench/bench_query.py [--spectra 100000] [--json OUT] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHANNELS = 4827
PER_BATCH = 10
PER_SAMPLE = 10
IONS = [f"ion{i:02d}" for i in range(40)]


def build(root: Path, n: int) -> dict:
    from progral_dagster.warehouse.lake import Lake, utcnow

    lake = Lake(root / "lake")
    rng = np.random.default_rng(0)
    channel = np.arange(CHANNELS, dtype=float) * 200 + 100
    mz = ((channel + 365) / 32985.0) ** 2
    base = np.exp(-mz / 80) * 50 + 1
    ch_col, mz_col = pa.array(channel), pa.array(mz)
    real_sync = os.sync
    os.sync = lambda: None  # a benchmark lake: no need to wait for the disk
    t0 = time.perf_counter()
    try:
        for b in range(0, n, PER_BATCH):
            batch = lake.batch("bench")
            now = utcnow()
            for i in range(b, min(b + PER_BATCH, n)):
                mid = f"m{i:019d}"
                inten = rng.poisson(base).astype(float)
                batch.add_table("tof_sims_spectra", mid, pa.table({"channel": ch_col, "mz": mz_col,
                                                                   "intensity": pa.array(inten)}))
                path = f"campaign/S{i // PER_SAMPLE:06d}/P_{i:06d}.txt"
                batch.add_row("catalog_files", {"measurement_id": mid, "source_path": path, "member_sha256": mid,
                                                "sha256": mid, "size_bytes": 110000, "mtime": now, "seen_at": now,
                                                "raw_path": f"raw/{mid}", "partition_key": path})
                batch.add_row("catalog_measurements", {
                    "measurement_id": mid, "sha256": mid, "technique": "tof-sims", "format": "iontof-spectrum",
                    "reader": "iontof_spectrum", "reader_version": "1", "n_files": 1, "size_bytes": 110000,
                    "metadata": "{}", "tables": ["tof_sims_spectra"], "row_counts": "{}", "batch": batch.batch_id,
                    "ingested_at": now, "partition_key": path})
            batch.commit()
    finally:
        os.sync = real_sync
    t_write = time.perf_counter() - t0
    ids = [f"m{i:019d}" for i in range(n)]
    samples = [f"S{i // PER_SAMPLE:06d}" for i in range(n)]
    now = utcnow()
    sheet = pa.table({
        "sheet_path": ["campaign/samples.csv"] * n, "sheet_sha256": ["sheet1"] * n, "sheet_mtime": [now] * n,
        "row": np.arange(1, n + 1, dtype=np.int32), "pattern": [f"campaign/S{i // PER_SAMPLE:06d}/P_{i:06d}.txt" for i in range(n)],
        "file": [f"P_{i:06d}.txt" for i in range(n)], "sample_id": samples,
        "ingested_at": [now] * n, "partition_key": ["sheet"] * n,
    })
    from progral_dagster.warehouse import schemas
    from progral_dagster.warehouse.atomic import write_parquet

    full = pa.table({f.name: (sheet[f.name] if f.name in sheet.column_names else pa.nulls(n, f.type))
                     for f in schemas.CATALOG_TABLES["catalog_sheet_rows"]},
                    schema=schemas.CATALOG_TABLES["catalog_sheet_rows"])
    write_parquet(full, lake.layout.batch_file("catalog_sheet_rows", "sheet", now))
    lake.append_feature_part("tof_sims_summary", pa.table({
        "measurement_id": ids, "polarity": ["positive"] * n, "total_counts": rng.normal(2e6, 1e5, n)}))
    lake.append_feature_part("tof_sims_peak_areas", pa.table({
        "measurement_id": np.repeat(ids, len(IONS)), "ion": IONS * n,
        "area": rng.gamma(2.0, 1000.0, n * len(IONS))}))
    return {"spectra": n, "rows": n * CHANNELS, "write_s": t_write,
            "files": sum(1 for _ in (lake.root / "tables").rglob("*.parquet"))}


QUERIES = {
    "per-sample aggregate from the summary table":
        "SELECT ms.sample_id, avg(su.total_counts), count(*) FROM tof_sims_summary su "
        "JOIN measurement_samples ms USING (measurement_id) GROUP BY 1",
    "per-sample mean peak area of one ion":
        "SELECT ms.sample_id, avg(pa.area) FROM tof_sims_peak_areas pa "
        "JOIN measurement_samples ms USING (measurement_id) WHERE pa.ion = 'ion07' GROUP BY 1",
    "catalog: measurements per technique": "SELECT technique, count(*) FROM measurements GROUP BY 1",
    "full channel scan (count, sum)": "SELECT count(*), sum(intensity) FROM tof_sims_spectra",
    "full scan, maximum per spectrum": "SELECT measurement_id, max(intensity) FROM tof_sims_spectra GROUP BY 1",
}


def time_queries(lake_root: Path, repeat: int = 3) -> dict:
    from progral_dagster.warehouse.views import connect

    con = connect(lake_root)
    out = {}
    for name, q in QUERIES.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            con.execute(q).fetchall()
            best = min(best, time.perf_counter() - t)
        out[name] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spectra", type=int, default=100_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, help="build the lake here and keep it")
    a = ap.parse_args()
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench_query_"))
    try:
        info = build(root, a.spectra)
        print(f"lake: {info['spectra']} spectra, {info['rows'] / 1e6:.0f} M rows, {info['files']} data files, "
              f"written in {info['write_s']:.0f} s")
        before = time_queries(root / "lake")
        from progral_dagster.warehouse.compaction import compact
        from progral_dagster.warehouse.lake import Lake

        t = time.perf_counter()
        rep = compact(Lake(root / "lake"), min_files=2)
        t_compact = time.perf_counter() - t
        after = time_queries(root / "lake")
        print(f"compaction: {rep.files_before} -> {rep.files_after} files in {t_compact:.0f} s")
        print(f"{'query':48s} {'before (s)':>10s} {'after (s)':>10s}")
        for k in QUERIES:
            print(f"{k:48s} {before[k]:10.2f} {after[k]:10.2f}")
        if a.json:
            Path(a.json).write_text(json.dumps({**info, "compaction_s": t_compact, "files_after": rep.files_after,
                                                "before": before, "after": after}, indent=2))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
