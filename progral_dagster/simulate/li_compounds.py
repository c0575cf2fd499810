"""Secondary-ion yields of the five lithium reference compounds and the matrix-effect model.

Follows the workflow and ion list of Zhao et al., ACS Appl. Mater. Interfaces 15 (2023) 50469
(SCIENCE.md, workflow 1): references Li2CO3, Li2O, Li3N, LiH, LiOH; every positive spectrum
dominated by Li+ with Li2+, Li2O+, Li2OH+, Li3O+ ...; negative H-, O-, OH-, LiO-, CO3-, LiCO3-,
LiO2-, N-containing ions for the nitride. The tables below are a parameter set (relative yields
are assumptions of the right order for static SIMS of lithium salts, not measured values):

==========================  ======================================  ==========================
effect                      default strength                        source / reasoning
==========================  ======================================  ==========================
characteristic ions         cluster ions 0.1 to 4 % of Li+          SCIENCE.md parameter table
                            (positive); CO3-, LiCO3-, OH-, LiO-,    (Zhao et al. ion list)
                            H-, LiN-, CN- ... (negative)
shared ions                 Li+, 6Li+, Li2+ from every compound;    all are Li compounds
                            O-/LiO- from every O-bearing one
compound sensitivity        total yield 0.6 (LiH) to 1.2 (Li3N)     assumption; with the
                            per formula unit, per polarity          matrix effect reproduces
                                                                    the published readings
matrix effect               yield of compound c scaled by           calibrated so 1:1 LiH+Li2O
                            exp(s * w_ion * sum_d x_d a_cd);        gives ~15 % LiH signal
                            w_ion = 0.5 (atomic ions) to 2          (published 0.83 Li2O /
                            (clusters of >= 4 atoms)                0.14 LiH) and 1:1
                                                                    Li2CO3+LiOH ~0.55/0.45
                                                                    (published 0.54/0.46)
mixed cluster ions          x_c x_d terms (LiH+Li2O -> Li2OH+,      recombination of
                            OH-; Li3N+Li2CO3 -> CN-, CNO- ...)      fragments from both phases
sample-to-sample variation  10 % lognormal per ion (``rng``)        crystallinity, grain size
==========================  ======================================  ==========================

``matrix_strength`` (s) scales the matrix effect and the mixed-cluster terms; 0 gives linear
mixing (the yields of a mixture are the fraction-weighted sum of the pure compounds' yields).
Cluster ions get the larger weights because their survival depends more on the surrounding
matrix than that of atomic ions, so a mixture spectrum is not a linear combination of the pure
spectra with any weights.

Why not a library: no package holds SIMS yield tables or matrix-effect models; these are the
simulator's own documented parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .tof_ions import parse_formula

COMPOUNDS = ("Li2CO3", "Li2O", "Li3N", "LiH", "LiOH")

# Relative yields per compound and polarity (normalised to sum 1 in ion_table()).
_YIELDS: dict[str, dict[str, dict[str, float]]] = {
    "positive": {
        "Li2CO3": {
            "Li+": 1.0,
            "Li2+": 0.003,
            "Li2O+": 0.004,
            "Li2OH+": 0.003,
            "Li3O+": 0.006,
            "C+": 0.004,
            "CO+": 0.002,
            "Li3CO3+": 0.015,
            "Li2HCO3+": 0.002,
            "Li5C2O6+": 0.003,
        },
        "Li2O": {
            "Li+": 1.0,
            "Li2+": 0.006,
            "LiO+": 0.002,
            "Li2O+": 0.012,
            "Li3O+": 0.035,
            "Li2OH+": 0.003,
            "Li4O+": 0.002,
            "Li5O2+": 0.006,
            "Li7O3+": 0.001,
        },
        "Li3N": {
            "Li+": 1.0,
            "Li2+": 0.012,
            "Li3+": 0.002,
            "LiN+": 0.002,
            "Li2N+": 0.025,
            "Li2NH+": 0.003,
            "Li3N+": 0.006,
            "Li4N+": 0.012,
        },
        "LiH": {
            "Li+": 1.0,
            "Li2+": 0.010,
            "Li3+": 0.002,
            "LiH+": 0.001,
            "Li2H+": 0.025,
            "Li3H2+": 0.004,
        },
        "LiOH": {
            "H+": 0.003,
            "Li+": 1.0,
            "Li2+": 0.002,
            "LiH2O+": 0.002,
            "Li2O+": 0.005,
            "Li2OH+": 0.035,
            "Li3O+": 0.007,
            "Li3O2H2+": 0.008,
            "Li4O3H3+": 0.002,
        },
    },
    "negative": {
        "Li2CO3": {
            "O-": 0.15,
            "C-": 0.03,
            "C2-": 0.03,
            "LiO-": 0.05,
            "O2-": 0.03,
            "LiO2-": 0.02,
            "CHO2-": 0.02,
            "CO3-": 0.25,
            "HCO3-": 0.01,
            "LiCO3-": 0.15,
            "Li3C2O6-": 0.02,
        },
        "Li2O": {
            "Li-": 0.02,
            "O-": 0.45,
            "LiO-": 0.20,
            "O2-": 0.03,
            "LiO2-": 0.05,
            "Li3O2-": 0.05,
        },
        "Li3N": {
            "H-": 0.05,
            "Li-": 0.05,
            "NH-": 0.03,
            "NH2-": 0.05,
            "LiN-": 0.15,
            "LiNH-": 0.02,
            "CN-": 0.10,
            "Li2N-": 0.05,
            "CNO-": 0.02,
            "Li3N2-": 0.01,
        },
        "LiH": {
            "H-": 0.55,
            "Li-": 0.05,
            "LiH-": 0.04,
            "LiH2-": 0.10,
            "Li2H3-": 0.03,
        },
        "LiOH": {
            "H-": 0.08,
            "O-": 0.15,
            "OH-": 0.40,
            "LiO-": 0.06,
            "LiOH-": 0.02,
            "LiO2-": 0.02,
            "LiO2H2-": 0.08,
            "Li2O3H3-": 0.01,
        },
    },
}

# Total yield per formula unit (relative), per polarity.
SENSITIVITY: dict[str, dict[str, float]] = {
    "positive": {"Li2CO3": 0.8, "Li2O": 1.0, "Li3N": 1.2, "LiH": 0.6, "LiOH": 0.8},
    "negative": {"Li2CO3": 1.0, "Li2O": 0.8, "Li3N": 0.5, "LiH": 0.9, "LiOH": 1.0},
}

# Matrix coefficients a[c][d]: how compound d in the surroundings changes the yields of c.
# LiH's hydride clusters are destroyed in oxidic surroundings (strongly by Li2O, by LiOH and
# Li2CO3 less); oxide clusters gain in hydride/nitride surroundings (electron-rich, reducing);
# carbonate vs hydroxide is a weak pair.
_MATRIX_POS: dict[str, dict[str, float]] = {
    "Li2CO3": {"Li2O": 0.1, "LiH": -0.3, "LiOH": 0.1},
    "Li2O": {"Li3N": 0.3, "LiH": 0.3},
    "Li3N": {"Li2CO3": -0.4, "Li2O": -0.3, "LiH": 0.2, "LiOH": -0.4},
    "LiH": {"Li2CO3": -0.8, "Li2O": -1.2, "Li3N": -0.2, "LiOH": -1.0},
    "LiOH": {"Li2CO3": -0.1, "Li3N": 0.2, "LiH": -0.2},
}
NEGATIVE_MATRIX_SCALE = 0.6  # negative-ion yields respond less (assumption)

# Mixed cluster ions from two compounds side by side: yield = s * x_c * x_d * k.
_CROSS: dict[str, dict[tuple[str, str], dict[str, float]]] = {
    "positive": {
        ("LiH", "Li2O"): {"Li2OH+": 0.004},
        ("LiH", "Li3N"): {"Li2NH+": 0.002},
    },
    "negative": {
        ("LiH", "Li2O"): {"OH-": 0.04},
        ("Li2CO3", "Li3N"): {"CN-": 0.03, "CNO-": 0.02},
        ("Li2CO3", "LiOH"): {"HCO3-": 0.01},
    },
}

SAMPLE_VARIATION = 0.10


def _pol(polarity: str) -> str:
    p = {"+": "positive", "-": "negative", "pos": "positive", "neg": "negative"}.get(
        polarity, polarity
    )
    if p not in ("positive", "negative"):
        raise ValueError(f"polarity must be 'positive' or 'negative', not {polarity!r}")
    return p


def ion_table(compound: str, polarity: str) -> dict[str, float]:
    """Relative yields (sum 1) of one pure compound's ions."""
    if compound not in COMPOUNDS:
        raise ValueError(f"unknown compound {compound!r}; known: {', '.join(COMPOUNDS)}")
    t = _YIELDS[_pol(polarity)][compound]
    s = sum(t.values())
    return {k: v / s for k, v in t.items()}


