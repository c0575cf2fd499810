"""Peak integration, unit-mass binning, interval lists and ion masses.

Truth: hand-computed trapezoid areas, closed-form integrals, scipy's trapezoid on the same points,
the ion masses SCIENCE.md lists, and the real SurfaceLab mass interval list (its centre masses and
mass deviations in ppm give the theoretical masses SurfaceLab used).
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.integrate import trapezoid

from progral_dagster.processing.ion_masses import ion_mass, ion_polarity, parse_ion
from progral_dagster.processing.peaks import (
    default_intervals,
    integrate_windows,
    interval_table,
    intervals_from_peak_list,
    peak_areas,
    total_counts,
    unit_mass_bins,
    unit_mass_table,
)
from tests.conftest import SAMPLES

PEAK_LIST = SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt"
SPECTRUM = SAMPLES / "sims-iontof" / "P_Ru_Bi1_1.txt"


def peak_list_rows() -> list[dict[str, str]]:
    """The real peak list read with plain csv (rows with all 19 fields; the file may end in a
    NUL byte line)."""
    with open(PEAK_LIST, newline="", encoding="latin-1") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if None not in r.values() and r["No."].strip("\x00")]


# ------------------------------------------------------------------------------------ masses
@pytest.mark.parametrize(
    ("formula", "mass"),
    [
        ("Li+", 7.01545),
        ("Li2O+", 30.02637),
        ("Li2OH+", 31.03420),
        ("Li3O+", 37.04238),
        ("Li2N+", 28.03453),
        ("Li2H+", 15.03928),
        ("OH-", 17.00329),
        ("LiO-", 23.01147),
        ("CO3-", 59.98529),
        ("LiCO3-", 67.00130),
        ("LiF2-", 45.01336),
    ],
)
def test_ion_mass_matches_science_table(formula, mass):
    assert ion_mass(formula) == pytest.approx(mass, abs=1e-4 / 2)


def test_ion_mass_markup_and_isotopes():
    # 6Li+ = 6Li atom minus an electron: 6.0151229 - 0.00054858
    assert ion_mass("6Li+") == pytest.approx(6.0151229 - 0.00054858, abs=2e-6)
    assert ion_mass("^6Li+") == ion_mass("6Li+") == ion_mass("[6Li]+")
    assert ion_mass("Li_2CO_3-") == pytest.approx(ion_mass("Li2CO3-"))
    assert ion_polarity("Li2+") == "positive" and parse_ion("Li2+").charge == 1
    assert ion_polarity("CN-") == "negative"
    with pytest.raises(ValueError, match="unknown element"):
        ion_mass("Xx-")
    with pytest.raises(ValueError):
        ion_mass("li2-")


def test_ion_masses_reproduce_surfacelab_theoretical_masses():
    """SurfaceLab's mass deviation (ppm) = (centre - theoretical) / theoretical: every assigned
    peak whose formula we can parse must give back SurfaceLab's theoretical mass within 1 ppm."""
    rows = peak_list_rows()
    checked = 0
    for r in rows:
        name = r["Assignment"].strip()
        if name in ("", "(null)"):
            continue
        centre = float(r["Center Mass (u)"])
        theo = centre / (1 + float(r["Mass Deviation (ppm)"]) * 1e-6)
        try:
            m = ion_mass(name)
        except ValueError:
            continue
        assert abs(m - theo) / theo < 1e-6, (name, m, theo)
        checked += 1
    assert checked > 250  # nearly all of the 320 assignments use elements we know


# ------------------------------------------------------------------------------- integration
def test_trapezoid_by_hand():
    # points (mz, counts): a triangle 0,4,0 at m/z 10.0, 10.1, 10.2 plus flat zeros
    mz = np.array([9.9, 10.0, 10.1, 10.2, 10.3])
    y = np.array([0.0, 0.0, 4.0, 0.0, 0.0])
    # over m/z: triangle area = 0.2 * 4 / 2 = 0.4
    a = integrate_windows(mz, y, [9.95], [10.25], variable="mz")
    assert a[0, 0] == pytest.approx(0.4)
    # over channels: the triangle spans 2 channels -> 4 counts
    assert integrate_windows(mz, y, [9.95], [10.25])[0, 0] == pytest.approx(4.0)
    # half window [10.1, 10.25] holds half the triangle
    assert integrate_windows(mz, y, [10.1], [10.3])[0, 0] == pytest.approx(2.0)
    # window edge inside a channel: [10.05, 10.1] in m/z units:
    # y(10.05) = 2, trapezoid 0.05 * (2 + 4) / 2 = 0.15
    assert integrate_windows(mz, y, [10.05], [10.1], variable="mz")[0, 0] == pytest.approx(0.15)
    # windows outside the spectrum integrate to zero
    assert integrate_windows(mz, y, [1.0, 20.0], [2.0, 30.0]).tolist() == [[0.0, 0.0]]


