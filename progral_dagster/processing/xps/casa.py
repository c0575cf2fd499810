"""CasaXPS region and component definitions (table ``xps_casa_components``) as fit templates,
and a side-by-side comparison of CasaXPS's stored fit with ours.

CasaXPS stores its quantification regions (``CASA region``: limits, background type such as
``U 3 Tougaard`` with its B, C, D parameters) and components (``CASA comp``: line shape, area,
FWHM, position with bounds) in VAMAS block comments; the VAMAS reader turns them into the
``xps_casa_components`` table. Line shapes map as follows (CasaXPS manual, "Line shapes"):
``GL(m)`` -> product form, ``SGL(m)`` -> sum form, ``m`` the Lorentzian percentage. The
asymmetric ``LA``/``LF`` shapes are not implemented here; they are approximated by ``SGL(30)``
and the comparison marks them (``exact_shape`` False), so positions and areas of those
components are expected to differ from CasaXPS's.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from .fitting import Component, RegionFit

_SHAPE = re.compile(r"^\s*(S?GL)\s*\(\s*([\d.]+)\s*\)\s*$", re.IGNORECASE)


def parse_casa_lineshape(text: str | None) -> tuple[str, float, bool]:
    """(shape, Lorentzian fraction, exact) for a CasaXPS line-shape string."""
    m = _SHAPE.match(text or "")
    if m:
        return m.group(1).lower(), float(m.group(2)) / 100.0, True
    return "sgl", 0.3, False


def _binding(row: pd.Series, key: str, value: float, excitation_ev: float | None) -> float:
    params = row.get("parameters")
    if isinstance(params, str):
        try:
            p = json.loads(params)
        except ValueError:
            p = {}
        if key in p and p[key] is not None:
            return float(p[key])
        if "kinetic" in str(p.get("energy_scale", "")).lower() and excitation_ev is not None:
            return excitation_ev - value
    return value if excitation_ev is None else excitation_ev - value


def templates_from_casa(
    components: pd.DataFrame,
    *,
    excitation_ev: float | None = None,
    position_tol: float = 1.5,
    fwhm_range: tuple[float, float] = (0.5, 2.0),
) -> list[Component]:
    """Fit templates from the ``kind == "component"`` rows of ``xps_casa_components``.

    Positions are converted to binding energy (from the row's parameters, or
    ``excitation_ev - position`` for kinetic-energy files); FWHM bounds are ``fwhm_range``
    times CasaXPS's FWHM.
    """
    rows = components[components["kind"] == "component"].reset_index(drop=True)
    out = []
    for i, r in rows.iterrows():
        shape, m, _exact = parse_casa_lineshape(r.get("lineshape"))
        pos = _binding(r, "position_binding_ev", float(r["position_ev"]), excitation_ev)
        w = float(r["fwhm_ev"])
        out.append(
            Component(
                f"{r['name']} #{i}",
                pos,
                w,
                shape,
                m,
                position_tol=position_tol,
                fwhm_bounds=(w * fwhm_range[0], w * fwhm_range[1]),
            )
        )
    return out


def casa_region_window(
    components: pd.DataFrame, *, excitation_ev: float | None = None
) -> tuple[float, float]:
    """Binding-energy limits of the first CasaXPS region."""
    r = components[components["kind"] == "region"].iloc[0]
    p = json.loads(r["parameters"]) if isinstance(r.get("parameters"), str) else {}
    if p.get("binding_ev"):
        lo, hi = p["binding_ev"]
        return float(min(lo, hi)), float(max(lo, hi))
    a, b = float(r["start_ev"]), float(r["end_ev"])
    if excitation_ev is not None:
        a, b = excitation_ev - a, excitation_ev - b
    return min(a, b), max(a, b)


def compare_with_casa(
    fit: RegionFit, components: pd.DataFrame, *, excitation_ev: float | None = None
) -> pd.DataFrame:
    """CasaXPS's components beside ours (same order): positions (BE), FWHM, area fractions."""
    rows = components[components["kind"] == "component"].reset_index(drop=True)
    casa_area = rows["area"].to_numpy(float)
    ours = fit.components.reset_index(drop=True)
    return pd.DataFrame(
        {
            "component": ours["name"],
            "casa_lineshape": rows["lineshape"],
            "exact_shape": [parse_casa_lineshape(s)[2] for s in rows["lineshape"]],
            "casa_position_ev": [
                _binding(r, "position_binding_ev", float(r["position_ev"]), excitation_ev)
                for _, r in rows.iterrows()
            ],
            "our_position_ev": ours["position_ev"],
            "casa_fwhm_ev": rows["fwhm_ev"].to_numpy(float),
            "our_fwhm_ev": ours["fwhm_ev"],
            "casa_fraction": casa_area / np.nansum(casa_area),
            "our_fraction": ours["fraction"],
        }
    )