def characteristic_ions(polarity: str) -> list[str]:
    """Every ion of the compound tables and mixed clusters for a polarity, sorted by mass."""
    from .tof_ions import ion_mass

    pol = _pol(polarity)
    ions = {i for t in _YIELDS[pol].values() for i in t}
    ions |= {i for d in _CROSS[pol].values() for i in d}
    return sorted(ions, key=ion_mass)


def _atoms(ion: str) -> int:
    return sum(n for _el, _iso, n in parse_formula(ion)[0])


def matrix_weight(ion: str) -> float:
    """How strongly an ion's yield follows the matrix: 0.5 for atomic ions, +0.5 per further
    atom, at most 2."""
    return 0.5 + 0.5 * min(_atoms(ion) - 1, 3)


def validate_fractions(fractions: Mapping[str, float], tol: float = 0.01) -> dict[str, float]:
    """Check compound names and molar fractions (non-negative, sum 1 within ``tol``)."""
    out = {}
    for k, v in fractions.items():
        if k not in COMPOUNDS:
            raise ValueError(f"unknown compound {k!r}; known: {', '.join(COMPOUNDS)}")
        v = float(v)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"fraction of {k} must be a non-negative number, got {v}")
        out[k] = out.get(k, 0.0) + v
    total = sum(out.values())
    if abs(total - 1.0) > tol:
        raise ValueError(f"molar fractions must sum to 1 (+-{tol}), they sum to {total:.4g}")
    return out


