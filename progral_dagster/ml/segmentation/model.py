"""The deployable segmentation model and how it is trained and scored.

:class:`SegmentationModel` holds one fitted :class:`~.pipeline.PhaseSegmenter` per material
(cathode and anode cross-sections need different phases and marker ions) and segments either
an ion-image dict or the long ``tof_sims_images`` table (the pyfunc input).

:func:`train_segmentation` builds it from the lake's image measurements: per material, the
unsupervised recipe (marker-named clustering, fitted on every image of the material) and, where
user label images exist, the supervised recipe (pixel classifier) compete on the annotated
pixels: the supervised one is scored on images it was not trained on (leave one image out;
with a single labelled image, two spatial halves, each scored by a model fitted on the other).
The recipe with the higher mean IoU is refitted on everything and kept. The same
:func:`score_recipe` re-scores a champion's recipes on a candidate's evaluation data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .inputs import ion_images_from_table
from .metrics import iou_per_phase
from .phases import USER_LABEL_PHASES, markers_for
from .pipeline import (
    PhaseSegmenter,
    SegmentationParams,
    SegmentationResult,
    fit_supervised,
    fit_unsupervised,
)


@dataclass
class TrainingImage:
    measurement_id: str
    name: str
    material: str
    ion_images: dict[str, np.ndarray]
    pixel_size_um: float | None = None
    labels: np.ndarray | None = None  # user labels, 0 = not annotated
    label_phases: dict[int, str] | None = None


@dataclass
class SegmentationModel:
    segmenters: dict[str, PhaseSegmenter]  # material key -> fitted segmenter
    recipes: dict[str, str] = field(default_factory=dict)  # material key -> supervised|unsupervised
    metrics: dict[str, float] = field(default_factory=dict)

    def segmenter_for(self, material: str | None) -> PhaseSegmenter:
        key = material_key(material) if material else None
        if key in self.segmenters:
            return self.segmenters[key]
        if len(self.segmenters) == 1:
            return next(iter(self.segmenters.values()))
        raise KeyError(f"no segmenter for material {material!r}; known: {sorted(self.segmenters)}")

    def segment(self, ion_images: Mapping[str, np.ndarray], pixel_size_um: float | None = None,
                material: str | None = None) -> SegmentationResult:
        return self.segmenter_for(material).segment(ion_images, pixel_size_um)

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Long ion-image table (ion, x, y, intensity; optional constant columns ``material``,
        ``pixel_size_um``) -> one row per pixel: x, y, label, phase."""
        material = str(table["material"].iloc[0]) if "material" in table and len(table) else None
        images = ion_images_from_table(table[["ion", "x", "y", "intensity"]])
        seg = self.segmenter_for(material)
        labels = seg.predict_labels(images)
        ny, nx = labels.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        phases = seg.phases
        lab = labels.ravel()
        return pd.DataFrame({"x": xx.ravel(), "y": yy.ravel(), "label": lab.astype(int),
                             "phase": [phases.get(int(v), "") for v in lab]})


def material_key(material: str) -> str:
    """The marker table a material maps to (``NMC811`` -> ``nmc-cathode``)."""
    from .phases import DEFAULT_MARKERS

    m = markers_for(material)
    return next(k for k, v in DEFAULT_MARKERS.items() if v is m)