def test_integration_equals_closed_form_and_scipy():
    x = np.linspace(0.0, 10.0, 2001)
    y = np.exp(-0.5 * ((x - 5.0) / 0.2) ** 2)
    # window on grid points -> exactly scipy's trapezoid on the same points
    i0, i1 = np.searchsorted(x, [4.0, 6.0])
    got = integrate_windows(x, y, [x[i0]], [x[i1]], variable="mz")[0, 0]
    assert got == pytest.approx(trapezoid(y[i0 : i1 + 1], x[i0 : i1 + 1]), rel=1e-12)
    # a wide window approaches the Gaussian integral sqrt(2 pi) sigma
    full = integrate_windows(x, y, [3.0], [7.0], variable="mz")[0, 0]
    assert full == pytest.approx(np.sqrt(2 * np.pi) * 0.2, rel=1e-4)


def test_layouts_agree_shared_ragged_2d():
    rng = np.random.default_rng(1)
    n, c = 7, 300
    mz = np.sort(rng.uniform(1, 60, c))
    Y = rng.poisson(20, (n, c)).astype(float)
    lo = np.array([2.0, 10.0, 30.5, 59.0])
    hi = np.array([3.0, 12.5, 31.0, 80.0])
    shared = integrate_windows(mz, Y, lo, hi)
    two_d = integrate_windows(np.tile(mz, (n, 1)), Y, lo, hi)
    ragged = integrate_windows(np.tile(mz, n), Y.ravel(), lo, hi, offsets=np.arange(n + 1) * c)
    np.testing.assert_allclose(shared, two_d, rtol=1e-12)
    np.testing.assert_allclose(shared, ragged, rtol=1e-9)
    # one spectrum at a time (plain numpy interpolation + trapezoid, an independent route)
    for s in range(n):
        for k in range(lo.size):
            a, b = max(lo[k], mz[0]), min(hi[k], mz[-1])
            inside = (mz > a) & (mz < b)
            u = np.concatenate([[a], mz[inside], [b]])
            ch = np.interp(u, mz, np.arange(c, dtype=float))
            yy = np.interp(u, mz, Y[s])
            assert shared[s, k] == pytest.approx(trapezoid(yy, ch), rel=1e-9)


def test_ragged_spectra_of_different_lengths_and_axes():
    a_mz, a_y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    b_mz, b_y = np.array([0.5, 1.5, 2.5, 3.5, 4.5]), np.array([0.0, 2.0, 2.0, 2.0, 0.0])
    mz = np.concatenate([a_mz, b_mz, [7.0]])
    y = np.concatenate([a_y, b_y, [5.0]])
    out = integrate_windows(mz, y, [1.0, 0.0], [3.0, 10.0], offsets=[0, 3, 8, 9])
    # spectrum a: 2 channel steps of height 1 inside [1, 3] and in the whole spectrum
    assert out[0].tolist() == pytest.approx([2.0, 2.0])
    # b on [1, 3] over channels: 1.0->1.5 is half a channel from y=1 to y=2 (0.75), 1.5->2.5 a
    # channel at 2 (2.0), 2.5->3.0 half a channel at 2 (1.0)
    assert out[1, 0] == pytest.approx(0.75 + 2.0 + 1.0)
    # b whole: steps (0,2), (2,2), (2,2), (2,0) -> 1 + 2 + 2 + 1
    assert out[1, 1] == pytest.approx(6.0)
    assert out[2].tolist() == [0.0, 0.0]  # a single point has no width


def test_unsorted_spectrum_rejected():
    with pytest.raises(ValueError, match="non-decreasing"):
        integrate_windows(np.array([1.0, 3.0, 2.0]), np.ones(3), [1.0], [2.0], offsets=[0, 3])


