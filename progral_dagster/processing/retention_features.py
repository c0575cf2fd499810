"""The capacity-retention feature table (workflow 4, SCIENCE.md): ToF-SIMS fragment areas and
ratios, XPS features, early-cycle features and storage conditions joined per cell (and per stored
sheet without cells) through the sample sheets, and the removal of highly correlated features.

The regression on it is :mod:`progral_dagster.ml.retention`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .peaks import default_intervals, peak_areas, total_counts

VARIANTS = {
    "capacity-retention-regressor": "all",
    "capacity-retention-surface-only": "surface-only",
}
FEATURE_PREFIXES = ("storage_", "tof_", "xps_", "cyc_")
# Which of two highly correlated features survives: the more quantitative measurement first
# (XPS is RSF-quantified; cycling is measured per cell; ToF-SIMS intensities carry matrix
# effects and spot-to-spot scatter; storage conditions only cause the surface state).
CORRELATION_PRIORITY = ("xps_", "cyc_", "tof_", "storage_")
CYCLING_PREFIX = "cyc_"

CATHODE_IONS: dict[str, tuple[str, ...]] = {
    "negative": (
        "O-",
        "OH-",
        "F-",
        "LiO-",
        "LiF2-",
        "CO3-",
        "LiCO3-",
        "NiO-",
        "PO3-",
        "NiO2-",
        "PO2F2-",
    ),
    "positive": ("Li+", "Li2F+", "Li2OH+", "Ni+", "NiOH+", "Li3CO3+"),
}
TOF_RATIOS = (("NiO-", "NiO2-"), ("CO3-", "OH-"), ("LiF2-", "F-"), ("PO2F2-", "F-"))


# ---------------------------------------------------------------------------------------------
# feature table
# ---------------------------------------------------------------------------------------------
def tof_fragment_table(
    spectra: pd.DataFrame,
    polarity: Mapping[str, str],
    *,
    ions: Mapping[str, Sequence[str]] | None = None,
    resolving_power: float = 3000.0,
    id_column: str = "measurement_id",
) -> pd.DataFrame:
    """Normalised fragment areas of ToF-SIMS spectra (long ``tof_sims_spectra`` table).

    Each ion's area (``processing.peaks``: windows around the exact mass, trapezoid) is divided
    by the spectrum's total counts; log ratios of :data:`TOF_RATIOS` are added where both ions
    are in the spectrum's polarity.

    Parameters
    ----------
    spectra : rows of ``tof_sims_spectra`` (``id_column``, mz, intensity) of many spectra
    polarity : measurement id -> ``positive`` / ``negative`` (from file names or sheets)
    ions : polarity -> ion formulas (default :data:`CATHODE_IONS`)
    resolving_power : m/dm used to size the integration windows

    Returns
    -------
    one row per measurement: ``id_column`` and ``<ion>`` columns (area / total counts; NaN for
    ions of the other polarity) plus ``<a>/<b>`` log10 ratio columns
    """
    ions = dict(CATHODE_IONS if ions is None else ions)
    totals = total_counts(spectra, id_column=id_column)
    parts = []
    for pol, names in ions.items():
        ids = [m for m, p in polarity.items() if p == pol]
        sub = spectra[spectra[id_column].isin(ids)]
        if sub.empty:
            continue
        iv = default_intervals(pol, ions=names, resolving_power=resolving_power)
        areas = peak_areas(sub, iv, id_column=id_column)
        areas = areas.div(totals.reindex(areas.index), axis=0)
        for a, b in TOF_RATIOS:
            if a in areas and b in areas:
                areas[f"{a}/{b}"] = np.log10((areas[a] + 1e-7) / (areas[b] + 1e-7))
        parts.append(areas)
    if not parts:
        return pd.DataFrame(columns=[id_column])
    return pd.concat(parts, axis=0, sort=False).reset_index()


def _water_pressure_hpa(dew_point_c: pd.Series) -> pd.Series:
    """Magnus formula over water (hPa); the usual dew point -> vapour pressure conversion."""
    td = dew_point_c.astype(float)
    return 6.112 * np.exp(17.62 * td / (243.12 + td))


def storage_features(samples: pd.DataFrame) -> pd.DataFrame:
    """Storage-condition features per sample: one-hot atmosphere, dew point, log10 time,
    log10 water dose (vapour pressure at the dew point x time, hPa h)."""
    s = samples.groupby("sample_id", sort=True).first()
    out = pd.DataFrame(index=s.index)
    if "storage_atmosphere" in s:
        atm = s["storage_atmosphere"].fillna("unknown").astype(str)
        for name in sorted(atm.unique()):
            out[f"storage_atm_{name.replace(' ', '_')}"] = (atm == name).astype(float)
    dew = pd.to_numeric(s.get("dew_point_c"), errors="coerce")
    hours = pd.to_numeric(s.get("storage_time_h"), errors="coerce")
    if dew is not None:
        out["storage_dew_point_c"] = dew
    if hours is not None:
        out["storage_log_time_h"] = np.log10(hours.clip(lower=0) + 1.0)
    if dew is not None and hours is not None:
        out["storage_log_water_dose"] = np.log10(_water_pressure_hpa(dew) * hours + 1e-3)
    return out


# Outputs that describe the measurement (charging, cycles recorded so far), not the sample:
# never model features.
NON_FEATURES = frozenset({"cc_raw_ev", "charge_offset_ev", "n_cycles"})


def _per_sample(
    frame: pd.DataFrame | None, samples: pd.DataFrame, prefix: str, key: str = "sample_id"
) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    m = frame.merge(samples[["measurement_id", key]], on="measurement_id", how="inner")
    cols = [c for c in m.columns if c not in ("measurement_id", key) and c not in NON_FEATURES]
    num = m[cols].apply(pd.to_numeric, errors="coerce")
    num[key] = m[key]
    agg = num.groupby(key, sort=True).mean()
    agg.columns = [f"{prefix}{c}" for c in agg.columns]
    return agg


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def build_feature_table(
    samples: pd.DataFrame,
    *,
    tof: pd.DataFrame | None = None,
    xps: pd.DataFrame | None = None,
    cycling: pd.DataFrame | None = None,
    target_column: str = "retention_pct",
) -> pd.DataFrame:
    """Join per-measurement features into one row per cell (and per sheet without cells).

    Parameters
    ----------
    samples : one row per measurement: ``measurement_id``, ``sample_id``, ``cell_id`` (empty
        for surface measurements), ``storage_atmosphere``, ``dew_point_c``, ``storage_time_h``
        (the sample sheets matched to the lake's measurements)
    tof : ``measurement_id`` + ToF-SIMS feature columns (e.g. :func:`tof_fragment_table`)
    xps : ``measurement_id`` + XPS feature columns (``processing.xps.xps_feature_table``)
    cycling : ``measurement_id`` + cell features and ``target_column``
        (``processing.cycling.cycling_feature_table``)

    Returns
    -------
    DataFrame with ``sample_id``, ``cell_id`` (None for sheets without cycling), the target
    (NaN where unknown), and features prefixed ``storage_``, ``tof_``, ``xps_``, ``cyc_``.
    ToF-SIMS and XPS features are averaged over a sheet's measurements; cycling features are
    per cell.
    """
    s = samples.copy()
    s["cell_id"] = [None if _blank(v) else str(v) for v in s.get("cell_id", [None] * len(s))]
    surface = s[s["cell_id"].isna()]
    per_sheet = storage_features(s)
    for frame, prefix in ((tof, "tof_"), (xps, "xps_")):
        part = _per_sample(frame, surface, prefix)
        if not part.empty:
            per_sheet = per_sheet.join(part, how="left")
    cells = s[s["cell_id"].notna()][["measurement_id", "sample_id", "cell_id"]]
    rows = []
    if cycling is not None and not cycling.empty:
        cyc = cycling.merge(cells, on="measurement_id", how="inner")
        feat_cols = [
            c
            for c in cycling.columns
            if c not in ("measurement_id", target_column, "ref_cycle", "target_cycle")
            and c not in NON_FEATURES
        ]
        for (sample, cell), g in cyc.groupby(["sample_id", "cell_id"], sort=True):
            r = {"sample_id": sample, "cell_id": cell}
            r[target_column] = pd.to_numeric(g[target_column], errors="coerce").mean()
            for c in feat_cols:
                r[f"cyc_{c}"] = pd.to_numeric(g[c], errors="coerce").mean()
            rows.append(r)
    cell_frame = pd.DataFrame(rows)
    if cell_frame.empty:
        cell_frame = pd.DataFrame(columns=["sample_id", "cell_id", target_column])
    with_cells = set(cell_frame["sample_id"])
    pending = [
        {"sample_id": sid, "cell_id": None, target_column: np.nan}
        for sid in per_sheet.index
        if sid not in with_cells
    ]
    out = pd.concat([cell_frame, pd.DataFrame(pending)], ignore_index=True, sort=False)
    out = out.merge(per_sheet, left_on="sample_id", right_index=True, how="left")
    order = ["sample_id", "cell_id", target_column]
    feats = [c for p in FEATURE_PREFIXES for c in out.columns if c.startswith(p)]
    return out[order + feats].reset_index(drop=True)


def feature_columns(table: pd.DataFrame, variant: str = "all") -> list[str]:
    """Feature columns of a :func:`build_feature_table` result for a variant (model name or
    ``all`` / ``surface-only``: the latter drops the ``cyc_`` columns)."""
    kind = VARIANTS.get(variant, variant)
    if kind not in ("all", "surface-only"):
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    cols = [c for c in table.columns if c.startswith(FEATURE_PREFIXES)]
    if kind == "surface-only":
        cols = [c for c in cols if not c.startswith(CYCLING_PREFIX)]
    return cols


def drop_correlated(
    features: pd.DataFrame, threshold: float = 0.95
) -> tuple[list[str], dict[str, str]]:
    """Greedy removal of highly correlated features.

    Columns are visited in order; one is dropped when its absolute Pearson correlation with a
    kept column exceeds ``threshold``. Constant and all-missing columns are dropped too.

    Returns
    -------
    kept columns, and dropped column -> the kept column it duplicates (or ``"constant"``)
    """
    x = features.apply(pd.to_numeric, errors="coerce")
    corr = x.corr().abs()
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for c in x.columns:
        col = x[c]
        if col.notna().sum() < 3 or np.nanstd(col.to_numpy(float)) == 0:
            dropped[c] = "constant"
            continue
        hit = next((k for k in kept if corr.at[c, k] > threshold), None)
        if hit is None:
            kept.append(c)
        else:
            dropped[c] = hit
    return kept, dropped
