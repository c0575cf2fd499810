"""Faults around the share sensor and the Dagster daemon.

Fast (the real sensor evaluated in-process at injected times, runs materialised in-process as
the daemon would): the share missing, unreadable or unmounted is reported and ingestion resumes
without re-running what was done; a share that vanishes while a run copies hands its files
back; a folder moved away and back is not ingested again; a BioLogic cycler log that grows over
several settle periods shows its rows once, from its newest version.

Slow (``dagster-daemon run`` in its own process group): the daemon stopped in the middle of a
run and restarted while files keep arriving and a cycler log keeps growing, with a share outage
in between: every file is in the lake exactly once.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time

import dagster as dg
import pytest

from progral_dagster import settings as settings_mod
from progral_dagster.sensors.reconcile import reconcile
from progral_dagster.warehouse import connect
from progral_dagster.warehouse.lake import Lake
from progral_dagster.warehouse.share_index import ShareIndex

from .conftest import SAMPLES
from .fault_fixtures import (  # noqa: F401
    dagster_daemon,
    exactly_once,
    execute_requests,
    ingestion_runs,
    pids_in_group,
    sensor_tick,
    sensor_ticks,
    service_env,
    share_fixture,
    share_guard_fixture,
    spectrum_rows,
    wait_for,
)
from .helpers import make_settings, spectrum_text

MPT = SAMPLES / "cycler-biologic" / "gcpl.issue_149.mpt"


def _spectra(guarded, folder: str, n: int, mtime: float, seed0: int = 0) -> dict[str, int]:
    out = {}
    for i in range(n):
        data = spectrum_text(10 + i, seed=seed0 + i)
        rel = f"{folder}/f{seed0 + i:03d}.txt"
        guarded.write(rel, data, mtime=mtime)
        out[rel] = spectrum_rows(data.encode())
    return out


def _wait_first_copy(home, log, proc) -> None:
    """Until the daemon's first ingestion run has copied its files (its run is then mid-way)."""
    wait_for(
        lambda: any((home / "lake" / "catalog" / "catalog_files").rglob("*.parquet")),
        180,
        "the first run to copy its files",
        log,
        proc,
        every=0.2,
    )


def _problem(s) -> str | None:
    with ShareIndex(Lake(s.lake).layout.share_index) as idx:
        return idx.get_meta("share_problem")


def _known(s) -> tuple[int, int]:
    with ShareIndex(Lake(s.lake).layout.share_index) as idx:
        return idx.count()


def test_share_missing_unreadable_or_unmounted_is_reported_then_resumed(
    tmp_path, share, monkeypatch
):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    t = time.time()
    expected = _spectra(share, "a", 4, t - 1000)
    sensor_tick(s, inst, t)
    assert execute_requests(s, inst, sensor_tick(s, inst, t + 61)) == 1
    exactly_once(s.lake, expected)
    assert _known(s) == (4, 4)

    # missing: the share folder is gone (a mount point removed, a renamed folder)
    away = share.root.with_name("share-away")
    os.rename(share.root, away)
    res = sensor_tick(s, inst, t + 100)
    assert isinstance(res, dg.SkipReason) and "not reachable" in res.skip_message
    assert "not reachable" in _problem(s) and _known(s) == (4, 4)
    os.rename(away, share.root)

    # unreadable: listing the share root fails with EACCES (root ignores modes, so it is injected)
    real_scandir = os.scandir

    def deny(path="."):
        if os.fspath(path) == str(share.root):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    with monkeypatch.context() as mp:
        mp.setattr(os, "scandir", deny)
        res = sensor_tick(s, inst, t + 110)
    assert (
        isinstance(res, dg.SkipReason) and "cannot be listed: Permission denied" in res.skip_message
    )
    assert _known(s) == (4, 4)

    # unmounted network share: the mount point is there but empty
    shutil.move(share.root / "a", tmp_path / "a-away")
    res = sensor_tick(s, inst, t + 120)
    assert isinstance(res, dg.SkipReason) and "lists no files but 4 were known" in res.skip_message
    assert _known(s) == (4, 4), "the sensor forgot the files of an unmounted share"
    shutil.move(tmp_path / "a-away", share.root / "a")

    # back: a new file is taken after it settles, nothing already ingested runs again
    data = spectrum_text(7, seed=99)
    share.write("b.txt", data)
    expected["b.txt"] = spectrum_rows(data.encode())
    res = sensor_tick(s, inst, t + 130)
    assert isinstance(res, dg.SkipReason) and _problem(s) == ""
    res = sensor_tick(s, inst, t + 200)
    assert isinstance(res, dg.SensorResult)
    assert [k.split("@")[0] for r in res.dynamic_partitions_requests for k in r.partition_keys] == [
        "b.txt"
    ]
    assert execute_requests(s, inst, res) == 1
    exactly_once(s.lake, expected)


