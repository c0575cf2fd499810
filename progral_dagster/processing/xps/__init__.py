"""XPS processing (pure): backgrounds, line shapes, component fits, quantification, features.

Modules: ``backgrounds`` (Shirley, Tougaard, linear), ``lineshapes`` (GL/SGL), ``fitting``
(templates -> fitted components), ``casa`` (CasaXPS definitions as templates), ``quantification`` (charge reference, transmission, areas,
atomic % with the RSF library), ``features`` (per-measurement cathode-surface features).
"""

from .backgrounds import (
    THREE_PARAMETER_TOUGAARD,
    UNIVERSAL_TOUGAARD,
    background,
    linear_background,
    shirley_background,
    tougaard_background,
)
from .casa import compare_with_casa, templates_from_casa
from .features import xps_feature_table, xps_features
from .fitting import Component, RegionFit, fit_region
from .quantification import (
    RSF_LIBRARY,
    SENSITIVITY_FACTORS,
    atomic_percent,
    canonical_region,
    charge_offset,
    charge_reference,
    region_area,
    transmission_correct,
)

__all__ = [
    "RSF_LIBRARY",
    "SENSITIVITY_FACTORS",
    "THREE_PARAMETER_TOUGAARD",
    "UNIVERSAL_TOUGAARD",
    "Component",
    "RegionFit",
    "atomic_percent",
    "background",
    "canonical_region",
    "charge_offset",
    "charge_reference",
    "compare_with_casa",
    "fit_region",
    "linear_background",
    "region_area",
    "shirley_background",
    "templates_from_casa",
    "tougaard_background",
    "transmission_correct",
    "xps_feature_table",
    "xps_features",
]
