"""BioLogic .mpt / .mpr readers against the real files in samples/cycler-biologic.

The truth is read in the tests by plain string splitting of the .mpt exports (EC-Lab's own
text rendering of the same acquisition) and, for the .mpr, by the .mpt twin.
"""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from progral_dagster.readers import biologic_mpr, biologic_mpt
from progral_dagster.readers.base import ReaderError
from tests.conftest import SAMPLES

DIR = SAMPLES / "cycler-biologic"
MPT = sorted(DIR.glob("*.mpt"))
MPR = sorted(DIR.glob("*.mpr"))
PAIRS = [(p, p.with_suffix(".mpt")) for p in MPR if p.with_suffix(".mpt").exists()]
# The pairs SOURCES.md lists: if the glob found fewer, samples are missing.
EXPECTED_PAIRS = {
    "cp",
    "gcpl.issue_149",
    "gcpl.issue_226.CxN",
    "ocv",
    "peis",
    "vsp_ocv_with",
    "zir",
}


def plain_mpt(path: Path) -> dict:
    """Independent .mpt parse: header count, titles, rows as floats (decimal comma replaced)."""
    lines = path.read_bytes().decode("latin-1").split("\n")
    nb = int(re.search(r"Nb header lines\s*:\s*(\d+)", lines[1]).group(1))
    titles = lines[nb - 1].rstrip("\r").split("\t")
    if titles[-1] == "":
        titles = titles[:-1]
    rows = [ln.rstrip("\r").split("\t") for ln in lines[nb:] if ln.strip()]
    cols = {
        t: np.array([float(r[i].replace(",", ".")) for r in rows]) for i, t in enumerate(titles)
    }
    return {"nb": nb, "titles": titles, "rows": len(rows), "cols": cols, "lines": lines}


def table_of(m):
    (t,) = m.tables.values()
    return t


def col(t, name):
    return t.column(name).to_numpy(zero_copy_only=False)


def test_samples_present():
    assert {p.stem for p, _ in PAIRS} == EXPECTED_PAIRS
    assert len(MPT) == 8 and len(MPR) == 8


@pytest.mark.parametrize("path", MPT, ids=lambda p: p.name)
def test_mpt_rows_and_values_match_plain_parse(path):
    truth = plain_mpt(path)
    m = biologic_mpt.read(path)
    t = table_of(m)
    assert m.format == "biologic-mpt"
    assert m.metadata["header_lines"] == truth["nb"]
    assert t.num_rows == truth["rows"]
    c = truth["cols"]
    np.testing.assert_array_equal(col(t, "time_s"), c["time/s"])
    if "freq/Hz" in c:
        assert m.technique == "impedance"
        np.testing.assert_array_equal(col(t, "frequency_hz"), c["freq/Hz"])
        np.testing.assert_array_equal(col(t, "z_real_ohm"), c["Re(Z)/Ohm"])
        np.testing.assert_array_equal(col(t, "z_imag_ohm"), -c["-Im(Z)/Ohm"])  # stored as measured
    else:
        assert m.technique == "cycling"
        v = c.get("Ewe/V", c.get("<Ewe>/V"))
        np.testing.assert_array_equal(col(t, "voltage_v"), v)
        for name in ("I/mA", "<I>/mA"):
            if name in c:  # mA in the file, A in the lake
                np.testing.assert_allclose(col(t, "current_a"), c[name] / 1000, rtol=1e-15)
                break
        if "cycle number" in c:  # EC-Lab counts from 0 in cycling techniques
            np.testing.assert_array_equal(
                col(t, "cycle"), c["cycle number"] - c["cycle number"].min() + 1
            )


def test_decimal_comma_file_equals_comma_replaced_text():
    path = DIR / "mb.issue_95.de.mpt"
    raw = path.read_bytes().decode("latin-1")
    assert re.search(r"\d,\d+E[+-]\d{3}", raw), "sample is expected to use a decimal comma"
    truth = plain_mpt(path)
    m = biologic_mpt.read(path)
    t = table_of(m)
    assert m.metadata["decimal_separator"] == ","
    assert m.metadata["technique"] == "MB" and m.instrument == "VSP"
    # last row by simple string splitting of the last line
    last = truth["lines"][-1] if truth["lines"][-1].strip() else truth["lines"][-2]
    cells = last.split("\t")
    ti = truth["titles"].index("time/s")
    assert col(t, "time_s")[-1] == float(cells[ti].replace(",", "."))
    np.testing.assert_array_equal(col(t, "voltage_v"), truth["cols"]["Ewe/V"])
    np.testing.assert_allclose(col(t, "current_a"), truth["cols"]["I/mA"] / 1000)


