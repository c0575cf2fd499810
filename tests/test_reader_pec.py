"""PEC CSV reader against the real export (values by plain CSV parsing) and a written file."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from progral_dagster.readers import pec
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

PEC = SAMPLES / "cycler-other" / "Test25195.csv"


def col(m, name):
    return m.tables["cycling"].column(name).to_numpy(zero_copy_only=False)


def plain(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("Test,Cell,"))
    head = {ln.split(",", 1)[0].rstrip(":"): ln.split(",", 1)[1] for ln in lines[:k] if "," in ln}
    rows = list(csv.DictReader(lines[k:]))
    return head, rows


def hms(s):
    h, m, sec = s.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def test_values_against_plain_csv():
    head, rows = plain(PEC)
    m = pec.read(PEC)
    assert m.format == "pec-csv" and m.tables["cycling"].num_rows == len(rows) == 19
    assert col(m, "time_s").tolist() == [hms(r["Total Time (Hours in hh:mm:ss.xxx)"]) for r in rows]
    assert col(m, "voltage_v").tolist() == [float(r["Voltage (V)"]) for r in rows]
    assert col(m, "current_a").tolist() == [float(r["Current (A)"]) for r in rows]
    assert col(m, "cycle").tolist() == [int(r["Cycle"]) + 1 for r in rows]  # PEC counts from 0
    temps = [float(r["Temp (°C)"]) if r["Temp (°C)"] else np.nan for r in rows]
    np.testing.assert_array_equal(col(m, "temperature_c"), temps)
    assert set(col(m, "step_type")) == {"rest"}  # "Idle"
    assert m.metadata["test"] == head["Test"] == "25195"
    assert m.metadata["chemistry"] == head["Chemistry"]
    assert m.metadata["start_time"] == "2026-01-06T17:46:49"
    assert m.metadata["original_units"]["charge_capacity"] == "mAh"


def _write(path, currents, names, cap_unit="mAh"):
    lines = ["Test:,1", "Start Time:,01/02/2024 10:00:00"]
    lines.append(
        "Test,Cell,Rack,Shelf,Position,Cell ID,Step,Instruction Name,Cycle,Total Time (Hours in hh:mm:ss.xxx),"
        f"Voltage (V),Current (A),Charge Capacity ({cap_unit}),Discharge Capacity ({cap_unit}),"
    )
    qc = qd = 0.0
    for k, (i, name) in enumerate(zip(currents, names, strict=True)):
        step = {"Charge": 1, "Rest": 2, "Discharge": 3}[name]
        if name == "Charge":
            qc += abs(i) * 60 / 3.6  # mAh per minute at i A
        if name == "Discharge":
            qd += abs(i) * 60 / 3.6
        lines.append(f"1,1,R,1,1,c,{step},{name},0,00:{k:02d}:00.000,3.7,{i},{qc},{qd},")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_instruction_names_and_sign_check(tmp_path):
    names = ["Charge"] * 3 + ["Rest"] * 2 + ["Discharge"] * 3
    p = tmp_path / "ok.csv"
    _write(p, [1.0] * 3 + [0.0] * 2 + [-1.0] * 3, names)
    m = pec.read(p)
    assert col(m, "step_type").tolist() == ["charge"] * 3 + ["rest"] * 2 + ["discharge"] * 3
    assert m.metadata["current_sign_flipped"] is False
    assert col(m, "charge_capacity_ah")[2] == pytest.approx(3 * 60 / 3600)  # 1 A for 3 min
    # a file whose discharge currents are positive is put into the lake's convention
    q = tmp_path / "flipped.csv"
    _write(q, [-1.0] * 3 + [0.0] * 2 + [1.0] * 3, names)
    f = pec.read(q)
    assert f.metadata["current_sign_flipped"] is True
    assert np.all(col(f, "current_a")[:3] > 0) and np.all(col(f, "current_a")[-3:] < 0)


def test_damaged(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(PEC.read_bytes()[:1500])
    with pytest.raises(ReaderError):
        pec.read(p)
    p.write_bytes(PEC.read_bytes().replace(b"3.568888", b"3.5x8888", 1))
    with pytest.raises(ReaderError, match="line 48"):
        pec.read(p)


def test_sniff():
    assert pec.sniff(PEC, PEC.read_bytes()[:65536]) == "pec-csv"
    arb = SAMPLES / "cycler-other" / "FastCharge_000025_CH8.csv"
    assert pec.sniff(arb, arb.read_bytes()[:65536]) is None


def test_metadata_is_strict_json():
    import json

    json.dumps(pec.read(PEC).metadata, allow_nan=False)
