"""Physics of the ToF-SIMS spectrum simulator, checked against published numbers (SCIENCE.md),
the real IONTOF exports, counting statistics and an event-by-event detector simulation."""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.simulate import tof_spectra
from progral_dagster.simulate.li_compounds import (
    COMPOUNDS,
    SENSITIVITY,
    compound_ion_yields,
)
from progral_dagster.simulate.tof_ions import ion_mass, isotope_pattern, parse_formula
from progral_dagster.simulate.tof_spectra import (
    deadtime_correct,
    mass_axis,
    simulate_spectrum,
)
from tests.conftest import SAMPLES

REAL = SAMPLES / "sims-iontof"

# SCIENCE.md, "Numbers for the simulator"
PUBLISHED_MASSES = {
    "7Li+": 7.01545,
    "Li2O+": 30.02637,
    "Li2OH+": 31.03420,
    "Li3O+": 37.04238,
    "Li2N+": 28.03453,
    "Li2H+": 15.03928,
    "OH-": 17.00329,
    "LiO-": 23.01147,
    "CO3-": 59.98529,
    "LiCO3-": 67.00130,
    "LiF2-": 45.01336,
}
LI6, LI7 = 7.59, 92.41

# a deterministic spectrum: no calibration noise, no spot variation
EXACT = dict(spot_variation=0.0, calibration_drift=False, calibration_error_ppm=0.0)


def _real_export(name: str) -> np.ndarray:
    """Channel, m/z, intensity of a real export, read with plain numpy."""
    return np.loadtxt(REAL / name, skiprows=3, delimiter="\t")


def _area(spec, counts, centre, half=0.1):
    """Window sum minus the local background (mean of a side window) times the window size."""
    win = (spec.mz > centre - half) & (spec.mz < centre + half)
    side = (spec.mz > centre - 4 * half) & (spec.mz < centre - 2 * half)
    return counts[win].sum() - counts[side].mean() * win.sum()


def _unit_mass(spec, counts, top=200):
    u = np.floor(spec.mz + 0.5).astype(int)
    return np.bincount(u, weights=counts, minlength=top + 2)[1 : top + 1]


# --- ion masses and isotopes -------------------------------------------------------------------


@pytest.mark.parametrize("ion,mass", sorted(PUBLISHED_MASSES.items()))
def test_ion_mass_matches_published(ion, mass):
    assert ion_mass(ion) == pytest.approx(mass, abs=1e-4)


def test_ion_mass_electron_sign_and_formula_forms():
    # a cation is lighter and an anion heavier than the neutral by one electron mass
    me = 0.000548579909
    assert ion_mass("Li2O") - ion_mass("Li2O+") == pytest.approx(me, abs=1e-9)
    assert ion_mass("Li2O-") - ion_mass("Li2O") == pytest.approx(me, abs=1e-9)
    # the same ion written three ways
    assert ion_mass("Li(OH)2-") == pytest.approx(ion_mass("LiO2H2-"), abs=1e-9)
    assert ion_mass("LiO_2H_2-") == pytest.approx(ion_mass("LiO2H2-"), abs=1e-9)
    # 6Li+ from the SCIENCE.md isotope mass
    assert ion_mass("6Li+") == pytest.approx(6.0151229 - me, abs=1e-6)
    assert ion_mass("^6Li+") == ion_mass("6Li+")
    # formulas of the retention engineer's cathode ions all parse
    for f in ("PO2F2-", "PO3-", "NiO-", "NiO2-", "Ni+", "Mn+", "Co+", "C2H3O+", "LiF2-"):
        assert parse_formula(f)[1] in (1, -1)
    with pytest.raises(ValueError, match="unknown element"):
        ion_mass("Xq+")
    with pytest.raises(ValueError):
        ion_mass("Li(OH-")