def test_vectorised_integration_of_100k_spectra_is_fast():
    n, c = 100_000, 200
    mz = np.linspace(1.0, 100.0, c)
    Y = np.ones((n, c), dtype=float)
    iv = default_intervals()
    t = time.perf_counter()
    A = integrate_windows(mz, Y, iv["lower_mass_u"], iv["upper_mass_u"])
    dt = time.perf_counter() - t
    # constant spectrum: area = window width in channels
    ch = np.interp(iv["upper_mass_u"], mz, np.arange(c)) - np.interp(
        iv["lower_mass_u"], mz, np.arange(c)
    )
    np.testing.assert_allclose(A[-1], ch, rtol=1e-9, atol=1e-12)
    assert dt < 5.0, f"{dt:.2f} s for 100,000 spectra"


# ---------------------------------------------------------------------------- unit mass bins
def test_unit_mass_bins_by_hand():
    mz = np.array([0.65, 1.2, 1.49, 1.51, 2.0, 2.49, 3.6])
    y = np.array([100.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    counts, nominal = unit_mass_bins(mz, y, mz_min=1, mz_max=3)
    assert nominal.tolist() == [1, 2, 3]
    assert counts.tolist() == [[100.0 + 1 + 2, 4 + 8 + 16, 0.0]]
    shifted, _ = unit_mass_bins(mz, y, mz_min=1, mz_max=3, shift_u=0.2)
    assert shifted.tolist() == [[1.0 + 2 + 4, 8 + 16, 32.0]]


# --------------------------------------------------------------------------------- intervals
def test_default_intervals_are_disjoint_and_cover_ions():
    iv = default_intervals()
    for pol, g in iv.groupby("polarity"):
        g = g.sort_values("center_mass_u")
        assert (g["lower_mass_u"] < g["center_mass_u"]).all()
        assert (g["upper_mass_u"] > g["center_mass_u"]).all()
        assert (g["lower_mass_u"].to_numpy()[1:] >= g["upper_mass_u"].to_numpy()[:-1]).all(), pol
    row = iv.set_index("assignment").loc["Li2OH+"]
    assert row["center_mass_u"] == pytest.approx(31.03420, abs=1e-4)
    assert set(default_intervals("negative")["polarity"]) == {"negative"}
    with pytest.raises(ValueError, match="duplicate"):
        interval_table(["a", "a"], [1, 2], [1.5, 2.5])
    with pytest.raises(ValueError, match="lower bound"):
        interval_table(["a"], [2], [1])


def test_intervals_from_real_peak_list():
    rows = [r for r in peak_list_rows() if r["Description"] != "total"]
    rows = [r for r in rows if r["Lower Mass (u)"] not in ("nan", "")]
    rd = pytest.importorskip("progral_dagster.readers.iontof_peak_list")
    table = rd.read(PEAK_LIST).tables["tof_sims_peak_lists"]
    iv = intervals_from_peak_list(table)
    assert len(iv) == len(rows)
    np.testing.assert_allclose(iv["lower_mass_u"], [float(r["Lower Mass (u)"]) for r in rows])
    np.testing.assert_allclose(iv["upper_mass_u"], [float(r["Upper Mass (u)"]) for r in rows])
    assert iv["assignment"].is_unique
    assert iv.set_index("assignment").loc["CO_3-", "polarity"] == "negative"


# ----------------------------------------------------------------------------- long tables
def test_peak_areas_of_real_spectrum_match_channel_sums():
    """Windows whose edges sit exactly half-way between bins: the trapezoid over channels then
    equals the plain sum of the bins inside (read off the file with csv, independently)."""
    with open(SPECTRUM, newline="", encoding="latin-1") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln and not ln.startswith("#")]
    data = np.array([[float(v) for v in ln.split("\t")] for ln in lines[1:]])
    mz, y = data[:, 1], data[:, 2]
    from progral_dagster.readers.iontof_spectrum import read

    table = read(SPECTRUM).tables["tof_sims_spectra"]
    long = table.append_column("measurement_id", pa.array(["m1"] * table.num_rows))
    # choose windows [k0, k1] on bin centres: trapezoid = sum - ends/2
    picks = [(1000, 1040), (2000, 2100), (4000, 4400)]
    iv = interval_table(
        [f"w{i}" for i in range(3)], [mz[a] for a, _ in picks], [mz[b] for _, b in picks]
    )
    got = peak_areas(long, iv).loc["m1"].to_numpy()
    want = [y[a : b + 1].sum() - (y[a] + y[b]) / 2 for a, b in picks]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert total_counts(long).loc["m1"] == pytest.approx(y.sum())
    um = unit_mass_table(long, mz_max=300)
    assert um.loc["m1"].sum() == pytest.approx(y[(mz >= 0.5) & (mz < 300.5)].sum())


def test_peak_areas_long_table_interleaved_rows():
    df = pd.DataFrame(
        {
            "measurement_id": ["a", "b", "a", "b", "a", "b"],
            "mz": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
            "intensity": [1.0, 10.0, 1.0, 10.0, 1.0, 10.0],
        }
    )
    iv = interval_table(["x"], [1.0], [3.0])
    out = peak_areas(df, iv)
    assert out.index.tolist() == ["a", "b"]
    assert out["x"].tolist() == [2.0, 20.0]


def test_spectra_features_from_long_table_known_peaks():
    """Two spectra per polarity with Gaussian peaks of known counts at exact ion masses: TIC-
    normalised features equal counts / total; the record travels with the Arrow table."""
    import json

    from progral_dagster.processing.ion_masses import ion_mass
    from progral_dagster.processing.spectral_features import FeatureTable, spectra_features

    mz = np.linspace(1.0, 90.0, 200_001)  # 0.000445 u steps
    peaks = {
        "p1": ("positive", {"Li+": 9000.0, "Li2OH+": 300.0}),
        "p2": ("positive", {"Li+": 5000.0, "Li3O+": 700.0}),
        "n1": ("negative", {"OH-": 4000.0, "CO3-": 800.0}),
    }
    frames, meta = [], []
    for mid, (pol, ions) in peaks.items():
        y = np.full(mz.size, 0.001)  # flat background
        for ion, n in ions.items():
            m = ion_mass(ion)
            sigma = m / 8000 / 2.355
            dens = np.exp(-0.5 * ((mz - m) / sigma) ** 2)
            y += n * dens / dens.sum()  # exactly n counts spread over the bins
        frames.append(pd.DataFrame({"measurement_id": mid, "mz": mz, "intensity": y}))
        meta.append({"measurement_id": mid, "polarity": pol, "sample_id": mid, "label": "X"})
    long = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    ft = spectra_features(long, pd.DataFrame(meta))
    assert set(ft) == {"positive", "negative"}
    pos = ft["positive"]
    total = {mid: (0.001 * mz.size + sum(p[1].values())) for mid, p in peaks.items()}
    assert pos.meta.loc["p1", "total"] == pytest.approx(total["p1"], rel=1e-9)
    # areas within 0.5 % (background inside the window, Gaussian tails outside it)
    assert pos.X.loc["p1", "Li+"] == pytest.approx(9000 / total["p1"], rel=5e-3)
    assert pos.X.loc["p1", "Li2OH+"] == pytest.approx(300 / total["p1"], rel=5e-3)
    assert pos.X.loc["p2", "Li3O+"] == pytest.approx(700 / total["p2"], rel=5e-3)
    assert pos.X.loc["p2", "Li2OH+"] < 1e-5
    assert ft["negative"].X.loc["n1", "CO3-"] == pytest.approx(800 / total["n1"], rel=5e-3)
    assert "OH-" not in pos.X.columns  # each polarity integrates its own ions
    rec = pos.record
    assert rec["normalization"]["strategy"] == "total_ion_count"
    assert rec["features"]["kind"] == "intervals"
    tbl = pos.to_arrow()
    json.loads(tbl.schema.metadata[b"progral.features"])
    back = FeatureTable.from_arrow(tbl)
    pd.testing.assert_frame_equal(back.X, pos.X, check_names=False)
    # unit-mass features of the same spectra: Li+ sits in bin 7
    um = spectra_features(long, pd.DataFrame(meta), method="unit_mass", strategy="none")
    assert um["positive"].X.loc["p1", "m7"] == pytest.approx(
        9000 + 0.001 * (mz[(mz >= 6.5) & (mz < 7.5)].size), rel=1e-6
    )
