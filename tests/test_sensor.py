"""The share sensor with build_sensor_context: settling, versions, duplicates, bursts, outages."""

from __future__ import annotations

import shutil
import time

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from progral_dagster.assets.ingestion import measurements, raw_files
from progral_dagster.assets.partitions import share_files
from progral_dagster.cli.instance import materialize
from progral_dagster.sensors.share_sensor import evaluate
from progral_dagster.warehouse.views import connect

from .helpers import make_settings, spectrum_text, write


@pytest.fixture
def env(tmp_path, monkeypatch):
    s = make_settings(tmp_path, settle=60, monkeypatch=monkeypatch)
    instance = dg.DagsterInstance.ephemeral()
    return s, instance


def tick(s, instance, now):
    ctx = dg.build_sensor_context(instance=instance)
    res = evaluate(ctx, s, now=now)
    if isinstance(res, dg.SensorResult):
        for req in res.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return res


def run_all(s, instance, res):
    """Execute the run requests of a tick in-process, as the daemon would."""
    for rr in res.run_requests:
        r = materialize(s, [raw_files, measurements], instance=instance, tags=dict(rr.tags), quiet=True)
        assert r.success


def keys_of(res):
    return [k for req in res.dynamic_partitions_requests for k in req.partition_keys]


def test_new_file_waits_for_settle_then_runs_once(env):
    s, inst = env
    write(s.share / "a.txt", spectrum_text())
    t = time.time()
    assert isinstance(tick(s, inst, t), dg.SkipReason)  # first seen: settling
    assert isinstance(tick(s, inst, t + 30), dg.SkipReason)  # not yet 60 s
    res = tick(s, inst, t + 61)
    assert isinstance(res, dg.SensorResult) and len(keys_of(res)) == 1 and len(res.run_requests) == 1
    rr = res.run_requests[0]
    assert rr.tags[ASSET_PARTITION_RANGE_START_TAG] == rr.tags[ASSET_PARTITION_RANGE_END_TAG] == keys_of(res)[0]
    assert set(rr.asset_selection) == {raw_files.key, measurements.key}
    assert isinstance(tick(s, inst, t + 200), dg.SkipReason)  # unchanged file never runs twice


def test_growing_file_is_taken_only_after_it_stops_changing(env):
    s, inst = env
    p = s.share / "cycler.txt"
    t = time.time()
    write(p, spectrum_text(20))
    tick(s, inst, t)
    write(p, spectrum_text(40))  # appended while still being written
    assert isinstance(tick(s, inst, t + 40), dg.SkipReason)
    assert isinstance(tick(s, inst, t + 70), dg.SkipReason)  # 30 s since the last change only
    res = tick(s, inst, t + 101)
    assert len(keys_of(res)) == 1 and keys_of(res)[0].startswith("cycler.txt@")


def test_hidden_temporary_and_lock_files_are_skipped(env):
    s, inst = env
    for name in [".hidden.txt", "x.tmp", "~$sheet.xlsx", "data.txt.part", "run.lock", "Thumbs.db", ".dir/a.txt"]:
        write(s.share / name, spectrum_text())
    write(s.share / "sub" / "real.txt", spectrum_text())
    t = time.time()
    tick(s, inst, t)
    res = tick(s, inst, t + 61)
    assert [k.split("@")[0] for k in keys_of(res)] == ["sub/real.txt"]


