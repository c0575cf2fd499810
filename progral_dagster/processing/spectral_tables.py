"""The per-spectrum feature tables of the lake: peak areas (long form) and a summary per
measurement. Computed once per spectrum and interval list, so that per-sample aggregates over
100,000 spectra never touch the channel data again.

``tof_sims_peak_areas``: measurement_id, polarity, ion, lower_mass_u, upper_mass_u, area (counts,
integrated over channels), interval_list (hash of the list used).
``tof_sims_summary``: measurement_id, polarity, polarity_source (sample sheet, file name,
spectrum), total_counts, n_channels, mz_min, mz_max, main_ions (the three largest peak areas).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa

from .peaks import peak_areas, spectra_arrays, total_counts
from .polarity import infer_polarity

AREA_COLUMNS = ("measurement_id", "polarity", "ion", "lower_mass_u", "upper_mass_u", "area", "interval_list")
SUMMARY_COLUMNS = ("measurement_id", "polarity", "polarity_source", "total_counts", "n_channels", "mz_min",
                   "mz_max", "main_ions", "interval_list")


def interval_list_id(intervals: pd.DataFrame) -> str:
    """A short stable hash of an interval list (which features were computed with it)."""
    cols = [c for c in ("assignment", "polarity", "lower_mass_u", "upper_mass_u") if c in intervals]
    payload = json.dumps(intervals[cols].astype(str).to_dict("list"), sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


def spectra_feature_rows(spectra: pa.Table, polarity: dict[str, str | None], sources: dict[str, str | None],
                         intervals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Peak areas (long) and summary rows of the spectra in a long ``tof_sims_spectra`` table.

    ``polarity``/``sources``: known polarity and where it came from, per measurement; unknown
    ones are inferred from the spectrum (:func:`~.polarity.infer_polarity`), and spectra whose
    polarity stays unknown are integrated over the intervals of both polarities.
    """
    sa = spectra_arrays(spectra)
    tot = total_counts(sa)
    ll = interval_list_id(intervals)
    pol: dict[str, str | None] = {}
    src: dict[str, str | None] = {}
    summary = []
    for i, mid in enumerate(sa.ids):
        a, b = sa.offsets[i], sa.offsets[i + 1]
        p, s = polarity.get(mid), sources.get(mid)
        if p is None:
            p = infer_polarity(sa.mz[a:b], sa.intensity[a:b])
            s = "spectrum" if p else None
        pol[mid], src[mid] = p, s
        summary.append({"measurement_id": mid, "polarity": p, "polarity_source": s,
                        "total_counts": float(tot.iloc[i]), "n_channels": int(b - a),
                        "mz_min": float(sa.mz[a:b].min()) if b > a else np.nan,
                        "mz_max": float(sa.mz[a:b].max()) if b > a else np.nan})
    parts = []
    for p in ("positive", "negative", None):
        ids = [m for m in sa.ids if pol[m] == p]
        if not ids:
            continue
        iv = intervals if p is None or "polarity" not in intervals else intervals[intervals["polarity"].eq(p)]
        if iv.empty:
            continue
        A = peak_areas(sa.select(ids), iv)
        long = A.reset_index().melt(id_vars="measurement_id", var_name="ion", value_name="area")
        bounds = iv.set_index("assignment")[["lower_mass_u", "upper_mass_u"]]
        long = long.join(bounds, on="ion")
        long["polarity"] = p
        parts.append(long)
    areas = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(AREA_COLUMNS))
    areas["interval_list"] = ll
    summ = pd.DataFrame(summary)
    top = (areas.sort_values("area", ascending=False).groupby("measurement_id")["ion"]
           .apply(lambda s: ", ".join(s.head(3))) if len(areas) else pd.Series(dtype=str))
    summ["main_ions"] = summ["measurement_id"].map(top)
    summ["interval_list"] = ll
    return areas[list(AREA_COLUMNS)], summ[list(SUMMARY_COLUMNS)]


def wide_areas(areas: pd.DataFrame, polarity: str) -> pd.DataFrame:
    """Long peak areas of one polarity -> measurements x ions (interval order kept)."""
    a = areas[areas["polarity"] == polarity]
    order = list(dict.fromkeys(a["ion"]))
    w = a.pivot_table(index="measurement_id", columns="ion", values="area", aggfunc="sum")
    w.columns.name = None
    return w.reindex(columns=order)
