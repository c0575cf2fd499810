"""A `progral ingest` killed with SIGKILL at four points of writing: the views never show a
partial measurement, a rerun leaves no temporary file and no duplicate row, and the nightly
reconciliation notices files that were copied but never parsed.

Input: three ~50 MB IONTOF spectrum exports (the format of sims-iontof/P_Ru_Bi1_1.txt), large
enough that each stage of the ingestion lasts long enough to be caught by polling the lake.
Expected rows are counted from the bytes the test wrote, not by the reader.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from progral_dagster import settings as settings_mod
from progral_dagster.sensors.reconcile import reconcile
from progral_dagster.warehouse import connect
from progral_dagster.warehouse.compaction import compact
from progral_dagster.warehouse.lake import Lake

from .fault_fixtures import (  # noqa: F401
    exactly_once,
    lake_tmp_files,
    pids_in_group,
    service_env,
    share_guard_fixture,
)

pytestmark = pytest.mark.slow

PROGRAL = str(Path(sys.executable).parent / "progral")
ROWS = 1_600_000  # ~50 MB of text per file
HEADER = b"# Binning: 200 channels\n# Deadtime Correction: on\nChannel\tm/z\tIntensity\n"


def big_spectrum(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ch = np.arange(ROWS, dtype=np.int64) * 200 + 100
    t = pa.table({"c": ch, "m": ((ch + 365) / 32985.0) ** 2, "i": rng.poisson(40, ROWS)})
    sink = pa.BufferOutputStream()
    pacsv.write_csv(t, sink, pacsv.WriteOptions(include_header=False, delimiter="\t"))
    return HEADER + sink.getvalue().to_pybytes()


def _files(root: Path, pattern: str) -> set[Path]:
    return set(root.rglob(pattern)) if root.exists() else set()


def _new_parquet(lake: Path, sub: str, before: set[Path]) -> bool:
    return bool({p for p in _files(lake / sub, "*.parquet") if not p.name.startswith(".")} - before)


def _kill_when(cmd: list[str], env: dict, reached, what: str, timeout: float = 120) -> None:
    """Start ``cmd`` in its own process group, poll ``reached()`` every 2 ms, SIGKILL the group."""
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if reached():
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
                break
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace")[-2000:]
                raise AssertionError(
                    f"ingestion ended (rc {p.returncode}) before '{what}' was reached:\n{err}"
                )
            time.sleep(0.002)
        else:
            raise AssertionError(f"'{what}' not reached within {timeout} s")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    deadline = time.time() + 10  # killed helpers (Dagster's log tailers) are reaped by init
    while pids_in_group(p.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert pids_in_group(p.pid) == []


def _no_partial_measurement_visible(lake: Path, expected: dict[str, int]) -> int:
    con = connect(lake)
    rows = con.execute(
        """select f.source_path, count(d.measurement_id) from measurement_files f
           left join tof_sims_spectra d using (measurement_id) group by 1"""
    ).fetchall()
    for path, n in rows:
        assert n == expected[path], f"{path}: {n} rows visible of {expected[path]}"
    dup = con.execute(
        "select count(*) - count(distinct measurement_id) from measurements"
    ).fetchone()[0]
    assert dup == 0
    return len(rows)


def _physical_rows(lake: Path) -> int:
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in _files(lake / "tables" / "tof_sims_spectra", "*.parquet")
        if not f.name.startswith(".")
    )


def test_sigkill_mid_write_then_rerun(tmp_path, share_guard, monkeypatch):
    share = share_guard.share(tmp_path / "share")
    home = tmp_path / "home"
    lake = home / "lake"
    expected = {}
    for i in range(3):
        data = big_spectrum(i)
        assert data.endswith(b"\n")
        expected[f"P_big_{i}.txt"] = data.count(b"\n") - HEADER.count(b"\n")
        share.write(f"P_big_{i}.txt", data, mtime=time.time() - 600)
    env = service_env(home, share.root)
    cmd = [PROGRAL, "ingest", str(share.root), "--home", str(home)]

    # 1: killed while a file is being copied into the raw store
    _kill_when(
        cmd, env, lambda: bool(_files(lake / "raw" / "_incoming", ".*.tmp")), "raw copy in progress"
    )
    assert _no_partial_measurement_visible(lake, expected) == 0

    # 2: killed after the raw step committed its path records, before any data was written
    _kill_when(
        cmd, env, lambda: _new_parquet(lake, "catalog/catalog_files", set()), "raw copies committed"
    )
    assert _no_partial_measurement_visible(lake, expected) == 0
    # the nightly reconciliation must not take a bare raw copy for an ingested file
    with monkeypatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.setenv("PROGRAL_SETTLE_SECONDS", "0")
        rep = reconcile(settings_mod.load(home), requeue=False)
    assert rep.requeued == sorted(expected)

    # 3: killed while a data file of a measurement is being written
    _kill_when(cmd, env, lambda: bool(_files(lake / "tables", ".*.tmp")), "data file being written")
    assert lake_tmp_files(lake), "the kill left no temporary file: the kill point was missed"
    assert _no_partial_measurement_visible(lake, expected) == 0

    # 4: killed after a data file was completed (under its pending name), before its catalog
    # rows were committed
    _kill_when(
        cmd,
        env,
        lambda: bool(_files(lake / "tables", ".*.parquet.pending")),
        "data file complete, catalog not yet",
    )
    visible = _no_partial_measurement_visible(lake, expected)
    assert visible < len(expected)

    # rerun to completion
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert lake_tmp_files(lake) == [], "temporary files of killed writers are left in the lake"
    got = exactly_once(lake, expected)
    assert got["catalog_rows"] == got["catalog_ids"] == len(expected)  # one commit per measurement
    # and once more: nothing new
    r = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["summary"]["counts"] == {"present": len(expected)}
    assert exactly_once(lake, expected) == got

    # data of killed runs never reached a final name: the rerun's cleanup removed it, so the
    # active files hold exactly the rows of the files, and compaction has nothing to drop
    assert not _files(lake / "tables", ".*.pending")
    assert _physical_rows(lake) == sum(expected.values())
    rep = compact(Lake(lake), min_files=1, orphan_age_s=0)
    assert rep.orphan_rows_dropped == 0
    assert _physical_rows(lake) == sum(expected.values())
    assert exactly_once(lake, expected) == got
