"""Ion polarity of a ToF-SIMS spectrum from the spectrum itself, when neither the sample sheet
nor the file name says it (the IONTOF export does not record it).

Heuristic from the nominal masses that dominate each polarity of surface spectra (SCIENCE.md,
typical ions; common contamination): negative spectra are led by O- (16), OH- (17),
C2- / C2H- (24, 25), CN- (26), Cl- (35), CNO- (42), CO3- (60); positive spectra by Li+ (7) and
Li2+ (14) on battery materials, CH3+ (15), C2H3+ (27), C2H5+ (29), Li2O+ / Li2OH+ (30, 31),
Li3O+ (37), C3H5+ (41), C3H7+ (43). Nominal masses claimed by strong ions of both polarities are
left out (1: H+/H-, 23: Na+/LiO-, 39: K+/LiO2-). The score is the log ratio of the summed
unit-mass intensities of the two sets; |score| < ``min_log_ratio`` returns None (undecided)
rather than a guess.
"""

from __future__ import annotations

import numpy as np

NEGATIVE_MASSES = (16, 17, 24, 25, 26, 35, 42, 60)
POSITIVE_MASSES = (7, 14, 15, 27, 29, 30, 31, 37, 41, 43)


def unit_mass_sum(mz: np.ndarray, intensity: np.ndarray, masses) -> float:
    idx = np.rint(np.asarray(mz, float)).astype(int)
    inten = np.asarray(intensity, float)
    return float(sum(inten[idx == m].sum() for m in masses))


def infer_polarity(mz: np.ndarray, intensity: np.ndarray, *, min_log_ratio: float = 0.3) -> str | None:
    """'positive', 'negative' or None when the spectrum does not decide it."""
    neg = unit_mass_sum(mz, intensity, NEGATIVE_MASSES) + 1.0
    pos = unit_mass_sum(mz, intensity, POSITIVE_MASSES) + 1.0
    score = np.log(neg / pos)
    if score > min_log_ratio:
        return "negative"
    if score < -min_log_ratio:
        return "positive"
    return None