def annotated_iou(pred: np.ndarray, pred_phases: Mapping[int, str], truth: np.ndarray,
                  truth_phases: Mapping[int, str], mask: np.ndarray | None = None) -> float:
    """Mean IoU over the annotated phases, on annotated pixels (truth != 0) inside ``mask``."""
    sel = truth != 0
    if mask is not None:
        sel &= mask
    if not sel.any():
        return float("nan")
    ious = iou_per_phase(pred[sel], pred_phases, truth[sel], {k: v for k, v in truth_phases.items() if k != 0})
    vals = [v for v in ious.values() if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _fit(recipe: str, material: str, images: list[TrainingImage], params: SegmentationParams,
         masks: list[np.ndarray] | None = None) -> PhaseSegmenter:
    if recipe == "unsupervised":
        return fit_unsupervised([t.ion_images for t in images], material, params)
    labels = []
    for i, t in enumerate(images):
        lab = t.labels.copy()
        if masks is not None:
            lab[~masks[i]] = 0
        labels.append(lab)
    return fit_supervised([t.ion_images for t in images], labels, images[0].label_phases or USER_LABEL_PHASES, params)


def _folds(labelled: list[TrainingImage]) -> list[tuple[list[int], list[int], str]]:
    """(train images, test images, spatial split) triples for scoring the supervised recipe."""
    if len(labelled) >= 2:
        return [([j for j in range(len(labelled)) if j != i], [i], "") for i in range(len(labelled))]
    return [([0], [0], "left"), ([0], [0], "right")]


def _half(shape: tuple[int, int], side: str) -> np.ndarray:
    m = np.zeros(shape, bool)
    if side == "left":
        m[:, : shape[1] // 2] = True
    else:
        m[:, shape[1] // 2 :] = True
    return m


def score_recipe(recipe: str, material: str, images: list[TrainingImage],
                 params: SegmentationParams | None = None) -> float:
    """Mean IoU of a recipe on the annotated pixels of the labelled images of one material."""
    params = params or SegmentationParams()
    labelled = [t for t in images if t.labels is not None]
    if not labelled:
        return float("nan")
    scores = []
    if recipe == "unsupervised":
        seg = _fit(recipe, material, images, params)
        for t in labelled:
            scores.append(annotated_iou(seg.predict_labels(t.ion_images), seg.phases, t.labels,
                                        t.label_phases or USER_LABEL_PHASES))
        return float(np.nanmean(scores))
    for train, test, side in _folds(labelled):
        tr = [labelled[i] for i in train]
        masks = [~_half(t.labels.shape, side) for t in tr] if side else None
        seg = _fit(recipe, material, tr, params, masks)
        for i in test:
            t = labelled[i]
            scores.append(annotated_iou(seg.predict_labels(t.ion_images), seg.phases, t.labels,
                                        t.label_phases or USER_LABEL_PHASES,
                                        _half(t.labels.shape, side) if side else None))
    return float(np.nanmean(scores))


def train_segmentation(images: list[TrainingImage], params: SegmentationParams | None = None
                       ) -> tuple[SegmentationModel, pd.DataFrame]:
    """The segmentation model and a table of recipe scores per material."""
    params = params or SegmentationParams()
    by_mat: dict[str, list[TrainingImage]] = {}
    for t in images:
        by_mat.setdefault(material_key(t.material), []).append(t)
    segs, recipes, rows = {}, {}, []
    for key, imgs in sorted(by_mat.items()):
        cands = ["unsupervised"] + (["supervised"] if any(t.labels is not None for t in imgs) else [])
        scores = {r: score_recipe(r, key, imgs, params) for r in cands}
        best = max(cands, key=lambda r: (-1 if np.isnan(scores[r]) else scores[r]))
        for r in cands:
            rows.append({"material": key, "recipe": r, "mean_iou": scores[r], "selected": r == best,
                         "images": len(imgs), "labelled_images": sum(t.labels is not None for t in imgs)})
        segs[key] = _fit(best, key, imgs, params)
        recipes[key] = best
    table = pd.DataFrame(rows)
    sel = table[table["selected"]]
    metrics = {"mean_iou": float(np.nanmean(sel["mean_iou"])) if sel["mean_iou"].notna().any() else float("nan")}
    for _, r in sel.iterrows():
        metrics[f"{r['material']}.mean_iou"] = float(r["mean_iou"])
    return SegmentationModel(segs, recipes, metrics), table


def rescore_model(model: SegmentationModel, images: list[TrainingImage],
                  params: SegmentationParams | None = None) -> float:
    """A champion's recipes re-scored on a candidate's images: mean IoU over materials."""
    vals = []
    for key in {material_key(t.material) for t in images}:
        imgs = [t for t in images if material_key(t.material) == key]
        recipe = model.recipes.get(key, "unsupervised")
        seg = model.segmenters.get(key)
        vals.append(score_recipe(recipe, key, imgs, seg.params if seg is not None else params))
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
