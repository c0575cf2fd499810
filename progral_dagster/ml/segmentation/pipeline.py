"""End-to-end segmentation of ToF-SIMS mass images of electrode cross-sections.

The workflow of Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640 (SCIENCE.md,
workflow 2): Poisson denoising and pixel normalisation (:mod:`.features`), phase segmentation
(:mod:`.phases`, unsupervised or supervised), watershed particle separation on the distance
transform and per-particle statistics with CEI rim enrichment (:mod:`.particles`), phase
fractions and interface lengths (:mod:`.metrics`).

The fitted model is a :class:`PhaseSegmenter`: a picklable object (numpy arrays and
scikit-learn estimators) with ``segment(ion_images, pixel_size_um) -> SegmentationResult``,
which the MLflow layer wraps as a pyfunc. ``ion_images`` is a dict ion name -> 2D count image,
``total`` among them, so nothing here depends on files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .features import (
    denoised_reference,
    fit_pixel_features,
    iter_multiscale,
    model_ions,
    relative_intensity,
    sample_composition,
)
from .metrics import interface_lengths, phase_fractions
from .normalize import reference_image
from .particles import particle_table, particles_of_phases, rim_enrichment
from .phases import (
    SupervisedPhaseModel,
    UnsupervisedPhaseModel,
    markers_for,
    name_clusters,
)

NON_PARTICLE_PHASES = ("pore", "carbon-binder", "binder", "cbd", "background", "unlabelled")
DEFAULT_CEI_IONS = ("LiCO3-", "CO3-", "PO2-", "PO3-", "NiF3-", "MnF3-")
_SUM = "\x00sum"


@dataclass(frozen=True)
class SegmentationParams:
    """Every parameter of the pipeline (recorded with the model).

    Attributes
    ----------
    reference : normalisation denominator, ``total`` or an ion name
    denoise : ``tv`` (total variation), ``nlm`` (non-local means), ``gaussian`` or ``none``,
        applied after the Anscombe transform
    denoise_strength : scales the denoiser (1 = the tuned default)
    n_components : principal components kept of the standardised pixel features
    sample_pixels : pixels sampled per image for fitting
    clusters_per_phase : unsupervised: k-means clusters per phase with marker ions
    scales : supervised: Gaussian scales (px) of the multi-scale features, beside the
        unsmoothed value (scale 0); wider scales (2, 4 px) were measured to blur phase
        boundaries when the annotation leaves boundary pixels out, as users' annotations do
    n_estimators, max_depth : supervised: random forest size
    particle_phases : phases split into particles (None: every phase not in
        :data:`NON_PARTICLE_PHASES`)
    watershed_h_px : h of the h-dome markers on the distance transform (px): a maximum must
        rise this much above the saddle to its neighbour to seed its own particle
    watershed_smooth_px : Gaussian smoothing of the distance transform before the markers
    min_particle_area_px : smaller particles are dropped / merged; smaller holes are filled
    fill_holes : fill holes under ``min_particle_area_px`` in a particle phase before the
        watershed
    cei_ions : ions whose rim enrichment is measured (those present are used)
    cei_as_features : also use the CEI ions as phase features (default: no)
    rim_width_px, rim_offset_px, core_depth_px : rim = outline distance in
        [offset, offset + width), core = distance >= core_depth
    rim_threshold : a particle with rim enrichment above this is flagged ``rim_enriched``
    shading_sigma_frac : width (fraction of the longer image edge) of the Gaussian that
        estimates slow topography shading of the reference image
    seed : random seed of sampling and model fitting
    tile_pixels : pixels per prediction strip (bounds memory)
    """

    reference: str = "total"
    denoise: str = "tv"
    denoise_strength: float = 1.0
    n_components: int = 8
    sample_pixels: int = 40_000
    clusters_per_phase: int = 1
    scales: tuple[float, ...] = (1.0,)
    n_estimators: int = 40
    max_depth: int | None = 16
    particle_phases: tuple[str, ...] | None = None
    watershed_h_px: float = 1.0
    watershed_smooth_px: float = 0.0
    min_particle_area_px: int = 15
    fill_holes: bool = True
    cei_ions: tuple[str, ...] = DEFAULT_CEI_IONS
    cei_as_features: bool = False
    rim_width_px: float = 3.0
    rim_offset_px: float = 0.0
    core_depth_px: float = 5.0
    rim_threshold: float = 1.4
    shading_sigma_frac: float = 0.125
    seed: int = 0
    tile_pixels: int = 262_144

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for MLflow params)."""
        from dataclasses import asdict

        return asdict(self)


