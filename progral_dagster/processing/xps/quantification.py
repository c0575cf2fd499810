"""XPS quantification: charge referencing, transmission correction, region areas, atomic %.

Follows the standard RSF quantification (e.g. Briggs & Seah, "Practical Surface Analysis",
Vol. 1, 2nd ed., Wiley 1990, ch. 5; ISO 18118): the background-subtracted area of each element's
region divided by its relative sensitivity factor, normalised over the quantified elements,

    at%_i = (A_i / S_i) / sum_j (A_j / S_j) x 100.

Sensitivity-factor library (:data:`SENSITIVITY_FACTORS`, name in :data:`RSF_LIBRARY`): Scofield
photoionisation cross-sections for Al Ka relative to C 1s = 1 (J. H. Scofield, J. Electron
Spectrosc. Relat. Phenom. 8 (1976) 129), as listed in ../shared/SCIENCE.md. They carry no
analyser transmission or inelastic-mean-free-path correction: apply the transmission from the
file (:func:`transmission_correct`) where the file carries it, or pass an instrument-specific
table. Li 1s has a tiny cross-section (0.0568): lithium at% is the least certain number.
``Ni 2p`` is the whole 2p region (2p3/2 + 2p1/2 with satellites): 1.5 x the 2p3/2 value.

Charge referencing (:func:`charge_reference`): every binding energy is shifted so that the
adventitious C 1s C-C/C-H component sits at the reference (284.8 eV by default, configurable);
raw energies are kept beside the referenced ones, and the offset is returned.

Integration windows (:data:`REGION_WINDOWS`, referenced binding energies) enclose each line with
its satellites and leave background at both ends; areas use the trapezoid rule.

Why not a library: no maintained Python package performs RSF quantification of parsed spectra
(CasaXPS and MultiPak are closed desktop programs); the arithmetic is a few lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from .backgrounds import background as compute_background

RSF_LIBRARY = "Scofield 1976, Al Ka, C 1s = 1 (SCIENCE.md); Ni 2p = 1.5 x Ni 2p3/2"
SENSITIVITY_FACTORS: dict[str, float] = {
    "C 1s": 1.0,
    "N 1s": 1.80,
    "O 1s": 2.93,
    "F 1s": 4.43,
    "Li 1s": 0.0568,
    "P 2p": 1.19,
    "S 2p": 1.67,
    "Ni 2p3/2": 14.61,
    "Ni 2p": 14.61 * 1.5,
}

# Integration windows in referenced binding energy (eV).
REGION_WINDOWS: dict[str, tuple[float, float]] = {
    "C 1s": (281.0, 294.5),
    "N 1s": (393.0, 408.0),
    "O 1s": (525.0, 538.5),
    "F 1s": (680.5, 692.5),
    "Li 1s": (50.0, 60.5),
    "P 2p": (130.0, 140.5),
    "S 2p": (158.0, 172.0),
    "Ni 2p": (846.0, 887.0),
}

DEFAULT_REFERENCE_EV = 284.8

_ELEMENTS = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As
    Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd
    Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Th U""".split()
)


def canonical_region(name: str | None) -> str | None:
    """``"C1s"``, ``"c 1s"``, ``"Ni2p"``, ``"Ni 2p3/2"`` -> ``"C 1s"``, ..., ``"Ni 2p3/2"``;
    None when the name is not a core level (e.g. ``"Survey"``)."""
    if not name:
        return None
    s = str(name).strip()
    m = re.match(r"^\s*([A-Z][a-z]?)\s*(\d[spdf](?:\d/\d)?)\b", s, flags=re.IGNORECASE)
    if not m:
        return None
    el = m.group(1)[0].upper() + m.group(1)[1:].lower()
    if el not in _ELEMENTS:  # e.g. PHI's survey label "Su1s"
        return None
    return f"{el} {m.group(2).lower()}"


def element_of(core_level: str) -> str:
    """``"Ni 2p"`` -> ``"Ni"``."""
    return core_level.split()[0]


def charge_offset(measured_cc_ev: float, reference_ev: float = DEFAULT_REFERENCE_EV) -> float:
    """Offset to add to raw binding energies so the measured C-C line lands on the reference."""
    return float(reference_ev) - float(measured_cc_ev)


def charge_reference(df, offset_ev: float, *, column: str = "binding_energy_ev"):
    """Copy of a spectra table with ``binding_energy_raw_ev`` (the original energies) and
    ``binding_energy_ev`` shifted by ``offset_ev``; the offset is stored in
    ``charge_offset_ev``."""
    out = df.copy()
    out["binding_energy_raw_ev"] = out[column].astype(float)
    out[column] = out["binding_energy_raw_ev"] + float(offset_ev)
    out["charge_offset_ev"] = float(offset_ev)
    return out


def transmission_correct(intensity, transmission) -> np.ndarray:
    """Divide counts by the analyser transmission the file carries (relative values)."""
    t = np.asarray(transmission, float)
    if np.any(t <= 0):
        raise ValueError("transmission must be positive")
    return np.asarray(intensity, float) / t


def region_area(
    binding_energy_ev,
    intensity,
    window: tuple[float, float],
    *,
    background: str = "shirley",
    n_avg: int = 5,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Background-subtracted area inside ``window``.

    Returns
    -------
    area (counts x eV), energies (ascending), intensities, background inside the window
    """
    e = np.asarray(binding_energy_ev, float)
    y = np.asarray(intensity, float)
    order = np.argsort(e, kind="stable")
    e, y = e[order], y[order]
    keep = (e >= min(window)) & (e <= max(window))
    e, y = e[keep], y[keep]
    if e.size < 2 * n_avg + 3:
        raise ValueError(f"window {window} holds only {e.size} points")
    bg = compute_background(background, e, y, n_avg=n_avg)
    net = y - bg
    area = float(np.sum(0.5 * (net[1:] + net[:-1]) * np.diff(e)))
    return area, e, y, bg


def atomic_percent(
    areas: Mapping[str, float], rsf: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Atomic % per element from region areas (core level -> area).

    Negative areas (noise on an absent element) count as zero.
    """
    rsf = dict(SENSITIVITY_FACTORS if rsf is None else rsf)
    corrected: dict[str, float] = {}
    for level, a in areas.items():
        if level not in rsf:
            raise KeyError(f"no sensitivity factor for {level!r} in the library")
        el = element_of(level)
        corrected[el] = corrected.get(el, 0.0) + max(float(a), 0.0) / rsf[level]
    total = sum(corrected.values())
    if total <= 0:
        return {el: float("nan") for el in corrected}
    return {el: 100.0 * v / total for el, v in corrected.items()}