def test_isotope_pattern_lithium_and_sum():
    pattern = dict((round(m, 3), a) for m, a in isotope_pattern("Li+"))
    assert pattern[round(ion_mass("6Li+"), 3)] == pytest.approx(LI6 / 100, rel=1e-9)
    assert pattern[round(ion_mass("7Li+"), 3)] == pytest.approx(LI7 / 100, rel=1e-9)
    # Li2+: binomial (6Li share p): 6Li6Li p^2, 6Li7Li 2p(1-p), 7Li7Li (1-p)^2
    p = LI6 / 100
    ab = [a for _m, a in isotope_pattern("Li2+")]
    assert ab == pytest.approx([p * p, 2 * p * (1 - p), (1 - p) ** 2], rel=1e-9)
    for f in ("Li2CO3-", "Li5C2O6+", "NiO2-"):
        total = sum(a for _m, a in isotope_pattern(f))
        assert 0.999 < total <= 1.0 + 1e-12


# --- mass axis ---------------------------------------------------------------------------------


def test_mass_axis_matches_real_export_at_binning_200():
    real = _real_export("N_HEA19_Bi1_1.txt")
    channel, mz = mass_axis(binning=200)
    # same bin centres as the real export (100, 300, 500 ...) over the rows both have
    n = min(len(channel), len(real)) - 1
    np.testing.assert_array_equal(channel[:n], real[:n, 0])
    assert np.all(np.diff(channel[:-1]) == 200)
    # m/z within the calibration difference of the two (sf, k0) pairs
    sel = real[:n, 1] > 1.0
    np.testing.assert_allclose(mz[:n][sel], real[:n, 1][sel], rtol=5e-4)
    assert mz[0] < 0.001 and 895 < mz[-1] < 905
    assert abs(len(channel) - len(real)) < 20


def test_default_binning_has_about_50000_rows():
    channel, mz = mass_axis()
    assert 45_000 < len(channel) < 55_000
    assert np.all(np.diff(channel[:-1]) == 20)


def test_channel_width_grows_as_sqrt_mass():
    channel, mz = mass_axis(binning=200)
    width = np.diff(mz)
    mid = 0.5 * (mz[1:] + mz[:-1])
    sel = (mid > 1) & (mid < 850)
    slope = np.polyfit(np.log(mid[sel]), np.log(width[sel]), 1)[0]
    assert slope == pytest.approx(0.5, abs=0.01)
    # SCIENCE.md: 0.032 u at m/z 7, 0.121 u at m/z 100 at binning 200
    assert np.interp(7.0, mid, width) == pytest.approx(0.032, rel=0.03)
    assert np.interp(100.0, mid, width) == pytest.approx(0.121, rel=0.03)
    # and the real file agrees with the same law
    real = _real_export("P_Ru_Bi1_1.txt")
    rw = np.diff(real[:-1, 1])
    rmid = 0.5 * (real[1:-1, 1] + real[:-2, 1])
    rs = (rmid > 1) & (rmid < 800)
    assert np.polyfit(np.log(rmid[rs]), np.log(rw[rs]), 1)[0] == pytest.approx(0.5, abs=0.01)


# --- peak shapes and resolving power ------------------------------------------------------------


def _fwhm(x, y):
    i = int(np.argmax(y))
    half = y[i] / 2
    lo = i
    while y[lo] > half:
        lo -= 1
    hi = i
    while y[hi] > half:
        hi += 1
    left = np.interp(half, [y[lo], y[lo + 1]], [x[lo], x[lo + 1]])
    right = np.interp(half, [y[hi], y[hi - 1]], [x[hi], x[hi - 1]])
    return right - left


def test_resolving_power_at_mz_28():
    rng = np.random.default_rng(1)
    spec = simulate_spectrum(
        {"Si+": 1.0}, "positive", rng, binning=2, background=0, contamination=0, **EXACT
    )
    sel = (spec.mz > 27.9) & (spec.mz < 28.06)
    r_fine = 27.977 / _fwhm(spec.mz[sel], spec.expected[sel])
    assert 4000 < r_fine < 6000  # the nominal 5000 (FWHM) at m/z 28
    spec20 = simulate_spectrum(
        {"Si+": 1.0}, "positive", rng, background=0, contamination=0, **EXACT
    )
    sel = (spec20.mz > 27.9) & (spec20.mz < 28.06)
    r20 = 27.977 / _fwhm(spec20.mz[sel], spec20.expected[sel])
    assert 2000 < r20 < r_fine  # "several thousand" at the default binning