@dataclass
class SegmentationResult:
    """What :meth:`PhaseSegmenter.segment` returns.

    Attributes
    ----------
    labels : (ny, nx) uint8 phase label image
    phases : label value -> phase name
    particles : one row per particle (:data:`.particles.PARTICLE_COLUMNS`)
    phase_fractions : phase name -> area fraction
    interface_lengths : ``"A|B"`` -> boundary length (um, or px without a pixel size)
    rim_enrichment : summary: ions used, median enrichment, fraction of particles enriched,
        number of particles measured, median per ion
    instances : (ny, nx) int32 particle ids (0 = none)
    pixel_size_um : pixel size used (None if unknown)
    total_image : the normalisation reference (total-ion) image, float32, for overlays
    """

    labels: np.ndarray
    phases: dict[int, str]
    particles: pd.DataFrame
    phase_fractions: dict[str, float]
    interface_lengths: dict[str, float]
    rim_enrichment: dict[str, Any]
    instances: np.ndarray = field(repr=False)
    pixel_size_um: float | None = None
    total_image: np.ndarray | None = field(default=None, repr=False)


@dataclass
class PhaseSegmenter:
    """A fitted segmentation model: phase model + pipeline parameters."""

    phase_model: UnsupervisedPhaseModel | SupervisedPhaseModel
    params: SegmentationParams
    kind: str = "unsupervised"

    @property
    def phases(self) -> dict[int, str]:
        return dict(self.phase_model.phases)

    @property
    def ions(self) -> tuple[str, ...]:
        return self.phase_model.features.ions

    def predict_labels(self, ion_images: Mapping[str, np.ndarray]) -> np.ndarray:
        """Phase label image only."""
        return self.phase_model.predict(ion_images)

    def segment(
        self, ion_images: Mapping[str, np.ndarray], pixel_size_um: float | None = None
    ) -> SegmentationResult:
        """Phases, particles, fractions, interface lengths and rim enrichment of one image."""
        labels = self.predict_labels(ion_images)
        return analyse_labels(labels, self.phases, ion_images, pixel_size_um, self.params)


def particle_phase_names(phases: Mapping[int, str], params: SegmentationParams) -> list[str]:
    """Phases to split into particles."""
    if params.particle_phases is not None:
        return [p for p in phases.values() if p in params.particle_phases]
    return [p for p in phases.values() if p.lower() not in NON_PARTICLE_PHASES]


def analyse_labels(
    labels: np.ndarray,
    phases: Mapping[int, str],
    ion_images: Mapping[str, np.ndarray] | None,
    pixel_size_um: float | None,
    params: SegmentationParams | None = None,
) -> SegmentationResult:
    """Particles, rim enrichment, fractions and interface lengths of a phase label image.

    ``ion_images`` may be None (a segmented micrograph): rim enrichment is then not measured.
    """
    params = params or SegmentationParams()
    phases = dict(phases)
    inst, phase_of = particles_of_phases(
        labels,
        phases,
        particle_phase_names(phases, params),
        h_px=params.watershed_h_px,
        min_area_px=params.min_particle_area_px,
        fill_holes=params.fill_holes,
        smooth_px=params.watershed_smooth_px,
    )
    parts = particle_table(inst, phase_of, pixel_size_um)
    rim: dict[str, Any] = {
        "ions": [],
        "median": None,
        "fraction_enriched": None,
        "n_particles": 0,
        "per_ion_median": {},
    }
    ref = reference_image(ion_images, params.reference) if ion_images else None
    cei = [i for i in params.cei_ions if ion_images is not None and i in ion_images]
    if cei and len(parts) and ref is not None:
        assert ion_images is not None
        signals: dict[str, np.ndarray] = {ion: ion_images[ion] for ion in cei}
        total_cei = np.zeros(ref.shape, np.float32)
        for i in cei:
            total_cei += np.asarray(ion_images[i], np.float32)
        signals[_SUM] = total_cei
        per_ion = rim_enrichment(
            inst,
            signals,
            ref,
            width_px=params.rim_width_px,
            offset_px=params.rim_offset_px,
            core_depth_px=params.core_depth_px,
        )
        enr = per_ion.pop(_SUM)
        ids = parts["particle_id"].to_numpy()
        parts["rim_enrichment"] = enr[ids]
        parts["rim_enriched"] = parts["rim_enrichment"] > params.rim_threshold
        measured = parts["rim_enrichment"].dropna()
        rim = {
            "ions": cei,
            "median": float(measured.median()) if len(measured) else None,
            "fraction_enriched": float(parts.loc[measured.index, "rim_enriched"].mean())
            if len(measured)
            else None,
            "n_particles": int(len(measured)),
            "per_ion_median": {
                ion: float(np.nanmedian(v[ids])) if np.isfinite(v[ids]).any() else None
                for ion, v in per_ion.items()
            },
        }
    return SegmentationResult(
        labels=labels,
        phases=phases,
        particles=parts,
        phase_fractions=phase_fractions(labels, phases),
        interface_lengths=interface_lengths(labels, phases, pixel_size_um),
        rim_enrichment=rim,
        instances=inst,
        pixel_size_um=pixel_size_um,
        total_image=ref,
    )


