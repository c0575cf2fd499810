"""IONTOF export writers and the ToF-SIMS spectra campaign: formats checked against the real
exports in shared/samples, contents against the simulator's ground truth, files read back with
the project's readers."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from progral_dagster.simulate.iontof_writer import (
    format_spectrum_export,
    write_mass_interval_list,
    write_spectrum_export,
)
from progral_dagster.simulate.li_compounds import (
    COMPOUNDS,
    characteristic_ions,
    compound_ion_yields,
)
from progral_dagster.simulate.sheet import SHEET_COLUMNS
from progral_dagster.simulate.spectra_campaign import (
    campaign_plan,
    parse_mixtures,
    simulate_spectra_campaign,
)
from progral_dagster.simulate.tof_ions import ion_mass
from progral_dagster.simulate.tof_spectra import simulate_spectrum
from tests.conftest import SAMPLES

REAL = SAMPLES / "sims-iontof"
SPECTRUM_ROW = re.compile(rb"^\d+(\.\d)?\t\d+\.\d{6}\t\d+$")
# number formats of the 19 peak-list columns as the real list writes them (non-total rows)
PEAK_ROW_FORMATS = (
    r"\d+",
    r"\d+\.\d{6}",
    r"\d+\.\d{6}",
    r"\d+\.\d{6}",
    r".+",
    r"\(null\)",
    r"-?\d+\.\d{6}|0",
    r"\d+\.\d{2}|",
    r"\d+|nan",
    r"\d+\.\d{2}",
    r"\d+\.\d{2}",
    r"inf|-?\d+\.\d{2}",
    r"\d+\.\d{2}",
    r"\d+\.\d{2}",
    r"\d+\.\d{2}",
    r"\d+\.\d{2}",
    r"\d\.\d{6}E[+-]\d{2}",
    r"-NAN\(IND\)|.+",
    r"\d+",
)


def _spectrum(seed=0, compound="Li2CO3", pol="negative", **kw):
    rng = np.random.default_rng(seed)
    return simulate_spectrum(compound_ion_yields({compound: 1.0}, pol), pol, rng, **kw)


def _lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    body = data[:-2]
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF everywhere, no bare LF
    return body.split(b"\r\n")


# --- spectrum export ---------------------------------------------------------------------------


def test_spectrum_export_layout_matches_real_export(tmp_path):
    real = (REAL / "N_HEA19_Bi1_1.txt").read_bytes()
    real_lines = _lines(real)
    assert all(SPECTRUM_ROW.match(line) for line in real_lines[3:])  # the format rule holds
    spec = _spectrum(binning=200)
    ours = write_spectrum_export(tmp_path / "N_sim.txt", spec).read_bytes()
    lines = _lines(ours)
    assert lines[:3] == real_lines[:3]  # same three header lines, byte for byte
    assert all(SPECTRUM_ROW.match(line) for line in lines[3:])
    assert lines[3].split(b"\t")[0] == real_lines[3].split(b"\t")[0] == b"100"
    assert abs(len(lines) - len(real_lines)) < 20
    # default binning: about 50,000 rows, channel step 20
    lines20 = _lines(format_spectrum_export(_spectrum(binning=20)))
    assert lines20[0] == b"# Binning: 20 channels"
    assert 45_000 < len(lines20) - 3 < 55_000
    ch = np.array([float(x.split(b"\t")[0]) for x in lines20[3:1000]])
    assert np.all(np.diff(ch) == 20)


def test_spectrum_export_reads_back_with_reader(tmp_path):
    from progral_dagster.readers import iontof_spectrum

    spec = _spectrum(seed=1, compound="LiOH", pol="positive", primary_shots=4e6)
    on = write_spectrum_export(tmp_path / "P_LiOH_Bi1_1.txt", spec)
    off = write_spectrum_export(tmp_path / "P_LiOH_Bi1_2.txt", spec, deadtime_corrected=False)
    m_on, m_off = iontof_spectrum.read(on), iontof_spectrum.read(off)
    assert m_on.metadata["deadtime_correction"] is True
    assert m_off.metadata["deadtime_correction"] is False
    assert m_on.metadata["polarity"] == "positive"
    assert m_on.metadata["binning_channels"] == 20
    t_on = m_on.tables["tof_sims_spectra"].to_pandas()
    t_off = m_off.tables["tof_sims_spectra"].to_pandas()
    np.testing.assert_array_equal(t_on["channel"], spec.channel)
    np.testing.assert_allclose(t_on["mz"], spec.mz, atol=5e-7)
    np.testing.assert_array_equal(t_off["intensity"], spec.counts)  # raw counts, exactly
    # at 0.5 ions per shot dead time loses counts; the corrected export gives most back
    assert t_on["intensity"].sum() > 1.05 * t_off["intensity"].sum()
    assert t_on["intensity"].sum() == pytest.approx(spec.expected.sum(), rel=0.02)


def test_same_seed_same_bytes_other_seed_differs():
    a = format_spectrum_export(_spectrum(seed=5))
    b = format_spectrum_export(_spectrum(seed=5))
    c = format_spectrum_export(_spectrum(seed=6))
    assert a == b
    assert a != c


# --- mass interval list --------------------------------------------------------------------------


def _check_peak_list_format(data: bytes) -> list[list[str]]:
    """The rules the real example follows; returns the rows as fields."""
    assert data.endswith(b"\r\n\x00")
    lines = _lines(data[:-1])
    rows = [line.decode("latin-1").split("\t") for line in lines]
    assert all(len(r) == 19 for r in rows)
    total = rows[1]
    assert [total[i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 17)] == [
        "1", "", "nan", "nan", "(null)", "total", "0", "", "nan", "inf", "0.000000E+00",
        "-NAN(IND)",
    ]  # fmt: skip
    assert total[14] == "1.00"  # normalised by its own corrected total
    for r in rows[2:]:
        for value, fmt in zip(r, PEAK_ROW_FORMATS, strict=True):
            assert re.fullmatch(fmt, value), (r, value, fmt)
    return rows


def test_mass_interval_list_mimics_real_format(tmp_path):
    real = (REAL / "Example_mass_interval_list.txt").read_bytes()
    real_rows = _check_peak_list_format(real)
    spec = _spectrum(seed=2, compound="Li2CO3", pol="negative")
    ions = characteristic_ions("negative")
    path = write_mass_interval_list(tmp_path / "list.txt", ions, spec)
    rows = _check_peak_list_format(path.read_bytes())
    assert rows[0] == real_rows[0]  # the 19 column titles, byte for byte
    assert len(rows) == len(ions) + 2
    assert [r[4] for r in rows[2:]][:3] == ["H-", "Li-", "LiH-"]  # SurfaceLab markup
    assert "CO_3-" in [r[4] for r in rows]


def test_mass_interval_list_areas_match_the_spectrum_export(tmp_path):
    spec = _spectrum(seed=3, compound="Li2CO3", pol="negative", primary_shots=2e6)
    ions = characteristic_ions("negative")
    rows = _check_peak_list_format(
        write_mass_interval_list(tmp_path / "l.txt", ions, spec).read_bytes()
    )
    on = np.loadtxt(write_spectrum_export(tmp_path / "on.txt", spec), skiprows=3)
    off = np.loadtxt(
        write_spectrum_export(tmp_path / "off.txt", spec, deadtime_corrected=False), skiprows=3
    )
    assert float(rows[1][9]) == pytest.approx(on[:, 2].sum(), abs=0.5 * len(on))
    assert float(rows[1][10]) == off[:, 2].sum()
    strong = 0
    windows = [(float(r[2]), float(r[3])) for r in rows[2:]]
    for k, r in enumerate(rows[2:]):
        lo, hi = float(r[2]), float(r[3])
        sel = (on[:, 1] >= lo) & (on[:, 1] <= hi)
        # corrected area: the export's integers summed, within their rounding
        assert float(r[9]) == pytest.approx(on[sel, 2].sum(), abs=0.5 * sel.sum() + 0.01)
        assert float(r[10]) == off[sel, 2].sum()
        exact = ion_mass(r[4].replace("_", ""))
        assert lo < exact < hi
        alone = not any(lo < b and a < hi for j, (a, b) in enumerate(windows) if j != k)
        if float(r[9]) > 5000 and alone:
            strong += 1
            assert abs(float(r[6])) < 150  # centroid within the calibration error (ppm)
            # measured m/dm: 5000 at m/z 28 growing as sqrt(m), less the 20-channel binning
            nominal = 5000 * np.sqrt(exact / 28)
            assert 0.35 * nominal < float(r[8]) < 1.2 * nominal, (r[4], r[8])
    assert strong >= 5


def test_mass_interval_list_reads_back_with_reader(tmp_path):
    reader = pytest.importorskip("progral_dagster.readers.iontof_peak_list")
    spec = _spectrum(seed=4, compound="LiH", pol="negative")
    ions = characteristic_ions("negative")
    path = write_mass_interval_list(tmp_path / "list.txt", ions, spec)
    m = reader.read(path)
    t = m.tables["tof_sims_peak_lists"].to_pandas()
    assert len(t) == len(ions) + 1
    assert t["description"].iloc[0] == "total"
    assert t["area"].iloc[0] == pytest.approx(spec.corrected_counts().sum(), abs=0.01)
    fields = [line.split("\t") for line in path.read_bytes()[:-1].decode().split("\r\n")[2:-1]]
    np.testing.assert_array_equal(t["center_mass_u"].iloc[1:], [float(f[1]) for f in fields])
    np.testing.assert_array_equal(t["lower_mass_u"].iloc[1:], [float(f[2]) for f in fields])
    np.testing.assert_array_equal(t["area"].iloc[1:], [float(f[9]) for f in fields])
    assert list(t["assignment"].iloc[1:]) == [f[4] for f in fields]
    # the strong, isolated peaks sit at their ions' masses
    h = t.set_index("assignment").loc["H-"]
    assert h["area"] > 1e5 and h["center_mass_u"] == pytest.approx(ion_mass("H-"), abs=2e-4)
    assert m.metadata.get("polarity") in (None, "negative")


# --- mixtures ------------------------------------------------------------------------------------


def test_parse_mixtures():
    got = parse_mixtures("Li2CO3:0.5,LiOH:0.5; LiH:0.3,Li2O:0.7")
    assert got == [{"Li2CO3": 0.5, "LiOH": 0.5}, {"LiH": 0.3, "Li2O": 0.7}]
    assert parse_mixtures("Li3N:0.333,LiH:0.333,Li2O:0.334") == [
        {"Li3N": 0.333, "LiH": 0.333, "Li2O": 0.334}
    ]
    with pytest.raises(ValueError, match="unknown compound 'LiF'"):
        parse_mixtures("LiF:0.5,LiOH:0.5")
    with pytest.raises(ValueError, match="sum to 1"):
        parse_mixtures("Li2CO3:0.5,LiOH:0.4")
    with pytest.raises(ValueError, match="NAME:FRACTION"):
        parse_mixtures("Li2CO3 0.5,LiOH:0.5")
    with pytest.raises(ValueError, match="not a number"):
        parse_mixtures("Li2CO3:half,LiOH:0.5")
    with pytest.raises(ValueError, match="mixture 2"):
        parse_mixtures("Li2CO3:1;LiOH:2")


def test_full_plan_sizes_and_hidden_compositions():
    plan = campaign_plan(7, "full", mixtures=[{"Li2CO3": 0.6, "Li3N": 0.4}])
    refs = [p for p in plan if p["kind"] == "reference"]
    assert sum(2 * p["spots"] for p in refs) == 120
    for c in COMPOUNDS:
        assert sum(p["fractions"] == {c: 1.0} for p in refs) == 3
    cal = [p for p in plan if p["kind"] == "calibration"]
    pairs = {tuple(sorted(p["fractions"])) for p in cal}
    ratios = {round(min(p["fractions"].values()), 2) for p in cal}
    assert len(pairs) >= 4 and ratios == {0.25, 0.5} and all(p["spots"] >= 2 for p in cal)
    hidden = [p for p in plan if p["kind"] == "mixture"]
    binaries = [p for p in hidden if len(p["fractions"]) == 2]
    assert len(binaries) >= 10 and all(min(p["fractions"].values()) >= 0.3 for p in binaries)
    assert sum(len(p["fractions"]) == 3 for p in hidden) >= 2
    assert {"Li2CO3": 0.6, "Li3N": 0.4} in [p["fractions"] for p in hidden]
    anodes = [p for p in plan if p["kind"] == "anode"]
    assert len(anodes) >= 3 and max(p["fractions"].get("Li3N", 0) for p in anodes) > 0.6
    for p in plan:
        assert sum(p["fractions"].values()) == pytest.approx(1.0, abs=0.01)


# --- the small campaign --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("spectra")
    rows = simulate_spectra_campaign(
        root / "share", root / "truth", seed=11, size="small", binning=200
    )
    return root, rows


def _truth(root: Path) -> list[dict]:
    with open(root / "truth" / "spectra.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_campaign_sheet_rows_and_truth(small_campaign):
    root, rows = small_campaign
    share = root / "share"
    for r in rows:
        assert set(r) == set(SHEET_COLUMNS)
        assert (share / r["file"]).is_file()
        assert r["project"] == "li-compounds" and r["material"] and r["sample_id"]
        assert r["polarity"] in ("positive", "negative") and r["spot"] >= 1
        assert Path(r["file"]).name.startswith("P_" if r["polarity"] == "positive" else "N_")
    with open(root / "truth" / "spectra.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == ["file", "sample_id", "polarity", "kind", *COMPOUNDS]
    truth = {t["file"]: t for t in _truth(root)}
    spectra = [r for r in rows if "/peak-lists/" not in r["file"]]
    assert set(truth) == {r["file"] for r in spectra}
    kinds = {}
    for r in spectra:
        t = truth[r["file"]]
        assert t["sample_id"] == r["sample_id"] and t["polarity"] == r["polarity"]
        fr = {c: float(t[c]) for c in COMPOUNDS}
        assert sum(fr.values()) == pytest.approx(1.0, abs=0.01)
        kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
        if t["kind"] == "reference":
            assert fr[r["label"]] == 1.0 and r["composition"] == f"{r['label']}:1"
        elif t["kind"] == "calibration":
            assert not r["label"]
            given = dict(
                (k, float(v)) for k, v in (p.split(":") for p in r["composition"].split(","))
            )
            assert given == pytest.approx({c: v for c, v in fr.items() if v > 0})
        else:
            assert t["kind"] in ("mixture", "anode")
            assert not r["label"] and not r["composition"]
    assert kinds["reference"] == 5 * 2 * 2 * 2
    assert kinds["calibration"] >= 4 and kinds["mixture"] >= 2 and kinds["anode"] >= 2


def test_campaign_files_parse_and_follow_their_composition(small_campaign):
    from progral_dagster.readers import iontof_spectrum

    root, rows = small_campaign
    truth = {t["file"]: t for t in _truth(root)}
    # characteristic ions: Li2H+ (LiH), Li2N+ (Li3N) at unit mass in the references
    unit = {}
    for f, t in truth.items():
        if t["kind"] != "reference" or t["polarity"] != "positive":
            continue
        m = iontof_spectrum.read(root / "share" / f)
        tab = m.tables["tof_sims_spectra"].to_pandas()
        assert m.metadata["deadtime_correction"] is True and m.metadata["binning_channels"] == 200
        assert 1.0e6 < tab["intensity"].sum() < 3e7  # counts per spectrum as in real exports
        u = np.bincount(np.floor(tab["mz"] + 0.5).astype(int), weights=tab["intensity"])[:100]
        label = next(c for c in COMPOUNDS if t[c] == "1")
        unit.setdefault(label, []).append(u / u.sum())
    mean = {c: np.mean(v, axis=0) for c, v in unit.items()}
    assert max(mean, key=lambda c: mean[c][15]) == "LiH"
    assert max(mean, key=lambda c: mean[c][37]) == "Li2O"
    assert max(mean, key=lambda c: mean[c][31]) == "LiOH"
    assert max(mean, key=lambda c: mean[c][42]) == "Li3N"
    # ... but every reference shows the shared and surface-film ions
    for c in COMPOUNDS:
        for m_ in (6, 7, 14, 30, 31):
            assert mean[c][m_] > 0


def test_campaign_peak_lists_parse(small_campaign):
    reader = pytest.importorskip("progral_dagster.readers.iontof_peak_list")
    root, rows = small_campaign
    lists = [r for r in rows if "/peak-lists/" in r["file"]]
    assert lists
    for r in lists[:4]:
        m = reader.read(root / "share" / r["file"])
        assert m.tables["tof_sims_peak_lists"].num_rows > 10


@pytest.mark.quality
def test_campaign_is_byte_identical_for_a_seed(small_campaign, tmp_path):
    root, rows = small_campaign

    def digest(share: Path) -> dict[str, str]:
        return {
            str(p.relative_to(share)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(share.rglob("*"))
            if p.is_file()
        }

    again = simulate_spectra_campaign(
        tmp_path / "a" / "share", tmp_path / "a" / "truth", seed=11, size="small", binning=200
    )
    assert again == rows
    assert digest(tmp_path / "a" / "share") == digest(root / "share")
    assert (tmp_path / "a" / "truth" / "spectra.csv").read_bytes() == (
        root / "truth" / "spectra.csv"
    ).read_bytes()
    simulate_spectra_campaign(tmp_path / "b" / "share", None, seed=12, size="small", binning=200)
    other = digest(tmp_path / "b" / "share")
    same = digest(root / "share")
    assert set(other) == set(same)
    assert all(other[k] != same[k] for k in same)
    assert not (tmp_path / "b" / "truth").exists()


@pytest.mark.quality
def test_campaign_matrix_strength_zero_and_uncorrected_exports(tmp_path):
    rows = simulate_spectra_campaign(
        tmp_path / "share", None, seed=3, size="small", binning=200, matrix_strength=0.0,
        deadtime_corrected=False,
    )  # fmt: skip
    first = next(r for r in rows if r["file"].endswith(".txt") and "/peak-lists/" not in r["file"])
    head = (tmp_path / "share" / first["file"]).read_bytes()[:64]
    assert b"# Deadtime Correction: off\r\n" in head
