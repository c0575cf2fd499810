"""XPS inelastic backgrounds: Shirley (iterative), Tougaard (loss-function integral) and linear.

Follows
-------
- Shirley, Phys. Rev. B 5 (1972) 4709, in the iterative form of Proctor & Sherwood, Anal. Chem.
  54 (1982) 13: the background at binding energy E is the low-BE end level plus the step
  (high-BE end minus low-BE end) times the fraction of the background-subtracted peak area that
  lies at binding energies below E; iterate until the background stops changing.
- Tougaard, Surf. Interface Anal. 11 (1988) 453 (universal cross-section
  K(T) = B T / (C + T^2)^2, B = 2866 eV^2, C = 1643 eV^2) and Tougaard, Surf. Interface Anal. 25
  (1997) 137 (three-parameter form K(T) = B T / ((C - T^2)^2 + D T^2), e.g. C = 551, D = 436
  as CasaXPS's "U 3 Tougaard"). Both are cases of K(T) = B T / ((C + C' T^2)^2 + D T^2).
  The background at binding energy E is B * sum over lower binding energies E' of
  K(E - E') (J(E') - J_low) dE, J_low the intensity at the low-BE end.

Energies are binding energies in eV, in any order (ascending or descending): the functions sort
internally and return the background in the caller's order. For kinetic-energy data pass
``excitation_ev - kinetic_energy``.

Why not a library: lmfitxps (MIT) implements the same backgrounds but prints to stdout, loops in
pure Python (O(n^2) per iteration for Tougaard) and infers the energy direction from the
intensities; here both are vectorised with numpy and take the direction from the energies. The
tests check these implementations against lmfitxps on the real spectra in shared/samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Loss-function parameter sets (B in eV^2; C in eV^2; C' dimensionless; D in eV^2).
UNIVERSAL_TOUGAARD = {"b": 2866.0, "c": 1643.0, "c_prime": 1.0, "d": 0.0}
THREE_PARAMETER_TOUGAARD = {"b": 325.0, "c": 551.0, "c_prime": -1.0, "d": 436.0}


@dataclass(frozen=True)
class _Sorted:
    order: np.ndarray
    e: np.ndarray
    y: np.ndarray

    def restore(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out


def _ascending(binding_energy_ev, intensity) -> _Sorted:
    e = np.asarray(binding_energy_ev, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if e.shape != y.shape or e.ndim != 1:
        raise ValueError("energy and intensity must be 1-D arrays of the same length")
    if e.size < 3:
        raise ValueError("a background needs at least 3 points")
    order = np.argsort(e, kind="stable")
    return _Sorted(order, e[order], y[order])


def _end_levels(y: np.ndarray, n_avg: int) -> tuple[float, float]:
    n = max(1, min(int(n_avg), y.size // 2))
    return float(y[:n].mean()), float(y[-n:].mean())


def linear_background(binding_energy_ev, intensity, *, n_avg: int = 1) -> np.ndarray:
    """Straight line between the mean intensities of ``n_avg`` points at each end."""
    s = _ascending(binding_energy_ev, intensity)
    lo, hi = _end_levels(s.y, n_avg)
    frac = (s.e - s.e[0]) / (s.e[-1] - s.e[0])
    return s.restore(lo + (hi - lo) * frac)


def _cumulative_trapezoid(e: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(y)
    out[1:] = np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(e))
    return out


def shirley_background(
    binding_energy_ev,
    intensity,
    *,
    n_avg: int = 1,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> np.ndarray:
    """Iterative Shirley background.

    Parameters
    ----------
    binding_energy_ev, intensity : the spectrum (window) to subtract from
    n_avg : number of points averaged at each end to set the end levels
    tol : stop when the largest change of the background, relative to the step height,
        falls below this
    max_iter : iteration limit

    Returns
    -------
    background, same order and length as the input
    """
    s = _ascending(binding_energy_ev, intensity)
    lo, hi = _end_levels(s.y, n_avg)
    step = hi - lo
    bg = np.full_like(s.y, lo)
    if step == 0.0:
        return s.restore(bg)
    for _ in range(max_iter):
        area = _cumulative_trapezoid(s.e, s.y - bg)
        total = area[-1]
        if total * step <= 0.0:
            # no signal above the background (a region of an absent element): the iteration
            # is undefined; the straight line between the end levels instead
            return linear_background(binding_energy_ev, intensity, n_avg=n_avg)
        new = lo + step * area / total
        change = np.max(np.abs(new - bg)) / abs(step)
        bg = new
        if change < tol:
            break
    # On a window of noise alone (the region of an absent element) the net area is noise and
    # the ratio above swings the background far outside its end levels (an empty P 2p window
    # once gave 6 at% phosphorus). A Shirley background lies between its end levels, up to the
    # noise: beyond that, the straight line between the end levels is the honest background.
    margin = abs(step) + 5.0 * _noise_sd(s.y)
    if bg.min() < min(lo, hi) - margin or bg.max() > max(lo, hi) + margin:
        return linear_background(binding_energy_ev, intensity, n_avg=n_avg)
    return s.restore(bg)


def _noise_sd(y: np.ndarray) -> float:
    """Point-to-point noise of a spectrum (robust: median absolute first difference)."""
    if y.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(y))) / np.sqrt(2.0))


def tougaard_kernel(t, b: float, c: float, c_prime: float = 1.0, d: float = 0.0) -> np.ndarray:
    """Inelastic cross-section K(T) = B T / ((C + C' T^2)^2 + D T^2), zero for T <= 0."""
    t = np.asarray(t, dtype=float)
    tp = np.where(t > 0, t, 0.0)
    return b * tp / ((c + c_prime * tp**2) ** 2 + d * tp**2)


def tougaard_background(
    binding_energy_ev,
    intensity,
    *,
    b: float | None = None,
    c: float = UNIVERSAL_TOUGAARD["c"],
    c_prime: float = UNIVERSAL_TOUGAARD["c_prime"],
    d: float = UNIVERSAL_TOUGAARD["d"],
    n_avg: int = 1,
) -> np.ndarray:
    """Tougaard background with the loss function K(T) (see the module docstring).

    Parameters
    ----------
    binding_energy_ev, intensity : the spectrum (window)
    b : the B parameter in eV^2; None (default) scales B so that the background meets the
        high-binding-energy end level, as is usual for a window that ends in background
    c, c_prime, d : loss-function shape (defaults: the universal cross-section)
    n_avg : points averaged at each end for the end levels

    Returns
    -------
    background, same order and length as the input (the low-BE end level plus the loss
    integral)
    """
    s = _ascending(binding_energy_ev, intensity)
    lo, hi = _end_levels(s.y, n_avg)
    de = float(np.mean(np.diff(s.e)))
    t = s.e[:, None] - s.e[None, :]  # E_i - E'_j, positive where E'_j < E_i
    kern = tougaard_kernel(t, 1.0, c, c_prime, d)
    integral = kern @ (s.y - lo) * de
    if b is None:
        b = (hi - lo) / integral[-1] if integral[-1] != 0 else 0.0
    return s.restore(lo + b * integral)


BACKGROUNDS = {
    "shirley": shirley_background,
    "tougaard": tougaard_background,
    "linear": linear_background,
}


def background(kind: str, binding_energy_ev, intensity, **kwargs) -> np.ndarray:
    """Dispatch on ``kind`` (``shirley``, ``tougaard``, ``linear``, ``none``)."""
    kind = kind.lower()
    if kind == "none":
        return np.zeros(len(np.asarray(intensity)))
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; known: {sorted(BACKGROUNDS)} or 'none'")
    return BACKGROUNDS[kind](binding_energy_ev, intensity, **kwargs)