def test_nominal_mass_interference_resolved_only_at_fine_binning():
    """Li2H+ (15.0393) and CH3+ (15.0229) need m/dm ~ 940: two maxima at binning 20, one at 200."""
    yields = {"Li2H+": 1.0, "CH3+": 1.0}
    kw = dict(background=0, contamination=0, deadtime=False, **EXACT)
    for binning, peaks in ((20, 2), (200, 1)):
        spec = simulate_spectrum(
            yields, "positive", np.random.default_rng(2), binning=binning, **kw
        )
        sel = (spec.mz > 14.95) & (spec.mz < 15.12)
        y = spec.expected[sel]
        maxima = np.flatnonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] > 0.2 * y.max()))
        assert len(maxima) == peaks, (binning, maxima)


# --- counting statistics and dose -------------------------------------------------------------


def test_isotope_ratio_at_low_rate():
    rng = np.random.default_rng(3)
    spec = simulate_spectrum(
        {"Li+": 1.0, "Li2O+": 0.02}, "positive", rng, primary_shots=1e11, total_counts=2e6
    )
    a6 = _area(spec, spec.corrected_counts(), ion_mass("6Li+"))
    a7 = _area(spec, spec.corrected_counts(), ion_mass("7Li+"))
    expected = LI6 / LI7
    sigma = expected * np.sqrt(1 / a6 + 1 / a7)
    assert abs(a6 / a7 - expected) < 4 * sigma
    assert a7 > 1e6  # Li+ carries most of the 2e6 counts


def test_deadtime_distorts_isotope_ratio_and_correction_restores_it():
    rng = np.random.default_rng(4)
    # ~1.5 7Li+ ions per primary shot: the 7Li+ channels saturate
    spec = simulate_spectrum(
        {"Li+": 1.0, "Li2O+": 0.02}, "positive", rng, primary_shots=1e6, total_counts=2e6
    )
    truth = LI6 / LI7
    off = _area(spec, spec.counts, ion_mass("6Li+")) / _area(spec, spec.counts, ion_mass("7Li+"))
    cc = spec.corrected_counts()
    on = _area(spec, cc, ion_mass("6Li+")) / _area(spec, cc, ion_mass("7Li+"))
    assert off > 1.5 * truth  # 7Li+ saturates, the ratio rises
    assert abs(on - truth) < 0.25 * abs(off - truth)  # the correction restores most of it
    assert on > truth * 1.01  # ... but not all: residual distortion at extreme rates
    # a saturated peak also loses its trailing edge: the raw 7Li+ centroid moves to lower mass
    w = (spec.mz > 6.95) & (spec.mz < 7.08)
    exp_c = (spec.mz[w] * spec.expected[w]).sum() / spec.expected[w].sum()
    raw_c = (spec.mz[w] * spec.counts[w]).sum() / spec.counts[w].sum()
    assert raw_c < exp_c


def test_detector_model_matches_event_by_event_simulation():
    """Expected detections of the closed-form dead-time model vs shots simulated one by one."""
    n_cells, window, shots = 1300, 40, 20_000
    x = np.arange(n_cells)
    lam = 2e-5 + sum(
        h * np.exp(-0.5 * ((x - c) / 6.0) ** 2)
        for c, h in ((200, 0.05), (230, 0.02), (700, 0.3), (1200, 0.01))
    )
    rng = np.random.default_rng(5)
    hits = rng.random((shots, n_cells), dtype=np.float32) < -np.expm1(-lam).astype(np.float32)
    last = np.full(shots, -(10**6))
    mc = np.zeros(n_cells)
    for i in range(n_cells):
        det = hits[:, i] & (i - last > window)
        last[det] = i
        mc[i] = det.sum()
    model = tof_spectra._detected_per_cell(lam[None, :], np.array([float(shots)]), window)[0]
    for lo, hi in ((150, 260), (650, 760), (1150, 1260), (300, 650), (760, 1150)):
        m, e = mc[lo:hi].sum(), model[lo:hi].sum()
        assert abs(m - e) < 4 * np.sqrt(e) + 1, (lo, m, e)
    # the 700 peak (up to 0.3 ions per shot and cell) loses counts to dead time
    assert model[650:760].sum() < 0.8 * shots * lam[650:760].sum()
    # the Stephan et al. correction inverts it (window = dead time, one cell per bin)
    corrected = deadtime_correct(mc, shots, window)
    true = shots * lam
    for lo, hi in ((150, 260), (650, 760)):
        assert corrected[lo:hi].sum() == pytest.approx(true[lo:hi].sum(), rel=0.03)


