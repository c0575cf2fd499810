"""XPS physics for the simulator: core-level lines of cathode surface species, Voigt line
shapes, a Shirley-type inelastic background, Scofield sensitivity factors and Poisson counting.

Model (what a measured region contains)
---------------------------------------
The surface is described by the *XPS-apparent* amount of each species (formula units within
the information depth, already weighted by depth attenuation). A species contributes, for every
core level of its elements, a chemical-state component of area

    area = K * (atoms of the element per formula unit) * amount * RSF(core level)

(K: counts x eV per unit, the same for every high-resolution region: equal dwell and scans), so
the true atomic % that an RSF quantification estimates is the atom-weighted apparent amount,
returned by :func:`apparent_composition`. Peaks are Voigt profiles (``scipy.special.
voigt_profile``) with the Gaussian and Lorentzian widths of the table below. The background at
binding energy E is a Shirley-type step: ``k_shirley`` times the peak area accumulated at
binding energies below E (electrons that lost energy appear at apparent higher BE; Shirley,
Phys. Rev. B 5 (1972) 4709), plus a constant floor, so every line lifts the background on its
high-BE side. Counts are Poisson. Sample charging shifts every binding energy by
``charge_shift_ev``.

Energies and sensitivity factors are those of ../shared/SCIENCE.md ("XPS binding energies",
"Scofield sensitivity factors", C 1s referenced to 284.8 eV; the Ni 2p multiplet positions and
satellite intensities of NiO and LiNiO2 are typical literature values, e.g. Biesinger et al.,
Surf. Interface Anal. 41 (2009) 324). Ni 2p: the whole 2p region (2p3/2 + 2p1/2, satellites
included) carries RSF 1.5 x 14.61 (statistical 2:1 spin-orbit branching). Ni 3p (67.8 eV), which
sits next to Li 1s, is included in the survey only; the Li 1s high-resolution window stops below
it (a simplification).

Written for this project; no XPS simulation library is used (none models a cathode's surface
chemistry; the physics is a few lines of numpy/scipy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import voigt_profile

EXCITATION_EV = 1486.6  # Al Ka, monochromated

# Scofield photoionisation cross-sections relative to C 1s (Al Ka), SCIENCE.md.
RSF = {
    "C 1s": 1.0,
    "O 1s": 2.93,
    "F 1s": 4.43,
    "Li 1s": 0.0568,
    "P 2p": 1.19,
    "Ni 2p": 14.61 * 1.5,
    "Ni 3p": 2.0,  # survey only (typical value)
}
CORE_LEVEL_ELEMENT = {k: k.split()[0] for k in RSF}


@dataclass(frozen=True)
class Line:
    """One peak: binding energy, Gaussian and Lorentzian FWHM (eV), share of its state's area."""

    be_ev: float
    g_fwhm: float
    l_fwhm: float
    weight: float = 1.0


def _ni_state(main: list[tuple[float, float, float, float]]) -> tuple[Line, ...]:
    """A Ni 2p3/2 multiplet plus its 2p1/2 replica (+17.3 eV, half the area, broader)."""
    lines = [Line(be, g, lw, w) for be, g, lw, w in main]
    lines += [Line(be + 17.3, g * 1.1, lw * 1.3, w * 0.5) for be, g, lw, w in main]
    return tuple(lines)


# Chemical states: (core level, state) -> lines. Weights within a state need not sum to 1.
STATES: dict[tuple[str, str], tuple[Line, ...]] = {
    ("C 1s", "C-C"): (Line(284.8, 1.05, 0.15),),
    ("C 1s", "C-O"): (Line(286.3, 1.20, 0.15),),
    ("C 1s", "C=O"): (Line(287.7, 1.20, 0.15),),
    ("C 1s", "O-C=O"): (Line(288.9, 1.20, 0.15),),
    ("C 1s", "carbonate"): (Line(290.0, 1.25, 0.15),),
    ("O 1s", "lattice"): (Line(529.0, 1.00, 0.25),),
    ("O 1s", "rock salt"): (Line(529.4, 1.10, 0.25),),
    ("O 1s", "hydroxide"): (Line(531.2, 1.30, 0.25),),
    ("O 1s", "carbonate"): (Line(531.6, 1.30, 0.25),),
    ("O 1s", "organic"): (Line(532.7, 1.50, 0.25),),
    ("O 1s", "fluorophosphate"): (Line(533.4, 1.50, 0.25),),
    ("F 1s", "LiF"): (Line(685.5, 1.50, 0.30),),
    ("F 1s", "fluorophosphate"): (Line(687.3, 1.60, 0.30),),
    ("Li 1s", "lattice"): (Line(54.0, 1.10, 0.10),),
    ("Li 1s", "hydroxide"): (Line(54.9, 1.20, 0.10),),
    ("Li 1s", "carbonate"): (Line(55.4, 1.20, 0.10),),
    ("Li 1s", "LiF"): (Line(56.1, 1.30, 0.10),),
    ("Li 1s", "fluorophosphate"): (Line(55.8, 1.30, 0.10),),
    ("P 2p", "fluorophosphate"): (Line(135.2, 1.10, 0.10, 2.0), Line(136.07, 1.10, 0.10, 1.0)),
    ("Ni 2p", "Ni2+"): _ni_state(
        [(854.6, 1.3, 0.6, 0.42), (856.2, 2.4, 0.8, 0.28), (861.0, 3.6, 1.2, 0.30)]
    ),
    ("Ni 2p", "Ni3+"): _ni_state([(855.6, 2.2, 0.7, 0.72), (862.0, 4.2, 1.2, 0.28)]),
    ("Ni 3p", "all"): (Line(67.8, 2.5, 0.8),),
}

