"""Arbin CSV / xlsx / res readers against the real files and a CSV written here with known
truth for the counter conventions."""

from __future__ import annotations

import csv
import re
import zipfile
from datetime import UTC, datetime

import numpy as np
import pytest

from progral_dagster.readers import arbin
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

DIR = SAMPLES / "cycler-other"
CSV = DIR / "FastCharge_000025_CH8.csv"
META = DIR / "FastCharge_000025_CH8_Metadata.csv"
XLSX = DIR / "bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx"
RES = DIR / "20160805_test001_45_cc_01.res"


@pytest.fixture(scope="module")
def xlsx():
    return arbin.read(XLSX)


def col(m, name):
    return m.tables["cycling"].column(name).to_numpy(zero_copy_only=False)


def test_csv_against_plain_csv_module():
    with open(CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    m = arbin.read(CSV)
    assert m.format == "arbin-csv" and m.tables["cycling"].num_rows == len(rows)
    assert col(m, "record").tolist() == [int(r["Data_Point"]) for r in rows]
    assert col(m, "time_s").tolist() == [float(r["Test_Time"]) for r in rows]
    assert col(m, "voltage_v").tolist() == [float(r["Voltage"]) for r in rows]
    assert col(m, "temperature_c").tolist() == [float(r["Temperature"]) for r in rows]
    # the TRI files count cycles from 0; the lake from 1
    assert col(m, "cycle").tolist() == [int(float(r["Cycle_Index"])) + 1 for r in rows]
    start = datetime.fromtimestamp(float(rows[0]["DateTime"]), UTC).isoformat()
    assert m.metadata["start_time"] == start
    assert "assumed" in m.metadata["original_units"]["current"]  # no unit in the titles


def test_metadata_csv_alone_is_rejected_with_its_reason_and_read_with_its_data():
    with pytest.raises(ReaderError, match="metadata"):
        arbin.read(META)
    assert arbin.sniff(META, META.read_bytes()) == "arbin-csv"
    with open(META, newline="") as fh:
        row = next(csv.DictReader(fh))
    m = arbin.read([CSV, META])
    assert m.metadata["test_metadata"]["test_id"] == row["test_id"] == "153"
    assert m.metadata["test_metadata"]["schedule_file_name"] == row["schedule_file_name"]
    assert arbin.read([META, CSV]).tables["cycling"].equals(m.tables["cycling"])
    assert m.paths == [str(CSV), str(META)]


def _sheet_xml_rows(path, sheet_index=2):
    """Row count of a worksheet from its XML, without a spreadsheet library."""
    with zipfile.ZipFile(path) as zf:
        xml = zf.read(f"xl/worksheets/sheet{sheet_index}.xml").decode()
    return len(re.findall(r"<row\b", xml))


def test_xlsx_labelled_lanhe_is_an_arbin_export(xlsx):
    m = xlsx
    assert m.format == "arbin-xlsx"
    assert m.metadata["Software Version"].startswith("PV7.0")  # Arbin MITS Pro
    assert m.metadata["Channel"] == 11 and m.metadata["start_time"] == "2020-10-19T11:33:31"
    assert m.tables["cycling"].num_rows == _sheet_xml_rows(XLSX) - 1  # minus the title row


def test_xlsx_capacity_equals_integrated_current_and_sign(xlsx):
    m = xlsx
    t, i, v = col(m, "time_s"), col(m, "current_a"), col(m, "voltage_v")
    qc, qd, st = col(m, "charge_capacity_ah"), col(m, "discharge_capacity_ah"), col(m, "step_type")
    step = col(m, "step")
    seg = np.cumsum(np.r_[True, step[1:] != step[:-1]])
    kinds = set()
    for s in np.unique(seg):
        rows = np.flatnonzero(seg == s)
        kind = st[rows[0]]
        if kind not in ("charge", "discharge") or rows.size < 50:
            continue
        kinds.add(kind)
        q = abs(np.trapezoid(i[rows], t[rows])) / 3600
        gained = (qc if kind == "charge" else qd)[rows[-1]] - (qc if kind == "charge" else qd)[
            rows[0]
        ]
        assert gained == pytest.approx(q, rel=0.01)
        sign = 1 if kind == "charge" else -1
        assert np.all(sign * i[rows] > 0)
        assert (
            sign * (v[rows[-1]] - v[rows[0]]) > 0
        )  # graphite half cell: charge raises the voltage
    assert kinds == {"charge", "discharge"}


def test_counter_conventions_from_a_written_csv(tmp_path):
    """Capacities running over the whole test (mAh in the title) come out per cycle in Ah."""
    p = tmp_path / "mits.csv"
    lines = [
        "Data_Point,Test_Time(s),Step_Index,Cycle_Index,Current(mA),Voltage(V),Charge_Capacity(mAh),Discharge_Capacity(mAh)"
    ]
    qc = qd = 0.0
    truth_qc, truth_qd, cyc_of = [], [], []
    k = 0
    for cycle in (1, 2, 3):
        cqc = cqd = 0.0
        for step, cur in ((1, 100.0), (2, -100.0)):
            for _ in range(5):
                k += 1
                dq = abs(cur) * 10 / 3600  # mAh in 10 s
                if cur > 0:
                    qc += dq
                    cqc += dq
                else:
                    qd += dq
                    cqd += dq
                lines.append(
                    f"{k},{10 * k},{step},{cycle},{cur},{3.5 + 0.01 * (cur > 0)},{qc},{qd}"
                )
                truth_qc.append(cqc / 1000)
                truth_qd.append(cqd / 1000)
                cyc_of.append(cycle)
    p.write_text("\n".join(lines) + "\n")
    m = arbin.read(p)
    np.testing.assert_allclose(col(m, "charge_capacity_ah"), truth_qc, rtol=1e-12)
    np.testing.assert_allclose(col(m, "discharge_capacity_ah"), truth_qd, rtol=1e-12)
    np.testing.assert_allclose(
        col(m, "current_a"), [0.1 if s == "charge" else -0.1 for s in col(m, "step_type")]
    )
    assert col(m, "cycle").tolist() == cyc_of
    assert m.metadata["original_units"]["current"] == "mA"


def test_res_needs_access_parser_or_says_so():
    try:
        import access_parser  # noqa: F401
    except ImportError:
        with pytest.raises(ReaderError, match="access-parser"):
            arbin.read(RES)
        return
    from access_parser import AccessParser

    m = arbin.read(RES)
    assert m.format == "arbin-res" and m.tables["cycling"].num_rows > 1000
    assert np.all(np.diff(col(m, "time_s")) >= 0)
    # Arbin's own per-cycle statistics table names the last data point of each cycle
    stats = AccessParser(str(RES)).parse_table("Channel_Statistic_Table")
    rec, cyc = col(m, "record"), col(m, "cycle")
    ends = rec[np.flatnonzero(cyc[1:] != cyc[:-1])]
    assert sorted(stats["Data_Point"])[: len(ends)] == ends.tolist()


def test_damaged_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(CSV.read_bytes().replace(b"3.3011355", b"3.30x1355", 1))
    with pytest.raises(ReaderError, match="line 3"):
        arbin.read(p)
    q = tmp_path / "x.xlsx"
    q.write_bytes(XLSX.read_bytes()[:100000])
    with pytest.raises(ReaderError):
        arbin.read(q)


def test_sniff():
    assert arbin.sniff(CSV, CSV.read_bytes()[:4096]) == "arbin-csv"
    assert arbin.sniff(XLSX, XLSX.read_bytes()[:65536]) == "arbin-xlsx"
    assert arbin.sniff(RES, RES.read_bytes()[:4096]) == "arbin-res"
    pec = DIR / "Test25195.csv"
    assert arbin.sniff(pec, pec.read_bytes()[:4096]) is None


def test_metadata_is_strict_json(xlsx):
    import json

    for m in (xlsx, arbin.read(CSV), arbin.read([CSV, META])):
        json.dumps(m.metadata, allow_nan=False)
