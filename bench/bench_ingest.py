"""Foundation benchmarks: reader throughput vs pyarrow.csv / pandas, sensor tick time vs share
size, ingestion of small files through Dagster and without it, vs calling the reader directly.

    .venv/bin/python bench/bench_ingest.py [--quick] [--json OUT]

Prints ratios against references measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(fn, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def spectrum_file(path: Path, rows: int, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    ch = np.arange(rows) * 20.0 + 10
    mz = ((ch + 365) / 32985.0 * 10) ** 2
    inten = rng.poisson(30, rows)
    buf = io.StringIO()
    buf.write("# Binning: 20 channels\r\n# Deadtime Correction: on\r\nChannel\tm/z\tIntensity\r\n")
    body = "\r\n".join(f"{c:.0f}\t{m:.6f}\t{i}" for c, m, i in zip(ch, mz, inten, strict=True))
    buf.write(body + "\r\n")
    path.write_text(buf.getvalue())
    return path


def bench_reader(tmp: Path, sizes_mb=(1, 20, 100)) -> list[dict]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from progral_dagster.readers import iontof_spectrum

    out = []
    for mb in sizes_mb:
        rows = int(mb * 1e6 / 22)
        p = spectrum_file(tmp / f"spec_{mb}mb.txt", rows)
        size = p.stat().st_size / 1e6
        t_ours = best_of(lambda p=p: iontof_spectrum.read(p))

        def arrow(p=p):
            pacsv.read_csv(p, read_options=pacsv.ReadOptions(skip_rows=3, column_names=["c", "m", "i"]),
                           parse_options=pacsv.ParseOptions(delimiter="\t"),
                           convert_options=pacsv.ConvertOptions(column_types={"c": pa.float64(), "m": pa.float64(), "i": pa.float64()}))

        t_arrow = best_of(arrow)
        t_pandas = best_of(lambda p=p: pd.read_csv(p, sep="\t", skiprows=3, header=None), n=2)
        out.append({"file_mb": round(size, 1), "ours_mb_s": size / t_ours, "pyarrow_mb_s": size / t_arrow,
                    "pandas_mb_s": size / t_pandas, "ratio_vs_pyarrow": t_arrow / t_ours,
                    "ratio_vs_pandas": t_pandas / t_ours})
    return out


def make_share(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        d = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(exist_ok=True)
        (d / f"f{i:06d}.txt").write_bytes(b"x")
    return root


def bench_tick(tmp: Path, sizes=(10_000, 100_000)) -> list[dict]:
    import dagster as dg

    from progral_dagster import settings as settings_mod
    from progral_dagster.sensors.share_sensor import evaluate

    out = []
    for n in sizes:
        home = tmp / f"tick{n}"
        share = make_share(home / "share", n)
        os.environ.update(PROGRAL_HOME=str(home), PROGRAL_SHARE=str(share), PROGRAL_SETTLE_SECONDS="0",
                          PROGRAL_MAX_PARTITIONS_PER_RUN="1000", PROGRAL_MAX_RUNS_PER_TICK="1000")
        s = settings_mod.load()
        inst = dg.DagsterInstance.ephemeral()
        t = time.perf_counter()
        res = evaluate(dg.build_sensor_context(instance=inst), s)
        first = time.perf_counter() - t
        for r in res.dynamic_partitions_requests:
            inst.add_dynamic_partitions(r.partitions_def_name, list(r.partition_keys))
        t = time.perf_counter()
        evaluate(dg.build_sensor_context(instance=inst), s)
        steady = time.perf_counter() - t
        (share / "d000" / "new.txt").write_bytes(b"y")
        t = time.perf_counter()
        evaluate(dg.build_sensor_context(instance=inst), s)
        one_new = time.perf_counter() - t
        out.append({"files": n, "first_tick_s": first, "steady_tick_s": steady, "tick_with_1_new_s": one_new})
        shutil.rmtree(home)
    return out


def bench_ingest(tmp: Path, n=1000) -> dict:
    from progral_dagster import settings as settings_mod
    from progral_dagster.readers import iontof_spectrum
    from progral_dagster.warehouse import ingest
    from progral_dagster.warehouse.lake import Lake

    src = tmp / "small"
    src.mkdir()
    for i in range(n):
        spectrum_file(src / f"s{i:05d}.txt", 200, seed=i)
    files = sorted(src.iterdir())
    mb = sum(f.stat().st_size for f in files) / 1e6
    t = time.perf_counter()
    for f in files:
        iontof_spectrum.read(f)
    t_reader = time.perf_counter() - t
    # without Dagster: hash + copy + parse + write
    home = tmp / "nodagster"
    os.environ.update(PROGRAL_HOME=str(home), PROGRAL_SHARE=str(src))
    s = settings_mod.load()
    lake = Lake(s.lake)
    t = time.perf_counter()
    keys = [it.partition_key for it in ingest.items_for_paths(files, s.share)]
    for i in range(0, n, 200):
        ingest.copy_items(lake, s.share, keys[i:i + 200])
        ingest.parse_items(lake, keys[i:i + 200])
    t_core = time.perf_counter() - t
    # through Dagster: ranged in-process runs of 200 partitions
    from progral_dagster.cli.ingest import ingest_paths

    home2 = tmp / "dagster"
    os.environ.update(PROGRAL_HOME=str(home2), DAGSTER_HOME=str(home2 / "dagster"))
    s2 = settings_mod.load()
    t = time.perf_counter()
    outs = ingest_paths([src], s2, quiet=True, per_run=200)
    t_dag = time.perf_counter() - t
    assert sum(o.status == "ingested" for o in outs) == n
    return {"files": n, "mb": mb, "reader_files_s": n / t_reader, "no_dagster_files_s": n / t_core,
            "no_dagster_mb_s": mb / t_core, "dagster_files_s": n / t_dag, "dagster_mb_s": mb / t_dag,
            "no_dagster_vs_reader": t_reader / t_core, "dagster_vs_reader": t_reader / t_dag}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--json", default=None, help="write results as JSON here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {
            "reader": bench_reader(tmp, (1, 5) if a.quick else (1, 20, 100)),
            "tick": bench_tick(tmp, (2_000, 10_000) if a.quick else (10_000, 100_000)),
            "ingest": bench_ingest(tmp, 200 if a.quick else 1000),
        }
    print("IONTOF spectrum reader (MB/s; ratio > 1 = faster than the reference)")
    for r in res["reader"]:
        print(f"  {r['file_mb']:7.1f} MB  ours {r['ours_mb_s']:7.1f}  pyarrow.csv {r['pyarrow_mb_s']:7.1f}  "
              f"pandas {r['pandas_mb_s']:6.1f}  ratio vs pyarrow {r['ratio_vs_pyarrow']:.2f}  vs pandas {r['ratio_vs_pandas']:.2f}")
    print("sensor tick (s)")
    for r in res["tick"]:
        print(f"  {r['files']:7d} files  first {r['first_tick_s']:.2f}  steady {r['steady_tick_s']:.2f}  "
              f"with 1 new {r['tick_with_1_new_s']:.2f}")
    g = res["ingest"]
    print(f"ingestion of {g['files']} small files ({g['mb']:.1f} MB): reader alone {g['reader_files_s']:.0f} files/s, "
          f"without Dagster {g['no_dagster_files_s']:.0f} files/s ({g['no_dagster_vs_reader']:.2f} x reader), "
          f"through Dagster {g['dagster_files_s']:.0f} files/s ({g['dagster_vs_reader']:.2f} x reader)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