def compound_ion_yields(
    fractions: Mapping[str, float],
    polarity: str,
    *,
    matrix_strength: float = 1.0,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Ion yields (arbitrary absolute units) of a mixture of the five compounds.

    Parameters
    ----------
    fractions : compound -> molar fraction (sum 1 within 0.01)
    polarity : ``positive`` or ``negative``
    matrix_strength : scales the matrix effect and the mixed-cluster ions (0: linear mixing)
    rng : if given, sample-to-sample yield variation (10 % lognormal per ion)

    Returns
    -------
    ion formula -> yield; for a pure compound the yields sum to its sensitivity.
    """
    pol = _pol(polarity)
    x = validate_fractions(fractions)
    s = float(matrix_strength)
    scale = 1.0 if pol == "positive" else NEGATIVE_MATRIX_SCALE
    out: dict[str, float] = {}
    for c in COMPOUNDS:
        xc = x.get(c, 0.0)
        if xc <= 0:
            continue
        env = scale * sum(a * x.get(d, 0.0) for d, a in _MATRIX_POS[c].items())
        sens = SENSITIVITY[pol][c]
        for ion, y in ion_table(c, pol).items():
            m = np.exp(s * matrix_weight(ion) * env) if s and env else 1.0
            out[ion] = out.get(ion, 0.0) + xc * sens * y * m
    if s:
        for (c, d), ions in _CROSS[pol].items():
            w = x.get(c, 0.0) * x.get(d, 0.0)
            if w > 0:
                for ion, k in ions.items():
                    out[ion] = out.get(ion, 0.0) + s * w * k
    if rng is not None:
        keys = sorted(out)
        f = rng.lognormal(0.0, SAMPLE_VARIATION, size=len(keys))
        out = {k: out[k] * fk for k, fk in zip(keys, f, strict=True)}
    return out
