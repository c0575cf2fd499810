"""Volume fraction, face-counting surface area and triple-phase-boundary density.

Face counting follows TauFactor's definition (Cooper et al., SoftwareX 5 (2016) 203; the
``face_counting`` method of ``taufactor.metrics.specific_surface_area``): a face between two
unlike voxels *inside* the volume counts once for each of the two phases, the faces of the box
itself do not count, and the area is divided by the volume of the whole box. That reproduces the
numbers TauFactor publishes for its ``electrode.tiff`` example. Face counting measures the
staircase area of the voxelised surface: for a smooth, isotropically oriented surface it is 3/2
of the true area (the mean of |n_x| + |n_y| + |n_z| over the unit sphere is 3/2), which the tests
check against a marching-cubes estimate.

A triple-phase boundary is a voxel edge at which the four voxels around it hold three different
phases (in 2D: a grid vertex whose 2x2 neighbourhood holds three phases); its density is edge
length per volume.

Plain numpy: each metric is a few vectorised comparisons, so no library is needed.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def phase_labels(volume: np.ndarray) -> list[int]:
    """Sorted label values present in ``volume`` (as Python ints)."""
    return [int(v) for v in np.unique(volume)]


def volume_fractions(volume: np.ndarray, phases: Iterable[int] | None = None) -> dict[int, float]:
    """Fraction of voxels holding each label.

    Parameters
    ----------
    volume : label image or volume (any integer dtype)
    phases : labels to report; all labels present when None (absent labels give 0.0)
    """
    values, counts = np.unique(volume, return_counts=True)
    found = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    labels = sorted(found) if phases is None else [int(p) for p in phases]
    return {p: found.get(p, 0) / volume.size for p in labels}


def _pairs(a: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    lo = [slice(None)] * a.ndim
    hi = [slice(None)] * a.ndim
    lo[axis] = slice(None, -1)
    hi[axis] = slice(1, None)
    return a[tuple(lo)], a[tuple(hi)]


def face_count(
    volume: np.ndarray, phase: int, other: int | None = None, periodic: bool = False
) -> int:
    """Number of voxel faces between ``phase`` and any other label (or only ``other``).

    Faces of the bounding box are not counted unless ``periodic`` (then the faces between the
    first and last slice along every axis count too, as for a periodic volume).
    """
    mine = volume == phase
    theirs = ~mine if other is None else volume == other
    total = 0
    for axis in range(volume.ndim):
        m0, m1 = _pairs(mine, axis)
        t0, t1 = _pairs(theirs, axis)
        total += int(np.count_nonzero(m0 & t1)) + int(np.count_nonzero(t0 & m1))
        if periodic:
            first = np.take(mine, 0, axis=axis), np.take(theirs, 0, axis=axis)
            last = np.take(mine, -1, axis=axis), np.take(theirs, -1, axis=axis)
            total += int(np.count_nonzero(first[0] & last[1]))
            total += int(np.count_nonzero(first[1] & last[0]))
    return total


def specific_surface_area(
    volume: np.ndarray,
    phase: int,
    voxel_size_um: float | None = None,
    other: int | None = None,
    periodic: bool = False,
) -> float:
    """Surface area of ``phase`` per unit volume of the box, by face counting.

    Returns 1/m when ``voxel_size_um`` is given (cubic voxels), else faces per voxel (1/voxel
    edge). In 2D the result is boundary length per area. ``other`` restricts the count to the
    interface with one other label (interfacial area density).
    """
    faces = face_count(volume, phase, other=other, periodic=periodic)
    per_voxel = faces / volume.size
    if voxel_size_um is None:
        return float(per_voxel)
    return float(per_voxel / (voxel_size_um * 1e-6))


def _windows(mask: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    """Whether ``mask`` is true in any of the 2x2 voxels around each interior edge/vertex."""
    a0, a1 = axes
    out = None
    for s0 in (slice(None, -1), slice(1, None)):
        for s1 in (slice(None, -1), slice(1, None)):
            index = [slice(None)] * mask.ndim
            index[a0], index[a1] = s0, s1
            part = mask[tuple(index)]
            out = part.copy() if out is None else out | part
    return out


def triple_phase_boundary(
    volume: np.ndarray, phases: Iterable[int] | None = None
) -> tuple[int, int]:
    """Count triple-phase-boundary edges (3D) or vertices (2D) inside the volume.

    Parameters
    ----------
    volume : 2D or 3D label array
    phases : the phases that must meet (default: all labels; with more than three labels an
        edge counts where any three of them meet)

    Returns
    -------
    (count, candidates) : TPB edges and the number of interior edges they were counted among
        (their ratio is what ``taufactor.metrics.triple_phase_boundary`` returns)
    """
    labels = phase_labels(volume) if phases is None else [int(p) for p in phases]
    if len(labels) < 3:
        return 0, 0
    plane_axes = [(0, 1)] if volume.ndim == 2 else [(1, 2), (0, 2), (0, 1)]
    count = candidates = 0
    for axes in plane_axes:
        present = None
        for label in labels:
            here = _windows(volume == label, axes).astype(np.uint8)
            present = here if present is None else present + here
        count += int(np.count_nonzero(present >= 3))
        candidates += present.size
    return count, candidates


def triple_phase_boundary_density(
    volume: np.ndarray,
    phases: Iterable[int] | None = None,
    voxel_size_um: float | None = None,
) -> float:
    """Triple-phase-boundary length per volume (1/m^2 with a voxel size, else 1/voxel^2).

    In 2D: TPB points per area, same units.
    """
    count, _ = triple_phase_boundary(volume, phases)
    per_voxel = count / volume.size
    if voxel_size_um is None:
        return float(per_voxel)
    return float(per_voxel / (voxel_size_um * 1e-6) ** 2)
