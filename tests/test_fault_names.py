"""Odd names and layouts on the share, through the real sensor and ingestion runs in-process.

Spaces, parentheses, umlauts in both Unicode normal forms, names that are not UTF-8, 255-byte
names, paths of ~3,000 characters and paths longer than PATH_MAX, symbolic links (inside the
share; out of it, absolute and relative; loops; dangling), zero-byte files, and files that change
or vanish after the sensor took them or while they are being copied. Expected rows are counted
from the bytes the test wrote.
"""

from __future__ import annotations

import hashlib
import os
import time
import unicodedata

import dagster as dg

from progral_dagster.warehouse import connect
from progral_dagster.warehouse import lake as lake_mod

from .fault_fixtures import (  # noqa: F401
    exactly_once,
    execute_requests,
    sensor_tick,
    share_fixture,
    share_guard_fixture,
    spectrum_rows,
)
from .helpers import make_settings, spectrum_text


def _keys(res) -> list[str]:
    return [k for r in getattr(res, "dynamic_partitions_requests", []) for k in r.partition_keys]


def test_odd_names_links_and_layouts(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    old = time.time() - 1000
    expected: dict[str, int] = {}

    def put(rel: str, seed: int, n: int = 12) -> bytes:
        data = spectrum_text(n, seed=seed).encode()
        share.write(rel, data, mtime=old)
        expected[rel] = spectrum_rows(data)
        return data

    put("Probe 1 (Kopie) [final].txt", 1)
    put(unicodedata.normalize("NFC", "Müller_Kathode_ä_ß_µm.txt"), 2)
    put(unicodedata.normalize("NFD", "Müller_Kathode_ä_ß_µm.txt"), 3)  # another file on Linux
    put("user@lab@12@34.txt", 4)  # looks like a partition key
    put("100% SOC, 25 °C ... test.txt", 5)  # '%' and '...' are escaped in partition keys
    put("n" * 251 + ".txt", 6)  # a 255-byte name
    deep = "/".join(f"{'ü' * 100}{i:02d}" for i in range(14))  # 1,455 characters, 2,850 bytes
    put(f"{deep}/spectrum.txt", 7)
    assert (
        2800 < len(os.fsencode(f"{deep}/spectrum.txt"))
        and len(os.fsencode(share.root / deep)) < 4096
    )
    # deeper than PATH_MAX: cannot be opened by path; reported, never silently dropped
    too_deep = share.write_deep(
        [f"{'x' * 200}{i:02d}" for i in range(21)], "lost.txt", spectrum_text(3).encode()
    )
    # not UTF-8 (a share mounted without iocharset=utf8): reported, the tick does not crash
    share.write(os.fsdecode(b"latin1/M\xfcller.txt"), spectrum_text(5, seed=8), mtime=old)
    # zero-byte files: rejected with a reason
    share.write("empty.txt", b"", mtime=old)
    share.write("sub/also empty.txt", b"", mtime=old)
    # links: inside the share they are followed (a second path of the same bytes)
    share.symlink("link to probe.txt", "Probe 1 (Kopie) [final].txt")
    expected["link to probe.txt"] = expected["Probe 1 (Kopie) [final].txt"]
    # out of the share (absolute, relative, to a folder): never followed
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = spectrum_text(9, seed=666)
    (outside / "secret.txt").write_text(secret)
    share.symlink("outside_abs.txt", outside / "secret.txt")
    share.symlink("outside_rel.txt", "../outside/secret.txt")
    share.symlink("outside_dir", outside)
    # loops: a link to its own folder, to the share root, to itself; a dangling link
    share.symlink("sub/loop", ".")
    share.symlink("sub/up", "..")
    share.symlink("self", "self")
    share.symlink("dangling.txt", "no such file")

    t = time.time()
    first = sensor_tick(s, inst, t)
    assert isinstance(first, dg.SkipReason)
    res = sensor_tick(s, inst, t + 61)
    assert isinstance(res, dg.SensorResult)
    assert len(_keys(res)) == len(expected) + 2  # + the two empty files
    report = first.skip_message
    assert "3 links out of the share skipped" in report
    assert "1 names not in UTF-8 skipped (rename them): latin1/M\\xfcller.txt" in report
    unreadable = (
        report.split("unreadable (folders, or paths too long): ")[1].split("; ")[0].split(", ")
    )
    assert "self" in unreadable  # a link to itself
    assert any(too_deep.startswith(u.rstrip("…")) for u in unreadable)  # deeper than PATH_MAX
    execute_requests(s, inst, res)

    got = exactly_once(s.lake, expected, rejected={"empty.txt", "sub/also empty.txt"})
    assert got["measurements"] == len(expected) - 1  # the link adds a path, not a measurement
    con = connect(s.lake)
    reasons = dict(con.execute("select source_path, reason from rejected_files").fetchall())
    assert reasons == {
        "empty.txt": "empty file (0 bytes)",
        "sub/also empty.txt": "empty file (0 bytes)",
    }
    # nothing from outside the share reached the lake
    sha = hashlib.sha256(secret.encode()).hexdigest()
    assert (
        con.execute("select count(*) from measurements where sha256 = ?", [sha]).fetchone()[0] == 0
    )
    assert not (s.lake / "raw" / sha[:2] / sha).exists()
    assert not any(p.name == "secret.txt" for p in (s.lake / "raw").rglob("*"))
    # the loops ended: every directory listed once, and the next tick changes nothing
    assert isinstance(sensor_tick(s, inst, t + 200), dg.SkipReason)


def test_files_changed_or_deleted_after_being_taken(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    t = time.time()
    share.write("changes.txt", spectrum_text(10, seed=1), mtime=t - 1000)
    share.write("vanishes.txt", spectrum_text(11, seed=2), mtime=t - 1000)
    share.write("stays.txt", spectrum_text(12, seed=3), mtime=t - 1000)
    sensor_tick(s, inst, t)
    res = sensor_tick(s, inst, t + 61)
    assert len(_keys(res)) == 3
    # between the tick and the run: one file is rewritten, one deleted
    v2 = spectrum_text(25, seed=4)
    share.write("changes.txt", v2, mtime=t + 62)
    share.remove("vanishes.txt")
    execute_requests(s, inst, res)
    con = connect(s.lake)
    assert con.execute("select source_path from measurement_files").fetchall() == [("stays.txt",)]
    # the changed file's new version is taken once it settles; the deleted one is forgotten
    assert isinstance(sensor_tick(s, inst, t + 70), dg.SkipReason)
    res = sensor_tick(s, inst, t + 131)
    assert [k.split("@")[0] for k in _keys(res)] == ["changes.txt"]
    execute_requests(s, inst, res)
    exactly_once(s.lake, {"stays.txt": 12, "changes.txt": spectrum_rows(v2.encode())})
    assert isinstance(sensor_tick(s, inst, t + 300), dg.SkipReason)


def test_file_written_to_while_being_copied_is_not_taken_half_written(tmp_path, share, monkeypatch):
    s = make_settings(tmp_path, share=share.root, settle=60, monkeypatch=monkeypatch)
    inst = dg.DagsterInstance.ephemeral()
    t = time.time()
    v1 = spectrum_text(40, seed=1)
    share.write("growing.txt", v1, mtime=t - 1000)
    sensor_tick(s, inst, t)
    res = sensor_tick(s, inst, t + 61)
    extra = "".join(spectrum_text(60, seed=2).splitlines(keepends=True)[43:])  # 20 more data rows
    real_open = open

    def open_and_keep_writing(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if mode == "rb" and os.fspath(file) == str(share.path("growing.txt")):
            share.append("growing.txt", extra)  # the instrument appends while we copy
        return fh

    with monkeypatch.context() as mp:
        mp.setattr(lake_mod, "open", open_and_keep_writing, raising=False)
        execute_requests(s, inst, res)
    con = connect(s.lake)
    assert con.execute("select count(*) from measurements").fetchone()[0] == 0
    assert not any(p.is_file() for p in (s.lake / "raw").rglob("*") if "_incoming" not in p.parts)
    sensor_tick(s, inst, t + 100)
    res = sensor_tick(s, inst, t + 170)
    assert [k.split("@")[0] for k in _keys(res)] == ["growing.txt"]
    execute_requests(s, inst, res)
    exactly_once(s.lake, {"growing.txt": spectrum_rows((v1 + extra).encode())})
