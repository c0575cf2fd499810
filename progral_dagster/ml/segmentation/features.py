"""Per-pixel features of a multi-ion image: denoised, pixel-normalised, standardised, projected.

The chain follows Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640 (SCIENCE.md,
workflow 2): Poisson-aware denoising of every count image (:mod:`.denoise`), pixel-wise
normalisation by the total-ion (or a reference-ion) image (:mod:`.normalize`), then the square
root of each ion's fraction (variance-stabilising for compositional fractions). These channels
carry composition only; the reference counts themselves (pores are low in total counts) are
kept apart as a shading-corrected relative intensity: the denoised reference divided by its
local level over the non-pore pixels (a normalised convolution with a wide Gaussian), which
removes slow topography shading.

The composition channels are standardised and projected on their principal components (PCA by
SVD of a pixel sample) so that a 2048 x 2048 x 20-ion image is never held as a full
(pixels x ions) float matrix: ions are streamed one at a time into k accumulated component
images. Multi-scale features for the supervised pixel classifier (Gaussian smoothing and
gradient magnitude at several scales, as in ilastik-style pixel classification) are computed
on the component images in row strips with a halo, so their memory stays bounded too.
scipy.ndimage provides the filters; sklearn's PCA is not used because the projection must be
applied in a streamed, per-ion accumulation that needs the plain loading matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .denoise import denoise_counts
from .normalize import pixel_normalize, reference_image


def model_ions(ion_images: Mapping[str, np.ndarray], reference: str = "total") -> tuple[str, ...]:
    """The ions that become features: every image except ``total`` and the reference, in the
    mapping's order."""
    return tuple(i for i in ion_images if i not in ("total", reference))


def denoised_reference(
    ion_images: Mapping[str, np.ndarray], reference: str, denoise: str, strength: float
) -> np.ndarray:
    """The normalisation reference (``total`` or an ion), Poisson-denoised, float32 counts."""
    return denoise_counts(reference_image(ion_images, reference), denoise, strength)