def test_folder_moved_away_and_back_is_not_ingested_again(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    t = time.time()
    expected = _spectra(share, "a", 5, t - 1000)
    expected.update(_spectra(share, "b", 1, t - 1000, seed0=50))
    sensor_tick(s, inst, t)
    execute_requests(s, inst, sensor_tick(s, inst, t + 61))
    shutil.move(share.root / "a", tmp_path / "a-away")
    assert isinstance(sensor_tick(s, inst, t + 100), dg.SkipReason)
    assert _known(s) == (1, 1)  # the files of a/ are gone from the share, and from the index
    shutil.move(tmp_path / "a-away", share.root / "a")
    sensor_tick(s, inst, t + 130)
    res = sensor_tick(s, inst, t + 200)
    # the same versions are back: they are taken without any run (they are in the lake)
    assert isinstance(res, dg.SkipReason), f"already ingested files were queued again: {res}"
    assert _known(s) == (6, 6)
    exactly_once(s.lake, expected)


def test_share_vanishing_while_a_run_copies_hands_files_back(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    t = time.time()
    expected = _spectra(share, "a", 3, t - 1000)
    sensor_tick(s, inst, t)
    res = sensor_tick(s, inst, t + 61)
    away = share.root.with_name("share-away")
    os.rename(share.root, away)
    execute_requests(s, inst, res)  # the run finds no file: nothing is written
    assert connect(s.lake).execute("select count(*) from measurements").fetchone()[0] == 0
    os.rename(away, share.root)
    res = sensor_tick(s, inst, t + 100)
    # the files are taken again: each partition exists already, so one run each
    assert isinstance(res, dg.SensorResult)
    assert sorted(r.partition_key for r in res.run_requests) == sorted(
        inst.get_dynamic_partitions("share_files")
    )
    assert execute_requests(s, inst, res) == 3
    exactly_once(s.lake, expected)
    assert isinstance(sensor_tick(s, inst, t + 300), dg.SkipReason)


def _mpt_parts() -> tuple[bytes, list[bytes]]:
    """The header (as many lines as its 'Nb header lines' says) and data lines of the sample."""
    src = MPT.read_bytes()
    nb = int(re.search(rb"Nb header lines\s*:\s*(\d+)", src).group(1))
    lines = src.splitlines(keepends=True)
    data = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines[nb:] if ln.strip()]
    return b"".join(lines[:nb]), data


def test_growing_cycler_log_rows_once_from_newest_version(tmp_path, share, monkeypatch):
    pytest.importorskip("progral_dagster.readers.biologic_mpt")
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    header, data = _mpt_parts()
    assert len(data) > 100
    t = time.time() - 10_000
    rel = "cycler/cell_01.mpt"
    share.write(rel, header, mtime=t)  # the cycler starts: header only
    sensor_tick(s, inst, t)
    assert execute_requests(s, inst, sensor_tick(s, inst, t + 61)) == 1
    con = connect(s.lake)
    assert con.execute("select source_path from rejected_files").fetchall() == [(rel,)]

    share.append(rel, b"".join(data[:10]), mtime=t + 100)  # rows arrive; the file settles
    sensor_tick(s, inst, t + 100)
    assert execute_requests(s, inst, sensor_tick(s, inst, t + 161)) == 1
    share.append(
        rel, b"".join(data[10:40]), mtime=t + 200
    )  # rows arrive twice within one settle time
    sensor_tick(s, inst, t + 200)
    share.append(rel, b"".join(data[40:70]), mtime=t + 230)
    assert isinstance(sensor_tick(s, inst, t + 240), dg.SkipReason)
    assert isinstance(sensor_tick(s, inst, t + 290), dg.SkipReason)  # 50 s since the last change
    assert execute_requests(s, inst, sensor_tick(s, inst, t + 301)) == 1
    share.append(rel, b"".join(data[70:]), mtime=t + 400)  # the test ends
    sensor_tick(s, inst, t + 400)
    assert execute_requests(s, inst, sensor_tick(s, inst, t + 461)) == 1
    assert isinstance(sensor_tick(s, inst, t + 600), dg.SkipReason)

    exactly_once(s.lake, {rel: ("cycling", len(data))}, superseded_ok=True)
    con = connect(s.lake)
    versions = con.execute(
        "select measurement_id, is_current, superseded_by, row_counts from measurements order by ingested_at"
    ).fetchall()
    assert len(versions) == 3  # 10, 70 and all rows; the header-only version was rejected
    current = [v for v in versions if v[1]]
    assert len(current) == 1 and current[0] == versions[-1]
    assert all(v[2] == current[0][0] for v in versions[:-1])
    assert con.execute("select count(*) from cycling_all_versions").fetchone()[0] == 10 + 70 + len(
        data
    )
    assert con.execute("select count(*) from rejected_files").fetchone()[0] == 0


@pytest.mark.slow
def test_daemon_restart_while_files_arrive(tmp_path, share_guard, monkeypatch):
    pytest.importorskip("progral_dagster.readers.biologic_mpt")
    share = share_guard.share(tmp_path / "share")
    home = tmp_path / "home"
    env = service_env(home, share.root)
    dh = home / "dagster"
    expected: dict[str, int | tuple[str, int]] = {}
    pause = threading.Lock()  # held while the share is away, so the writer does not recreate it
    header, mpt_rows = _mpt_parts()
    mpt = "cycler/cell_07.mpt"
    state = {"files": 0, "mpt": 5}

    def drop() -> None:
        i = state["files"]
        data = spectrum_text(20 + i % 7, seed=i)
        rel = f"day{i // 25}/f{i:03d}.txt"
        share.write(rel, data)
        expected[rel] = spectrum_rows(data.encode())
        state["files"] += 1

    def grow(n: int) -> None:
        a = state["mpt"]
        share.append(mpt, b"".join(mpt_rows[a : a + n]))
        state["mpt"] = min(a + n, len(mpt_rows))

    for _ in range(12):
        drop()
    share.write(mpt, header + b"".join(mpt_rows[:5]))
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            with pause:
                drop()
                if k % 3 == 0:
                    grow(8)
            k += 1
            time.sleep(0.7)

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        log1 = tmp_path / "daemon1.log"
        with dagster_daemon(env, log1) as p:
            _wait_first_copy(home, log1, p)
            in_flight = [r for r in ingestion_runs(dh) if not r.dagster_run.is_finished]
        assert in_flight, "no run was in progress when the daemon was stopped"
        time.sleep(3)  # files arrive while no daemon runs
        log2 = tmp_path / "daemon2.log"
        with dagster_daemon(env, log2) as p:
            time.sleep(3)
            with pause:  # the share goes away for a few ticks, then comes back
                away = share.root.with_name("share-away")
                os.rename(share.root, away)
                wait_for(
                    lambda: "not reachable" in log2.read_text(errors="replace"),
                    60,
                    "the sensor to report the missing share",
                    log2,
                    p,
                    every=0.5,
                )
                os.rename(away, share.root)
            time.sleep(2)
            stop.set()
            th.join()
            grow(len(mpt_rows))  # the cycler test ends
            expected[mpt] = ("cycling", state["mpt"])
            assert state["mpt"] == len(mpt_rows)

            def done() -> bool:
                try:
                    exactly_once(home / "lake", expected, superseded_ok=True)
                except AssertionError:
                    return False
                return True

            wait_for(done, 300, "every file in the lake exactly once", log2, p, every=2)
            wait_for(
                lambda: all(r.dagster_run.is_finished for r in ingestion_runs(dh)),
                120,
                "the last runs to finish",
                log2,
                p,
                every=1,
            )
            ticks = sensor_ticks(dh)
            runs = ingestion_runs(dh)
    finally:
        stop.set()
        th.join()

    got = exactly_once(home / "lake", expected, superseded_ok=True)
    assert got["measurements"] >= state["files"] + 1
    # runs interrupted by the stop failed and their retry succeeded; every other run succeeded
    by_id = {r.dagster_run.run_id: r.dagster_run for r in runs}
    retry_of = {r.dagster_run.tags.get("dagster/parent_run_id"): r.dagster_run for r in runs}
    for run in by_id.values():
        if run.status != dg.DagsterRunStatus.SUCCESS:
            assert run.status == dg.DagsterRunStatus.FAILURE, (run.run_id, run.status)
            assert retry_of.get(run.run_id) is not None, (
                f"run {run.run_id} failed and was not retried"
            )
            assert retry_of[run.run_id].status == dg.DagsterRunStatus.SUCCESS
    interrupted = [
        f.dagster_run.run_id
        for f in in_flight
        if by_id[f.dagster_run.run_id].status != dg.DagsterRunStatus.SUCCESS
    ]
    # the outage was reported in the sensor's tick history
    assert any("not reachable" in (tk.skip_reason or "") for tk in ticks)
    # the nightly reconciliation finds nothing missing and nothing recorded twice
    for k, v in env.items():
        if k.startswith(("PROGRAL_", "DAGSTER_")):
            monkeypatch.setenv(k, v)
    rep = reconcile(settings_mod.load(home), requeue=False)
    assert rep.requeued == [] and rep.measurements_recorded_twice == 0
    print(
        f"{state['files']} spectra + 1 growing log, {len(by_id)} runs, interrupted by the stop: "
        f"{len(interrupted)}, ticks: {len(ticks)}"
    )


@pytest.mark.slow
def test_daemon_killed_hard_runs_failed_at_start_and_retried(tmp_path, share_guard, monkeypatch):
    """A power cut or OOM kill: the daemon, its code server and the run worker die at once.

    Nothing reports the run's end, so it stays STARTED (holding a queue slot) for good. At the
    next service start (`progral serve` calls recover_at_service_start with its lock held) it is
    failed once the dead daemon's heartbeat has aged, and Dagster's run retry re-executes it.
    """
    from progral_dagster.cli.recovery import recover_at_service_start

    share = share_guard.share(tmp_path / "share")
    home = tmp_path / "home"
    env = service_env(home, share.root)
    dh = home / "dagster"
    expected = {}
    for i in range(150):
        data = spectrum_text(20 + i % 7, seed=i)
        rel = f"batch/f{i:03d}.txt"
        share.write(rel, data)
        expected[rel] = spectrum_rows(data.encode())
    log1 = tmp_path / "daemon1.log"
    with dagster_daemon(env, log1) as p:
        _wait_first_copy(home, log1, p)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)  # reap the daemon; its children are reparented and reaped by init
        wait_for(lambda: not pids_in_group(p.pid), 20, "the killed daemon group to vanish")
    stuck = {
        r.dagster_run.run_id
        for r in ingestion_runs(dh)
        if r.dagster_run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING)
    }
    assert stuck, "no run was in progress when the daemon was killed"

    monkeypatch.setenv("DAGSTER_HOME", str(dh))
    t0 = time.time()
    with dg.DagsterInstance.get() as inst:
        rec = recover_at_service_start(inst, wait_s=120, poll_s=1, log=print)
    waited = time.time() - t0
    assert set(rec.failed) == stuck

    log2 = tmp_path / "daemon2.log"
    with dagster_daemon(env, log2) as p:

        def done() -> bool:
            try:
                exactly_once(home / "lake", expected)
            except AssertionError:
                return False
            return all(r.dagster_run.is_finished for r in ingestion_runs(dh))

        wait_for(done, 300, "every file in the lake exactly once, every run finished", log2, p, every=2)
    runs = {r.dagster_run.run_id: r.dagster_run for r in ingestion_runs(dh)}
    retry_of = {r.tags.get("dagster/parent_run_id"): r for r in runs.values()}
    for run_id in stuck:
        assert runs[run_id].status == dg.DagsterRunStatus.FAILURE
        assert retry_of[run_id].status == dg.DagsterRunStatus.SUCCESS, "the failed run was not retried"
    assert not [r for r in runs.values() if not r.is_finished]
    for k, v in env.items():
        if k.startswith(("PROGRAL_", "DAGSTER_")):
            monkeypatch.setenv(k, v)
    rep = reconcile(settings_mod.load(home), requeue=False)
    assert rep.requeued == [] and rep.measurements_recorded_twice == 0
    print(f"{len(stuck)} run(s) stuck after SIGKILL, failed after waiting {waited:.0f} s, retried")
