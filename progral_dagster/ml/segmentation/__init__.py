"""Segmentation of ToF-SIMS mass images of electrode cross-sections (Lombardo et al., Adv. Mater.
Interfaces 10 (2023) 2300640): pixel normalisation, Poisson denoising, phase segmentation
(unsupervised or supervised), watershed particles, per-particle statistics and CEI rim
enrichment, phase fractions and interface lengths. Pure: numpy, scipy, scikit-image,
scikit-learn; matplotlib only inside the plotting functions.

Entry points::

    model = fit_unsupervised([ion_images], "NMC811")          # or marker dict
    model = fit_supervised([ion_images], [label_image], {1: "pore", ...})
    result = model.segment(ion_images, pixel_size_um)         # SegmentationResult
    write_segmentation_outputs(result, out_dir, name)
"""

from .inputs import ion_images_from_table
from .outputs import summary_metrics, write_segmentation_outputs
from .phases import DEFAULT_MARKERS, USER_LABEL_PHASES, label_names_from_description, markers_for
from .pipeline import (
    PhaseSegmenter,
    SegmentationParams,
    SegmentationResult,
    analyse_labels,
    fit_supervised,
    fit_unsupervised,
)

__all__ = [
    "DEFAULT_MARKERS",
    "USER_LABEL_PHASES",
    "PhaseSegmenter",
    "SegmentationParams",
    "SegmentationResult",
    "analyse_labels",
    "fit_supervised",
    "fit_unsupervised",
    "ion_images_from_table",
    "label_names_from_description",
    "markers_for",
    "summary_metrics",
    "write_segmentation_outputs",
]
