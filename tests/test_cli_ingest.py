"""`progral ingest`, `sql`, `tables`, `status` on real exports, copies and broken files."""

from __future__ import annotations

import json
import shutil

import pytest

from progral_dagster.cli import main
from progral_dagster.warehouse import connect

from .helpers import make_settings, spectrum_text, write

REAL = ["sims-iontof/P_Ru_Bi1_1.txt", "sims-iontof/N_HEA19_Bi1_1.txt"]


def _data_rows(path) -> int:
    lines = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
    return sum(1 for ln in lines if ln[:1].isdigit())


def _sql(capsys, home, q):
    capsys.readouterr()
    assert main(["sql", q, "--home", str(home), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def folder(tmp_path, samples):
    d = tmp_path / "exports"
    d.mkdir()
    for rel in REAL:
        shutil.copy(samples / rel, d)
    shutil.copy(samples / REAL[0], d / "same bytes other name.txt")
    data = (samples / REAL[0]).read_bytes()
    write(d / "truncated.txt", data[: len(data) // 3 + 7])
    write(d / "garbage.txt", bytes(range(256)) * 4)
    return d


def test_ingest_sql_idempotent_copies_and_rejections(tmp_path, folder, samples, capsys, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    home = s.home
    expected = sum(_data_rows(samples / rel) for rel in REAL)
    assert main(["ingest", str(folder), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "ingested 2" in out and "already present 1" in out and "rejected 2" in out
    assert _sql(capsys, home, "select count(*) as n from tof_sims_spectra") == [{"n": expected}]
    # the same ingest again adds nothing
    assert main(["ingest", str(folder), "--home", str(home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["summary"]["counts"].get("ingested", 0) == 0
    assert _sql(capsys, home, "select count(*) as n from tof_sims_spectra") == [{"n": expected}]
    # the copy under another name: no spectrum rows, but a path record
    files = _sql(capsys, home, "select source_path, measurement_id from measurement_files order by 1")
    by_path = {f["source_path"].rsplit("/", 1)[-1]: f["measurement_id"] for f in files}
    assert by_path["same bytes other name.txt"] == by_path["P_Ru_Bi1_1.txt"]
    assert len(files) == 3
    # rejected files are listed with a reason by `progral status`
    capsys.readouterr()
    assert main(["status", "--home", str(home), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    reasons = {r["source_path"].rsplit("/", 1)[-1]: r["reason"] for r in st["rejected"]}
    assert set(reasons) == {"truncated.txt", "garbage.txt"}
    assert "no reader recognises" in reasons["garbage.txt"]
    assert "malformed data row" in reasons["truncated.txt"]
    assert main(["status", "--home", str(home)]) == 0
    assert "truncated.txt" in capsys.readouterr().out


def test_tables_lists_every_view_typed_even_when_empty(tmp_path, capsys, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    assert main(["tables", "--home", str(s.home), "--json"]) == 0
    views = {v["view"]: v for v in json.loads(capsys.readouterr().out)}
    for name in ["measurements", "measurement_files", "rejected_files", "tof_sims_spectra", "samples",
                 "measurement_samples", "cycling", "xps_spectra", "impedance", "microstructures"]:
        assert name in views and views[name]["rows"] == 0
    assert "mz DOUBLE" in views["tof_sims_spectra"]["columns"]


def test_open_reader_connection_blocks_nothing_and_sees_new_data(tmp_path, capsys, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    write(s.share / "a.txt", spectrum_text(10, seed=1))
    assert main(["ingest", str(s.share / "a.txt"), "--home", str(s.home)]) == 0
    con = connect(s.home)  # a notebook holding its connection open
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 10
    write(s.share / "b.txt", spectrum_text(15, seed=2))
    assert main(["ingest", str(s.share / "b.txt"), "--home", str(s.home)]) == 0
    assert con.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 25
    assert s.warehouse_file.exists()  # the file for outside tools was rebuilt, not locked
    import duckdb

    ro = duckdb.connect(str(s.warehouse_file), read_only=True)
    assert ro.execute("select count(*) from tof_sims_spectra").fetchone()[0] == 25
    ro.close()


def test_sql_csv_output_neutralises_formulas(tmp_path, capsys, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    assert main(["sql", "select '=1+1' as a, 2.5 as b", "--home", str(s.home), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "'=1+1,2.5"


def test_sql_error_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    with pytest.raises(SystemExit) as e:
        main(["sql", "select * from no_such_view", "--home", str(s.home)])
    assert "no_such_view" in str(e.value)


def test_names_not_in_utf8_are_reported_not_a_traceback(tmp_path, samples, capsys, monkeypatch):
    """A Windows share mounted without iocharset=utf8 shows names like b'spec_\\xe9.txt'."""
    import os

    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    d = tmp_path / "exports"
    d.mkdir()
    bad = os.fsdecode(os.fsencode(str(d)) + b"/spec_\xe9.txt")
    shutil.copy(samples / REAL[0], bad)
    shutil.copy(samples / REAL[1], d / "ok.txt")
    # the file named on its own: skipped with a reason, exit 0 as for a rejected file
    assert main(["ingest", bad, "--home", str(s.home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["summary"]["counts"] == {"skipped": 1}
    (only,) = res["files"]
    assert only["source_paths"] == [f"{d}/spec_\\xe9.txt"] and "not valid UTF-8" in only["reason"]
    # inside a folder: the rest is ingested, the name is listed
    assert main(["ingest", str(d), "--home", str(s.home)]) == 0
    out = capsys.readouterr().out
    assert "ingested 1" in out and "skipped (not read) 1" in out and "spec_\\xe9.txt: the file name" in out
    assert _sql(capsys, s.home, "select count(*) as n from measurements") == [{"n": 1}]
