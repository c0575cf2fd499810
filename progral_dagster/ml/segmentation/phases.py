"""Phase segmentation of multi-ion images: unsupervised (marker-named clustering) and supervised
(pixel classifier on multi-scale features trained from label images).

Follows the phase-segmentation step of Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640
(SCIENCE.md, workflow 2): phases come from reference ions (graphite vs silicon in Si/graphite
anodes; NMC vs carbon-binder in cathodes); pores are low in total counts. Like the group's SEM
variant (threshold first, then split the rest), the unsupervised model works in two stages:

1. the phase without marker ions (pores) = pixels whose shading-corrected total counts fall
   below an isodata threshold (midway between the class means, so a mixed boundary pixel goes
   to the side of its larger share);
2. the other pixels are clustered by composition (k-means, scikit-learn, on the standardised
   principal components of the normalised ion fractions); a cluster's score for a phase is the
   mean standardised fraction of the phase's marker ions, and clusters get phases by an optimal
   one-to-one assignment (Hungarian, scipy). k-means has equal, isotropic clusters, so its
   boundaries lie midway between phase compositions; a full-covariance Gaussian mixture was
   tried and let the broad binder cluster swallow the rims of the particles.

The supervised model is a random forest (scikit-learn) on multi-scale features (value, and
Gaussian smoothing and gradient magnitude at the configured scales) of the component images
and of the log relative intensity (the ilastik-style pixel classifier), trained on the annotated pixels of user label images
(0 = unannotated). Both are plain picklable objects with ``predict(ion_images) -> labels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .features import PixelFeatures, iter_multiscale, relative_intensity

# Marker ions per material (negative polarity): phase -> ions; [] = the low-total-counts phase.
DEFAULT_MARKERS: dict[str, dict[str, list[str]]] = {
    "nmc-cathode": {
        "NMC": ["Ni-", "NiO-", "LiO2-", "NiF2-", "CoF2-", "MnF2-"],
        "carbon-binder": ["C2-", "CH2-", "C2F-", "POF2-"],
        "pore": [],
    },
    "si-graphite-anode": {
        "graphite": ["C6-", "C4-", "C2-"],
        "Si": ["Si-", "SiO-", "SiO2-", "SiO3-"],
        "carbon-binder": ["CH-", "C2H-", "OH-", "POF2-"],
        "pore": [],
    },
}


# The lab's convention for user label images (value -> phase; 0 = not annotated). The
# simulator writes it, and also as JSON in the TIFF ImageDescription (see
# :func:`label_names_from_description`).
USER_LABEL_PHASES: dict[int, str] = {
    1: "pore",
    2: "carbon-binder",
    3: "NMC",
    4: "graphite",
    5: "Si",
}


def label_names_from_description(description: str | None) -> dict[int, str] | None:
    """Label value -> phase name from a label TIFF's ImageDescription JSON
    (``{"labels": {"1": "pore", ...}}``), or None if it holds none."""
    import json

    if not description:
        return None
    try:
        doc = json.loads(description)
        return {int(k): str(v) for k, v in doc["labels"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def markers_for(material: str) -> dict[str, list[str]]:
    """Marker table for a material name (``NMC811``, ``Si-graphite``, ... matched loosely)."""
    m = material.lower()
    if m in DEFAULT_MARKERS:
        return DEFAULT_MARKERS[m]
    if "nmc" in m or "ncm" in m or "cathode" in m:
        return DEFAULT_MARKERS["nmc-cathode"]
    if "graphite" in m or "si" in m or "anode" in m:
        return DEFAULT_MARKERS["si-graphite-anode"]
    raise KeyError(f"no marker ions known for material {material!r}; pass marker_ions")


def name_clusters(
    cluster_of_sample: np.ndarray,
    z_samples: np.ndarray,
    ions: Sequence[str],
    n_clusters: int,
    marker_ions: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """Index into ``list(marker_ions)`` for every cluster.

    ``z_samples`` are standardised composition channels (columns ``ions``) of sampled pixels
    and ``cluster_of_sample`` their cluster. One-to-one assignment by maximal total score for
    as many clusters as phases; any further cluster goes to its best-scoring phase.
    """
    from scipy.optimize import linear_sum_assignment

    phases = list(marker_ions)
    col = {n: j for j, n in enumerate(ions)}
    score = np.full((n_clusters, len(phases)), -1e6)
    for p, ph in enumerate(phases):
        present = [col[i] for i in marker_ions[ph] if i in col]
        if not present:
            raise ValueError(
                f"none of the marker ions of {ph!r} ({list(marker_ions[ph])}) is in the images"
            )
        for c in range(n_clusters):
            sel = cluster_of_sample == c
            if sel.any():
                score[c, p] = float(z_samples[sel][:, present].mean())
    if n_clusters < len(phases):
        raise ValueError("fewer clusters than phases")
    rows, cols = linear_sum_assignment(-score)
    out = np.argmax(score, axis=1)
    out[rows] = cols
    return out


def nearest_center(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center (Euclidean) for every row of ``x``."""
    d = (x * x).sum(1)[:, None] - 2 * x @ centers.T + (centers * centers).sum(1)[None, :]
    return np.argmin(d, axis=1)


