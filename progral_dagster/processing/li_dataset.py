"""The lithium-compound data set of the lake: paired feature rows of reference spectra,
calibration mixtures and unlabelled spectra, from the stored peak areas and the sample sheets.

Roles come from the sample sheet only (never from simulator truth): a row whose ``label`` is
one of the compounds is a *reference*; a row with a known ``composition`` and no label is a
*calibration* mixture; everything else in the same projects is *unlabelled* (hidden mixtures,
anodes, new samples) and gets predictions. Spectra are paired on (sample_id, spot); a spectrum
without a partner polarity stays on its own row with the other polarity's columns missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .spectral_features import FeatureTable, feature_table_from_areas, pair_polarities
from .spectral_tables import wide_areas

COMPOUNDS = ("Li2CO3", "Li2O", "Li3N", "LiH", "LiOH")
META_COLUMNS = ("sample_id", "spot", "label", "composition", "project", "material", "source_path")


@dataclass
class LiDataset:
    per_polarity: dict[str, FeatureTable]
    paired: FeatureTable | None
    role: pd.Series  # index of paired.X: reference | calibration | unlabelled
    unpaired: dict[str, FeatureTable]  # spectra with no partner polarity (unlabelled ones predicted alone)

    @property
    def blocks(self) -> dict[str, list[str]]:
        return dict(self.paired.record["blocks"]) if self.paired is not None else {}


def role_of(meta: pd.DataFrame) -> pd.Series:
    lab = meta.get("label", pd.Series(index=meta.index, dtype=object)).astype(object)
    comp = meta.get("composition", pd.Series(index=meta.index, dtype=object)).astype(object)
    is_ref = lab.isin(COMPOUNDS)
    is_cal = ~is_ref & comp.notna() & comp.astype(str).str.strip().ne("")
    return pd.Series(np.where(is_ref, "reference", np.where(is_cal, "calibration", "unlabelled")), index=meta.index)


def build(areas: pd.DataFrame, summary: pd.DataFrame, samples: pd.DataFrame, *,
          strategy: str = "total_ion_count") -> LiDataset:
    """``areas``: tof_sims_peak_areas rows; ``summary``: tof_sims_summary rows; ``samples``: one
    row per measurement_id with the sheet columns of :data:`META_COLUMNS` (missing allowed)."""
    meta_all = samples.drop_duplicates("measurement_id").set_index("measurement_id")
    tot = summary.drop_duplicates("measurement_id").set_index("measurement_id")["total_counts"]
    per: dict[str, FeatureTable] = {}
    for pol in ("positive", "negative"):
        A = wide_areas(areas, pol)
        if A.empty:
            continue
        A.index.name = "measurement_id"
        meta = meta_all.reindex(A.index)
        meta = meta.assign(spot=meta["spot"].fillna("1") if "spot" in meta else "1",
                           sample_id=meta["sample_id"].fillna(pd.Series(A.index, index=A.index))
                           if "sample_id" in meta else pd.Series(A.index, index=A.index))
        iv = (areas[areas["polarity"] == pol].drop_duplicates("ion").set_index("ion")
              .reindex(A.columns)[["lower_mass_u", "upper_mass_u"]].rename_axis("assignment").reset_index())
        per[pol] = feature_table_from_areas(A, tot.reindex(A.index), meta, pol, intervals=iv, strategy=strategy)
    paired = None
    unpaired: dict[str, FeatureTable] = {}
    if "positive" in per and "negative" in per:
        paired = pair_polarities(per["positive"], per["negative"])
        for pol, col in (("positive", "measurement_id_positive"), ("negative", "measurement_id_negative")):
            used = set(paired.meta[col])
            ft = per[pol]
            unpaired[pol] = ft.subset(~ft.X.index.isin(list(used)))
    else:
        unpaired = per
    role = role_of(paired.meta) if paired is not None else pd.Series(dtype=object)
    return LiDataset(per, paired, role, unpaired)


def calibration_fractions(meta: pd.DataFrame) -> pd.DataFrame:
    from .spectral_features import composition_matrix

    return pd.DataFrame(composition_matrix(meta["composition"], list(COMPOUNDS)), index=meta.index,
                        columns=list(COMPOUNDS))
