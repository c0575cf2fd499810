"""IONTOF depth-profile exports and the SurfaceLab peak-name markup.

Expected values come from the sample files read with plain string splitting in the test, and
from formulas built by the test itself (the hypothesis property)."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers.iontof_depth_profile import sniff
from progral_dagster.readers.iontof_markup import ELEMENTS, parse_peak_name
from progral_dagster.warehouse.schemas import conform
from tests.conftest import SAMPLES

FILES = sorted((SAMPLES / "sims-iontof").glob("I24*.txt"))
TABLE = "tof_sims_depth_profiles"


def plain_parse(path):
    """Names, masses, titles and the data rows, by str.split only."""
    lines = path.read_bytes().decode("latin-1").replace("\r\n", "\n").split("\n")
    hdr = [ln for ln in lines if ln.startswith("#")]
    names = hdr[1].split("\t")[1:]
    masses = hdr[2].split("\t")[1:]
    rows = [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]
    # names[i] is field i + 1 of a row (field 0 is the "#"); drop the leading (Data Point,
    # Sputter Time, Dose, Fluence) columns and the trailing tab
    first = next(i for i, n in enumerate(names) if n)
    last = max(i for i, n in enumerate(names) if n) + 1
    return names[first:last], masses[first:last], rows, first + 1


def test_three_sample_files():
    assert len(FILES) == 3


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:16])
def test_shape_names_masses_and_values_match_the_text(path):
    names, masses, rows, off = plain_parse(path)
    m = read(path)
    assert m.format == "iontof-depth-profile" and m.technique == "tof-sims"
    t = m.tables[TABLE]
    conform(TABLE, t)  # fits the lake schema
    assert t.num_rows == len(names) * len(rows)
    assert m.metadata["n_points"] == len(rows) and m.metadata["n_columns"] == len(names)
    # names and masses, column by column
    first_rows = t.filter(pc.equal(t["point"], int(rows[0][0])))
    assert first_rows["name"].to_pylist() == names
    want_mass = [None if s == "N/A" else float(s) for s in masses]
    assert first_rows["mass"].to_pylist() == want_mass
    # every value of every column, including inf, against the split text
    inten = t["intensity"].to_numpy().reshape(len(names), len(rows))
    want = np.array([[float(r[off + j]) for r in rows] for j in range(len(names))])
    np.testing.assert_array_equal(inten, want)
    n_inf = sum(r[off + j] == "inf" for r in rows for j in range(len(names)))
    assert int(np.isinf(inten).sum()) == n_inf
    # sputter time, dose, fluence of the last point
    last = t.slice(len(rows) - 1, 1).to_pylist()[0]
    assert last["point"] == int(rows[-1][0])
    assert last["sputter_time_s"] == float(rows[-1][1])
    assert last["dose"] == float(rows[-1][2])
    assert last["fluence_ions_cm2"] == float(rows[-1][3])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:16])
def test_kinds_follow_the_markup_and_na_masses(path):
    names, masses, _rows, _ = plain_parse(path)
    cols = read(path).metadata["columns"]
    for name, mass, col in zip(names, masses, cols, strict=True):
        if name == "total":
            assert col["kind"] == "total"
        elif " / ( " in name:
            assert col["kind"] == "ratio"
        elif ", " in name or re.search(r"[+-][\^A-Z]", name):
            assert col["kind"] == "group"
        else:
            assert col["kind"] == "species"
        # SCIENCE.md: N/A masses exactly for total, ratio and group columns
        assert (mass == "N/A") == (col["kind"] in ("total", "ratio", "group")), name


def test_named_columns_of_the_negative_mapi_profile():
    m = read(SAMPLES / "sims-iontof" / "I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt")
    cols = {c["name"]: c for c in m.metadata["columns"]}
    g = cols["^206PbI_3-, ^207PbI_3-PbI_3-"]
    assert (g["kind"], g["species"], g["charge"]) == ("group", "PbI3", -1)
    assert g["members"] == ["^206PbI_3-", "^207PbI_3-"]
    s = cols["^118SnI_3-"]
    assert (s["species"], s["isotopes"], s["charge"]) == ("SnI3", ["118Sn"], -1)
    r = cols["CN- / ( InO- )"]
    assert r["numerator"]["species"] == "CN" and r["denominator"]["species"] == "InO"
    assert m.metadata["polarity"] == "negative"
    t = m.tables[TABLE]
    ratio = t.filter(pc.equal(t["kind"], "ratio"))
    assert (
        ratio["charge"].null_count == ratio.num_rows
        and ratio["species"].null_count == ratio.num_rows
    )


def test_positive_profile_polarity_and_isotopes():
    m = read(SAMPLES / "sims-iontof" / "I240416f_B_MAPI_1f_pos-B1 - NF - with-lat-ROI.txt")
    assert m.metadata["polarity"] == "positive"
    cols = {c["name"]: c for c in m.metadata["columns"]}
    assert cols["^13CC_25H_21N_2+"]["species"] == "C26H21N2"
    assert cols["^13CC_25H_21N_2+"]["isotopes"] == ["13C"]
    assert cols["Cs_2PO_3+"]["charge"] == 1


def _copy(tmp_path, src, data: bytes):
    p = tmp_path / src.name
    p.write_bytes(data)
    return p


def test_lf_line_ends_give_the_same_table(tmp_path):
    src = FILES[0]
    p = _copy(tmp_path, src, src.read_bytes().replace(b"\r\n", b"\n"))
    assert read(p).tables[TABLE].equals(read(src).tables[TABLE])


def test_truncated_row_is_a_reader_error_with_a_line(tmp_path):
    data = FILES[0].read_bytes()
    p = _copy(tmp_path, FILES[0], data[: len(data) - 300])
    with pytest.raises(ReaderError) as ei:
        read(p)
    assert ei.value.position and ei.value.position.startswith("line")


def test_more_names_than_titles_is_refused(tmp_path):
    lines = FILES[2].read_bytes().split(b"\r\n")
    lines[1] += b"\textra-"
    p = _copy(tmp_path, FILES[2], b"\r\n".join(lines))
    with pytest.raises(ReaderError, match="column titles"):
        read(p)


def test_sniff_claims_only_depth_profiles():
    for f in FILES:
        assert sniff(f, f.read_bytes()[:65536]) == "iontof-depth-profile"
    for f in [
        SAMPLES / "sims-iontof" / "P_Ru_Bi1_1.txt",
        SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt",
    ]:
        assert sniff(f, f.read_bytes()[:65536]) is None


# ----------------------------------------------------------------------------- markup
def test_markup_examples_from_science_md():
    p = parse_peak_name("^206PbI_3-, ^207PbI_3-PbI_3-")
    assert p.kind == "group" and p.species == "PbI3" and p.charge == -1
    assert [m.formula for m in p.members] == ["PbI3", "PbI3"]
    assert [m.isotopes for m in p.members] == [("206Pb",), ("207Pb",)]
    one = parse_peak_name("^118SnI_3-SnI_3-")
    assert one.kind == "group" and [m.text for m in one.members] == ["^118SnI_3-"]
    r = parse_peak_name("Sn+ / ( Pb+ )")
    assert r.kind == "ratio" and r.charge is None and r.numerator.species == "Sn"
    assert parse_peak_name("total").kind == "total"
    free = parse_peak_name("unknown peak 3")
    assert free.kind == "species" and free.species is None


_SYMS = sorted(ELEMENTS - {"D"})


@st.composite
def formulas(draw):
    parts = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_SYMS),
                st.one_of(st.none(), st.integers(1, 300)),
                st.integers(1, 99),
            ),
            min_size=1,
            max_size=5,
        )
    )
    charge = draw(st.sampled_from([1, -1, 2, -2]))
    return parts, charge


def render(parts, charge):
    s = "".join(
        (f"^{iso}" if iso else "") + sym + (f"_{n}" if n > 1 else "") for sym, iso, n in parts
    )
    return s + ("+" if charge > 0 else "-") * abs(charge)


@settings(max_examples=200, deadline=None)
@given(formulas(), st.integers(1, 4))
def test_markup_roundtrip_species_and_groups(f, n_members):
    parts, charge = f
    text = render(parts, charge)
    p = parse_peak_name(text)
    counts: dict[str, int] = {}
    for sym, _, n in parts:
        counts[sym] = counts.get(sym, 0) + n
    assert p.kind == "species" and p.charge == charge
    assert p.species == "".join(f"{k}{v if v > 1 else ''}" for k, v in counts.items())
    assert p.ion.isotopes == tuple(f"{iso}{sym}" for sym, iso, _ in parts if iso)
    # the same ion as a group of n members named after itself
    g = parse_peak_name(", ".join([text] * n_members) + text)
    assert g.kind == "group" and len(g.members) == n_members and g.species == p.species
    assert math.isclose(g.charge, charge)
