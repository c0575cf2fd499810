"""Compaction keeps every visible row and drops orphans; reconciliation requeues missed files."""

from __future__ import annotations

import time

import dagster as dg
import pyarrow as pa

from progral_dagster.sensors.reconcile import reconcile
from progral_dagster.sensors.share_sensor import evaluate
from progral_dagster.warehouse.compaction import compact
from progral_dagster.warehouse.lake import Lake
from progral_dagster.warehouse.views import connect

from .helpers import ingest_files, make_settings, spectrum_text, write

_ingest = ingest_files


def _counts(s):
    con = connect(s.lake)
    return (
        con.execute("select count(*), sum(intensity) from tof_sims_spectra").fetchone(),
        con.execute("select count(*) from measurements").fetchone()[0],
        con.execute("select count(*) from measurement_files").fetchone()[0],
    )


def test_compaction_preserves_views_and_moves_superseded_rows(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    for i in range(10):  # ten batches -> ten small files per table
        _ingest(s, [write(s.share / f"f{i}.txt", spectrum_text(20, seed=i))])
    # a new version of f0: the old one is superseded, its rows stay in *_all_versions
    _ingest(s, [write(s.share / "f0.txt", spectrum_text(25, seed=99), mtime=time.time() + 10)])
    before = _counts(s)
    con = connect(s.lake)
    all_before = con.execute("select count(*) from tof_sims_spectra_all_versions").fetchone()[0]
    assert before[0][0] == 9 * 20 + 25 and all_before == 10 * 20 + 25
    lake = Lake(s.lake)
    rep = compact(lake, min_files=4)
    assert rep.rows_moved == 20
    assert len(list((s.lake / "tables" / "tof_sims_spectra").rglob("*.parquet"))) == 1
    assert len(list((s.lake / "superseded" / "tof_sims_spectra").rglob("*.parquet"))) == 1
    assert _counts(s) == before
    con = connect(s.lake)
    assert con.execute("select count(*) from tof_sims_spectra_all_versions").fetchone()[0] == all_before
    # nothing is left hidden in the active files: the current view is a plain scan
    assert con.execute("select count(*) from _dup_losers").fetchone()[0] == 0
    moved = con.execute("select count(*) from _cat_moved").fetchone()[0]
    assert moved == 1


def test_pending_data_of_dead_writers_and_interrupted_commits(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    _ingest(s, [write(s.share / "a.txt", spectrum_text(10, seed=1))])
    lake = Lake(s.lake)
    # a run killed before its commit: its data waits under a pending name, invisible
    dead = lake.batch("killed")
    dead.batch_id = "20000101T000000-killed-999999-abc"
    dead.add_table("tof_sims_spectra", "deadbeef", pa.table({"channel": [1.0], "mz": [1.0], "intensity": [5.0]}))
    dead.flush_data()
    assert lake.pending_files() and _counts(s)[0][0] == 10
    lake.cleanup()
    assert not lake.pending_files() and _counts(s)[0][0] == 10
    # a run killed between its catalog commit and publishing its data: rolled forward
    monkeypatch.setattr(Lake, "_publish", lambda self, p, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        _ingest(s, [write(s.share / "b.txt", spectrum_text(15, seed=2))])
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    make_settings(tmp_path, monkeypatch=monkeypatch)
    con = connect(s.lake)
    assert con.execute("select count(*) from measurements").fetchone()[0] == 2
    assert _counts(s)[0][0] == 10  # b's rows are not visible yet
    assert lake.cleanup() >= 1
    assert _counts(s)[0][0] == 25 and not lake.pending_files()


def test_reconciliation_requeues_what_the_sensor_lost(tmp_path, monkeypatch):
    s = make_settings(tmp_path, settle=0, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    write(s.share / "a.txt", spectrum_text(10, seed=1), mtime=time.time() - 100)
    write(s.share / "b.txt", spectrum_text(10, seed=2), mtime=time.time() - 100)
    res = evaluate(dg.build_sensor_context(instance=inst), s)
    assert isinstance(res, dg.SensorResult)
    for req in res.dynamic_partitions_requests:
        inst.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    # only a.txt is ingested: the run for b.txt was lost
    _ingest(s, [s.share / "a.txt"])
    assert isinstance(evaluate(dg.build_sensor_context(instance=inst), s), dg.SkipReason)
    rep = reconcile(s)
    assert rep.settled == 2 and rep.in_lake == 1 and rep.requeued == ["b.txt"]
    res = evaluate(dg.build_sensor_context(instance=inst), s)
    assert isinstance(res, dg.SensorResult)
    # the partition exists already: it is requested again on its own, not added twice
    assert res.dynamic_partitions_requests == []
    assert [r.partition_key.split("@")[0] for r in res.run_requests] == ["b.txt"]


class _Crash(Exception):
    pass


def test_compaction_interrupted_at_each_step_loses_and_doubles_nothing(tmp_path, monkeypatch):
    """A compaction killed after writing its outputs, halfway through publishing them, or after
    publishing them but before removing its inputs: replaying its journal (as `Lake.cleanup` and
    the next compaction do) rolls it back or forward, and every view shows what it showed."""
    import pytest

    from progral_dagster.warehouse import compaction

    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    for i in range(5):
        _ingest(s, [write(s.share / f"f{i}.txt", spectrum_text(20, seed=i))])
    _ingest(s, [write(s.share / "f0.txt", spectrum_text(25, seed=99), mtime=time.time() + 10)])
    lake = Lake(s.lake)
    before = _counts(s)
    spectra = s.lake / "tables" / "tof_sims_spectra"
    inputs = sorted(spectra.rglob("*.parquet"))

    def crash_in(name, after_calls):
        real = getattr(compaction._Files, name) if name != "_finish" else compaction._finish
        calls = {"n": 0}

        def wrapper(*a, **k):
            if calls["n"] >= after_calls:
                raise _Crash(name)
            calls["n"] += 1
            return real(*a, **k)

        if name == "_finish":
            monkeypatch.setattr(compaction, "_finish", wrapper)
        else:
            monkeypatch.setattr(compaction._Files, name, wrapper)

    # 1. outputs written (pending), journal written, first of two outputs published, then killed
    crash_in("publish", after_calls=1)
    with pytest.raises(_Crash):
        compaction.compact(lake, min_files=4)
    monkeypatch.undo()
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    assert list((lake.layout.state / "compaction").glob("*.json"))  # the journal survived
    assert compaction.replay_journals(lake) == 1  # rolled back: not every output was published
    assert sorted(spectra.rglob("*.parquet")) == inputs
    assert not [p for p in s.lake.rglob(".*") if p.is_file() and "pending" in p.name]
    assert _counts(s) == before

    # 2. every output published, then killed before the inputs were removed
    crash_in("_finish", after_calls=0)
    with pytest.raises(_Crash):
        compaction.compact(lake, min_files=4)
    monkeypatch.undo()
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    lake.cleanup()  # what every ingestion does first: replays the journal, rolled forward
    assert not list((lake.layout.state / "compaction").glob("*.json"))
    assert [p.name.split("-")[0] for p in spectra.rglob("*.parquet")] == ["compact"]
    assert _counts(s) == before
    con = connect(s.lake)
    assert con.execute("select count(*) from _cat_moved").fetchone()[0] == 1
    assert con.execute("select count(*) from tof_sims_spectra_all_versions").fetchone()[0] == 5 * 20 + 25
