"""Sample sheets and sidecars: linking by name and glob, versions, validation, no re-parse."""

from __future__ import annotations

import json
import os
import time

import pytest

from progral_dagster.readers.sample_sheet import parse_composition, read_sheet
from progral_dagster.warehouse import connect

from .helpers import ingest_files, make_settings, spectrum_text, write

_ingest = ingest_files


def _links(s):
    con = connect(s.lake)
    return sorted(con.execute(
        "select f.source_path, ms.sample_id, ms.label, ms.polarity from measurement_samples ms "
        "join measurement_files f using (measurement_id) order by 1, 2").fetchall())


def test_sheet_links_names_globs_and_sidecars(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    d = s.share / "campaign"
    files = [write(d / "Li2CO3_1_pos.txt", spectrum_text(5, 1)), write(d / "Li2CO3_1_neg.txt", spectrum_text(5, 2)),
             write(d / "sub" / "LiOH_a.txt", spectrum_text(5, 3)), write(d / "sub" / "LiOH_b.txt", spectrum_text(5, 4)),
             write(d / "loose.txt", spectrum_text(5, 5))]
    sheet = write(d / "samples.csv", "file,sample_id,label,polarity,spot,operator\n"
                  "Li2CO3_1_pos.txt,S1,Li2CO3,positive,1,anna\n"
                  "Li2CO3_1_neg.txt,S1,Li2CO3,neg,1,anna\n"
                  "sub/LiOH_*.txt,S2,LiOH,positive,,ben\n")
    side = write(d / "loose.txt.meta.json", json.dumps({"sample_id": "S3", "label": "LiH", "polarity": "negative"}))
    outs = _ingest(s, [*files, sheet, side])
    assert sorted(o.status for o in outs) == ["ingested"] * 5 + ["metadata"] * 2
    assert _links(s) == [
        ("campaign/Li2CO3_1_neg.txt", "S1", "Li2CO3", "negative"),
        ("campaign/Li2CO3_1_pos.txt", "S1", "Li2CO3", "positive"),
        ("campaign/loose.txt", "S3", "LiH", "negative"),
        ("campaign/sub/LiOH_a.txt", "S2", "LiOH", "positive"),
        ("campaign/sub/LiOH_b.txt", "S2", "LiOH", "positive"),
    ]
    con = connect(s.lake)
    extra = con.execute("select extra from samples where sample_id = 'S1' limit 1").fetchone()[0]
    assert json.loads(extra) == {"operator": "anna"}


def test_corrected_sheet_relinks_without_reparsing(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    f = write(s.share / "a.txt", spectrum_text(5, 1))
    sheet = write(s.share / "samples.csv", "file,sample_id,label\na.txt,WRONG,LiOH\n")
    _ingest(s, [f, sheet])
    assert _links(s) == [("a.txt", "WRONG", "LiOH", None)]
    n_batches = len(list((s.lake / "tables" / "tof_sims_spectra").rglob("*.parquet")))
    write(sheet, "file,sample_id,label\na.txt,S7,LiOH\n", mtime=time.time() + 5)
    outs = _ingest(s, [sheet])
    assert [o.status for o in outs] == ["metadata"]
    assert _links(s) == [("a.txt", "S7", "LiOH", None)]
    # the measurement was not parsed again
    assert len(list((s.lake / "tables" / "tof_sims_spectra").rglob("*.parquet"))) == n_batches
    con = connect(s.lake)
    # the old sheet version stays for provenance
    assert con.execute("select count(distinct sheet_sha256) from _cat_sheet_rows").fetchone()[0] == 2


def test_validation_messages_and_no_paths_or_formulas(tmp_path, monkeypatch):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    write(s.share / "x" / "a.txt", spectrum_text(5, 1))
    sheet = write(s.share / "x" / "samples.csv",
                  "file,sample_id,composition,polarity,dew_point_c,label\n"
                  "../../etc/passwd,EVIL,,,,\n"
                  "/etc/passwd,EVIL2,,,,\n"
                  "a.txt,S1,Li2CO3:0.5,LiOH:0.4,sideways,-40,=HYPERLINK(\"http://x\")\n")
    _ingest(s, [s.share / "x" / "a.txt", sheet])
    con = connect(s.lake)
    probs = dict(con.execute("select row, problems from sample_sheet_problems").fetchall())
    assert "no absolute paths" in probs[1] and "no absolute paths" in probs[2]
    # the third row: columns shift because of the unquoted comma -> reported, not guessed
    assert probs[3]
    links = con.execute("select sample_id from measurement_samples").fetchall()
    assert ("EVIL",) not in links and ("EVIL2",) not in links


def test_sheet_reader_units(tmp_path):
    p = write(tmp_path / "samples.csv", 'file;sample_id;dew_point_c;composition;label\n'
              'a.txt;S1;-40,5;"Li2CO3:0.5,LiOH:0.5";=1+1\n')
    rows = read_sheet(p)
    assert rows[0].values["dew_point_c"] == -40.5
    assert rows[0].values["label"] == "=1+1"  # kept verbatim, never evaluated
    assert rows[0].problems == []
    assert parse_composition("Li2CO3:0.5,LiOH:0.5") == {"Li2CO3": 0.5, "LiOH": 0.5}
    with pytest.raises(ValueError, match="sum"):
        parse_composition("Li2CO3:0.5,LiOH:0.2")


def test_xlsx_formula_cells_stay_text(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["file", "sample_id", "label"])
    ws.append(["a.txt", "S1", "=SUM(1,2)"])
    p = tmp_path / "samples.xlsx"
    wb.save(p)
    rows = read_sheet(p)
    assert rows[0].values["label"] == "=SUM(1,2)" and rows[0].values["sample_id"] == "S1"
    os.remove(p)
