"""Two-point correlation S2 of a phase, computed with FFTs.

S2(r) is the probability that two points a vector r apart both lie in the phase (Torquato,
"Random Heterogeneous Materials", 2002, ch. 2); S2(0) is the volume fraction and S2 tends to the
square of it at distances beyond the structure's correlation length. Kench & Cooper (2021) use it
to compare generated and real microstructures.

The autocorrelation of the phase indicator is the inverse FFT of its power spectrum
(Wiener-Khinchin). For a non-periodic volume the indicator is zero-padded to at least twice its
length, so shifted copies do not wrap, and each shift is divided by the number of voxel pairs that
exist at that shift. ``numpy.fft`` is all that is needed; no library is used.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_CHUNK_VOXELS = 1 << 22  # lines are transformed in chunks of about this many voxels


def _line_autocorrelation(lines: np.ndarray, r_max: int, periodic: bool) -> np.ndarray:
    """Sum over lines of sum_x f(x) f(x+r), r = 0..r_max, for a (lines, n) indicator array."""
    n = lines.shape[1]
    size = n if periodic else 2 * n
    total = np.zeros(r_max + 1)
    step = max(1, _CHUNK_VOXELS // n)
    for start in range(0, lines.shape[0], step):
        spectrum = np.fft.rfft(lines[start : start + step], n=size, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        total += np.fft.irfft(power, n=size, axis=1)[:, : r_max + 1].sum(axis=0)
    return total


def two_point_correlation_axes(
    volume: np.ndarray, phase: int, r_max: int | None = None, periodic: bool = False
) -> np.ndarray:
    """S2 of ``phase`` for shifts along each axis.

    Parameters
    ----------
    volume : 2D or 3D label array
    phase : label value
    r_max : largest shift in voxels (default: half the smallest edge)
    periodic : treat the volume as periodic (shifts wrap around)

    Returns
    -------
    array of shape (ndim, r_max + 1): row ``d`` holds S2 for shifts 0..r_max along axis ``d``
    """
    if r_max is None:
        r_max = min(volume.shape) // 2
    if r_max >= min(volume.shape):
        raise ValueError(f"r_max={r_max} must be below the smallest edge {min(volume.shape)}")
    indicator = (volume == phase).astype(np.float64)
    out = np.empty((volume.ndim, r_max + 1))
    for axis in range(volume.ndim):
        n = volume.shape[axis]
        lines = np.moveaxis(indicator, axis, -1).reshape(-1, n)
        sums = _line_autocorrelation(lines, r_max, periodic)
        pairs = lines.shape[0] * (n if periodic else n - np.arange(r_max + 1))
        out[axis] = sums / pairs
    return out


def two_point_correlation(volume: np.ndarray, phase: int, periodic: bool = False) -> np.ndarray:
    """Full S2 map of ``phase`` over all shift vectors (use for images and small volumes).

    Returns an array centred on the zero shift: index ``tuple(s // 2 for s in out.shape)`` holds
    S2(0). Non-periodic volumes give shifts -(n-1)..(n-1) along each axis (edge 2n - 1),
    periodic ones n shifts. Memory: about 16 * 2**ndim times the voxel count, in bytes.
    """
    indicator = (volume == phase).astype(np.float64)
    if periodic:
        shape = volume.shape
        spectrum = np.fft.rfftn(indicator)
        corr = np.fft.irfftn(spectrum.real**2 + spectrum.imag**2, s=shape)
        return np.fft.fftshift(corr / volume.size)
    shape = tuple(2 * n for n in volume.shape)
    spectrum = np.fft.rfftn(indicator, s=shape)
    corr = np.fft.irfftn(spectrum.real**2 + spectrum.imag**2, s=shape)
    ones = np.fft.rfftn(np.ones(volume.shape), s=shape)
    pairs = np.fft.irfftn(ones.real**2 + ones.imag**2, s=shape)
    corr = np.fft.fftshift(corr / np.maximum(np.rint(pairs), 1.0))
    return corr[tuple(slice(1, None) for _ in shape)]


def two_point_distance(
    generated: np.ndarray,
    real: np.ndarray,
    phases: Iterable[int] | None = None,
    r_max: int | None = None,
    periodic: bool = False,
) -> dict[int, float]:
    """Root-mean-square difference between the per-axis S2 curves of two volumes, per phase.

    The curves are compared for shifts 0..r_max along each axis (default: half the smallest
    edge of either volume); the generated volume may be periodic, the real one is not.
    """
    labels = sorted({int(v) for v in np.unique(real)}) if phases is None else list(phases)
    if r_max is None:
        r_max = min(min(generated.shape), min(real.shape)) // 2
    out = {}
    for label in labels:
        a = two_point_correlation_axes(generated, label, r_max, periodic=periodic)
        b = two_point_correlation_axes(real, label, r_max)
        out[int(label)] = float(np.sqrt(np.mean((a - b) ** 2)))
    return out
