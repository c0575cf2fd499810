"""Metrics that compare segmented microstructures (label volumes), real or generated.

Volume fraction, specific surface area by face counting, triple-phase-boundary density,
two-point correlation (FFT) and tortuosity factor / relative diffusivity of one phase along an
axis. These are the validation metrics of Kench & Cooper (Nat. Mach. Intell. 3 (2021) 299) and of
TauFactor (Cooper et al., SoftwareX 5 (2016) 203); see ``docs/slicegan.md``.

Everything here runs with numpy alone (so that ``bench/`` can run on a bare GPU machine that has
torch and numpy only). TauFactor (`taufactor` on PyPI, MIT) is a sound library, but it needs torch
for every metric and prints to stdout while it solves; it is used in the tests as the reference
these functions are checked against, not as a runtime dependency.
"""

from .basic import (
    face_count,
    phase_labels,
    specific_surface_area,
    triple_phase_boundary,
    triple_phase_boundary_density,
    volume_fractions,
)
from .correlation import two_point_correlation, two_point_correlation_axes, two_point_distance
from .report import DEFAULT_TOLERANCES, compare_metrics, metrics_report
from .tortuosity import TortuosityResult, tortuosity

__all__ = [
    "DEFAULT_TOLERANCES",
    "TortuosityResult",
    "compare_metrics",
    "face_count",
    "metrics_report",
    "phase_labels",
    "specific_surface_area",
    "tortuosity",
    "triple_phase_boundary",
    "triple_phase_boundary_density",
    "two_point_correlation",
    "two_point_correlation_axes",
    "two_point_distance",
    "volume_fractions",
]