def test_duplicate_and_changed_content_end_to_end(env):
    s, inst = env
    write(s.share / "a.txt", spectrum_text(30, seed=1))
    write(s.share / "copy of a.txt", spectrum_text(30, seed=1))
    t = time.time()
    tick(s, inst, t)
    res = tick(s, inst, t + 61)
    assert len(keys_of(res)) == 2
    run_all(s, inst, res)
    con = connect(s.lake)
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 30
    assert con.execute("select count(*) from measurement_files").fetchone()[0] == 2
    assert con.execute("select count(distinct measurement_id) from measurement_files").fetchone()[0] == 1
    # the file is rewritten with other content: a new version, the old one superseded
    write(s.share / "a.txt", spectrum_text(45, seed=2), mtime=t + 100)
    tick(s, inst, t + 120)
    res = tick(s, inst, t + 190)
    assert [k.split("@")[0] for k in keys_of(res)] == ["a.txt"]
    run_all(s, inst, res)
    con = connect(s.lake)
    rows = con.execute("select measurement_id, superseded_by, is_current from measurements order by ingested_at").fetchall()
    assert len(rows) == 2
    # the old content is still current through 'copy of a.txt' (same bytes, unchanged path)
    assert all(r[2] for r in rows)
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 30 + 45
    # now the copy disappears and is replaced by the new content too: the old version is superseded
    write(s.share / "copy of a.txt", spectrum_text(45, seed=2), mtime=t + 300)
    tick(s, inst, t + 310)
    run_all(s, inst, tick(s, inst, t + 380))
    con = connect(s.lake)
    cur = con.execute("select measurement_id from measurements where is_current").fetchall()
    old = con.execute("select measurement_id, superseded_by from measurements where not is_current").fetchall()
    assert len(cur) == 1 and len(old) == 1 and old[0][1] == cur[0][0]
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 45
    assert con.execute("select count(*) from tof_sims_spectra_all_versions").fetchone()[0] == 75


def test_burst_is_split_into_bounded_ranged_runs(tmp_path, monkeypatch):
    s = make_settings(tmp_path, settle=0, per_run=100, runs_per_tick=2, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    for i in range(450):
        write(s.share / f"burst/f{i:04d}.txt", spectrum_text(5, seed=i))
    t = time.time()
    sizes = []
    for k in range(4):
        res = tick(s, inst, t + k)
        if isinstance(res, dg.SkipReason):
            break
        assert len(res.run_requests) <= 2
        sizes.append(len(keys_of(res)))
        all_keys = share_files.get_partition_keys(dynamic_partitions_store=inst)
        for rr in res.run_requests:
            a = all_keys.index(rr.tags[ASSET_PARTITION_RANGE_START_TAG])
            b = all_keys.index(rr.tags[ASSET_PARTITION_RANGE_END_TAG])
            assert b - a + 1 <= 100
        covered = [all_keys[all_keys.index(rr.tags[ASSET_PARTITION_RANGE_START_TAG]):
                            all_keys.index(rr.tags[ASSET_PARTITION_RANGE_END_TAG]) + 1] for rr in res.run_requests]
        assert sorted(k for c in covered for k in c) == sorted(keys_of(res))
    assert sizes == [200, 200, 50]
    assert len(share_files.get_partition_keys(dynamic_partitions_store=inst)) == 450


def test_share_outage_is_reported_and_survived(env):
    s, inst = env
    write(s.share / "a.txt", spectrum_text())
    t = time.time()
    tick(s, inst, t)
    run_all(s, inst, tick(s, inst, t + 61))
    moved = s.share.with_name("share-away")
    shutil.move(s.share, moved)
    res = tick(s, inst, t + 100)
    assert isinstance(res, dg.SkipReason) and "not reachable" in res.skip_message
    shutil.move(moved, s.share)
    write(s.share / "b.txt", spectrum_text(7))
    tick(s, inst, t + 130)
    res = tick(s, inst, t + 200)
    # only the new file: the outage did not make the sensor forget a.txt
    assert [k.split("@")[0] for k in keys_of(res)] == ["b.txt"]


def test_arbin_data_and_metadata_settle_as_one_group(env):
    s, inst = env
    write(s.share / "arbin" / "cell_7.csv", "Data_Point,Test_Time\n1,0\n")
    write(s.share / "arbin" / "cell_7_Metadata.csv", "test_id,channel\n7,3\n")
    write(s.share / "arbin" / "other.csv", "a,b\n1,2\n")
    t = time.time()
    tick(s, inst, t)
    res = tick(s, inst, t + 61)
    keys = sorted(keys_of(res))
    assert len(keys) == 2
    group = [k for k in keys if "@g" in k]
    assert len(group) == 1 and group[0].startswith("arbin/cell_7.csv@g2@")
    assert any(k.startswith("arbin/other.csv@") for k in keys)
