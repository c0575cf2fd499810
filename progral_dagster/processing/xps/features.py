"""Per-measurement XPS features of a cathode surface, from the ``xps_spectra`` table.

For one measurement (all its blocks):

1. charge reference: the C 1s region is fitted with the adventitious-carbon + carbonate template
   (:data:`C1S_TEMPLATE`, a rigid shift scan first, so charging of several eV is found); the C-C
   component gives the offset to the reference (284.8 eV by default);
2. transmission correction where the table carries a ``transmission`` column;
3. atomic % from Shirley-subtracted region areas and the RSF library (``quantification``);
4. component fits on referenced energies: carbonate fraction of C 1s, LiF vs fluorophosphate
   share of F 1s, lattice-oxide share of O 1s, Ni2+ (rock-salt) share of Ni 2p.

Template positions follow ../shared/SCIENCE.md ("XPS binding energies"); Ni 2p multiplets are
simplified from Biesinger et al., Surf. Interface Anal. 41 (2009) 324 (NiO: 854.5 main, 856.1
shoulder, 861 satellite; Ni3+ in LiNiO2: 855.7 main, satellite near 862; 2p1/2 at +17.4 eV with
half the area).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fitting import Component, RegionFit, fit_region
from .quantification import (
    DEFAULT_REFERENCE_EV,
    REGION_WINDOWS,
    SENSITIVITY_FACTORS,
    atomic_percent,
    canonical_region,
    charge_offset,
    region_area,
    transmission_correct,
)

# Line shapes: SGL (Gaussian-Lorentzian sum) keeps the Lorentzian tails that instrument-broadened
# core lines show; GL products have none and leave a tail misfit.
_MINOR = (0.9, 1.6)
C1S_TEMPLATE: tuple[Component, ...] = (
    Component("C-C", 284.8, 1.1, "sgl", 0.15, position_tol=0.3, fwhm_bounds=(0.8, 1.8)),
    Component("C-O", 286.3, 1.2, "sgl", 0.15, link="C-C", offset_tol=0.2, fwhm_bounds=_MINOR),
    Component("C=O", 287.7, 1.2, "sgl", 0.15, link="C-C", offset_tol=0.2, fwhm_bounds=_MINOR),
    Component("O-C=O", 288.9, 1.2, "sgl", 0.15, link="C-C", offset_tol=0.2, fwhm_bounds=_MINOR),
    Component(
        "carbonate", 290.0, 1.3, "sgl", 0.15, link="C-C", offset_tol=0.45, fwhm_bounds=(0.9, 2.0)
    ),
)
O1S_TEMPLATE: tuple[Component, ...] = (
    Component("lattice", 529.1, 1.1, "sgl", 0.2, position_tol=0.4, fwhm_bounds=(0.8, 1.8)),
    Component(
        "hydroxide/carbonate", 531.4, 1.4, "sgl", 0.2, position_tol=0.4, fwhm_bounds=(1.0, 2.4)
    ),
    Component("organic/P-O", 533.0, 1.6, "sgl", 0.2, position_tol=0.6, fwhm_bounds=(1.0, 2.5)),
)
F1S_TEMPLATE: tuple[Component, ...] = (
    Component("LiF", 685.5, 1.6, "sgl", 0.2, position_tol=0.5, fwhm_bounds=(1.0, 2.4)),
    Component("fluorophosphate", 687.3, 1.7, "sgl", 0.2, position_tol=0.6, fwhm_bounds=(1.0, 2.6)),
)


def _ni_multiplet(
    lines: list[tuple[float, float, float]],
) -> tuple[tuple[float, float, float], ...]:
    """(offset, rel area, fwhm) of the 2p3/2 extras plus the whole 2p1/2 replica."""
    main_fwhm = lines[0][2]
    extra = [(off, rel, w) for off, rel, w in lines[1:]]
    replica = [(off + 17.4, 0.5 * rel, 1.15 * w) for off, rel, w in [(0.0, 1.0, main_fwhm), *extra]]
    return tuple(extra + replica)


NI2P_TEMPLATE: tuple[Component, ...] = (
    Component(
        "Ni2+",
        854.5,
        1.5,
        "sgl",
        0.3,
        position_tol=0.4,
        fwhm_bounds=None,
        multiplet=_ni_multiplet([(0.0, 1.0, 1.5), (1.6, 0.7, 2.8), (6.5, 0.75, 4.2)]),
    ),
    Component(
        "Ni3+",
        855.7,
        2.5,
        "sgl",
        0.3,
        position_tol=0.4,
        fwhm_bounds=None,
        multiplet=_ni_multiplet([(0.0, 1.0, 2.5), (6.3, 0.4, 4.8)]),
    ),
)

FIT_WINDOWS = {
    "C 1s": (281.0, 294.5),
    "O 1s": (525.0, 538.5),
    "F 1s": (680.5, 692.5),
    "Ni 2p": (846.0, 887.0),
}


def _regions(spectra: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Canonical core level -> rows of its first block (survey and unknown regions dropped)."""
    out: dict[str, pd.DataFrame] = {}
    for _block, rows in spectra.groupby("block", sort=True):
        level = canonical_region(rows["region"].iloc[0])
        if level is None or level in out:
            continue
        out[level] = rows
    return out