def test_minimal_three_line_header():
    path = DIR / "vsp_ocv_with.mpt"
    lines = path.read_text(encoding="latin-1").splitlines()
    assert lines[1].split(":")[1].strip() == "3"
    m = biologic_mpt.read(path)
    t = table_of(m)
    assert t.num_rows == len([ln for ln in lines[3:] if ln.strip()])
    assert m.metadata["settings"] == {} and m.metadata["start_time"] is None
    assert set(col(t, "step_type")) == {"ocv"}  # no current recorded: open circuit
    assert np.all(col(t, "current_a") == 0)


def test_header_metadata_and_settings_block():
    m = biologic_mpt.read(DIR / "gcpl.issue_149.mpt")
    md = m.metadata
    assert (
        md["technique"] == "GCPL" and m.instrument == "SP-300" and md["instrument_serial"] == "1854"
    )
    assert md["start_time"] == "2024-01-10T11:02:29.886"
    assert md["channel"] == 1 and md["software_version"] == "11.50"
    assert md["settings"]["Ns"] == ["0", "1", "2"]
    assert md["settings"]["Is"] == ["0,000", "30,000", "-30,000"]
    assert md["settings"]["unit Is"] == ["mA", "µA", "µA"]
    assert md["header"]["Saved on"]["Host"] == "169.254.189.50"
    assert md["cycle_definition"] == "Charge/Discharge alternance"
    cp = biologic_mpt.read(DIR / "cp.mpt").metadata
    assert cp["technique"] == "CP" and cp["settings"]["Is"] == "-100.000"
    assert cp["original_units"]["current_a"] == "mA"
    techniques = {p.name: biologic_mpt.read(p).metadata["technique"] for p in MPT}
    assert (
        techniques["ocv.mpt"] == "OCV"
        and techniques["peis.mpt"] == "PEIS"
        and techniques["zir.mpt"] == "ZIR"
    )


def _assert_tables_equal(a, b, rtol=2e-6):
    assert a.schema == b.schema and a.num_rows == b.num_rows
    for name in a.column_names:
        x = a.column(name).to_numpy(zero_copy_only=False)
        y = b.column(name).to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            scale = np.nanmax(np.abs(y)) if np.any(np.isfinite(y)) else 1.0
            np.testing.assert_allclose(
                x, y, rtol=rtol, atol=rtol * scale + 1e-15, equal_nan=True, err_msg=name
            )
        else:
            assert (x == y).all() if x.dtype != object else list(x) == list(y), name


@pytest.mark.parametrize("mpr,mpt", PAIRS, ids=lambda p: p.name)
def test_mpr_and_its_mpt_give_the_same_values(mpr, mpt):
    a, b = biologic_mpr.read(mpr), biologic_mpt.read(mpt)
    assert a.technique == b.technique
    _assert_tables_equal(table_of(a), table_of(b))
    assert a.metadata["twin_key"] == b.metadata["twin_key"]
    for key in ("start_time", "channel", "instrument_serial", "software_version"):
        if b.metadata.get(key) is not None:  # the 3-line .mpt has no header to compare with
            assert a.metadata[key] == b.metadata[key], key
    if b.instrument:
        assert a.instrument == b.instrument
    if b.metadata.get("technique"):
        assert a.metadata["technique"] == b.metadata["technique"]


@pytest.mark.parametrize("mpr,mpt", PAIRS, ids=lambda p: p.name)
def test_mpr_record_layout_against_every_mpt_column(mpr, mpt):
    """Every column decoded from the binary equals the export's column of the same title."""
    data = mpr.read_bytes()
    mods = {m["short"]: m for m in biologic_mpr.modules(data, mpr)}
    cols = biologic_mpr.data_columns(data, mods["VMP data"], mpr)
    truth = plain_mpt(mpt)["cols"]
    shared = [c for c in cols if c in truth]
    assert len(shared) >= min(4, len(cols))
    for c in shared:
        # float32 values printed with 8 significant digits: compare at float32 resolution
        np.testing.assert_allclose(cols[c], truth[c], rtol=2e-7, atol=1e-30, err_msg=c)


def test_twin_keys_pair_up_and_differ_between_acquisitions():
    keys = {p: biologic_mpr.read(p).metadata["twin_key"] for p in MPR}
    keys.update({p: biologic_mpt.read(p).metadata["twin_key"] for p in MPT})
    for mpr, mpt in PAIRS:
        assert keys[mpr] == keys[mpt]
    # 16 files, 7 pairs: 9 acquisitions, each with its own key
    assert len(set(keys.values())) == len(keys) - len(PAIRS) == 9
    # cp and peis share start time, device and channel: the key still tells them apart
    assert keys[DIR / "cp.mpr"] != keys[DIR / "peis.mpr"]