# Species -> (core level, state, atoms of that element per formula unit)
SPECIES: dict[str, tuple[tuple[str, str, float], ...]] = {
    # adventitious carbon, per C atom: C-C/C-O/C=O/O-C=O and their oxygen
    "adventitious": (
        ("C 1s", "C-C", 0.68),
        ("C 1s", "C-O", 0.17),
        ("C 1s", "C=O", 0.05),
        ("C 1s", "O-C=O", 0.10),
        ("O 1s", "organic", 0.17 + 0.05 + 2 * 0.10),
    ),
    "Li2CO3": (("Li 1s", "carbonate", 2), ("C 1s", "carbonate", 1), ("O 1s", "carbonate", 3)),
    "LiOH": (("Li 1s", "hydroxide", 1), ("O 1s", "hydroxide", 1)),
    "LiF": (("Li 1s", "LiF", 1), ("F 1s", "LiF", 1)),
    "LiPO2F2": (
        ("Li 1s", "fluorophosphate", 1),
        ("P 2p", "fluorophosphate", 1),
        ("O 1s", "fluorophosphate", 2),
        ("F 1s", "fluorophosphate", 2),
    ),
    "LiNiO2": (
        ("Li 1s", "lattice", 1),
        ("Ni 2p", "Ni3+", 1),
        ("Ni 3p", "all", 1),
        ("O 1s", "lattice", 2),
    ),
    "NiO": (("Ni 2p", "Ni2+", 1), ("Ni 3p", "all", 1), ("O 1s", "rock salt", 1)),
}

ELEMENTS = ("C", "O", "F", "Li", "P", "Ni")


@dataclass(frozen=True)
class Region:
    """A scanned window: name (VAMAS block id), BE range, step, pass energy, core level."""

    name: str
    core_level: str | None  # None for the survey
    be_low: float
    be_high: float
    step_ev: float
    pass_energy_ev: float
    extra_gauss_ev: float = 0.0  # analyser broadening added in quadrature


HR_REGIONS: tuple[Region, ...] = (
    Region("C 1s", "C 1s", 279.0, 297.0, 0.1, 20.0),
    Region("O 1s", "O 1s", 523.0, 541.0, 0.1, 20.0),
    Region("F 1s", "F 1s", 678.0, 695.0, 0.1, 20.0),
    Region("Li 1s", "Li 1s", 47.0, 63.0, 0.1, 20.0),
    Region("P 2p", "P 2p", 127.0, 143.0, 0.1, 20.0),
    Region("Ni 2p", "Ni 2p", 843.0, 892.0, 0.2, 20.0),
)
SURVEY = Region("Survey", None, 0.0, 1100.0, 1.0, 100.0, extra_gauss_ev=1.6)

# Auger and valence features of the survey: (BE in Al Ka terms, Gaussian FWHM, area relative to
# the parent core level's area). Typical positions.
SURVEY_EXTRAS = (
    ("O 1s", 978.0, 12.0, 0.6),
    ("F 1s", 832.0, 10.0, 0.5),
    ("Ni 2p", 641.0, 14.0, 0.4),
)


def voigt(x: np.ndarray, center: float, g_fwhm: float, l_fwhm: float) -> np.ndarray:
    """Unit-area Voigt profile from Gaussian and Lorentzian FWHMs."""
    sigma = g_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return voigt_profile(x - center, sigma, l_fwhm / 2.0)


def _state_components(amounts: Mapping[str, float]) -> dict[tuple[str, str], float]:
    """(core level, state) -> atoms (apparent amount x stoichiometry)."""
    out: dict[tuple[str, str], float] = {}
    for sp, amount in amounts.items():
        if sp not in SPECIES:
            raise KeyError(f"unknown species {sp!r}; known: {sorted(SPECIES)}")
        for level, state, n in SPECIES[sp]:
            out[(level, state)] = out.get((level, state), 0.0) + n * float(amount)
    return out