def _ions_of(
    images_list: Sequence[Mapping[str, np.ndarray]], params: SegmentationParams
) -> tuple[str, ...]:
    """Feature ions: present in every training image, in the first image's order; the CEI ions
    are left out unless ``params.cei_as_features`` (they mark an interphase at particle rims,
    not a phase, and would make the rims a cluster of their own)."""
    first = model_ions(images_list[0], params.reference)
    skip = () if params.cei_as_features else params.cei_ions
    common = [i for i in first if i not in skip and all(i in im for im in images_list)]
    if not common:
        raise ValueError("the training images share no ion")
    return tuple(common)


def _sample_index(n: int, size: int, rng: np.random.Generator, where=None) -> np.ndarray:
    pool = np.arange(n) if where is None else np.flatnonzero(where)
    if pool.size <= size:
        return pool
    return np.sort(rng.choice(pool, size=size, replace=False))


def fit_unsupervised(
    images_list: Sequence[Mapping[str, np.ndarray]],
    marker_ions: Mapping[str, Sequence[str]] | str,
    params: SegmentationParams | None = None,
) -> PhaseSegmenter:
    """Fit the unsupervised model: low-intensity threshold for the phase without marker ions,
    k-means on the composition of the other pixels, clusters named by marker ions.

    Parameters
    ----------
    images_list : one or more ion-image dicts (ion -> 2D counts, ``total`` among them)
    marker_ions : phase -> marker ions (at most one phase with [] = the low-total-counts
        phase, e.g. pores), or a material name looked up in :data:`.phases.DEFAULT_MARKERS`
    params : pipeline parameters
    """
    from sklearn.cluster import KMeans

    params = params or SegmentationParams()
    markers = markers_for(marker_ions) if isinstance(marker_ions, str) else dict(marker_ions)
    low = [p for p, ions in markers.items() if not ions]
    if len(low) > 1:
        raise ValueError(f"only one phase may have no marker ions, got {low}")
    solid = {p: list(v) for p, v in markers.items() if v}
    if not solid:
        raise ValueError("marker_ions names no phase with marker ions")
    images_list = list(images_list)
    if not images_list:
        raise ValueError("no training images")
    rng = np.random.default_rng(params.seed)
    ions = _ions_of(images_list, params)
    den, st = params.denoise, params.denoise_strength
    samples, thresholds = [], []
    for im in images_list:
        ref = denoised_reference(im, params.reference, den, st)
        where = None
        if low:
            ratio, t = relative_intensity(ref, None, params.shading_sigma_frac)
            thresholds.append(t)
            where = ratio > t
        idx = _sample_index(ref.size, params.sample_pixels, rng, where)
        samples.append(sample_composition(im, ions, ref, idx, den, st))
    comp = np.concatenate(samples)
    feats = fit_pixel_features(comp, ions, params.reference, den, st, params.n_components)
    z = (comp - feats.mean) / feats.scale
    x = (z @ feats.components).astype(np.float32)
    n_clusters = len(solid) * max(1, params.clusters_per_phase)
    km = KMeans(n_clusters=n_clusters, n_init=4, random_state=params.seed).fit(x)
    phase_idx = name_clusters(km.labels_, z, ions, n_clusters, solid)
    names = list(solid) + low
    phases = dict(enumerate(names))
    model = UnsupervisedPhaseModel(
        features=feats,
        centers=km.cluster_centers_.astype(np.float32),
        cluster_label=phase_idx.astype(np.uint8),
        phases=phases,
        low_label=len(solid) if low else None,
        low_threshold=float(np.mean(thresholds)) if thresholds else 0.5,
        sigma_frac=params.shading_sigma_frac,
        tile_pixels=params.tile_pixels,
    )
    return PhaseSegmenter(model, params, kind="unsupervised")