def composition_channels(
    ion_images: Mapping[str, np.ndarray],
    ions: Sequence[str],
    ref: np.ndarray,
    denoise: str = "tv",
    strength: float = 1.0,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(ion, sqrt(denoised ion / ref))`` (float32; 0 where ref is 0), one at a time."""
    missing = [i for i in ions if i not in ion_images]
    if missing:
        raise KeyError(f"ion images missing: {missing} (have {sorted(ion_images)})")
    for ion in ions:
        d = denoise_counts(ion_images[ion], denoise, strength)
        yield ion, np.sqrt(pixel_normalize(d, ref))


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks (edge blocks padded by edge values)."""
    ny, nx = a.shape
    py, px = (-ny) % f, (-nx) % f
    if py or px:
        a = np.pad(a, ((0, py), (0, px)), mode="edge")
    return a.reshape(a.shape[0] // f, f, a.shape[1] // f, f).mean(axis=(1, 3))


def local_level(image: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Slowly varying level of ``image`` over ``mask`` pixels: normalised convolution
    G*(image*mask) / G*mask (float32); where the mask is nowhere near, the image mean.

    A wide Gaussian is applied on a grid reduced by about sigma/4 (block means) and the result
    interpolated back (bilinear), which is exact enough for a field this smooth and keeps a
    sigma of hundreds of pixels cheap on large images."""
    f = max(1, int(sigma_px // 4))
    num = _block_mean(np.where(mask, image, 0).astype(np.float32), f)
    den = _block_mean(mask.astype(np.float32), f)
    s = sigma_px / f
    num = ndi.gaussian_filter(num, s, mode="reflect")
    den = ndi.gaussian_filter(den, s, mode="reflect")
    fallback = float(image[mask].mean()) if mask.any() else float(image.mean())
    low = np.full(num.shape, fallback, np.float32)
    ok = den > 1e-3
    low[ok] = num[ok] / den[ok]
    if f > 1:
        ny, nx = image.shape
        # block centres sit at (i + 0.5) f - 0.5 in full-resolution pixel coordinates
        yy = (np.arange(ny) + 0.5) / f - 0.5
        xx = (np.arange(nx) + 0.5) / f - 0.5
        low = ndi.map_coordinates(
            low, np.meshgrid(yy, xx, indexing="ij"), order=1, mode="nearest"
        ).astype(np.float32)
    return np.maximum(low, np.float32(1e-6))


def relative_intensity(
    ref: np.ndarray,
    threshold: float | None = None,
    sigma_frac: float = 0.125,
    iterations: int = 2,
) -> tuple[np.ndarray, float]:
    """Shading-corrected relative intensity of the reference image and the low/high threshold.

    Starts from an Otsu split of sqrt(ref), then ``iterations`` times: local level of the
    bright pixels (Gaussian sigma = ``sigma_frac`` x the longer image edge), ratio ref / level,
    and a new split at ``threshold`` (or, if None, the isodata threshold: midway between the
    two class means, which puts a mixed boundary pixel on the side of its larger share).
    Returns (ratio image, threshold used).
    """
    from skimage.filters import threshold_isodata, threshold_otsu

    r = np.sqrt(np.clip(ref, 0, None))
    if float(r.max()) <= float(r.min()):
        return np.ones(ref.shape, np.float32), 0.5 if threshold is None else threshold
    high = r > threshold_otsu(r)
    sigma = sigma_frac * max(ref.shape)
    ratio = np.ones(ref.shape, np.float32)
    t = 0.5 if threshold is None else float(threshold)
    for _ in range(max(1, iterations)):
        ratio = (ref / local_level(ref, high, sigma)).astype(np.float32)
        if threshold is None:
            t = float(threshold_isodata(np.clip(ratio, 0, 3)))
        high = ratio > t
    return ratio, t


@dataclass
class PixelFeatures:
    """Fitted map from ion images to k standardised principal-component images.

    Attributes
    ----------
    ions : ions used, in order (the reference excluded)
    reference : ``total`` or an ion name
    denoise, strength : Poisson denoising method and strength (:mod:`.denoise`)
    mean, scale : standardisation of the composition channels
    components : (n_ions, k) loadings
    """

    ions: tuple[str, ...]
    reference: str
    denoise: str
    strength: float
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    def reference_image(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        """Denoised reference counts."""
        return denoised_reference(ion_images, self.reference, self.denoise, self.strength)

    def project(self, ion_images: Mapping[str, np.ndarray], ref: np.ndarray) -> np.ndarray:
        """(k, ny, nx) float32 component images, accumulated one ion at a time."""
        comps = self.components.astype(np.float32)
        acc = np.zeros((comps.shape[1], *ref.shape), np.float32)
        chans = composition_channels(ion_images, self.ions, ref, self.denoise, self.strength)
        for j, (_ion, f) in enumerate(chans):
            z = (f - np.float32(self.mean[j])) / np.float32(self.scale[j])
            for c in range(comps.shape[1]):
                acc[c] += comps[j, c] * z
        return acc


def sample_composition(
    ion_images: Mapping[str, np.ndarray],
    ions: Sequence[str],
    ref: np.ndarray,
    index: np.ndarray,
    denoise: str,
    strength: float,
) -> np.ndarray:
    """Composition channels at the flat pixel ``index``: (len(index), len(ions)) float32."""
    cols = [
        f.ravel()[index]
        for _ion, f in composition_channels(ion_images, ions, ref, denoise, strength)
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
    """Standardise the sampled composition channels and take their ``n_components`` leading
    principal axes (SVD)."""
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

    Each strip is filtered with a halo of 4 sigma + 1 rows on both sides (the Gaussian kernels
    are truncated at 4 sigma), so the result equals the whole-image computation."""
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