def test_repeated_spots_are_poisson_without_spot_variation():
    def areas(spot_variation):
        out = []
        for k in range(30):
            rng = np.random.default_rng([6, k])
            spec = simulate_spectrum(
                {"Li+": 1.0, "Li2O+": 0.01, "Li3O+": 0.02},
                "positive",
                rng,
                binning=200,
                deadtime=False,
                spot_variation=spot_variation,
            )
            w = (spec.mz > 36.8) & (spec.mz < 37.3)
            out.append(spec.counts[w].sum())
        return np.array(out)

    a = areas(0.0)
    dispersion = a.var(ddof=1) / a.mean()
    # chi-square with 29 dof: var/mean within [0.45, 1.75] with > 99.5 % probability
    assert 0.45 < dispersion < 1.75, dispersion
    b = areas(0.15)
    assert b.var(ddof=1) / b.mean() > 20


def test_counts_scale_with_dose():
    kw = dict(binning=200, total_counts=None, ions_per_shot=0.4, **EXACT)
    full = simulate_spectrum(
        {"Li+": 1.0, "Li2OH+": 0.03}, "positive", np.random.default_rng(7), primary_shots=5e6, **kw
    )
    half = simulate_spectrum(
        {"Li+": 1.0, "Li2OH+": 0.03},
        "positive",
        np.random.default_rng(8),
        primary_shots=2.5e6,
        **kw,
    )
    assert half.counts.sum() / full.counts.sum() == pytest.approx(0.5, abs=0.01)
    assert half.expected.sum() / full.expected.sum() == pytest.approx(0.5, rel=1e-4)
    w = (full.mz > 30.8) & (full.mz < 31.3)
    assert half.counts[w].sum() / full.counts[w].sum() == pytest.approx(0.5, abs=0.05)


def test_background_and_contamination_present():
    spec = simulate_spectrum({"Li+": 1.0}, "positive", np.random.default_rng(9), binning=200)
    u = _unit_mass(spec, spec.counts, 800)
    # hydrocarbon ladder and Na+ appear although only Li+ was asked for
    for m in (15, 23, 27, 29, 41, 43):
        assert u[m - 1] > 200, m
    # high-mass background: a few counts per bin, as in the real exports
    hi = (spec.mz > 600) & (spec.mz < 900)
    assert 0.05 < spec.counts[hi].mean() < 20


def test_wrong_polarity_rejected():
    with pytest.raises(ValueError, match="does not belong"):
        simulate_spectrum({"OH-": 1.0}, "positive", np.random.default_rng(0))


# --- compounds and matrix effects ---------------------------------------------------------------


def test_matrix_strength_zero_is_linear_mixing_of_yields():
    mix = {"LiH": 0.5, "Li2O": 0.5}
    for pol in ("positive", "negative"):
        lin = compound_ion_yields(mix, pol, matrix_strength=0.0)
        pure = [compound_ion_yields({c: 1.0}, pol) for c in mix]
        for ion in set(lin) | {i for p in pure for i in p}:
            assert lin.get(ion, 0.0) == pytest.approx(sum(0.5 * p.get(ion, 0.0) for p in pure))
        nonlin = compound_ion_yields(mix, pol, matrix_strength=1.0)
        assert max(abs(nonlin.get(i, 0) - lin.get(i, 0)) / lin[i] for i in lin) > 0.2


