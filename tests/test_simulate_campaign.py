"""`progral simulate campaign`: every simulated file is ingested by the ordinary readers with no
rejection, the sheet links every file to its sample, and the same seed is byte-identical."""

from __future__ import annotations

import hashlib

import pandas as pd

from progral_dagster.cli import main
from progral_dagster.warehouse import connect

from .helpers import make_settings


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_campaign_ingests_without_rejections_and_is_deterministic(tmp_path, monkeypatch, capsys):
    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    truth = tmp_path / "truth"
    assert main(["simulate", "campaign", "--out", str(s.share), "--truth", str(truth), "--seed", "3"]) == 0
    again = tmp_path / "again"
    assert main(["simulate", "campaign", "--out", str(again), "--seed", "3"]) == 0
    assert _digest(s.share) == _digest(again)
    other = tmp_path / "other"
    assert main(["simulate", "campaign", "--out", str(other), "--seed", "4"]) == 0
    assert _digest(other) != _digest(again)
    capsys.readouterr()
    assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
    con = connect(s.home)
    assert con.execute("select count(*) from rejected_files").fetchone()[0] == 0
    assert con.execute("select count(*) from sample_sheet_problems").fetchone()[0] == 0
    files = {p.relative_to(s.share).as_posix() for p in s.share.rglob("*") if p.is_file()} - {"samples.csv"}
    seen = {r[0] for r in con.execute("select source_path from measurement_files").fetchall()}
    assert files == seen
    # every file named in the sheet is linked to its sample id
    sheet = pd.read_csv(s.share / "samples.csv")
    linked = con.execute("select count(distinct measurement_id) from measurement_samples").fetchone()[0]
    assert linked == con.execute("select count(*) from measurements").fetchone()[0]
    # truth sample ids are the sheet's
    spectra = pd.read_csv(truth / "spectra.csv")
    assert set(spectra["sample_id"]) <= set(sheet["sample_id"])
    cells = pd.read_csv(truth / "cells.csv")
    assert set(cells["cell_id"]) <= set(sheet["cell_id"].dropna())
