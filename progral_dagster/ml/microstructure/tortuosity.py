"""Tortuosity factor and relative diffusivity of one phase along an axis.

Follows the definition TauFactor uses (Cooper et al., SoftwareX 5 (2016) 203): steady-state
diffusion inside the phase only, fixed concentrations on the two faces of the box normal to the
axis (placed on the voxel faces, half a voxel from the first and last voxel centres), no flux
through the other four faces, unit diffusivity between face-sharing voxels of the phase. With
F the flux through a cross-section, L the box length and A its cross-section (voxel units):

    D_rel = D_eff / D_0 = F L / (A dC),    tau = eps / D_rel

with eps the phase's volume fraction. A phase that does not connect the two faces has
D_rel = 0 and tau = inf; clusters that do not touch both faces are dropped before the solve
(they carry no flux), with scipy's ``ndimage.label`` when installed, else a numpy flood fill.

The solver is our own: the finite-volume Laplacian is applied matrix-free (shifted numpy array
slices) and solved by conjugate gradients, starting from the linear profile, preconditioned by
one symmetric multigrid V-cycle over 2 x 2 x 2 aggregates (Galerkin coarse operators, which
for aggregates are again conductance networks; damped-Jacobi smoothing), in the manner of
aggregation algebraic multigrid (Notay, ETNA 37 (2010) 123). That takes 15 to 40 iterations
where a diagonal (Jacobi) preconditioner takes 200 to 800. It stops when the flux through every
cross-section (and through both faces) agrees within ``tol`` (relative spread, TauFactor's
criterion; at 1e-2 the tortuosity has settled to about 1e-5 relative, because the mean flux
converges much faster than its spread), or when the residual has fallen by ``rtol``. Written in
numpy so that it runs where only numpy is installed (pyamg would need scipy; TauFactor needs
torch and is used in the tests as the reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TortuosityResult:
    """Result of :func:`tortuosity` (all numbers dimensionless)."""

    axis: int
    volume_fraction: float
    relative_diffusivity: float
    tortuosity_factor: float
    iterations: int
    converged: bool
    flux_spread: float

    def as_dict(self) -> dict:
        """JSON-ready dict; an infinite tortuosity (no percolating path) becomes None."""
        tau = self.tortuosity_factor
        return {
            "axis": self.axis,
            "volume_fraction": self.volume_fraction,
            "relative_diffusivity": self.relative_diffusivity,
            "tortuosity_factor": tau if math.isfinite(tau) else None,
            "percolates": self.relative_diffusivity > 0,
            "iterations": self.iterations,
            "converged": self.converged,
            "flux_spread": self.flux_spread,
        }


def _through_mask(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` in face-connected clusters that touch both ends of axis 0.

    Other clusters carry no flux at steady state; dropping them leaves a system in which every
    cluster is tied to a fixed concentration (positive definite), so conjugate gradients
    converge. Uses scipy's labelling when installed, else a numpy flood fill from each end.
    """
    try:
        from scipy import ndimage
    except ImportError:  # numpy only: grow from both faces until nothing changes
        return _grow(mask, 0) & _grow(mask, -1)
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask)
    through = np.intersect1d(np.unique(labels[0]), np.unique(labels[-1]))
    through = through[through > 0]
    return np.isin(labels, through)


def _grow(mask: np.ndarray, end: int) -> np.ndarray:
    """Voxels of ``mask`` face-connected to its slice ``end`` along axis 0 (flood fill)."""
    reached = np.zeros_like(mask)
    reached[end] = mask[end]
    while True:
        grown = reached.copy()
        for k in range(mask.ndim):
            lo, hi = _slab(mask.ndim, k, slice(None, -1)), _slab(mask.ndim, k, slice(1, None))
            grown[lo] |= reached[hi]
            grown[hi] |= reached[lo]
        grown &= mask
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def _slab(ndim: int, axis: int, part: slice) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


