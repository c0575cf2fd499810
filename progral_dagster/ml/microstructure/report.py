"""One JSON-ready report of all metrics per phase, and the comparison of two volumes.

``metrics_report`` is what ``progral microstructure-metrics`` prints; ``compare_metrics`` scores a
generated volume against the real one (Kench & Cooper 2021 validate SliceGAN with the same set:
volume fraction, surface area, triple-phase boundary, two-point correlation, tortuosity) and
reduces it to one distance used to choose a champion generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .basic import phase_labels, specific_surface_area, triple_phase_boundary_density
from .correlation import two_point_correlation_axes
from .tortuosity import tortuosity as solve_tortuosity

# Acceptance targets (absolute for the volume fraction and S2, relative otherwise).
DEFAULT_TOLERANCES: dict[str, float] = {
    "volume_fraction": 0.02,
    "specific_surface_area": 0.10,
    "tortuosity_factor": 0.10,
    "two_point_correlation": 0.02,
}
_TERM_CAP = 10.0  # a normalised difference counts at most this much in the distance


def _units(voxel_size_um: float | None) -> dict[str, str]:
    if voxel_size_um is None:
        return {"specific_surface_area": "1/voxel", "triple_phase_boundary_density": "1/voxel^2"}
    return {"specific_surface_area": "1/m", "triple_phase_boundary_density": "1/m^2"}


def metrics_report(
    volume: np.ndarray,
    voxel_size_um: float | None = None,
    phases: list[int] | None = None,
    axis: int = 0,
    tortuosity: bool = True,
    two_point: bool = True,
    r_max: int | None = None,
) -> dict:
    """All metrics of a label volume, per phase label value.

    Parameters
    ----------
    volume : 2D or 3D label array (values as stored in the file)
    voxel_size_um : edge of a (cubic) voxel in micrometres; None gives per-voxel units
    phases : label values to report (default: all present)
    axis : axis of the tortuosity solve
    tortuosity : solve for the tortuosity factor (the slow part: seconds to minutes)
    two_point : include the per-axis two-point correlation curves
    r_max : largest shift of the two-point curves (default: half the smallest edge, at most 64)

    Returns
    -------
    dict with ``shape``, ``voxel_size_um``, ``axis``, ``units``, ``triple_phase_boundary_density``
    (None with fewer than three phases) and ``phases``: label (as a string) -> ``volume_fraction``,
    ``specific_surface_area``, and when asked ``tortuosity_factor`` (None if the phase does not
    percolate), ``relative_diffusivity``, ``percolates``, ``tortuosity_converged``,
    ``two_point_correlation`` (axis as a string -> S2 for shifts 0..r_max).
    """
    labels = phase_labels(volume) if phases is None else [int(p) for p in phases]
    present = phase_labels(volume)
    if r_max is None:
        r_max = min(min(volume.shape) // 2, 64)
    out_phases: dict[str, dict] = {}
    for label in labels:
        entry: dict = {
            "volume_fraction": float(np.count_nonzero(volume == label) / volume.size),
            "specific_surface_area": specific_surface_area(volume, label, voxel_size_um),
        }
        if tortuosity:
            result = solve_tortuosity(volume, label, axis).as_dict()
            entry["tortuosity_factor"] = result["tortuosity_factor"]
            entry["relative_diffusivity"] = result["relative_diffusivity"]
            entry["percolates"] = result["percolates"]
            entry["tortuosity_converged"] = result["converged"]
        if two_point:
            curves = two_point_correlation_axes(volume, label, r_max)
            entry["two_point_correlation"] = {
                str(d): curves[d].tolist() for d in range(volume.ndim)
            }
        out_phases[str(label)] = entry
    tpb = None
    if len(present) >= 3:
        tpb = triple_phase_boundary_density(volume, voxel_size_um=voxel_size_um)
    return {
        "shape": [int(s) for s in volume.shape],
        "voxel_size_um": voxel_size_um,
        "axis": axis,
        "units": _units(voxel_size_um),
        "triple_phase_boundary_density": tpb,
        "phases": out_phases,
    }


def _difference(generated: float | None, real: float | None) -> dict:
    """Absolute and relative difference; None where undefined (a non-percolating phase)."""
    if generated is None or real is None:
        return {"generated": generated, "real": real, "abs_diff": None, "rel_diff": None}
    diff = generated - real
    rel = diff / real if real != 0 else (0.0 if diff == 0 else None)
    return {"generated": generated, "real": real, "abs_diff": diff, "rel_diff": rel}


def _term(diff: dict, tolerance: float, relative: bool) -> float:
    """A difference in units of its tolerance, capped; a one-sided None counts as the cap."""
    if diff["generated"] is None and diff["real"] is None:
        return 0.0
    value = diff["rel_diff"] if relative else diff["abs_diff"]
    if value is None:
        return _TERM_CAP
    return min(abs(value) / tolerance, _TERM_CAP)


def compare_metrics(
    generated: np.ndarray,
    real: np.ndarray,
    voxel_size_um: float | None = None,
    phases: Iterable[int] | None = None,
    axis: int = 0,
    tortuosity: bool = True,
    r_max: int | None = None,
    tolerances: dict[str, float] | None = None,
) -> dict:
    """Compare a generated volume with a real one, metric by metric, and give one distance.

    Each metric difference is divided by its tolerance (:data:`DEFAULT_TOLERANCES`: volume
    fraction 0.02 absolute, surface area and tortuosity 10 % relative, two-point correlation
    0.02 root-mean-square over the per-axis curves) and capped at 10; ``distance`` is the mean of
    these normalised terms over all phases (0 = identical, 1 = on average at the tolerance), and
    ``within_targets`` says whether every volume fraction, surface area and tortuosity term is
    within its tolerance. The triple-phase-boundary density is reported, not scored.

    Returns
    -------
    dict with ``phases`` (label -> metric -> generated / real / abs_diff / rel_diff, plus
    ``two_point_distance``), ``triple_phase_boundary_density`` (same four keys), ``distance``,
    ``within_targets``, ``tolerances``, and the two full reports under ``generated``/``real``.
    """
    tol = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    labels = phase_labels(real) if phases is None else [int(p) for p in phases]
    if r_max is None:
        r_max = min(min(min(generated.shape), min(real.shape)) // 2, 64)
    gen = metrics_report(generated, voxel_size_um, labels, axis, tortuosity, True, r_max)
    ref = metrics_report(real, voxel_size_um, labels, axis, tortuosity, True, r_max)
    out_phases: dict[str, dict] = {}
    terms: list[float] = []
    within = True
    for label in labels:
        g, r = gen["phases"][str(label)], ref["phases"][str(label)]
        entry = {
            "volume_fraction": _difference(g["volume_fraction"], r["volume_fraction"]),
            "specific_surface_area": _difference(
                g["specific_surface_area"], r["specific_surface_area"]
            ),
        }
        scored = [
            _term(entry["volume_fraction"], tol["volume_fraction"], relative=False),
            _term(entry["specific_surface_area"], tol["specific_surface_area"], relative=True),
        ]
        if tortuosity:
            entry["tortuosity_factor"] = _difference(g["tortuosity_factor"], r["tortuosity_factor"])
            entry["relative_diffusivity"] = _difference(
                g["relative_diffusivity"], r["relative_diffusivity"]
            )
            scored.append(
                _term(entry["tortuosity_factor"], tol["tortuosity_factor"], relative=True)
            )
        within = within and all(t <= 1.0 for t in scored)
        gc = np.array([g["two_point_correlation"][k] for k in sorted(g["two_point_correlation"])])
        rc = np.array([r["two_point_correlation"][k] for k in sorted(r["two_point_correlation"])])
        if gc.shape != rc.shape:  # e.g. a 3D volume against a 2D image: compare axis means
            gc, rc = gc.mean(axis=0), rc.mean(axis=0)
        s2 = float(np.sqrt(np.mean((gc - rc) ** 2)))
        entry["two_point_distance"] = s2
        scored.append(min(s2 / tol["two_point_correlation"], _TERM_CAP))
        terms.extend(scored)
        out_phases[str(label)] = entry
    distance = float(np.mean(terms)) if terms else math.nan
    return {
        "phases": out_phases,
        "triple_phase_boundary_density": _difference(
            gen["triple_phase_boundary_density"], ref["triple_phase_boundary_density"]
        ),
        "distance": distance,
        "within_targets": bool(within),
        "tolerances": tol,
        "units": gen["units"],
        "generated": gen,
        "real": ref,
    }