def test_capacities_and_energies_match_ec_labs_own_columns():
    """EC-Lab's export carries per-half-cycle capacities and per-cycle energies that it derived
    itself; the lake's columns (derived by the reader, for the .mpr from dq alone) match them."""
    truth = plain_mpt(DIR / "gcpl.issue_149.mpt")["cols"]
    for reader, path in (
        (biologic_mpt, DIR / "gcpl.issue_149.mpt"),
        (biologic_mpr, DIR / "gcpl.issue_149.mpr"),
    ):
        t = table_of(reader.read(path))
        half = truth["half cycle"]
        chg = half % 2 == 0
        np.testing.assert_allclose(
            col(t, "charge_capacity_ah")[chg],
            truth["Q charge/mA.h"][chg] / 1000,
            rtol=1e-6,
            atol=1e-13,
        )
        np.testing.assert_allclose(
            col(t, "discharge_capacity_ah")[~chg],
            truth["Q discharge/mA.h"][~chg] / 1000,
            rtol=1e-6,
            atol=1e-13,
        )
        np.testing.assert_allclose(
            col(t, "charge_energy_wh"), truth["Energy charge/W.h"], rtol=1e-6, atol=1e-15
        )
        np.testing.assert_allclose(
            col(t, "discharge_energy_wh"), truth["Energy discharge/W.h"], rtol=1e-6, atol=1e-15
        )
        np.testing.assert_array_equal(col(t, "cycle"), truth["cycle number"] + 1)


@pytest.mark.parametrize(
    "path",
    [DIR / "gcpl.issue_149.mpr", DIR / "gcpl.issue_149.mpt", DIR / "gcpl.issue_226.CxN.mpt"],
    ids=lambda p: p.name,
)
def test_sign_convention_and_cycle_reset(path):
    reader = biologic_mpr if path.suffix == ".mpr" else biologic_mpt
    t = table_of(reader.read(path))
    st, i, v = col(t, "step_type"), col(t, "current_a"), col(t, "voltage_v")
    cyc, step = col(t, "cycle"), col(t, "step")
    seg = np.cumsum(np.r_[True, (step[1:] != step[:-1]) | (cyc[1:] != cyc[:-1])])
    n_charge = 0
    for s in np.unique(seg):
        rows = np.flatnonzero(seg == s)
        kind = set(st[rows])
        if kind == {"charge"} and rows.size > 2:
            n_charge += 1
            assert np.all(i[rows[1:]] > 0)  # positive current charges the cell
            assert v[rows[-1]] > v[rows[0]]  # and the voltage rises
        if kind == {"discharge"} and rows.size > 2:
            assert np.all(i[rows[1:]] < 0)
            assert v[rows[-1]] < v[rows[0]]
    assert n_charge >= 1
    starts = np.flatnonzero(np.r_[True, cyc[1:] != cyc[:-1]])
    assert cyc[0] == 1 and len(starts) == len(np.unique(cyc))
    qc, qd = col(t, "charge_capacity_ah"), col(t, "discharge_capacity_ah")
    for s, e in zip(starts, np.r_[starts[1:], len(cyc)], strict=True):
        # from zero at each cycle start: the first row holds at most that row's own charge
        assert (
            qc[s]
            <= abs(i[s]) * max(col(t, "time_s")[s] - col(t, "time_s")[max(s - 1, 0)], 0) / 3600
            + 1e-12
        )
        assert (
            qd[s]
            <= abs(i[s]) * max(col(t, "time_s")[s] - col(t, "time_s")[max(s - 1, 0)], 0) / 3600
            + 1e-12
        )
        assert np.all(np.diff(qc[s:e]) >= -1e-15) and np.all(np.diff(qd[s:e]) >= -1e-15)
    assert len(starts) >= 2 or path.name.startswith("gcpl.issue_226")


def test_mpr_metadata_from_log_and_settings_modules():
    a = biologic_mpr.read(DIR / "gcpl.issue_226.CxN.mpr").metadata
    mpt_header = biologic_mpt.read(DIR / "gcpl.issue_226.CxN.mpt").metadata["header"]
    assert a["settings"]["electrode_material"] == mpt_header["Electrode material"]
    assert a["settings"]["electrolyte"] == mpt_header["Electrolyte"]
    assert a["settings"]["comments"] == mpt_header["Comments"]
    assert [m["short"] for m in a["modules"]] == ["VMP Set", "VMP data", "VMP LOG"]
    lsv = biologic_mpr.read(DIR / "lsv.mpr")
    assert (
        lsv.metadata["technique"] == "LSV"
        and lsv.instrument == "SP-240"
        and lsv.technique == "cycling"
    )
    assert set(col(table_of(lsv), "step_type")) <= {
        "other",
        "rest",
    }  # a sweep, not a CV charge step
    # the module lengths add up to the file size (header 52 bytes, module headers 57 or 65)
    data = (DIR / "gcpl.issue_149.mpr").read_bytes()
    mods = biologic_mpr.modules(data, DIR / "gcpl.issue_149.mpr")
    assert sum(m["length"] + 65 for m in mods) + 52 == len(data)