def apparent_composition(amounts: Mapping[str, float]) -> dict[str, float]:
    """True quantities an RSF quantification estimates, from the species' apparent amounts.

    Returns ``<El>_at_pct`` for every element of :data:`ELEMENTS` (over those elements),
    ``carbonate_fraction`` (carbonate share of C 1s atoms), ``lif_share`` (LiF share of F atoms),
    ``ni2_fraction`` (Ni2+ share of Ni atoms).
    """
    comp = _state_components(amounts)
    atoms = {el: 0.0 for el in ELEMENTS}
    for (level, _state), n in comp.items():
        if level == "Ni 3p":
            continue
        atoms[CORE_LEVEL_ELEMENT[level]] += n
    total = sum(atoms.values())
    out = {f"{el}_at_pct": 100.0 * atoms[el] / total for el in ELEMENTS}

    def share(level: str, state: str) -> float:
        tot = sum(n for (lv, _s), n in comp.items() if lv == level)
        return comp.get((level, state), 0.0) / tot if tot > 0 else float("nan")

    out["carbonate_fraction"] = share("C 1s", "carbonate")
    out["lif_share"] = share("F 1s", "LiF")
    out["ni2_fraction"] = share("Ni 2p", "Ni2+")
    return out


@dataclass
class XpsBlock:
    """One simulated block: binding energies (ascending) and counts per channel."""

    region: Region
    binding_energy_ev: np.ndarray
    counts: np.ndarray
    dwell_s: float
    scans: int


@dataclass
class SimulatedXps:
    blocks: list[XpsBlock]
    truth: dict[str, float]
    charge_shift_ev: float
    amounts: dict[str, float] = field(default_factory=dict)


def _peaks(comp, region: Region, be: np.ndarray, shift: float, scale: float) -> np.ndarray:
    """Noise-free peak intensity (counts per channel) of the core levels inside ``region``."""
    y = np.zeros_like(be)
    for (level, state), n in comp.items():
        if region.core_level is not None and level != region.core_level:
            continue
        lines = STATES[(level, state)]
        wsum = sum(ln.weight for ln in lines)
        area = scale * n * RSF[level]
        for ln in lines:
            g = float(np.hypot(ln.g_fwhm, region.extra_gauss_ev))
            y += area * ln.weight / wsum * voigt(be, ln.be_ev + shift, g, ln.l_fwhm)
    if region.core_level is None:
        for level, pos, width, rel in SURVEY_EXTRAS:
            n_el = sum(n for (lv, _s), n in comp.items() if lv == level)
            y += scale * n_el * RSF[level] * rel * voigt(be, pos + shift, width, 0.0)
    return y


def _cumulative_area(be: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(y)
    out[1:] = np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(be))
    return out


def simulate_xps(
    amounts: Mapping[str, float],
    rng: np.random.Generator,
    *,
    charge_shift_ev: float = 0.0,
    counts_scale: float = 2.0e5,
    k_shirley: float = 0.04,
    floor_counts: float = 300.0,
    regions: tuple[Region, ...] = HR_REGIONS,
    survey: bool = True,
) -> SimulatedXps:
    """Simulate a survey and high-resolution regions of a surface.

    Parameters
    ----------
    amounts : species -> apparent amount (see :data:`SPECIES`); scale-free
    rng : random generator for the Poisson counts
    charge_shift_ev : added to every binding energy (sample charging)
    counts_scale : K, counts x eV per unit of (atoms x RSF) after normalising the amounts to
        sum to one atom-weighted unit
    k_shirley : Shirley step per unit of accumulated peak area (1/eV)
    floor_counts : constant background floor of the high-resolution regions (counts)
    regions : high-resolution regions to scan
    survey : also scan a survey (0-1100 eV, 1 eV steps, coarser resolution)

    Returns
    -------
    SimulatedXps with blocks (survey first) and ``truth`` from :func:`apparent_composition`.
    """
    comp = _state_components(amounts)
    norm = sum(n for (lv, _s), n in comp.items() if lv != "Ni 3p")
    comp = {k: v / norm for k, v in comp.items()}
    # Background floor from lines at lower BE than each region: Shirley losses of everything
    # below, computed once on a fine grid over the whole range.
    grid = np.arange(0.0, 1100.0, 0.1)
    all_peaks = _peaks(comp, Region("all", None, 0, 1100, 0.1, 0), grid, charge_shift_ev, 1.0)
    losses = k_shirley * counts_scale * _cumulative_area(grid, all_peaks)
    blocks = []
    todo = ([SURVEY] if survey else []) + list(regions)
    for reg in todo:
        be = np.round(np.arange(reg.be_low, reg.be_high + reg.step_ev / 2, reg.step_ev), 6)
        if reg.core_level is None:
            scale = counts_scale / 10.0
            peaks = _peaks(comp, reg, be, charge_shift_ev, scale)
            bg = np.interp(be, grid, losses) / 10.0 + floor_counts / 10.0
            bg += 0.15 * floor_counts * np.exp((be - 1100.0) / 120.0) * 50.0  # secondaries
        else:
            peaks = _peaks(comp, reg, be, charge_shift_ev, counts_scale)
            below = np.interp(reg.be_low, grid, losses)
            bg = floor_counts + below + k_shirley * _cumulative_area(be, peaks)
        counts = rng.poisson(np.maximum(peaks + bg, 0.0)).astype(float)
        blocks.append(XpsBlock(reg, be, counts, dwell_s=0.1 if reg.core_level else 0.05, scans=1))
    return SimulatedXps(
        blocks=blocks,
        truth=apparent_composition(amounts),
        charge_shift_ev=charge_shift_ev,
        amounts=dict(amounts),
    )
