"""Area-normalised XPS line shapes in the CasaXPS naming.

Follows the line-shape definitions of the CasaXPS manual ("Peak fitting in XPS", Casa Software;
also Fairley et al., Appl. Surf. Sci. Adv. 5 (2021) 100112):

- ``GL(m)``: Gaussian-Lorentzian *product*,
  exp(-4 ln2 (1 - m) u^2) / (1 + 4 m u^2) with u = (E - E0) / FWHM, m = Lorentzian fraction;
- ``SGL(m)``: Gaussian-Lorentzian *sum*, (1 - m) G + m L with equal FWHM;
- pure Gaussian (``GL(0)``) and Lorentzian (``GL(100)``).

Every shape here has unit area, so a fitted amplitude is the peak area in counts x eV. The
product form has no closed-form area; its area per unit FWHM is integrated once per mixing value
(scipy ``quad``) and cached.

Why not a library: lmfit's built-in peaks (pseudo-Voigt, Voigt) do not include the product
GL(m) form that CasaXPS users quote; the forms are one-line formulas.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.integrate import quad

_LN2 = np.log(2.0)


def gaussian(x, center: float, fwhm: float) -> np.ndarray:
    """Unit-area Gaussian."""
    sigma = fwhm / (2.0 * np.sqrt(2.0 * _LN2))
    return np.exp(-0.5 * ((np.asarray(x) - center) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def lorentzian(x, center: float, fwhm: float) -> np.ndarray:
    """Unit-area Lorentzian (Cauchy)."""
    g = fwhm / 2.0
    return g / np.pi / ((np.asarray(x) - center) ** 2 + g**2)


def sgl(x, center: float, fwhm: float, m: float) -> np.ndarray:
    """Unit-area Gaussian-Lorentzian sum, Lorentzian fraction ``m`` in [0, 1]."""
    return (1.0 - m) * gaussian(x, center, fwhm) + m * lorentzian(x, center, fwhm)


@lru_cache(maxsize=256)
def _gl_unit_area(m: float) -> float:
    def f(u: float) -> float:
        return np.exp(-4.0 * _LN2 * (1.0 - m) * u * u) / (1.0 + 4.0 * m * u * u)

    area, _ = quad(f, -np.inf, np.inf, limit=200)
    return float(area)


def gl(x, center: float, fwhm: float, m: float) -> np.ndarray:
    """Unit-area Gaussian-Lorentzian product, Lorentzian fraction ``m`` in [0, 1]."""
    if m >= 1.0:
        return lorentzian(x, center, fwhm)
    u = (np.asarray(x) - center) / fwhm
    shape = np.exp(-4.0 * _LN2 * (1.0 - m) * u * u) / (1.0 + 4.0 * m * u * u)
    return shape / (fwhm * _gl_unit_area(round(float(m), 6)))


SHAPES = {"gl": gl, "sgl": sgl}


def profile(shape: str, x, center: float, fwhm: float, m: float = 0.3) -> np.ndarray:
    """Evaluate a named shape: ``gl``, ``sgl``, ``gaussian``, ``lorentzian``."""
    shape = shape.lower()
    if shape == "gaussian":
        return gaussian(x, center, fwhm)
    if shape == "lorentzian":
        return lorentzian(x, center, fwhm)
    if shape not in SHAPES:
        raise ValueError(f"unknown line shape {shape!r}")
    return SHAPES[shape](x, center, fwhm, m)