@dataclass
class UnsupervisedPhaseModel:
    """Low-intensity threshold plus composition clusters, each mapped to a named phase.

    Attributes
    ----------
    features : the fitted pixel features
    centers : (n_clusters, k) k-means centres in component space
    cluster_label : output label value of every cluster
    phases : output label value -> phase name
    low_label : label value of the low-total-counts phase (None: no such phase)
    low_threshold : threshold on the shading-corrected relative intensity
    sigma_frac : width of the shading estimate (fraction of the longer image edge)
    """

    features: PixelFeatures
    centers: np.ndarray
    cluster_label: np.ndarray
    phases: dict[int, str]
    low_label: int | None
    low_threshold: float
    sigma_frac: float = 0.125
    tile_pixels: int = 262144

    def predict(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        ref = self.features.reference_image(ion_images)
        comp = self.features.project(ion_images, ref)
        k, ny, nx = comp.shape
        out = np.empty((ny, nx), np.uint8)
        rows = max(1, self.tile_pixels // nx)
        centers = self.centers.astype(np.float32)
        for r0 in range(0, ny, rows):
            r1 = min(ny, r0 + rows)
            x = comp[:, r0:r1].reshape(k, -1).T
            out[r0:r1] = self.cluster_label[nearest_center(x, centers)].reshape(r1 - r0, nx)
        if self.low_label is not None:
            ratio, t = relative_intensity(ref, self.low_threshold, self.sigma_frac)
            out[ratio <= t] = self.low_label
        return out


def intensity_channel(ref: np.ndarray, sigma_frac: float = 0.125) -> np.ndarray:
    """log of the shading-corrected relative intensity (float32, floored at 1e-3)."""
    ratio, _t = relative_intensity(ref, None, sigma_frac)
    return np.log(np.maximum(ratio, np.float32(1e-3))).astype(np.float32)


@dataclass
class SupervisedPhaseModel:
    """Random-forest pixel classifier on multi-scale features of the component images and of
    the log relative intensity.

    ``phases`` maps label value (as in the training label images) -> phase name.
    """

    features: PixelFeatures
    sigmas: tuple[float, ...]
    classifier: object  # sklearn.ensemble.RandomForestClassifier
    phases: dict[int, str]
    sigma_frac: float = 0.125
    tile_pixels: int = 262144

    def channels(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        """(k + 1, ny, nx) channels the multi-scale features are computed from."""
        ref = self.features.reference_image(ion_images)
        comp = self.features.project(ion_images, ref)
        return np.concatenate([comp, intensity_channel(ref, self.sigma_frac)[None]])

    def predict(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        chans = self.channels(ion_images)
        _k, ny, nx = chans.shape
        out = np.empty((ny, nx), np.uint8)
        classes = np.asarray(self.classifier.classes_)
        for r0, r1, feats in iter_multiscale(chans, self.sigmas, self.tile_pixels):
            proba = self.classifier.predict_proba(feats)
            out[r0:r1] = classes[np.argmax(proba, axis=1)].reshape(r1 - r0, nx)
        return out
