"""Time-of-flight SIMS spectrum physics: ion yields -> binned counts on an IONTOF mass axis.

The simulator works on a fine grid of time-of-flight channels (a few raw 50 ps channels per
cell), puts every isotopologue of every ion there as a peak of finite width, adds the chemical
continuum and random background, lets the detector lose ions to its dead time shot by shot,
bins to the export binning and draws the counts.

Effects, their default strengths and where the numbers come from:

=============================  =========================  =====================================
effect                         default                    source / reasoning
=============================  =========================  =====================================
mass axis                      channel = 32,985 sqrt(m)   fit of the real exports in
                               - 365 (50 ps channels),    shared/samples (P_Ru_Bi1_1,
                               per spectrum +-0.03 % sf,  N_HEA19_Bi1_1: sf 32,966 / 32,985,
                               +-3 channels k0            k0 -363 / -368)
m/z column calibration error   20 ppm rms                 analyst's calibration on a few
                                                          low-mass peaks; the real peak list
                                                          shows deviations of 1 to 100 ppm
peak shape                     tailed Gaussian in time,   bunched-pulse-limited regime: a
                               m/dm = 5,000 at m/z 28,    constant time width (~0.9 ns), so
                               exponential tail tau =     m/dm grows as sqrt(m); tails to long
                               0.6 core FWHM, plus 3 % in flight times as in real ToF peaks
                               a long tail (tau = 8 FWHM) (the real peak list's windows reach
                                                          further above than below the centre)
isotopes                       natural abundances         tof_ions (IUPAC)
Poisson counting               on                         counting statistics
detector dead time             65 ns (1,300 channels),    SCIENCE.md; a per-shot,
                               non-paralysable, per shot  non-paralysable TDC model, the one the
                                                          Stephan et al. (1994) correction
                                                          inverts
primary-pulse fluctuation      30 % rms (gamma)           assumption (LMIG pulse-to-pulse
                                                          current noise); makes the Poisson-
                                                          based correction imperfect at
                                                          extreme rates, as in practice
secondary ions per shot        0.4 (so 5e6 shots for      keeps Li+ near 0.1-0.3 ions/shot:
                               2e6 counts)                moderate saturation, as in spectra
                                                          of Li compounds
background continuum          3 % of counts: 40 % flat    real exports: ~1 count/bin at high
                               in time (dark counts),     mass, a broad hump of unresolved
                               60 % a smooth hump in m    cluster ions (N_HEA19)
adventitious contamination     5 % of counts              hydrocarbons (CnHm ladder), Na+, K+,
                                                          PDMS (Si+, SiC3H9+), Cl-, CN-, O-,
                                                          OH- ...: present on every real surface
spot-to-spot yield variation   15 % lognormal per ion     Zhao et al. report spot-to-spot
                                                          variation of reference spectra; 10 to
                                                          20 % is typical of static SIMS
=============================  =========================  =====================================

Nominal-mass interferences follow from the masses: Li2N+ (28.0345) vs Si+ (27.9769), CO+
(27.9944), N2+ (28.0056), C2H4+ (28.0308); Li2H+ (15.0393) vs CH3+ (15.0229), resolved only
where the binning and resolving power allow.

Why not a library: no maintained Python package simulates ToF-SIMS spectra (pySPM reads and
calibrates real data, it does not simulate); the physics is a few vectorised numpy steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .tof_ions import ion_charge, isotope_pattern

SF = 32985.0  # channels per sqrt(u) (real exports)
K0 = -365.0  # channel offset (real exports)
CHANNEL_NS = 0.05  # raw channel width, ns (65 ns dead time = 1,300 channels)
DEADTIME_NS = 65.0
REF_MZ = 28.0  # m/z at which resolving_power is quoted
POLARITIES = ("positive", "negative")

# Adventitious contamination on every sample: (ion, relative yield). Hydrocarbon ladders are
# added by _hydrocarbons(). Relative amounts are assumptions shaped after typical spectra
# (and the real P_Ru export: Na+, K+, C2H3+, C3H5+, C3H7+ among its strongest peaks).
_CONTAMINATION = {
    "positive": {
        "H+": 0.04,
        "C+": 0.01,
        "CH+": 0.01,
        "CH2+": 0.02,
        "CH3+": 0.06,
        "Na+": 0.20,
        "K+": 0.05,
        "Si+": 0.03,
        "CO+": 0.01,
        "N2+": 0.005,
        "SiCH3+": 0.01,
        "SiC3H9+": 0.02,
        "Si2C5H15O+": 0.006,
        "C2H3O+": 0.02,
        "Ca+": 0.01,
    },
    "negative": {
        "H-": 0.10,
        "C-": 0.05,
        "CH-": 0.06,
        "CH2-": 0.01,
        "O-": 0.08,
        "OH-": 0.06,
        "F-": 0.02,
        "Cl-": 0.08,
        "CN-": 0.03,
        "CNO-": 0.01,
        "CHO2-": 0.01,
        "C2H3O2-": 0.01,
        "S-": 0.005,
    },
}


def _hydrocarbons(polarity: str) -> dict[str, float]:
    """CnHm ladder: positive CnH(2n-3..2n+1)+, negative Cn- / CnH-; yields fall with n."""
    out: dict[str, float] = {}
    if polarity == "positive":
        for n in range(2, 13):
            base = 0.12 * np.exp(-(n - 2) / 2.2)
            for k, w in ((-3, 0.25), (-1, 0.6), (1, 1.0), (3, 0.7), (5, 0.3)):
                h = 2 * n + k - 2
                if h > 0:
                    out[f"C{n}H{h}+"] = out.get(f"C{n}H{h}+", 0.0) + base * w
    else:
        for n in range(2, 13):
            base = 0.10 * np.exp(-(n - 2) / 3.0)
            out[f"C{n}-"] = base
            out[f"C{n}H-"] = base * (1.3 if n % 2 == 0 else 0.6)
    return out


def contamination_yields(polarity: str) -> dict[str, float]:
    """Relative yields of the adventitious contamination ions (sum 1) for a polarity."""
    pol = _polarity(polarity)
    d = dict(_CONTAMINATION[pol])
    for k, v in _hydrocarbons(pol).items():
        d[k] = d.get(k, 0.0) + v
    s = sum(d.values())
    return {k: v / s for k, v in d.items()}


@dataclass
class SimulatedSpectrum:
    """One simulated spectrum on the export's mass axis.

    Attributes
    ----------
    channel : bin centres in raw time-of-flight channel units (the export's Channel column)
    mz : the export's m/z column (the analyst's calibration, not exactly the true one)
    counts : detected counts per bin, before any dead-time correction
    polarity : ``positive`` or ``negative``
    metadata : binning, primary_shots, deadtime_channels, calibration, ion list ...
    expected : expected counts per bin without dead-time losses and noise (ground truth)
    """

    channel: np.ndarray
    mz: np.ndarray
    counts: np.ndarray
    polarity: str
    metadata: dict = field(default_factory=dict)
    expected: np.ndarray | None = None

    @property
    def binning(self) -> int:
        return int(self.metadata["binning"])

    def corrected_counts(self) -> np.ndarray:
        """Counts after SurfaceLab's dead-time correction (see :func:`deadtime_correct`); the
        counts themselves when the spectrum was simulated without dead time."""
        if not self.metadata.get("deadtime", True):
            return np.asarray(self.counts, dtype=float).copy()
        return deadtime_correct(
            self.counts,
            self.metadata["primary_shots"],
            self.metadata["deadtime_channels"] / self.binning,
        )


def _polarity(polarity: str) -> str:
    p = {"+": "positive", "-": "negative", "pos": "positive", "neg": "negative"}.get(
        polarity, polarity
    )
    if p not in POLARITIES:
        raise ValueError(f"polarity must be 'positive' or 'negative', not {polarity!r}")
    return p


def mz_to_channel(mz: np.ndarray | float, sf: float = SF, k0: float = K0) -> np.ndarray:
    """Time-of-flight channel of an m/z: ``sf * sqrt(m) + k0``."""
    return sf * np.sqrt(mz) + k0


def channel_to_mz(channel: np.ndarray | float, sf: float = SF, k0: float = K0) -> np.ndarray:
    """m/z of a channel: ``((channel - k0) / sf) ** 2``."""
    return ((np.asarray(channel, dtype=float) - k0) / sf) ** 2


def n_raw_channels(mz_max: float = 900.0, cell: int = 1) -> int:
    """Raw channels of an acquisition reaching ``mz_max`` at the nominal calibration (rounded
    up to whole ``cell``s): fixed by the cycle time, so the same for every spectrum."""
    n = int(np.ceil(float(mz_to_channel(mz_max))))
    return -(-n // cell) * cell


def _cell_size(binning: int) -> int:
    """Fine-grid cell (raw channels): the largest divisor of the binning up to 5 channels
    (a third of a peak width at the default resolving power), or up to a tenth of the
    binning for coarse binnings."""
    limit = max(5, binning // 10)
    return max(g for g in range(1, limit + 1) if binning % g == 0)


def bin_edges(binning: int = 20, mz_max: float = 900.0) -> np.ndarray:
    """Bin edges in raw channels: 0, binning, 2 binning, ..., the last bin possibly partial."""
    n_raw = n_raw_channels(mz_max, _cell_size(binning))
    return np.append(np.arange(0, n_raw, binning), n_raw).astype(float)


def mass_axis(
    binning: int = 20, mz_max: float = 900.0, sf: float = SF, k0: float = K0
) -> tuple[np.ndarray, np.ndarray]:
    """Export axis: (channel bin centres, m/z) for a binning, as SurfaceLab writes it.

    ``binning`` raw channels per row; the channel column is the bin centre (100, 300, ... at
    binning 200), the m/z column ``((channel - k0) / sf) ** 2``; the last bin may be partial.
    """
    if int(binning) < 1:
        raise ValueError("binning must be a positive number of channels")
    edges = bin_edges(int(binning), mz_max)
    centres = 0.5 * (edges[:-1] + edges[1:])
    return centres, channel_to_mz(centres, sf, k0)


def deadtime_correct(counts: np.ndarray, primary_shots: float, deadtime_bins: float) -> np.ndarray:
    """Dead-time correction as SurfaceLab applies it on export (Stephan et al. 1994, as cited by
    pySPM): ``I = -N ln(1 - I'/N')``, N the primary shots, N' = N less the counts in the
    dead-time window before the bin (``deadtime_bins`` bins, rounded).

    Applied to the binned spectrum; where a window is not a whole number of bins, or the
    primary pulses fluctuate, a residual distortion remains at extreme rates.
    """
    c = np.asarray(counts, dtype=float)
    n = float(primary_shots)
    w = max(int(np.floor(deadtime_bins + 0.5)), 1)
    cs = np.concatenate(([0.0], np.cumsum(c)))
    idx = np.arange(c.size)
    window = cs[idx] - cs[np.maximum(idx - w, 0)]
    live = np.maximum(n - window, 1.0)
    frac = np.minimum(c / live, 1.0 - 0.5 / live)
    return -n * np.log1p(-frac)


def _emg_cdf(x: np.ndarray, sigma: float, tau: float) -> np.ndarray:
    """CDF of a Gaussian (sigma) convolved with an exponential (tau), at offsets x."""
    from scipy import special  # slow to import: only when simulating

    u = x / sigma
    lam = sigma / tau
    log_tail = -x / tau + 0.5 * lam * lam + special.log_ndtr(u - lam)
    return special.ndtr(u) - np.exp(np.minimum(log_tail, 50.0))


@lru_cache(maxsize=16)
def _continuum_shape(g: int, ncell: int, polarity: str) -> np.ndarray:
    """Background per fine cell, sum 1: 40 % flat in time (dark counts, stray ions), 60 % a
    broad hump in m/z of unresolved cluster and fragment ions (nominal calibration)."""
    cell_mid = (np.arange(ncell) + 0.5) * g
    m_cell = channel_to_mz(cell_mid)
    dm = 2.0 * np.sqrt(m_cell) / SF * g  # u per cell
    hump_scale = 150.0 if polarity == "negative" else 110.0
    hump = np.exp(-m_cell / hump_scale) * -np.expm1(-m_cell / 8.0) * dm
    shape = 0.4 / ncell + 0.6 * hump / hump.sum()
    shape.setflags(write=False)
    return shape


@lru_cache(maxsize=16)
def _emg_fwhm_factor(tail: float) -> float:
    """FWHM of a unit-FWHM Gaussian convolved with an exponential of tau = ``tail``."""
    if tail <= 0:
        return 1.0
    sigma = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    x = np.linspace(-3.0, 3.0 + 25.0 * tail, 200_001)
    pdf = np.diff(_emg_cdf(x, sigma, tail))
    above = np.flatnonzero(pdf >= pdf.max() / 2.0)
    return float(x[above[-1]] - x[above[0]])


@lru_cache(maxsize=64)
def _gamma_nodes(cv: float, k: int) -> tuple[float, ...]:
    """k equal-weight nodes of a mean-1 gamma distribution with relative spread cv."""
    from scipy import stats  # slow to import; needed once per process

    if cv <= 0:
        return (1.0,)
    a = 1.0 / cv**2
    q = stats.gamma.ppf((np.arange(k) + 0.5) / k, a, scale=1.0 / a)
    return tuple(q / q.mean())


def _detected_per_cell(lam: np.ndarray, shots: np.ndarray, window: int) -> np.ndarray:
    """Expected detections per cell for a non-paralysable per-shot dead time.

    lam : (K, n) expected arrivals per shot and cell for K primary-pulse intensities
    shots : (K,) shots at each intensity
    window : dead time in cells

    Per shot at most one ion is detected in any window, so the live shots at cell i are
    ``N - S_i`` with ``S_i`` the detections in the preceding window, and a live shot detects
    with probability ``1 - exp(-lam_i)``. Within a window-long chunk this first-order linear
    recurrence has a closed form (cumulative sums), so only chunks are looped over, and only
    those with a noticeable rate (or just after one); in the others (< 1e-3 ions per shot in
    the chunk) the shadowing inside the chunk is negligible and they are done in one pass.
    """
    k, n = lam.shape
    nchunk = -(-n // window)
    pad = nchunk * window - n
    if pad:
        lam = np.concatenate([lam, np.zeros((k, pad))], axis=1)
    lam = lam.reshape(k, nchunk, window)
    p = -np.expm1(-lam)
    sh = shots[:, None, None]
    x0 = sh * p  # first order: every shot live
    chunk_rate = lam.sum(axis=2).max(axis=0)
    active = chunk_rate >= 1e-3
    exact = active.copy()
    exact[1:] |= active[:-1]
    # bulk pass: live shots reduced by the first-order counts of the previous chunk's tail
    prev0 = np.concatenate([np.zeros((k, 1, window)), x0[:, :-1]], axis=1)
    tail = prev0.sum(axis=2, keepdims=True) - (np.cumsum(prev0, axis=2) - prev0)
    out = (sh - tail) * p
    sh2 = shots[:, None]
    for c in np.flatnonzero(exact):
        prev = out[:, c - 1] if c > 0 else np.zeros((k, window))
        a = prev.sum(axis=1, keepdims=True) - (np.cumsum(prev, axis=1) - prev)
        e = np.exp(np.minimum(np.cumsum(lam[:, c], axis=1), 700.0))
        cum = np.cumsum((sh2 - a) * p[:, c] * e, axis=1) / e
        out[:, c] = np.diff(cum, axis=1, prepend=0.0)
    return out.reshape(k, -1)[:, :n]


def simulate_spectrum(
    ion_yields: Mapping[str, float],
    polarity: str,
    rng: np.random.Generator,
    *,
    binning: int = 20,
    total_counts: float | None = 2e6,
    resolving_power: float = 5000.0,
    background: float = 0.03,
    contamination: float = 0.05,
    deadtime: bool = True,
    primary_shots: float | None = None,
    ions_per_shot: float = 0.4,
    spot_variation: float = 0.15,
    pulse_fluctuation: float = 0.3,
    tail: float = 0.6,
    long_tail_fraction: float = 0.03,
    calibration_drift: bool = True,
    calibration_error_ppm: float = 20.0,
    mz_max: float = 900.0,
    deadtime_ns: float = DEADTIME_NS,
) -> SimulatedSpectrum:
    """Simulate one ToF-SIMS spectrum (one spot, one polarity).

    Parameters
    ----------
    ion_yields : ion formula -> relative yield (any scale; normalised here). Every ion's
        isotopologues are added with natural abundances; the sign must match ``polarity``.
    polarity : ``positive`` or ``negative``
    rng : the random stream (spot variation, calibration, counting noise)
    binning : raw channels per exported row (20: ~50,000 rows; 200 as in the real exports)
    total_counts : expected secondary ions reaching the detector (before dead-time losses);
        None: ``primary_shots * ions_per_shot`` (a dose-defined spectrum)
    resolving_power : m/dm (FWHM) at m/z 28; the time width is constant, so m/dm ~ sqrt(m)
    background : fraction of the counts in the continuum (flat dark counts + a broad hump)
    contamination : fraction of the counts in adventitious ions (:func:`contamination_yields`)
    deadtime : simulate detector dead time (else plain Poisson counting)
    primary_shots : primary pulses (scans x pixels); default ``total_counts / ions_per_shot``
    spot_variation : lognormal sigma of each ion's yield from spot to spot (0: none)
    pulse_fluctuation : relative rms of the primary pulse intensity (0: Poisson-ideal)
    tail, long_tail_fraction : peak tail (tau in FWHM) and the share in a long tail
    calibration_drift : vary the flight-time calibration from spectrum to spectrum
    calibration_error_ppm : rms error of the exported m/z calibration

    Returns
    -------
    SimulatedSpectrum with the uncorrected detected ``counts``, ``expected`` counts (no dead
    time, no noise) and metadata for the export writers.
    """
    pol = _polarity(polarity)
    binning = int(binning)
    if binning < 1:
        raise ValueError("binning must be a positive number of channels")
    if total_counts is None and primary_shots is None:
        raise ValueError("give total_counts or primary_shots")
    if total_counts is None:
        total_counts = float(primary_shots) * ions_per_shot
    total_counts = float(total_counts)
    shots = float(primary_shots) if primary_shots is not None else total_counts / ions_per_shot
    if not (0 <= background < 1 and 0 <= contamination < 1 and background + contamination < 1):
        raise ValueError("background and contamination are fractions with a sum below 1")
    sign = 1 if pol == "positive" else -1
    yields = {}
    for ion, y in ion_yields.items():
        if y < 0:
            raise ValueError(f"negative yield for {ion!r}")
        if y == 0:
            continue
        z = ion_charge(ion)
        if z * sign <= 0:
            raise ValueError(f"ion {ion!r} does not belong in a {pol} spectrum")
        yields[ion] = float(y)
    if not yields and contamination == 0:
        raise ValueError("no ion with a positive yield")

    # --- calibration of this spectrum ------------------------------------------------------
    if calibration_drift:
        sf_true = SF * (1.0 + rng.normal(0.0, 3e-4))
        k0_true = K0 + rng.normal(0.0, 3.0)
    else:
        sf_true, k0_true = SF, K0
    # The analyst calibrates on the observed peaks, whose tails shift them by a constant time
    # (tau of the main component): that shift goes into k0; what remains is a small error.
    # Peak FWHM in raw channels, constant in time; the Gaussian core is narrower so that the
    # tailed peak has the requested m/dm.
    core_fwhm = SF * np.sqrt(REF_MZ) / (2.0 * resolving_power) / _emg_fwhm_factor(float(tail))
    err = calibration_error_ppm * 1e-6
    sf_cal = sf_true * (1.0 + rng.normal(0.0, err / 2)) if err else sf_true
    k0_cal = k0_true + tail * core_fwhm * (1.0 - long_tail_fraction)
    k0_cal += rng.normal(0.0, 1.0) if err else 0.0

    # --- ion list with spot variation ------------------------------------------------------
    parts = []
    peak_share = 1.0 - background - contamination
    for share, table in ((peak_share, yields), (contamination, contamination_yields(pol))):
        if share <= 0 or not table:
            continue
        names = list(table)
        w = np.array([table[k] for k in names])
        if spot_variation > 0:
            w = w * rng.lognormal(0.0, spot_variation, size=w.size)
        w = w / w.sum() * share
        parts.extend(zip(names, w, strict=True))
    if not yields:
        # only contamination: renormalise to the peak share as well
        s = sum(w for _n, w in parts)
        parts = [(n, w / s * (1.0 - background)) for n, w in parts]

    mzs, amps = [], []
    ion_fraction: dict[str, float] = {}
    for name, w in parts:
        ion_fraction[name] = ion_fraction.get(name, 0.0) + float(w)
        for m, a in isotope_pattern(name):
            if m <= mz_max * 1.01:
                mzs.append(m)
                amps.append(w * a)
    mzs_a = np.array(mzs)
    amps_a = np.array(amps) * total_counts

    # --- fine grid ---------------------------------------------------------------------------
    g = _cell_size(binning)
    n_raw = n_raw_channels(mz_max, g)
    ncell = n_raw // g
    mu = np.zeros(ncell)

    sigma = core_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    centres = mz_to_channel(mzs_a, sf_true, k0_true)
    tails = ((1.0 - long_tail_fraction, tail * core_fwhm), (long_tail_fraction, 8.0 * core_fwhm))
    for frac, tau in tails:
        if frac <= 0:
            continue
        lo = -6.0 * sigma
        hi = 6.0 * sigma + 12.0 * tau
        ncl = int(np.ceil((hi - lo) / g)) + 2
        first = np.floor((centres + lo) / g).astype(np.int64)
        cells = first[:, None] + np.arange(ncl)[None, :]
        edges = np.concatenate([cells, cells[:, -1:] + 1], axis=1) * g - centres[:, None]
        cdf = _emg_cdf(edges, sigma, max(tau, 1e-6 * core_fwhm))
        contrib = np.diff(cdf, axis=1) * (amps_a * frac)[:, None]
        ok = (cells >= 0) & (cells < ncell)
        mu += np.bincount(cells[ok], weights=contrib[ok], minlength=ncell)

    if background > 0:
        mu += background * total_counts * _continuum_shape(g, ncell, pol)

    # --- detector -----------------------------------------------------------------------------
    edges = bin_edges(binning, mz_max)
    starts = (edges[:-1] // g).astype(np.int64)
    expected = np.add.reduceat(mu, starts)
    window = max(int(round(deadtime_ns / CHANNEL_NS / g)), 1)
    if deadtime:
        nodes = np.array(_gamma_nodes(float(pulse_fluctuation), 5 if pulse_fluctuation else 1))
        lam = (mu / shots)[None, :] * nodes[:, None]
        per_node = np.full(nodes.size, shots / nodes.size)
        det = _detected_per_cell(lam, per_node, window).sum(axis=0)
        det_bin = np.minimum(np.add.reduceat(det, starts), shots)
        counts = rng.binomial(int(round(shots)), det_bin / shots).astype(float)
    else:
        counts = rng.poisson(expected).astype(float)

    channel = 0.5 * (edges[:-1] + edges[1:])
    mz = channel_to_mz(channel, sf_cal, k0_cal)
    meta = {
        "binning": binning,
        "polarity": pol,
        "primary_shots": shots,
        "total_counts_expected": total_counts,
        "deadtime": bool(deadtime),
        "deadtime_ns": float(deadtime_ns),
        "deadtime_channels": float(deadtime_ns / CHANNEL_NS),
        "resolving_power_28": float(resolving_power),
        "sf_true": float(sf_true),
        "k0_true": float(k0_true),
        "sf": float(sf_cal),
        "k0": float(k0_cal),
        "ion_fraction": ion_fraction,
        "background": float(background),
        "contamination": float(contamination),
    }
    return SimulatedSpectrum(channel, mz, counts, pol, meta, expected)