def fit_supervised(
    images_list: Sequence[Mapping[str, np.ndarray]],
    label_images_list: Sequence[np.ndarray],
    phases: Mapping[int, str] | None = None,
    params: SegmentationParams | None = None,
) -> PhaseSegmenter:
    """Fit the supervised model: random forest on multi-scale features of annotated pixels.

    Parameters
    ----------
    images_list : ion-image dicts, one per label image
    label_images_list : label images on the same pixel grids; 0 = not annotated, other values
        are phases
    phases : label value -> phase name (default ``phase_<value>``)
    params : pipeline parameters
    """
    from sklearn.ensemble import RandomForestClassifier

    params = params or SegmentationParams()
    images_list = list(images_list)
    label_images_list = [np.asarray(lab) for lab in label_images_list]
    if len(images_list) != len(label_images_list) or not images_list:
        raise ValueError("give one label image per ion-image dict (at least one)")
    rng = np.random.default_rng(params.seed)
    ions = _ions_of(images_list, params)
    den, st = params.denoise, params.denoise_strength
    values = sorted({int(v) for lab in label_images_list for v in np.unique(lab) if v != 0})
    if len(values) < 2:
        raise ValueError("label images must annotate at least two phases (0 = unannotated)")
    refs = []
    samples = []
    for im, lab in zip(images_list, label_images_list, strict=True):
        ref = denoised_reference(im, params.reference, den, st)
        if lab.shape != ref.shape:
            raise ValueError(f"label image shape {lab.shape} differs from image shape {ref.shape}")
        refs.append(ref)
        idx = _sample_index(ref.size, params.sample_pixels, rng)
        samples.append(sample_composition(im, ions, ref, idx, den, st))
    feats = fit_pixel_features(
        np.concatenate(samples), ions, params.reference, den, st, params.n_components
    )
    model = SupervisedPhaseModel(
        features=feats,
        sigmas=tuple(params.scales),
        classifier=None,
        phases={v: (phases or {}).get(v, f"phase_{v}") for v in values},
        sigma_frac=params.shading_sigma_frac,
        tile_pixels=params.tile_pixels,
    )
    per_class = max(1, params.sample_pixels // len(values))
    xs, ys = [], []
    for im, lab in zip(images_list, label_images_list, strict=True):
        flat = lab.ravel()
        picks = [_sample_index(flat.size, per_class, rng, flat == v) for v in values]
        idx = np.sort(np.concatenate(picks))
        if not idx.size:
            continue
        chans = model.channels(im)
        nx = chans.shape[2]
        rows = idx // nx
        for r0, r1, f in iter_multiscale(chans, params.scales, params.tile_pixels):
            m = (rows >= r0) & (rows < r1)
            if m.any():
                xs.append(f[idx[m] - r0 * nx])
                ys.append(flat[idx[m]])
    model.classifier = RandomForestClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_leaf=2,
        n_jobs=1,
        random_state=params.seed,
    ).fit(np.concatenate(xs), np.concatenate(ys))
    return PhaseSegmenter(model, params, kind="supervised")


def with_params(model: PhaseSegmenter, **changes: Any) -> PhaseSegmenter:
    """The same fitted model with changed post-processing parameters (particles, rim)."""
    return PhaseSegmenter(model.phase_model, replace(model.params, **changes), model.kind)