def test_impedance_files_go_to_the_impedance_table():
    for name in ("peis.mpr", "peis.mpt", "zir.mpr", "zir.mpt"):
        m = (biologic_mpr if name.endswith("mpr") else biologic_mpt).read(DIR / name)
        assert m.technique == "impedance" and list(m.tables) == ["impedance"]
    t = table_of(biologic_mpt.read(DIR / "peis.mpt"))
    f = col(t, "frequency_hz")
    assert np.all(np.diff(f) < 0)  # a sweep from high to low frequency
    assert set(col(t, "cycle")) == {1}


def _copy(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_damaged_mpr_raise_reader_error(tmp_path):
    data = (DIR / "cp.mpr").read_bytes()
    with pytest.raises(ReaderError, match="truncated"):
        biologic_mpr.read(_copy(tmp_path, "a.mpr", data[: len(data) - 1000]))
    with pytest.raises(ReaderError, match="BIO-LOGIC"):
        biologic_mpr.read(_copy(tmp_path, "b.mpr", b"X" + data[1:]))
    # an unknown column id: the record size is unknown, so the file is refused naming it
    mods = {m["short"]: m for m in biologic_mpr.modules(data, DIR / "cp.mpr")}
    at = mods["VMP data"]["start"] + 5 + 2 * 7  # 8th column id (version-3 layout)
    assert struct.unpack_from("<H", data, at)[0] == 4
    bad = data[:at] + struct.pack("<H", 9999) + data[at + 2 :]
    with pytest.raises(ReaderError, match="9999"):
        biologic_mpr.read(_copy(tmp_path, "c.mpr", bad))


def test_damaged_mpt_raise_reader_error_or_drop_the_partial_row(tmp_path):
    text = (DIR / "cp.mpt").read_bytes()
    with pytest.raises(ReaderError, match="header"):
        biologic_mpt.read(_copy(tmp_path, "a.mpt", text[:2000]))
    with pytest.raises(ReaderError):
        biologic_mpt.read(
            _copy(tmp_path, "b.mpt", text.replace(b"Nb header lines : 59", b"Nb header lines : 9x"))
        )
    cut = text[: len(text) - 150]  # ends inside the last record
    m = biologic_mpt.read(_copy(tmp_path, "c.mpt", cut))
    assert m.metadata["dropped_incomplete_last_row"] is True
    assert table_of(m).num_rows == plain_mpt(DIR / "cp.mpt")["rows"] - 1
    garbled = text.replace(b"\t-3.4493880E+000\t", b"\tabc\t", 1)
    with pytest.raises(ReaderError, match="line 61"):
        biologic_mpt.read(_copy(tmp_path, "d.mpt", garbled))


def test_sniffers_claim_only_their_own_files():
    for p in MPR:
        assert biologic_mpr.sniff(p, p.read_bytes()[:4096]) == "biologic-mpr"
        assert biologic_mpt.sniff(p, p.read_bytes()[:4096]) is None
    for p in MPT:
        assert biologic_mpt.sniff(p, p.read_bytes()[:4096]) == "biologic-mpt"
        assert biologic_mpr.sniff(p, p.read_bytes()[:4096]) is None


def test_galvani_reference_when_installed(tmp_path):
    """Optional cross-check with galvani (GPL-3, never a dependency): skipped when absent."""
    galvani = pytest.importorskip("galvani")
    for mpr, _ in PAIRS:
        src = tmp_path / mpr.name
        shutil.copy(mpr, src)
        ref = galvani.BioLogic.MPRfile(str(src))
        t = table_of(biologic_mpr.read(mpr))
        np.testing.assert_allclose(col(t, "time_s"), ref.data["time/s"], rtol=1e-12)


@pytest.mark.parametrize("path", MPT + MPR, ids=lambda p: p.name)
def test_metadata_is_strict_json(path):
    """The catalog stores metadata as JSON: no NaN, no numpy types."""
    import json

    m = (biologic_mpr if path.suffix == ".mpr" else biologic_mpt).read(path)
    json.dumps(m.metadata, allow_nan=False)
