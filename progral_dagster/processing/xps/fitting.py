"""Component fits of one XPS region with given component templates.

A template (:class:`Component`) is what an analyst sets up in CasaXPS: a name, a start position
with an allowed range or a constraint to another component (position = anchor + offset), a
FWHM with bounds, a line shape (``GL(m)`` product or ``SGL(m)`` sum, see ``lineshapes``) and
optionally a fixed multiplet (satellites, spin-orbit partner) that moves and broadens with it.

Method: the background (Shirley, Tougaard or linear, from ``backgrounds``) is computed from the
data first and held fixed, as CasaXPS does by default. The non-linear parameters (positions,
widths) are optimised with ``scipy.optimize.least_squares`` inside their bounds; for each trial
the peak areas are the non-negative least-squares solution (variable projection, Golub & Pereyra,
SIAM J. Numer. Anal. 10 (1973) 413), weighted by Poisson errors. Areas are therefore never
negative and need no start values. An optional rigid shift scan (all unconstrained components
moved together over a range, best by chi-square) makes the fit insensitive to sample charging
before the local optimisation starts.

Why not lmfit (a dependency, used elsewhere): with areas solved linearly the problem has only
a handful of bounded non-linear parameters, and NNLS keeps areas physical without extra
constraints; lmfit would need every area as a bounded parameter with start values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls

from .backgrounds import background as compute_background
from .lineshapes import profile


@dataclass(frozen=True)
class Component:
    """A component template.

    Parameters
    ----------
    name : component name (unique within the region)
    position_ev : start position (binding energy, eV)
    fwhm_ev : start FWHM (eV)
    shape : ``gl`` (product), ``sgl`` (sum), ``gaussian`` or ``lorentzian``
    lorentz : Lorentzian fraction m of the GL/SGL shape (CasaXPS ``GL(30)`` -> 0.3)
    position_tol : the position may move this far (eV) from its start (after the optional
        shift scan); None fixes it. Ignored for linked components.
    fwhm_bounds : (min, max) FWHM; None fixes the FWHM
    link : name of another (unlinked) component; position = that position + offset, the offset
        starting at ``position_ev - anchor.position_ev``
    offset_tol : the offset may move this far (eV); None fixes it
    multiplet : extra peaks that belong to this component, as (offset eV, relative area,
        FWHM eV at the start width); they move with the component and their widths scale with
        its FWHM. The main peak has relative area 1; the component's area is the total.
    """

    name: str
    position_ev: float
    fwhm_ev: float = 1.4
    shape: str = "gl"
    lorentz: float = 0.3
    position_tol: float | None = 0.5
    fwhm_bounds: tuple[float, float] | None = (0.5, 3.5)
    link: str | None = None
    offset_tol: float | None = None
    multiplet: tuple[tuple[float, float, float], ...] = ()

    def shape_at(self, energy: np.ndarray, position: float, fwhm: float) -> np.ndarray:
        """Unit-area profile of the whole component (main peak plus multiplet)."""
        y = profile(self.shape, energy, position, fwhm, self.lorentz)
        if not self.multiplet:
            return y
        scale = fwhm / self.fwhm_ev
        total = 1.0
        for off, rel, w in self.multiplet:
            y = y + rel * profile(self.shape, energy, position + off, w * scale, self.lorentz)
            total += rel
        return y / total


@dataclass
class RegionFit:
    """Result of :func:`fit_region` (all arrays over the fitted window, ascending energy)."""

    energy_ev: np.ndarray
    intensity: np.ndarray
    background: np.ndarray
    peaks: dict[str, np.ndarray]
    components: pd.DataFrame
    shift_ev: float
    chi2_reduced: float
    background_kind: str
    extra: dict = field(default_factory=dict)

    @property
    def model(self) -> np.ndarray:
        return self.background + sum(self.peaks.values())

    def area(self, name: str) -> float:
        return float(self.components.set_index("name").loc[name, "area"])

    def fraction(self, name: str) -> float:
        return float(self.components.set_index("name").loc[name, "fraction"])


class _Layout:
    """Maps the free-parameter vector to positions and widths."""

    def __init__(self, comps: Sequence[Component], shift: float):
        names = [c.name for c in comps]
        if len(set(names)) != len(names):
            raise ValueError("component names must be unique")
        self.comps = list(comps)
        self.index = {c.name: i for i, c in enumerate(comps)}
        for c in comps:
            if c.link is not None:
                if c.link not in self.index:
                    raise ValueError(f"{c.name}: link to unknown component {c.link!r}")
                if comps[self.index[c.link]].link is not None:
                    raise ValueError(f"{c.name}: links may not chain ({c.link} is linked)")
        self.slots: list[tuple[int, str]] = []
        x0, lo, hi = [], [], []
        for i, c in enumerate(comps):
            if c.link is None and c.position_tol is not None:
                p = c.position_ev + shift
                tol = max(c.position_tol, 1e-6)
                self.slots.append((i, "pos"))
                x0.append(p), lo.append(p - tol), hi.append(p + tol)
            if c.link is not None and c.offset_tol is not None:
                off = c.position_ev - comps[self.index[c.link]].position_ev
                tol = max(c.offset_tol, 1e-6)
                self.slots.append((i, "off"))
                x0.append(off), lo.append(off - tol), hi.append(off + tol)
            if c.fwhm_bounds is not None:
                a, b = c.fwhm_bounds
                self.slots.append((i, "fwhm"))
                x0.append(float(np.clip(c.fwhm_ev, a, b))), lo.append(a), hi.append(b)
        self.x0 = np.array(x0, float)
        self.lo = np.array(lo, float)
        self.hi = np.array(hi, float)
        self.shift = shift

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        comps = self.comps
        pos = np.array([c.position_ev + self.shift for c in comps], float)
        off = np.array(
            [
                c.position_ev - comps[self.index[c.link]].position_ev if c.link else 0.0
                for c in comps
            ],
            float,
        )
        fwhm = np.array([c.fwhm_ev for c in comps], float)
        for v, (i, kind) in zip(x, self.slots, strict=True):
            if kind == "pos":
                pos[i] = v
            elif kind == "off":
                off[i] = v
            else:
                fwhm[i] = v
        for i, c in enumerate(comps):
            if c.link is not None:
                pos[i] = pos[self.index[c.link]] + off[i]
        return pos, fwhm


def _design(comps, energy, pos, fwhm) -> np.ndarray:
    return np.column_stack(
        [c.shape_at(energy, p, w) for c, p, w in zip(comps, pos, fwhm, strict=True)]
    )


def _solve(design: np.ndarray, target: np.ndarray, weight: np.ndarray):
    amps, rnorm = nnls(design * weight[:, None], target * weight, maxiter=50 * design.shape[1])
    return amps, rnorm


def fit_region(
    binding_energy_ev,
    intensity,
    components: Sequence[Component],
    *,
    window: tuple[float, float] | None = None,
    background: str = "shirley",
    background_kwargs: dict | None = None,
    shift_scan: tuple[float, float] | None = None,
    shift_step: float = 0.05,
) -> RegionFit:
    """Fit a region with the given component templates.

    Parameters
    ----------
    binding_energy_ev, intensity : spectrum (any order)
    components : the templates
    window : (low, high) binding energies that bound the fit and the background
    background : ``shirley``, ``tougaard``, ``linear`` or ``none``
    background_kwargs : passed to the background function (e.g. ``n_avg``, Tougaard ``b``)
    shift_scan : (low, high) rigid shift range (eV) scanned before the local fit
    shift_step : step of the shift scan

    Returns
    -------
    RegionFit with a ``components`` table: name, position_ev, fwhm_ev, area (counts x eV),
    fraction (of the summed component areas), shape.
    """
    e = np.asarray(binding_energy_ev, float)
    y = np.asarray(intensity, float)
    order = np.argsort(e, kind="stable")
    e, y = e[order], y[order]
    if window is not None:
        keep = (e >= min(window)) & (e <= max(window))
        e, y = e[keep], y[keep]
    if e.size < 5:
        raise ValueError("fewer than 5 points inside the fit window")
    comps = list(components)
    bg = compute_background(background, e, y, **(background_kwargs or {}))
    target = y - bg
    weight = 1.0 / np.sqrt(np.maximum(np.abs(y), 1.0))

    shift = 0.0
    if shift_scan is not None:
        base = _Layout(comps, 0.0)
        pos0, fwhm0 = base.unpack(base.x0)
        best = np.inf
        for s in np.arange(min(shift_scan), max(shift_scan) + shift_step / 2, shift_step):
            _, r = _solve(_design(comps, e, pos0 + s, fwhm0), target, weight)
            if r < best:
                best, shift = r, float(s)

    layout = _Layout(comps, shift)

    def residual(x: np.ndarray) -> np.ndarray:
        pos, fwhm = layout.unpack(x)
        d = _design(comps, e, pos, fwhm)
        amps, _ = _solve(d, target, weight)
        return (d @ amps - target) * weight

    if layout.x0.size:
        res = least_squares(residual, layout.x0, bounds=(layout.lo, layout.hi), x_scale="jac")
        x = res.x
    else:
        x = layout.x0
    pos, fwhm = layout.unpack(x)
    d = _design(comps, e, pos, fwhm)
    amps, _ = _solve(d, target, weight)
    peaks = {c.name: d[:, i] * amps[i] for i, c in enumerate(comps)}
    resid = (d @ amps - target) * weight
    dof = max(1, e.size - layout.x0.size - len(comps))
    total = float(amps.sum())
    table = pd.DataFrame(
        {
            "name": [c.name for c in comps],
            "position_ev": pos,
            "fwhm_ev": fwhm,
            "area": amps,
            "fraction": amps / total if total > 0 else np.full(len(comps), np.nan),
            "shape": [f"{c.shape}({round(100 * c.lorentz)})" for c in comps],
        }
    )
    return RegionFit(
        energy_ev=e,
        intensity=y,
        background=bg,
        peaks=peaks,
        components=table,
        shift_ev=shift,
        chi2_reduced=float(resid @ resid / dof),
        background_kind=background,
    )
