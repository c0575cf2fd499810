"""Load and concurrency: 2,000 files dropped at once under the Dagster daemon, ingested by
concurrent ranged runs (multiprocess executor) while a notebook-style reader holds a DuckDB
connection and an outside tool holds ``warehouse.duckdb`` open; and two `progral ingest`
processes racing on the same folder.

Asserted: every file exactly once in the views (rows counted from the bytes written), at most
``PROGRAL_MAX_RUNS_PER_TICK`` run requests per tick and ``PROGRAL_MAX_PARTITIONS_PER_RUN``
partitions per run, every tick far inside Dagster's 60 s sensor timeout, runs really
overlapping, the reader never seeing a duplicate or an error, no lock error anywhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from progral_dagster.warehouse import connect

from .fault_fixtures import (  # noqa: F401
    dagster_daemon,
    exactly_once,
    ingestion_runs,
    lake_tmp_files,
    sensor_ticks,
    service_env,
    share_guard_fixture,
    spectrum_rows,
    wait_for,
)
from .helpers import past, spectrum_text

pytestmark = pytest.mark.slow

N_FILES = 2000
PER_RUN = (
    500  # fewer, larger runs than the defaults (200 x 5): each run costs ~10 s of process starts
)
RUNS_PER_TICK = 2
SENSOR_TIMEOUT_S = 60  # Dagster's default sensor evaluation timeout
LOCK_ERRORS = ("database is locked", "could not set lock", "conflicting lock", "IO Error")


def _drop(share, n: int, dup_every: int = 100) -> dict[str, int]:
    """``n`` small spectra in 20 folders; every ``dup_every``-th one also as a byte-identical copy
    in the last folder, so that runs that overlap in time parse the same content."""
    expected = {}
    old = past(600)
    for i in range(n):
        data = spectrum_text(4 + i % 9, seed=i)
        rel = f"d{i % 20:02d}/f{i:05d}.txt"
        share.write(rel, data, mtime=old)
        expected[rel] = spectrum_rows(data.encode())
        if i % dup_every == 0:
            copy = f"zz-copies/f{i:05d}.txt"
            share.write(copy, data, mtime=old)
            expected[copy] = expected[rel]
    return expected


class Reader(threading.Thread):
    """A notebook holding its in-memory DuckDB connection and querying all the time."""

    def __init__(self, lake: Path):
        super().__init__(daemon=True)
        self.lake = lake
        self.stop = threading.Event()
        self.samples: list[tuple[int, int, int]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        con = None
        while not self.stop.is_set():
            try:
                if con is None:  # a connection's views cover the tables that exist when it opens
                    if any((self.lake / "catalog" / "catalog_measurements").rglob("*.parquet")):
                        con = connect(self.lake)
                else:
                    n, ids = con.execute(
                        "select count(*), count(distinct measurement_id) from measurements"
                    ).fetchone()
                    rows = con.execute("select count(*) from tof_sims_spectra").fetchone()[0]
                    self.samples.append((n, ids, rows))
            except Exception as exc:  # noqa: BLE001 - every error is a finding
                self.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.3)


def test_2000_files_at_once_concurrent_runs_and_a_reader(tmp_path, share_guard):
    share = share_guard.share(tmp_path / "share")
    home = tmp_path / "home"
    lake = home / "lake"
    expected = _drop(share, N_FILES)
    distinct_rows = sum(v for k, v in expected.items() if not k.startswith("zz-"))
    env = service_env(
        home,
        share.root,
        PROGRAL_MAX_PARTITIONS_PER_RUN=str(PER_RUN),
        PROGRAL_MAX_RUNS_PER_TICK=str(RUNS_PER_TICK),
    )
    dh = home / "dagster"
    reader = Reader(lake)
    reader.start()
    outside_tool = None
    log = tmp_path / "daemon.log"
    t0 = time.time()
    try:
        with dagster_daemon(env, log) as p:
            wait_for(
                lambda: (home / "warehouse.duckdb").exists(), 300, "the first run to finish", log, p
            )
            # an outside tool opens the views file and keeps it open while the service replaces it
            outside_tool = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
            assert outside_tool.execute("select count(*) from measurements").fetchone()[0] > 0

            def done() -> bool:
                try:
                    exactly_once(lake, expected)
                except AssertionError:
                    return False
                return True

            wait_for(done, 600, f"{N_FILES} files in the lake", log, p, every=3)
            wait_for(
                lambda: all(r.dagster_run.is_finished for r in ingestion_runs(dh)),
                120,
                "the last runs to finish",
                log,
                p,
            )
            elapsed = time.time() - t0
            ticks = sensor_ticks(dh)
            runs = ingestion_runs(dh)
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    got = exactly_once(lake, expected)
    n_contents = len(expected) - sum(k.startswith("zz-") for k in expected)
    assert got["measurements"] == n_contents and got["rows"] == distinct_rows
    # two catalog rows for one measurement only where two runs raced on the same bytes
    assert (
        got["catalog_ids"] == n_contents
        and got["catalog_rows"] - got["catalog_ids"] <= len(expected) - n_contents
    )
    assert lake_tmp_files(lake) == []

    # bounded run requests per tick and partitions per run, ticks far inside the sensor timeout
    requesting = [tk for tk in ticks if tk.run_ids]
    assert sum(len(tk.run_ids) for tk in ticks) == len(runs)
    assert all(len(tk.run_ids) <= RUNS_PER_TICK for tk in ticks)
    sizes = sorted(int(r.dagster_run.tags["progral/partitions"]) for r in runs)
    assert sum(sizes) == len(expected) and max(sizes) <= PER_RUN
    assert len(requesting) >= -(-len(expected) // (PER_RUN * RUNS_PER_TICK))
    # the evaluation (what the timeout covers) as the sensor measures it, from the daemon's log;
    # the tick as a whole also includes Dagster creating the runs, which has no timeout
    text = log.read_text(errors="replace")
    evals = [
        float(x) for x in re.findall(r"instrument_share.* files listed .*tick (\d+\.\d+) s", text)
    ]
    assert len(evals) >= len(ticks) - 1 and max(evals) < SENSOR_TIMEOUT_S / 10, evals
    durations = [tk.end_timestamp - tk.timestamp for tk in ticks if tk.end_timestamp]
    # the runs really ran at the same time
    spans = sorted((r.start_time, r.end_time) for r in runs)
    overlap = max(sum(1 for a, b in spans if a <= s < b) for s, _ in spans)
    assert overlap >= 2, "no two ingestion runs overlapped: concurrency was not exercised"
    from dagster import DagsterRunStatus

    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in runs)

    # the reader never saw an error, a duplicate, or more rows than exist; it saw progress
    assert reader.errors == []
    assert reader.samples and all(n == ids for n, ids, _ in reader.samples)
    assert all(rows <= distinct_rows for _, _, rows in reader.samples)
    assert [s[2] for s in reader.samples] == sorted(s[2] for s in reader.samples)
    assert len({s[2] for s in reader.samples}) > 1
    # the outside tool's connection to the replaced file kept working (views read the Parquet files
    # at query time, so it sees every measurement); a fresh open sees everything too
    assert outside_tool.execute("select count(*) from measurements").fetchone()[0] == n_contents
    outside_tool.close()
    fresh = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    assert fresh.execute("select count(*) from tof_sims_spectra").fetchone()[0] == distinct_rows
    fresh.close()
    assert not [e for e in LOCK_ERRORS if e in text], "lock errors in the daemon log"
    assert "warehouse.duckdb not refreshed" not in text
    print(
        f"{len(expected)} files in {elapsed:.0f} s ({len(expected) / elapsed:.1f} files/s end to end), "
        f"{len(runs)} runs of {sizes[0]}..{sizes[-1]} partitions, up to {overlap} at once, "
        f"{len(ticks)} ticks: evaluation up to {max(evals):.2f} s, with run creation up to "
        f"{max(durations):.1f} s; reader samples {len(reader.samples)}"
    )


def test_two_cli_ingestions_race_on_the_same_folder(tmp_path, share_guard):
    share = share_guard.share(tmp_path / "share")
    home = tmp_path / "home"
    expected = _drop(share, 120, dup_every=1000)
    env = service_env(home, share.root)
    progral = str(Path(sys.executable).parent / "progral")
    cmd = [progral, "ingest", str(share.root), "--home", str(home), "--json"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert not [e for e in LOCK_ERRORS if e in err], err[-3000:]
        counts = json.loads(out)["summary"]["counts"]
        assert sum(counts.values()) == len(expected) and set(counts) <= {"ingested", "present"}, (
            counts
        )
    got = exactly_once(home / "lake", expected)
    n_contents = len(expected) - sum(k.startswith("zz-") for k in expected)
    assert got["measurements"] == got["catalog_ids"] == n_contents
    # racing runs may both commit a measurement; the views show it once
    assert n_contents <= got["catalog_rows"] <= 2 * n_contents
    assert lake_tmp_files(home / "lake") == []
