"""`progral ingest ../shared/samples`: every real file is ingested or rejected with a reason,
twins (.mpr/.mpt of one run) name each other, the Arbin data + metadata pair is one measurement."""

from __future__ import annotations

import json

import pytest

from progral_dagster.cli import main
from progral_dagster.warehouse import connect

from .helpers import make_settings


@pytest.fixture(scope="module")
def home(tmp_path_factory, samples):
    import os

    saved = dict(os.environ)
    s = make_settings(tmp_path_factory.mktemp("samples-home"))
    assert main(["ingest", str(samples), "--home", str(s.home), "--json"]) == 0
    yield s
    os.environ.clear()
    os.environ.update(saved)


def test_every_sample_file_is_ingested_or_rejected(home, samples):
    con = connect(home.home)
    seen = {r[0] for r in con.execute("select source_path from measurement_files").fetchall()}
    rejected = dict(con.execute("select source_path, reason from rejected_files").fetchall())
    files = {str(p) for p in samples.rglob("*") if p.is_file()}
    assert files == seen | set(rejected), files ^ (seen | set(rejected))
    # the only file no reader takes is the provenance note
    assert {p.rsplit("/", 1)[-1] for p in rejected} == {"SOURCES.md"}
    assert all(r for r in rejected.values())


def test_twins_and_groups(home):
    con = connect(home.home)
    rows = con.execute("""select f.source_path, m.measurement_id, m.twin_of, m.format from measurements m
                          join measurement_files f using (measurement_id)""").fetchall()
    by_name = {p.rsplit("/", 1)[-1]: (mid, twin, fmt) for p, mid, twin, fmt in rows}
    pairs = [n[:-4] for n in by_name if n.endswith(".mpr") and n[:-4] + ".mpt" in by_name]
    assert len(pairs) == 7
    for stem in pairs:
        mpr, mpt = by_name[stem + ".mpr"], by_name[stem + ".mpt"]
        assert mpr[1] == mpt[0] and mpt[1] == mpr[0], stem
    # Arbin CSV data and its _Metadata.csv: one measurement, both paths recorded
    a = by_name["FastCharge_000025_CH8.csv"]
    assert by_name["FastCharge_000025_CH8_Metadata.csv"][0] == a[0] and a[2] == "arbin-csv"


def test_status_and_tables_list_everything(home, capsys):
    capsys.readouterr()
    assert main(["tables", "--home", str(home.home), "--json"]) == 0
    views = {v["view"]: v["rows"] for v in json.loads(capsys.readouterr().out)}
    for name in ("tof_sims_spectra", "tof_sims_depth_profiles", "tof_sims_peak_lists", "xps_spectra",
                 "xps_casa_components", "cycling", "impedance", "microstructures"):
        assert views[name] > 0, name
    assert main(["status", "--home", str(home.home), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    techniques = {r["technique"] for r in st["by_technique"]}
    assert techniques == {"tof-sims", "xps", "aes", "cycling", "impedance", "microstructure"}
