"""Phase segmentation of multi-ion images: unsupervised (clustering named by marker ions) and
supervised (pixel classifier on multi-scale features trained from label images).

Follows the phase-segmentation step of Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640
(SCIENCE.md, workflow 2): phases come from reference ions (graphite vs silicon in Si/graphite
anodes; NMC vs carbon-binder in cathodes; pores are low in total counts).

- Unsupervised: a Gaussian mixture (scikit-learn) on the pixel features of :mod:`.features`;
  each cluster is named by the marker ions of a configurable per-material table: the score of
  cluster c for phase p is the mean standardised feature of p's marker ions in c (a phase with
  no marker ions is the low-total-counts phase: score = minus the standardised log total), and
  clusters get phases by an optimal one-to-one assignment (Hungarian, scipy).
- Supervised: a random forest (scikit-learn) on Gaussian / gradient-magnitude features at
  several scales of the component images (the ilastik-style pixel classifier), trained on the
  annotated pixels of user label images (0 = unannotated).

Both are plain picklable objects with ``predict(ion_images) -> label image``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .features import LOG_REFERENCE, PixelFeatures, iter_multiscale

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
    names: Sequence[str],
    n_clusters: int,
    marker_ions: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """Phase index (into ``list(marker_ions)``) for every cluster.

    ``z_samples`` are standardised base channels (columns ``names``) of sampled pixels and
    ``cluster_of_sample`` their cluster. The first ``len(marker_ions)`` clusters are assigned
    one-to-one by maximal total score; any further cluster goes to its best-scoring phase.
    """
    from scipy.optimize import linear_sum_assignment

    phases = list(marker_ions)
    col = {n: j for j, n in enumerate(names)}
    score = np.full((n_clusters, len(phases)), -1e6)
    for c in range(n_clusters):
        sel = cluster_of_sample == c
        if not sel.any():
            continue
        mean = z_samples[sel].mean(axis=0)
        for p, ph in enumerate(phases):
            ions = [i for i in marker_ions[ph] if i in col]
            if marker_ions[ph] and not ions:
                raise ValueError(f"none of the marker ions of {ph!r} is in the images")
            score[c, p] = (
                float(np.mean([mean[col[i]] for i in ions])) if ions else -mean[col[LOG_REFERENCE]]
            )
    if n_clusters < len(phases):
        raise ValueError("fewer clusters than phases")
    rows, cols = linear_sum_assignment(-score)
    out = np.argmax(score, axis=1)
    out[rows] = cols
    return out


@dataclass
class UnsupervisedPhaseModel:
    """Gaussian-mixture clusters of pixel features, each mapped to a named phase.

    ``phases`` maps output label value -> phase name; ``cluster_label`` maps mixture component
    -> output label value.
    """

    features: PixelFeatures
    mixture: object  # sklearn.mixture.GaussianMixture
    cluster_label: np.ndarray
    phases: dict[int, str]
    tile_pixels: int = 262144

    def predict(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        comp = self.features.project(ion_images)
        k, ny, nx = comp.shape
        out = np.empty((ny, nx), np.uint8)
        rows = max(1, self.tile_pixels // nx)
        for r0 in range(0, ny, rows):
            r1 = min(ny, r0 + rows)
            x = comp[:, r0:r1].reshape(k, -1).T
            out[r0:r1] = self.cluster_label[self.mixture.predict(x)].reshape(r1 - r0, nx)
        return out


@dataclass
class SupervisedPhaseModel:
    """Random-forest pixel classifier on multi-scale features of the component images.

    ``phases`` maps label value (as in the training label images) -> phase name.
    """

    features: PixelFeatures
    sigmas: tuple[float, ...]
    classifier: object  # sklearn.ensemble.RandomForestClassifier
    phases: dict[int, str]
    tile_pixels: int = 262144

    def predict(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        comp = self.features.project(ion_images)
        _k, ny, nx = comp.shape
        out = np.empty((ny, nx), np.uint8)
        classes = np.asarray(self.classifier.classes_)
        for r0, r1, feats in iter_multiscale(comp, self.sigmas, self.tile_pixels):
            proba = self.classifier.predict_proba(feats)
            out[r0:r1] = classes[np.argmax(proba, axis=1)].reshape(r1 - r0, nx)
        return out