def fit_c1s(binding_energy_ev, intensity, *, max_charging_ev: float = 8.0) -> RegionFit:
    """Fit raw C 1s with :data:`C1S_TEMPLATE`, scanning rigid shifts from -3 eV to
    ``max_charging_ev`` first; the window follows the shift."""
    e = np.asarray(binding_energy_ev, float)
    return fit_region(
        e,
        intensity,
        C1S_TEMPLATE,
        window=(float(e.min()), float(e.max())),
        shift_scan=(-3.0, max_charging_ev),
        background_kwargs={"n_avg": 8},
    )


def xps_features(
    spectra: pd.DataFrame,
    *,
    reference_ev: float = DEFAULT_REFERENCE_EV,
    offset_ev: float | None = None,
    rsf: dict[str, float] | None = None,
    background: str = "shirley",
) -> dict[str, float]:
    """Features of one XPS measurement.

    Parameters
    ----------
    spectra : rows of ``xps_spectra`` for one measurement (block, region, binding_energy_ev,
        intensity; optional ``transmission``)
    reference_ev : where the C-C component is put (charge reference)
    offset_ev : use this charge offset instead of fitting C 1s
    rsf : sensitivity-factor library (default :data:`SENSITIVITY_FACTORS`)
    background : background for the atomic-% areas

    Returns
    -------
    ``<El>_at_pct`` per quantified element, ``carbonate_fraction``, ``carbonate_c_at_pct``,
    ``lif_share``, ``lif_f_at_pct``, ``o_lattice_fraction``, ``ni2_fraction``,
    ``charge_offset_ev``, ``cc_raw_ev`` (NaN where a region is missing).
    """
    rsf = dict(SENSITIVITY_FACTORS if rsf is None else rsf)
    regions = _regions(spectra)
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for level, rows in regions.items():
        y = rows["intensity"].to_numpy(float)
        if "transmission" in rows and rows["transmission"].notna().all():
            y = transmission_correct(y, rows["transmission"].to_numpy(float))
        data[level] = (rows["binding_energy_ev"].to_numpy(float), y)

    feats: dict[str, float] = {}
    c_fit = None
    if offset_ev is None:
        if "C 1s" in data:
            c_fit = fit_c1s(*data["C 1s"])
            cc = float(c_fit.components.set_index("name").loc["C-C", "position_ev"])
            offset_ev = charge_offset(cc, reference_ev)
            feats["cc_raw_ev"] = cc
        else:
            offset_ev = 0.0
    feats["charge_offset_ev"] = float(offset_ev)
    ref = {lv: (e + offset_ev, y) for lv, (e, y) in data.items()}

    areas = {}
    for level, (e, y) in ref.items():
        if level in REGION_WINDOWS and level in rsf:
            try:
                areas[level], *_ = region_area(e, y, REGION_WINDOWS[level], background=background)
            except ValueError:
                continue
    at = atomic_percent(areas, rsf) if areas else {}
    for el, v in at.items():
        feats[f"{el}_at_pct"] = v

    def fractions(level: str, template, names: list[str]) -> dict[str, float] | None:
        if level not in ref:
            return None
        e, y = ref[level]
        fit = fit_region(e, y, template, window=FIT_WINDOWS[level], background_kwargs={"n_avg": 8})
        return {n: fit.fraction(n) for n in names}

    if "C 1s" in ref:
        if c_fit is None:
            c_fit = fit_region(
                *ref["C 1s"],
                C1S_TEMPLATE,
                window=FIT_WINDOWS["C 1s"],
                background_kwargs={"n_avg": 8},
            )
        feats["carbonate_fraction"] = c_fit.fraction("carbonate")
        feats["carbonate_c_at_pct"] = feats["carbonate_fraction"] * at.get("C", np.nan)
    f = fractions("F 1s", F1S_TEMPLATE, ["LiF"])
    if f:
        feats["lif_share"] = f["LiF"]
        feats["lif_f_at_pct"] = f["LiF"] * at.get("F", np.nan)
    f = fractions("O 1s", O1S_TEMPLATE, ["lattice"])
    if f:
        feats["o_lattice_fraction"] = f["lattice"]
    f = fractions("Ni 2p", NI2P_TEMPLATE, ["Ni2+"])
    if f:
        feats["ni2_fraction"] = f["Ni2+"]
    return feats


def xps_feature_table(spectra: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """:func:`xps_features` for every ``measurement_id`` of an ``xps_spectra`` table; one row
    per measurement."""
    rows = []
    for mid, g in spectra.groupby("measurement_id", sort=True):
        rows.append({"measurement_id": mid, **xps_features(g, **kwargs)})
    return pd.DataFrame(rows)


__all__ = [
    "C1S_TEMPLATE",
    "F1S_TEMPLATE",
    "NI2P_TEMPLATE",
    "O1S_TEMPLATE",
    "fit_c1s",
    "xps_feature_table",
    "xps_features",
]
