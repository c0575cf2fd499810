"""Maccor text and impedance exports against the real files (values read back by plain
splitting) and a small export written here with known charge/discharge truth."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from progral_dagster.readers import maccor
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

DIR = SAMPLES / "cycler-other"
RAW = DIR / "maccor_test_file_4267-66-6519.041"
TWO = DIR / "maccor_two.txt"
EDA = DIR / "maccor_test_file_4267-66-6519.EDA0001.041"


def col(m, name):
    (t,) = m.tables.values()
    return t.column(name).to_numpy(zero_copy_only=False)


def rows_after(path, title_prefix, sep="\t"):
    lines = path.read_bytes().decode("latin-1").splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith(title_prefix))
    titles = lines[k].split(sep)
    return titles, [ln.split(sep) for ln in lines[k + 1 :] if ln.strip()]


def daytime(s):
    d, hms = s.strip().split("d ")
    h, m, sec = hms.split(":")
    return int(d) * 86400 + int(h) * 3600 + int(m) * 60 + float(sec)


def test_raw_export_against_plain_split():
    titles, rows = rows_after(RAW, "Rec#")
    m = maccor.read(RAW)
    assert m.format == "maccor-text" and m.technique == "cycling"
    assert m.tables["cycling"].num_rows == len(rows) == 74
    ix = {t: i for i, t in enumerate(titles)}
    assert col(m, "record").tolist() == [int(r[ix["Rec#"]]) for r in rows]
    assert col(m, "cycle").tolist() == [
        int(r[ix["Cyc#"]]) + 1 for r in rows
    ]  # Maccor counts from 0
    assert col(m, "time_s").tolist() == [daytime(r[ix["TestTime"]]) for r in rows]
    assert col(m, "voltage_v").tolist() == [float(r[ix["Volts"]]) for r in rows]
    states = [r[ix["State"]] for r in rows]
    expected = {"R": "rest", "FRA": "impedance"}
    assert col(m, "step_type").tolist() == [expected.get(s, "other") for s in states]
    assert m.metadata["procedure"] == "EIS 1.000FRA default"
    assert (
        m.metadata["start_time"]
        == datetime.strptime(rows[0][ix["DPt Time"]], "%m/%d/%Y %H:%M:%S").isoformat()
    )


def test_mims_export_decimal_comma_time_unit_and_partial_last_line():
    titles, rows = rows_after(TWO, "Rec\t")
    complete = [r for r in rows if len(r) == len(titles)]
    assert len(rows) - len(complete) == 1  # the sample ends inside a record
    m = maccor.read(TWO)
    assert m.metadata["dropped_incomplete_last_row"] is True
    assert m.tables["cycling"].num_rows == len(complete)
    ix = {t: i for i, t in enumerate(titles)}
    np.testing.assert_array_equal(
        col(m, "voltage_v"), [float(r[ix["Voltage [V]"]].replace(",", ".")) for r in complete]
    )
    # TestTime is in minutes in this export: checked against the wall-clock column
    clock = [datetime.strptime(r[ix["DPT Time"]], "%m/%d/%Y %H:%M:%S") for r in complete]
    wall = np.array([(c - clock[0]).total_seconds() for c in clock])
    t = col(m, "time_s")
    np.testing.assert_allclose(t - t[0], wall, atol=1.0)
    assert m.metadata["time_unit"] == "min"
    assert m.instrument == "Maccor #4" and m.metadata["Name"] == "KIT-SIMBA-013-2.081"
    assert col(m, "cycle").tolist() == [int(r[ix["Cycle C"]]) for r in complete]


def test_impedance_export():
    titles, rows = rows_after(EDA, "Freq(Hz)")
    m = maccor.read(EDA)
    assert m.format == "maccor-impedance" and m.technique == "impedance"
    ix = {t: i for i, t in enumerate(titles)}
    assert m.tables["impedance"].num_rows == len(rows)
    f = col(m, "frequency_hz")
    assert f.tolist() == [float(r[ix["Freq(Hz)"]]) for r in rows]
    re_, im = col(m, "z_real_ohm"), col(m, "z_imag_ohm")
    # The file's own phase and magnitude fix the sign: Z'' is Im(Z) as measured
    for r, a, b in zip(rows, re_, im, strict=True):
        assert math.degrees(math.atan2(b, a)) == pytest.approx(
            float(r[ix["Phase_Angle"]]), abs=1e-4
        )
        assert math.hypot(a, b) == pytest.approx(float(r[ix["Z-Mag"]]), rel=1e-5)
    assert m.metadata["start_time"] == "2016-11-02T15:58:00"


def _write_export(path, states, amps, amp_hr, watt_hr, cycles, steps):
    lines = [
        "Today's Date 01/01/2024  Date of Test:\t01/01/2024\t Filename:\tC:\\x.001 Procedure: t.000\tComment/Barcode: ",
        "Rec#\tCyc#\tStep\tTestTime\tStepTime\tAmp-hr\tWatt-hr\tAmps\tVolts\tState\tES\tDPt Time",
    ]
    for k in range(len(states)):
        lines.append(
            f"{k + 1}\t{cycles[k]}\t{steps[k]}\t  0d 00:{k // 60:02d}:{k % 60:02d}.0000\t  0d 00:00:00.0000\t"
            f"{amp_hr[k]:.10f}\t{watt_hr[k]:.10f}\t{amps[k]:.10f}\t{3.5 + 0.001 * k:.8f}\t{states[k]}\t0\t"
            f"01/01/2024 00:{k // 60:02d}:{k % 60:02d}"
        )
    path.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")


def test_unsigned_current_and_capacity_booking(tmp_path):
    """A 0.5 A charge, rest, 0.5 A discharge per cycle, two cycles; Maccor's Amp-hr restarts at
    each state change. Truth: charge = discharge = 0.5 A x 4 s per cycle."""
    seq = ["R", "C", "C", "C", "C", "R", "D", "D", "D", "D"]
    states = seq * 2
    cycles = [0] * 10 + [1] * 10
    steps = [1, 2, 2, 2, 2, 3, 4, 4, 4, 4] * 2
    amps = [0.0 if s == "R" else 0.5 for s in states]  # unsigned, as Maccor writes
    ah, k = [], 0.0
    for i, s in enumerate(states):
        k = 0.0 if i and s != states[i - 1] else k
        k += 0.5 / 3600 if s in "CD" else 0.0
        ah.append(k)
    wh = [a * 3.6 for a in ah]
    p = tmp_path / "synthetic.001"
    _write_export(p, states, amps, ah, wh, cycles, steps)
    m = maccor.read(p)
    i = col(m, "current_a")
    assert np.all(i[np.array(states) == "C"] == 0.5) and np.all(i[np.array(states) == "D"] == -0.5)
    qc, qd = col(m, "charge_capacity_ah"), col(m, "discharge_capacity_ah")
    assert col(m, "cycle").tolist() == [c + 1 for c in cycles]
    for c in (1, 2):
        rows = col(m, "cycle") == c
        assert qc[rows][-1] == pytest.approx(4 * 0.5 / 3600) and qd[rows][-1] == pytest.approx(
            4 * 0.5 / 3600
        )
        assert qc[rows][0] == 0 and qd[rows][0] == 0  # from zero at each cycle start
    assert col(m, "charge_energy_wh")[9] == pytest.approx(4 * 0.5 / 3600 * 3.6)


def test_damaged_files(tmp_path):
    p = tmp_path / "x.041"
    p.write_bytes(RAW.read_bytes()[:300])
    with pytest.raises(ReaderError):
        maccor.read(p)
    p.write_bytes(RAW.read_bytes().replace(b"3.91096361", b"3.9x096361", 1))
    with pytest.raises(ReaderError, match="line 4"):
        maccor.read(p)
    q = tmp_path / "y.EDA0001.041"
    q.write_bytes(EDA.read_bytes()[:300])  # inside the header block
    with pytest.raises(ReaderError):
        maccor.read(q)
    q.write_bytes(EDA.read_bytes()[:600])  # inside the second point: only the first is kept
    assert maccor.read(q).tables["impedance"].num_rows == 1


def test_sniff():
    assert maccor.sniff(RAW, RAW.read_bytes()[:65536]) == "maccor-text"
    assert maccor.sniff(TWO, TWO.read_bytes()[:65536]) == "maccor-text"
    assert maccor.sniff(EDA, EDA.read_bytes()[:65536]) == "maccor-impedance"
    other = DIR / "Test25195.csv"
    assert maccor.sniff(other, other.read_bytes()[:65536]) is None


@pytest.mark.parametrize("path", [RAW, TWO, EDA], ids=lambda p: p.name)
def test_metadata_is_strict_json(path):
    import json

    json.dumps(maccor.read(path).metadata, allow_nan=False)