class _Laplacian:
    """Matrix-free finite-volume operator: bond conductances between face-sharing cells along
    each axis, plus Dirichlet conductances on the first and last slab of axis 0."""

    def __init__(self, bonds: list[np.ndarray], face_in: np.ndarray, face_out: np.ndarray) -> None:
        self.ndim = len(bonds)
        self.shape = tuple(b.shape[k] + 1 for k, b in enumerate(bonds))
        self.lo = [_slab(self.ndim, k, slice(None, -1)) for k in range(self.ndim)]
        self.hi = [_slab(self.ndim, k, slice(1, None)) for k in range(self.ndim)]
        self.bonds, self.face = bonds, (face_in, face_out)
        self.buffers = [np.empty_like(b) for b in bonds]
        diag = np.zeros(self.shape, face_in.dtype)
        for k, bond in enumerate(bonds):
            diag[self.lo[k]] += bond
            diag[self.hi[k]] += bond
        diag[0] += face_in
        diag[-1] += face_out
        self.diag = diag
        self.inv_diag = np.divide(1.0, diag, out=np.zeros_like(diag), where=diag > 0)
        self.active = diag > 0

    @classmethod
    def of_mask(cls, mask: np.ndarray, dtype: type) -> _Laplacian:
        """Unit conductance between face-sharing voxels of the phase; Dirichlet faces half a
        voxel away (conductance 2)."""
        n = mask.ndim
        bonds = [
            (mask[_slab(n, k, slice(None, -1))] & mask[_slab(n, k, slice(1, None))]).astype(dtype)
            for k in range(n)
        ]
        return cls(bonds, mask[0].astype(dtype) * 2, mask[-1].astype(dtype) * 2)

    def apply(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(self.diag, x, out=out)
        for k, bond in enumerate(self.bonds):
            tmp = self.buffers[k]
            np.multiply(bond, x[self.hi[k]], out=tmp)
            out[self.lo[k]] -= tmp
            np.multiply(bond, x[self.lo[k]], out=tmp)
            out[self.hi[k]] -= tmp
        return out

    def fluxes(self, x: np.ndarray, c_in: float, c_out: float) -> np.ndarray:
        """Flux through the inlet face, every interior cross-section, and the outlet face."""
        inner = (self.bonds[0] * (x[1:] - x[:-1])).reshape(self.shape[0] - 1, -1).sum(axis=1)
        inlet = float(np.sum(self.face[0] * (x[0] - c_in)))
        outlet = float(np.sum(self.face[1] * (c_out - x[-1])))
        return np.concatenate([[inlet], inner, [outlet]])

    def coarsen(self) -> _Laplacian:
        """Galerkin operator P^T A P of 2 x 2 x 2 aggregates (P: piecewise constant).

        Bonds inside an aggregate cancel; the bond between two neighbouring aggregates is the
        sum of the fine bonds that cross between them; face conductances add up.
        """
        bonds = []
        for k, bond in enumerate(self.bonds):
            m = (self.shape[k] + 1) // 2
            index = [slice(None)] * self.ndim
            index[k] = slice(1, 2 * m - 2, 2)  # fine bond 2I+1 joins aggregates I and I+1
            coarse = bond[tuple(index)]
            for axis in range(self.ndim):
                if axis != k:
                    coarse = _pair_sum(coarse, axis)
            bonds.append(coarse)
        face_in, face_out = self.face
        for axis in range(self.ndim - 1):
            face_in, face_out = _pair_sum(face_in, axis), _pair_sum(face_out, axis)
        return _Laplacian(bonds, face_in, face_out)


def _pair_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """Sum neighbouring pairs along ``axis`` (an odd last element is paired with zero)."""
    if a.shape[axis] % 2:
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, 1)
        a = np.pad(a, pad)
    shape = list(a.shape)
    shape[axis : axis + 1] = [shape[axis] // 2, 2]
    return a.reshape(shape).sum(axis=axis + 1)


def _restrict(r: np.ndarray) -> np.ndarray:
    for axis in range(r.ndim):
        r = _pair_sum(r, axis)
    return r


def _prolong(e: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    for axis in range(e.ndim):
        e = np.repeat(e, 2, axis=axis)
    return e[tuple(slice(0, n) for n in shape)]


class _Multigrid:
    """Symmetric V-cycle over aggregation levels, used as the preconditioner of CG.

    Damped Jacobi (omega 0.6) once before and once after the coarse correction, 20 sweeps on
    the coarsest level (edge <= 4). Every step is a fixed symmetric linear map, so the cycle is
    a valid (symmetric positive definite) CG preconditioner.
    """

    omega = 0.6
    coarse_sweeps = 20

    def __init__(self, fine: _Laplacian) -> None:
        self.levels = [fine]
        while max(self.levels[-1].shape) > 4:
            self.levels.append(self.levels[-1].coarsen())
        self.smooth = [self.omega * level.inv_diag for level in self.levels]

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self._cycle(0, r)

    def _cycle(self, i: int, r: np.ndarray) -> np.ndarray:
        level, smooth = self.levels[i], self.smooth[i]
        x = smooth * r
        tmp = np.empty_like(x)
        if i == len(self.levels) - 1:
            for _ in range(self.coarse_sweeps):
                x += smooth * (r - level.apply(x, tmp))
            return x
        correction = self._cycle(i + 1, _restrict(r - level.apply(x, tmp)))
        x += _prolong(correction, level.shape) * level.active
        x += smooth * (r - level.apply(x, tmp))
        return x


def tortuosity(
    volume: np.ndarray,
    phase: int | None = None,
    axis: int = 0,
    *,
    tol: float = 1e-2,
    rtol: float = 1e-7,
    max_iter: int | None = None,
    check_every: int = 5,
    dtype: type = np.float32,
    preconditioner: str = "multigrid",
) -> TortuosityResult:
    """Tortuosity factor and relative diffusivity of ``phase`` along ``axis``.

    Parameters
    ----------
    volume : 2D or 3D label array, or a boolean mask of the conducting phase (``phase=None``)
    phase : label value of the conducting phase
    axis : direction of the imposed concentration gradient
    tol : stop when the fluxes through all cross-sections agree within this relative spread
    rtol : or when the preconditioned residual has fallen by this factor
    max_iter : iteration cap (default: 20 times the sum of the edges)
    check_every : iterations between flux checks
    dtype : float type of the solve (float32 by default: half the memory and time of float64,
        and the same tortuosity to about 1e-6 on ``electrode.tiff``)
    preconditioner : ``"multigrid"`` (default) or ``"jacobi"`` (diagonal; 10 to 20 times more
        iterations, 3 to 5 times slower at 128^3)
    """
    mask = volume.astype(bool) if phase is None else volume == phase
    mask = np.ascontiguousarray(np.moveaxis(mask, axis, 0))
    eps = float(mask.mean())
    n = mask.shape[0]
    area = mask.size // n
    c_in, c_out = 0.0, 1.0
    if max_iter is None:
        max_iter = 20 * sum(mask.shape)
    mask = _through_mask(mask)
    if not mask.any():
        return TortuosityResult(axis, eps, 0.0, math.inf, 0, True, 0.0)

    op = _Laplacian.of_mask(mask, dtype)
    if preconditioner == "multigrid":
        precondition = _Multigrid(op)
    elif preconditioner == "jacobi":

        def precondition(r: np.ndarray) -> np.ndarray:
            return r * op.inv_diag
    else:
        raise ValueError(f"preconditioner must be 'multigrid' or 'jacobi', not {preconditioner!r}")
    profile = c_in + (c_out - c_in) * (np.arange(n, dtype=dtype) + 0.5) / n
    x = mask * profile.reshape((n,) + (1,) * (mask.ndim - 1))
    b = np.zeros(mask.shape, dtype)
    b[0] += op.face[0] * c_in
    b[-1] += op.face[1] * c_out
    r = b - op.apply(x, np.empty_like(x))
    z = precondition(r)
    p = z.copy()
    ap = np.empty_like(x)
    tmp = np.empty_like(x)
    rz = float(np.vdot(r, z))
    rz0 = rz
    iterations, converged, spread = 0, False, math.inf
    while iterations < max_iter:
        if rz <= rtol**2 * rz0 or rz == 0.0:
            converged = True
            break
        op.apply(p, ap)
        alpha = rz / float(np.vdot(p, ap))
        x += np.multiply(p, alpha, out=tmp)
        r -= np.multiply(ap, alpha, out=tmp)
        z = precondition(r)
        rz_new = float(np.vdot(r, z))
        p *= rz_new / rz
        p += z
        rz = rz_new
        iterations += 1
        if iterations % check_every == 0:
            flux = op.fluxes(x, c_in, c_out)
            mean = float(flux.mean())
            if mean > 0:
                spread = float((flux.max() - flux.min()) / mean)
                if spread < tol:
                    converged = True
                    break
    flux = op.fluxes(x, c_in, c_out)
    mean = float(flux.mean())
    if mean > 0:
        spread = float((flux.max() - flux.min()) / mean)
    d_rel = mean * n / (area * (c_out - c_in)) if mean > 0 else 0.0
    tau = eps / d_rel if d_rel > 0 else math.inf
    return TortuosityResult(axis, eps, float(d_rel), float(tau), iterations, converged, spread)