def _mixture_fit(a, b, pol, matrix_strength):
    """NNLS fit of a noisy 1:1 mixture spectrum with the noise-free pure spectra (unit mass)."""
    from scipy.optimize import nnls

    kw = dict(binning=200, deadtime=False, **EXACT)
    rng = np.random.default_rng(10)
    pure = []
    for c in (a, b):
        s = simulate_spectrum(compound_ion_yields({c: 1.0}, pol), pol, rng, total_counts=1e9, **kw)
        pure.append(_unit_mass(s, s.expected) / 1e9)
    yields = compound_ion_yields({a: 0.5, b: 0.5}, pol, matrix_strength=matrix_strength)
    mix = simulate_spectrum(yields, pol, rng, total_counts=2e6, **kw)
    y = _unit_mass(mix, mix.counts)
    design = np.stack(pure, axis=1)
    w, _ = nnls(design, y)
    fit = design @ w
    m = fit > 5
    chi2 = ((y - fit) ** 2 / fit)[m].sum() / (m.sum() - 2)
    return chi2, w / w.sum()


@pytest.mark.parametrize("pol", ["positive", "negative"])
def test_mixture_is_not_a_linear_sum_with_matrix_effects(pol):
    chi2_lin, w_lin = _mixture_fit("LiH", "Li2O", pol, 0.0)
    chi2_mat, w_mat = _mixture_fit("LiH", "Li2O", pol, 1.0)
    assert chi2_lin < 1.5  # linear mixing: the pure spectra explain the mixture to the noise
    assert chi2_mat > 3.0  # matrix effect: residuals well above the counting noise
    # linear mixing: weights are the composition-weighted signal shares
    s = SENSITIVITY[pol]
    assert w_lin[0] == pytest.approx(s["LiH"] / (s["LiH"] + s["Li2O"]), abs=0.02)
    if pol == "positive":
        # published: 1:1 LiH + Li2O read as 0.83 Li2O / 0.14 LiH
        assert 0.08 < w_mat[0] < 0.25


def test_carbonate_hydroxide_pair_reads_close_to_published():
    _chi2, w = _mixture_fit("Li2CO3", "LiOH", "positive", 1.0)
    assert w[0] == pytest.approx(0.54, abs=0.04)  # published 0.54 / 0.46


@pytest.mark.quality
def test_pca_places_mixtures_between_their_components():
    from sklearn.decomposition import PCA

    def scaled(spec):
        u = _unit_mass(spec, spec.corrected_counts())
        return (u - u.min()) / (u.max() - u.min())

    X, labels = [], []
    for k, c in enumerate(COMPOUNDS):
        for spot in range(4):
            rng = np.random.default_rng([11, k, spot])
            y = compound_ion_yields({c: 1.0}, "positive", rng=rng)
            X.append(scaled(simulate_spectrum(y, "positive", rng, binning=200)))
            labels.append(c)
    pairs = [("Li2CO3", "LiOH"), ("LiH", "Li2O"), ("Li3N", "Li2O"), ("LiH", "LiOH")]
    for k, (a, b) in enumerate(pairs):
        for spot in range(3):
            rng = np.random.default_rng([12, k, spot])
            y = compound_ion_yields({a: 0.5, b: 0.5}, "positive", rng=rng)
            X.append(scaled(simulate_spectrum(y, "positive", rng, binning=200)))
            labels.append(f"{a}+{b}")
    X, labels = np.array(X), np.array(labels)
    z = PCA(n_components=3).fit_transform(X)
    centre = {name: z[labels == name].mean(axis=0) for name in set(labels)}
    for a, b in pairs:
        pa, pb, pm = centre[a], centre[b], centre[f"{a}+{b}"]
        d = pb - pa
        t = (pm - pa) @ d / (d @ d)
        off_line = np.linalg.norm(pm - pa - t * d) / np.linalg.norm(d)
        assert 0.1 < t < 0.95, (a, b, t)
        assert off_line < 0.25, (a, b, off_line)
    # the references are not trivially separable: the spread of each reference's spots is
    # a noticeable fraction of the distances between references
    spread = np.mean([np.linalg.norm(z[labels == c] - centre[c], axis=1).mean() for c in COMPOUNDS])
    nearest = min(
        np.linalg.norm(centre[a] - centre[b])
        for i, a in enumerate(COMPOUNDS)
        for b in COMPOUNDS[i + 1 :]
    )
    assert spread > 0.02 * nearest
