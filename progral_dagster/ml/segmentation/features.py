"""Per-pixel features of a multi-ion image: denoised, pixel-normalised, standardised, projected.

The chain follows Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640 (SCIENCE.md,
workflow 2): Poisson-aware denoising of every count image (:mod:`.denoise`), pixel-wise
normalisation by the total-ion (or a reference-ion) image (:mod:`.normalize`), then a
square-root of each ion's fraction (variance-stabilising for compositional fractions) and the
log of the reference counts (pores are low in total counts). These base channels are
standardised and projected on their principal components (PCA by SVD of a pixel sample) so that
a 2048 x 2048 x 20-ion image is never held as a full (pixels x ions) float matrix: ions are
streamed one at a time into k accumulated component images.

Multi-scale features for the supervised pixel classifier (Gaussian smoothing and gradient
magnitude at several scales, as in ilastik-style pixel classification) are computed on the k
component images in row strips with a halo, so their memory stays bounded too. scipy.ndimage
provides the filters; sklearn's PCA is not used because the projection must be applied in a
streamed, per-ion accumulation that needs the plain loading matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .denoise import denoise_counts
from .normalize import pixel_normalize, reference_image

LOG_REFERENCE = "log_reference"


def model_ions(ion_images: Mapping[str, np.ndarray], reference: str = "total") -> tuple[str, ...]:
    """The ions that become features: every image except ``total`` and the reference, in the
    mapping's order."""
    return tuple(i for i in ion_images if i not in ("total", reference))


def base_channels(
    ion_images: Mapping[str, np.ndarray],
    ions: Sequence[str],
    reference: str = "total",
    denoise: str = "tv",
    strength: float = 1.0,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, float32 image)``: first ``log_reference`` = ln(1 + denoised reference),
    then for each ion sqrt(denoised ion / denoised reference) (0 where the reference is 0).
    One full-resolution ion is alive at a time."""
    missing = [i for i in ions if i not in ion_images]
    if missing:
        raise KeyError(f"ion images missing: {missing} (have {sorted(ion_images)})")
    ref = denoise_counts(reference_image(ion_images, reference), denoise, strength)
    yield LOG_REFERENCE, np.log1p(ref)
    for ion in ions:
        d = denoise_counts(ion_images[ion], denoise, strength)
        yield ion, np.sqrt(pixel_normalize(d, ref))


@dataclass
class PixelFeatures:
    """Fitted map from ion images to k standardised principal-component images.

    Attributes
    ----------
    ions : ions used, in order (the reference excluded)
    reference : ``total`` or an ion name
    denoise, strength : Poisson denoising method and strength (:mod:`.denoise`)
    names : base channel names (``log_reference`` then the ions)
    mean, scale : standardisation of the base channels
    components : (n_base, k) loadings
    """

    ions: tuple[str, ...]
    reference: str
    denoise: str
    strength: float
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    def channels(self, ion_images: Mapping[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
        """Standardised base channels, streamed."""
        for j, (name, img) in enumerate(
            base_channels(ion_images, self.ions, self.reference, self.denoise, self.strength)
        ):
            yield name, (img - np.float32(self.mean[j])) / np.float32(self.scale[j])

    def project(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        """(k, ny, nx) float32 component images, accumulated one ion at a time."""
        acc = None
        comps = self.components.astype(np.float32)
        for j, (_name, z) in enumerate(self.channels(ion_images)):
            if acc is None:
                acc = np.zeros((comps.shape[1], *z.shape), np.float32)
            for c in range(comps.shape[1]):
                acc[c] += comps[j, c] * z
        assert acc is not None
        return acc


def sample_base(
    ion_images: Mapping[str, np.ndarray],
    ions: Sequence[str],
    index: np.ndarray,
    reference: str,
    denoise: str,
    strength: float,
) -> np.ndarray:
    """Base channels (unstandardised) at the flat pixel ``index``: (len(index), 1 + len(ions))."""
    cols = [
        img.ravel()[index]
        for _name, img in base_channels(ion_images, ions, reference, denoise, strength)
    ]
    return np.stack(cols, axis=1).astype(np.float32)


def fit_pixel_features(
    samples: np.ndarray,
    ions: Sequence[str],
    reference: str,
    denoise: str,
    strength: float,
    n_components: int,
) -> PixelFeatures:
    """Standardise the sampled base channels and take their ``n_components`` leading principal
    axes (SVD)."""
    mean = samples.mean(axis=0).astype(np.float64)
    scale = samples.std(axis=0).astype(np.float64)
    scale[scale < 1e-6] = 1.0
    z = (samples - mean) / scale
    k = int(min(n_components, z.shape[1]))
    _u, _s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    comps = vt[:k].T
    # deterministic sign: largest loading of each axis positive
    signs = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(k)])
    comps = comps * np.where(signs == 0, 1, signs)
    return PixelFeatures(
        ions=tuple(ions),
        reference=reference,
        denoise=denoise,
        strength=float(strength),
        names=(LOG_REFERENCE, *ions),
        mean=mean,
        scale=scale,
        components=comps,
    )


def n_multiscale(n_channels: int, sigmas: Sequence[float]) -> int:
    """Number of multi-scale features for ``n_channels`` channels."""
    return n_channels * (1 + 2 * len(sigmas))


def multiscale_strip(channels: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """Multi-scale features of a (k, rows, nx) block: per channel the value, its Gaussian
    smoothing and Gaussian gradient magnitude at each sigma. Returns (rows * nx, n_features)."""
    k, ny, nx = channels.shape
    out = np.empty((ny * nx, n_multiscale(k, sigmas)), np.float32)
    col = 0
    for c in range(k):
        ch = channels[c]
        out[:, col] = ch.ravel()
        col += 1
        for s in sigmas:
            out[:, col] = ndi.gaussian_filter(ch, s, mode="reflect").ravel()
            out[:, col + 1] = ndi.gaussian_gradient_magnitude(ch, s, mode="reflect").ravel()
            col += 2
    return out


def iter_multiscale(
    channels: np.ndarray, sigmas: Sequence[float], max_pixels: int = 262144
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Multi-scale features in row strips: yields (row0, row1, features of rows row0:row1).

    Each strip is filtered with a halo of 4 sigma rows on both sides, so the result equals the
    whole-image computation (up to the border mode at the image edge)."""
    _k, ny, nx = channels.shape
    halo = int(np.ceil(4 * max(sigmas))) + 1 if sigmas else 0
    rows = max(1, max_pixels // max(nx, 1))
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        h0, h1 = max(0, r0 - halo), min(ny, r1 + halo)
        feats = multiscale_strip(channels[:, h0:h1], sigmas)
        a = (r0 - h0) * nx
        b = a + (r1 - r0) * nx
        yield r0, r1, feats[a:b]
