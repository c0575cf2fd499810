"""Pixel-wise normalisation of ToF-SIMS ion images and the Poisson variance-stabilising transform.

Pixel normalisation follows Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640
(SCIENCE.md, "ToF-SIMS processing"): each pixel of an ion image is divided by the same pixel of
the total-ion image (or of a reference-ion image), which removes what all ions share
(topography, primary-ion dose, detector efficiency) and leaves composition. Pixels whose
reference is zero (or below ``floor``) get 0 instead of a division by zero.

The Anscombe transform 2 sqrt(x + 3/8) turns Poisson counts into values of nearly unit variance
(Anscombe, Biometrika 35 (1948) 246); its exact unbiased inverse for Poisson data (Makitalo &
Foi, IEEE TIP 20 (2011) 99) is used in closed-form approximation. A few lines of numpy: no
library needed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def reference_image(ion_images: Mapping[str, np.ndarray], reference: str = "total") -> np.ndarray:
    """The normalisation denominator as float32: ``total`` (or the named ion) image; when
    ``total`` is asked for but absent, the sum of all ion images stands in for it."""
    if reference in ion_images:
        return np.asarray(ion_images[reference], dtype=np.float32)
    if reference == "total":
        acc = None
        for img in ion_images.values():
            a = np.asarray(img, dtype=np.float32)
            acc = a.copy() if acc is None else acc + a
        if acc is None:
            raise ValueError("no ion images")
        return acc
    raise KeyError(f"reference ion {reference!r} not among the images: {sorted(ion_images)}")


def pixel_normalize(image: np.ndarray, reference: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``image / reference`` per pixel, float32; 0 where ``reference <= floor`` (zero guard)."""
    img = np.asarray(image, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    if img.shape != ref.shape:
        raise ValueError(f"image shape {img.shape} differs from reference shape {ref.shape}")
    out = np.zeros(img.shape, np.float32)
    ok = ref > floor
    np.divide(img, ref, out=out, where=ok)
    return out


def normalize_images(
    ion_images: Mapping[str, np.ndarray], reference: str = "total", floor: float = 0.0
) -> dict[str, np.ndarray]:
    """Every ion image (the reference itself excluded) divided pixel-wise by the reference."""
    ref = reference_image(ion_images, reference)
    return {
        ion: pixel_normalize(img, ref, floor)
        for ion, img in ion_images.items()
        if ion not in (reference, "total")
    }


def anscombe(counts: np.ndarray) -> np.ndarray:
    """Anscombe variance-stabilising transform 2 sqrt(x + 3/8) (float32)."""
    x = np.asarray(counts, dtype=np.float32)
    return 2.0 * np.sqrt(np.clip(x, 0, None) + np.float32(0.375))


def inverse_anscombe(y: np.ndarray) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`anscombe` (Makitalo &
    Foi 2011), clipped at 0 (float32)."""
    y = np.maximum(np.asarray(y, dtype=np.float32), np.float32(1e-3))
    s = np.sqrt(np.float32(1.5))
    inv = 0.25 * y**2 + 0.25 * s / y - 11.0 / 8.0 / y**2 + 5.0 / 8.0 * s / y**3 - 0.125
    return np.clip(inv, 0, None).astype(np.float32)
