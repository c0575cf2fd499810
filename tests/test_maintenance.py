"""Compaction keeps every visible row and drops orphans; reconciliation requeues missed files."""

from __future__ import annotations

import time

import dagster as dg
import pyarrow as pa

from progral_dagster.sensors.reconcile import reconcile
from progral_dagster.sensors.share_sensor import evaluate
from progral_dagster.warehouse import ingest
from progral_dagster.warehouse.compaction import compact
from progral_dagster.warehouse.lake import Lake
from progral_dagster.warehouse.views import connect

from .helpers import make_settings, spectrum_text, write


def _ingest(s, paths):
    lake = Lake(s.lake)
    keys = [it.partition_key for it in ingest.items_for_paths(paths, s.share)]
    ingest.copy_items(lake, s.share, keys)
    return ingest.parse_items(lake, keys)


def _counts(s):
    con = connect(s.lake)
    return (
        con.execute("select count(*), sum(intensity) from tof_sims_spectra").fetchone(),
        con.execute("select count(*) from measurements").fetchone()[0],
        con.execute("select count(*) from measurement_files").fetchone()[0],
    )


def test_compaction_preserves_views_and_drops_orphans(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    for i in range(10):  # ten batches -> ten small files per table
        _ingest(s, [write(s.share / f"f{i}.txt", spectrum_text(20, seed=i))])
    before = _counts(s)
    lake = Lake(s.lake)
    # an orphan: data written by a run killed before its catalog commit, an hour ago
    orphan = lake.batch("killed")
    orphan.batch_id = "20000101T000000-killed-1-abc"
    orphan.add_table("tof_sims_spectra", "deadbeef", pa.table({"channel": [1.0], "mz": [1.0], "intensity": [5.0]}))
    orphan.flush_data()
    n_files = len(list((s.lake / "tables" / "tof_sims_spectra").rglob("*.parquet")))
    assert n_files == 11
    rep = compact(lake, min_files=4)
    assert rep.orphan_rows_dropped == 1
    assert len(list((s.lake / "tables" / "tof_sims_spectra").rglob("*.parquet"))) == 1
    assert _counts(s) == before


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
