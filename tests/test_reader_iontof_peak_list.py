"""IONTOF peak (mass interval) list export, against the sample file split by plain Python."""

from __future__ import annotations

import math

import pytest

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers.iontof_peak_list import sniff
from progral_dagster.warehouse.schemas import conform, reader_schema
from tests.conftest import SAMPLES

PATH = SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt"
TABLE = "tof_sims_peak_lists"


def plain_rows():
    text = PATH.read_bytes().decode("latin-1").rstrip("\x00\r\n")
    lines = text.split("\r\n")
    return lines[0].split("\t"), [ln.split("\t") for ln in lines[1:]]


def as_float(s: str):
    if s == "":
        return None
    if s.upper() in ("NAN", "-NAN(IND)", "-NAN"):
        return math.nan
    return float(s)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_every_cell_matches_the_text():
    titles, rows = plain_rows()
    assert len(titles) == 19
    m = read(PATH)
    assert (m.format, m.technique) == ("iontof-peak-list", "tof-sims")
    t = m.tables[TABLE]
    conform(TABLE, t)
    assert t.column_names == reader_schema(TABLE).names  # the 19 columns, in order
    assert t.num_rows == len(rows) == 321
    for name, j in zip(t.column_names, range(19), strict=True):
        got = t[name].to_pylist()
        for i, r in enumerate(rows):
            cell = r[j]
            if name in ("assignment", "description"):
                want = None if cell in ("", "(null)") else cell
            elif name in ("no", "color"):
                want = int(cell)
            else:
                want = as_float(cell)
            assert same(got[i], want), (name, i, cell, got[i])


def test_total_row_nan_inf_and_metadata():
    titles, rows = plain_rows()
    m = read(PATH)
    t = m.tables[TABLE].to_pylist()
    assert t[0]["description"] == "total" and t[0]["assignment"] is None
    assert t[0]["center_mass_u"] is None and math.isnan(t[0]["lower_mass_u"])
    assert m.metadata["total_area"] == float(rows[0][titles.index("Area")])
    assert m.metadata["n_peaks"] == len(rows) - 1
    # every -NAN(IND) of the RSF/coverage columns became NaN, every inf infinity
    j = titles.index("Coverage (1/cm^2) ")
    assert sum(r[j] == "-NAN(IND)" for r in rows) == sum(
        math.isnan(x["coverage_per_cm2"]) for x in t
    )
    j = titles.index("Norm. By Reference Peak")
    assert sum(r[j] == "inf" for r in rows) == sum(
        math.isinf(x["norm_by_reference_peak"]) for x in t
    )
    assert m.metadata["polarity"] == "negative"  # Cu-, C_2-, ... all negative
    li_oh = [x for x in t if x["assignment"] == "LiOH-"][0]
    assert li_oh["lower_mass_u"] < li_oh["center_mass_u"] < li_oh["upper_mass_u"]


def test_lf_and_no_trailing_nul(tmp_path):
    p = tmp_path / "list.txt"
    p.write_bytes(PATH.read_bytes().replace(b"\r\n", b"\n").rstrip(b"\x00"))
    # NaN cells: compare with pandas, which treats NaN in the same place as equal
    assert read(p).tables[TABLE].to_pandas().equals(read(PATH).tables[TABLE].to_pandas())


def test_a_letter_in_a_number_column_is_a_reader_error(tmp_path):
    data = PATH.read_bytes().replace(b"\t62.934613\t", b"\t62.93x613\t", 1)
    p = tmp_path / "bad.txt"
    p.write_bytes(data)
    with pytest.raises(ReaderError, match="center_mass_u"):
        read(p)


def test_missing_mass_columns_refused(tmp_path):
    p = tmp_path / "short.txt"
    p.write_bytes(b"No.\tCenter Mass (u)\tArea\r\n1\t7.01\t5\r\n")
    with pytest.raises(ReaderError, match="lacks"):
        read(p)


def test_sniff():
    assert sniff(PATH, PATH.read_bytes()[:4096]) == "iontof-peak-list"
    other = SAMPLES / "sims-iontof" / "P_Ru_Bi1_1.txt"
    assert sniff(other, other.read_bytes()[:4096]) is None
