"""Neware .nda/.ndax reader against the real files, checked with facts the files state
themselves (record structure, XML step program and test times) and with physics (the
capacity equals the integral of the current)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from progral_dagster.readers import neware
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

DIR = SAMPLES / "cycler-other"
NDA = DIR / "new_nda_file.nda"
NDAX = DIR / "test.ndax"
NDAX_AUX = DIR / "123456789012_Unit27_Example_Data_File.ndax"


def col(m, name):
    return m.tables["cycling"].column(name).to_numpy(zero_copy_only=False)


def nda29_records(path: Path) -> list[tuple[int, int]]:
    """(index, cycle) of every data record, found by walking the file's 86-byte records from
    the first one to the end: data records start 0x55 0x00 (index uint32 at +2, cycle uint32
    at +6); other record kinds (0xAA: step ends) are skipped."""
    data = path.read_bytes()
    assert data[:6] == b"NEWARE" and data[14] == 29
    p = data.find(b"\x55\x00", 1024)
    while struct.unpack_from("<I", data, p + 2)[0] != 1:
        p = data.find(b"\x55\x00", p + 1)
    assert (len(data) - p) % 86 == 0  # whole records to the end of the file
    out = []
    for q in range(p, len(data), 86):
        if data[q : q + 2] == b"\x55\x00":
            out.append(struct.unpack_from("<II", data, q + 2))
    return out


def ndax_xml(path: Path, name: str) -> ET.Element:
    with zipfile.ZipFile(path) as zf:
        text = zf.read(name).decode("gb2312")
    return ET.fromstring(text.split("?>", 1)[1])


@pytest.mark.parametrize("path", [NDA, NDAX, NDAX_AUX], ids=lambda p: p.name)
def test_common_invariants(path):
    m = neware.read(path)
    assert m.technique == "cycling" and m.format == (
        "neware-nda" if path.suffix == ".nda" else "neware-ndax"
    )
    t = col(m, "time_s")
    assert np.all(np.diff(t) >= 0)  # test time never runs backwards
    assert np.all(np.diff(col(m, "record")) > 0)
    assert col(m, "cycle").min() == 1
    assert "Neware" in m.instrument


def test_nda_record_count_and_cycles_from_the_raw_records():
    raw = nda29_records(NDA)
    m = neware.read(NDA)
    assert m.metadata["n_records"] == len(raw) == m.tables["cycling"].num_rows
    assert col(m, "record").tolist() == [i for i, _ in raw]
    # Neware stores the cycle from 0; the lake counts from 1
    assert col(m, "cycle").tolist() == [c + 1 for _, c in raw]
    assert m.metadata["cycle_source"] == "cycler"


def _steps(m):
    step, cyc = col(m, "step"), col(m, "cycle")
    seg = np.cumsum(np.r_[True, (step[1:] != step[:-1]) | (cyc[1:] != cyc[:-1])])
    return [np.flatnonzero(seg == s) for s in np.unique(seg)]


@pytest.mark.parametrize("path", [NDA, NDAX], ids=lambda p: p.name)
def test_capacity_equals_integrated_current_and_sign(path):
    m = neware.read(path)
    t, i, v = col(m, "time_s"), col(m, "current_a"), col(m, "voltage_v")
    qc, qd = col(m, "charge_capacity_ah"), col(m, "discharge_capacity_ah")
    st = col(m, "step_type")
    seen = set()
    for rows in _steps(m):
        kind = st[rows[0]]
        if kind not in ("charge", "discharge") or rows.size < 10:
            continue
        seen.add(kind)
        q = np.trapezoid(i[rows], t[rows]) / 3600.0  # coulomb counting, Ah
        gained = (qc if kind == "charge" else qd)[rows[-1]] - (qc if kind == "charge" else qd)[
            rows[0]
        ]
        assert gained == pytest.approx(abs(q), rel=0.02)
        sign = 1 if kind == "charge" else -1
        # positive current charges: no record of the step against the sign, nearly all with it
        # (the first records of a step may still read zero while the current ramps up)
        assert np.all(sign * i[rows] >= 0) and np.mean(sign * i[rows] > 0) > 0.9
        assert sign * (v[rows[-1]] - v[rows[0]]) > 0  # charging raises the voltage
    assert seen == {"charge", "discharge"}


def test_ndax_program_and_test_times_from_its_xml():
    m = neware.read(NDAX)
    info = ndax_xml(NDAX, "TestInfo.xml").find("config/TestInfo").attrib
    start = datetime.strptime(info["StartTime"], "%Y-%m-%d %H:%M:%S")
    end = datetime.strptime(info["EndTime"], "%Y-%m-%d %H:%M:%S")
    t = col(m, "time_s")
    assert t[-1] - t[0] == pytest.approx((end - start).total_seconds(), abs=2.0)
    steps = {
        int(s.attrib["Step_ID"]): s for s in ndax_xml(NDAX, "Step.xml").find("config/Step_Info")
    }
    step = col(m, "step")
    i, v = col(m, "current_a"), col(m, "voltage_v")
    for sid, s in steps.items():
        rows = np.flatnonzero(step == sid)
        if s.attrib["Step_Type"] == "6":  # end of program: no records
            assert rows.size == 0
            continue
        rec = float(s.find("Record/Main/Time").attrib["Value"]) / 1000  # ms
        assert np.median(np.diff(t[rows])) == pytest.approx(rec)
        limit = s.find("Limit/Main")
        if s.attrib["Step_Type"] == "4":  # rest for a fixed time
            assert t[rows[-1]] - t[rows[0]] == pytest.approx(
                float(limit.find("Time").attrib["Value"]) / 1000
            )
            assert np.all(i[rows] == 0)
        else:
            amps = float(limit.find("Curr").attrib["Value"]) / 1000  # mA in Step.xml, A in the lake
            volt = float(limit.find("Volt").attrib["Value"]) / 10000  # 0.1 mV
            assert np.max(np.abs(i[rows])) == pytest.approx(amps, rel=0.01)
            if s.attrib["Step_Type"] == "7":  # CCCV charge to volt
                assert v[rows].max() <= volt + 0.005
            else:  # CCCV discharge to volt
                assert v[rows].min() >= volt - 0.005


def test_ndax_with_aux_temperatures_and_barcode():
    m = neware.read(NDAX_AUX)
    info = ndax_xml(NDAX_AUX, "TestInfo.xml").find("config/TestInfo").attrib
    assert m.metadata["Barcode"] == info["Barcode"] == "123456789012"
    temp = col(m, "temperature_c")
    assert m.metadata["temperature_channels"] == ["T1", "T2"]
    assert np.all((temp > 15) & (temp < 40))  # a lab at room temperature
    assert set(col(m, "step_type")) == {"rest"}
    rest = (
        ndax_xml(NDAX_AUX, "Step.xml")
        .find("config/Step_Info/Step1/Limit/Main/Time")
        .attrib["Value"]
    )
    t = col(m, "time_s")
    assert t[-1] - t[0] == pytest.approx(float(rest) / 1000)


def test_units_are_converted_to_a_ah_wh():
    m = neware.read(NDAX)
    assert m.metadata["original_units"]["current_a"] == "mA"
    # 0.12 mA programmed (Step.xml) -> 1.2e-4 A in the lake; a 6 h charge at most 0.72 mAh
    assert 1.1e-4 < np.max(col(m, "current_a")) < 1.3e-4
    assert 1e-4 < col(m, "charge_capacity_ah").max() < 0.12e-3 * 6


def test_damaged_files_raise_reader_error(tmp_path):
    data = NDA.read_bytes()
    p = tmp_path / "x.nda"
    p.write_bytes(data[:1500])
    with pytest.raises(ReaderError):
        neware.read(p)
    p.write_bytes(b"NEWARE" + bytes(200))
    with pytest.raises(ReaderError):
        neware.read(p)
    q = tmp_path / "x.ndax"
    q.write_bytes(NDAX.read_bytes()[:3000])
    with pytest.raises(ReaderError):
        neware.read(q)


def test_sniff():
    assert neware.sniff(NDA, NDA.read_bytes()[:4096]) == "neware-nda"
    assert neware.sniff(NDAX, NDAX.read_bytes()[:4096]) == "neware-ndax"
    xlsx = DIR / "bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx"
    assert neware.sniff(xlsx, xlsx.read_bytes()[:65536]) is None


@pytest.mark.parametrize("path", [NDA, NDAX, NDAX_AUX], ids=lambda p: p.name)
def test_metadata_is_strict_json(path):
    import json

    json.dumps(neware.read(path).metadata, allow_nan=False)
