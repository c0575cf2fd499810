"""Feature matrices from many ToF-SIMS spectra: one row per spectrum (or per sample spot with both
polarities paired), one column per peak of a common mass interval list (or unit-mass bin).

The pieces:

- :func:`spectra_features` integrates every spectrum of a long ``tof_sims_spectra`` table over the
  interval list of its polarity (so all rows of one polarity share columns: aligned to a common
  interval list), or bins it to unit mass, then applies a named normalisation strategy and
  records both in :attr:`FeatureTable.record`.
- :func:`areas_from_peak_lists` aligns the lab's own exported peak lists (``tof_sims_peak_lists``
  rows of many measurements) on their assignments.
- :func:`pair_polarities` concatenates the positive and negative features of the same sample and
  spot into one row.
- :meth:`FeatureTable.xy` gives ``X, y, groups`` for training (labels and groups from the sample
  sheet columns of ``meta``), :meth:`FeatureTable.to_arrow` a pyarrow table with the record in
  the schema metadata (key ``progral.features``).

Sample-sheet knowledge used here: ``label`` (a reference compound), ``composition`` (known
molar fractions of calibration mixtures, ``"Li2CO3:0.5,LiOH:0.5"``), ``sample_id``, ``spot``,
``polarity``. Nothing here reads simulator ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .normalization import normalize
from .peaks import (
    SpectraArrays,
    default_intervals,
    peak_areas,
    spectra_arrays,
    total_counts,
    unit_mass_table,
)

POLARITIES = ("positive", "negative")
RECORD_KEY = b"progral.features"


@dataclass
class FeatureTable:
    """Features of many spectra.

    Attributes
    ----------
    X : DataFrame, one row per spectrum (index: measurement id, or ``sample_id|spot`` when
        paired), one column per feature.
    meta : DataFrame with the same index: polarity, total (counts), and the sample-sheet columns
        that were given (sample_id, spot, label, composition, project, ...).
    record : JSON-able description: feature kind, interval list, normalisation record(s),
        polarity blocks (``blocks``: polarity -> its columns).
    """

    X: pd.DataFrame
    meta: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)

    def xy(
        self, label_column: str = "label", group_column: str = "sample_id"
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Labelled rows as ``(X, y, groups)``; rows without a label are left out."""
        lab = self.meta[label_column] if label_column in self.meta else pd.Series(dtype=object)
        has = lab.notna() & lab.astype(str).str.strip().ne("") & lab.astype(str).ne("nan")
        has = has.reindex(self.X.index, fill_value=False)
        X = self.X.loc[has.to_numpy()]
        y = self.meta.loc[X.index, label_column].astype(str).to_numpy()
        if group_column in self.meta:
            groups = self.meta.loc[X.index, group_column].astype(str).to_numpy()
        else:
            groups = np.asarray(X.index.astype(str))
        return X, y, groups

    def subset(self, mask: Sequence[bool] | np.ndarray) -> FeatureTable:
        """Rows where ``mask`` is true."""
        m = np.asarray(mask, dtype=bool)
        return FeatureTable(self.X.loc[m], self.meta.loc[m], dict(self.record))

    def to_arrow(self) -> pa.Table:
        """Wide table: index column, meta columns, feature columns; record in schema metadata."""
        df = pd.concat([self.meta, self.X], axis=1)
        df.index.name = self.X.index.name or "id"
        table = pa.Table.from_pandas(df.reset_index(), preserve_index=False)
        return table.replace_schema_metadata(
            {**(table.schema.metadata or {}), RECORD_KEY: json.dumps(self.record).encode()}
        )

    @staticmethod
    def from_arrow(table: pa.Table, n_meta: int | None = None) -> FeatureTable:
        """Inverse of :meth:`to_arrow` (feature columns are those named in the record)."""
        rec = json.loads((table.schema.metadata or {}).get(RECORD_KEY, b"{}"))
        df = table.to_pandas()
        idx = df.columns[0]
        df = df.set_index(idx)
        feats = rec.get("columns") or list(df.columns[n_meta:])
        return FeatureTable(df[feats], df.drop(columns=feats), rec)


def parse_composition(text: Any) -> dict[str, float]:
    """``"Li2CO3:0.5,LiOH:0.5"`` -> ``{"Li2CO3": 0.5, "LiOH": 0.5}``; empty/NaN -> ``{}``.

    Raises
    ------
    ValueError
        An entry without ``name:fraction``, a negative fraction, or fractions not summing to 1
        (within 0.02).
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return {}
    s = str(text).strip()
    if not s or s.lower() == "nan":
        return {}
    out: dict[str, float] = {}
    for part in s.replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition(":")
        if not sep:
            raise ValueError(f"composition {s!r}: entry {part!r} is not name:fraction")
        f = float(val)
        if f < 0:
            raise ValueError(f"composition {s!r}: negative fraction")
        out[name.strip()] = out.get(name.strip(), 0.0) + f
    tot = sum(out.values())
    if abs(tot - 1.0) > 0.02:
        raise ValueError(f"composition {s!r}: fractions sum to {tot:.3f}, not 1")
    return {k: v / tot for k, v in out.items()}


def composition_matrix(compositions: Sequence[Any], compounds: Sequence[str]) -> np.ndarray:
    """Rows of molar fractions (columns ``compounds``) from sample-sheet composition strings.

    Raises
    ------
    ValueError
        A composition names a compound outside ``compounds``.
    """
    out = np.zeros((len(compositions), len(compounds)))
    pos = {c: i for i, c in enumerate(compounds)}
    for r, text in enumerate(compositions):
        for name, f in parse_composition(text).items():
            if name not in pos:
                raise ValueError(f"composition names {name!r}, not among {list(compounds)}")
            out[r, pos[name]] = f
    return out


def _meta_frame(meta: pd.DataFrame | None, ids: pd.Index, id_column: str) -> pd.DataFrame:
    if meta is None:
        return pd.DataFrame(index=ids)
    m = meta.set_index(id_column) if id_column in meta.columns else meta
    return m.reindex(ids)


def spectra_features(
    spectra: pa.Table | pd.DataFrame | SpectraArrays,
    meta: pd.DataFrame | None = None,
    *,
    intervals: pd.DataFrame | None = None,
    method: str = "intervals",
    strategy: str = "total_ion_count",
    params: dict | None = None,
    id_column: str = "measurement_id",
    unit_mass_range: tuple[int, int] = (1, 200),
    variable: str = "channel",
) -> dict[str, FeatureTable]:
    """Feature tables, one per polarity, from a long spectra table.

    Parameters
    ----------
    spectra : long table with ``id_column``, ``mz``, ``intensity`` (warehouse
        ``tof_sims_spectra``).
    meta : per-measurement columns (index or column ``id_column``): ``polarity`` (required for
        interval features unless ``intervals`` has no polarity), sample-sheet columns.
    intervals : mass interval list (:func:`~progral_dagster.processing.peaks.interval_table`);
        default :func:`~progral_dagster.processing.peaks.default_intervals`. Each spectrum is
        integrated over the intervals of its polarity (all of them where polarity is unknown).
    method : ``"intervals"`` (peak areas) or ``"unit_mass"`` (unit-mass bins).
    strategy, params : normalisation (see :mod:`~progral_dagster.processing.normalization`);
        ``total_ion_count`` uses each spectrum's total counts, not the sum of its peaks.

    Returns
    -------
    dict polarity -> FeatureTable (key ``"unknown"`` for spectra without polarity)
    """
    if method not in ("intervals", "unit_mass"):
        raise ValueError(f"method must be 'intervals' or 'unit_mass', not {method!r}")
    sa = spectra_arrays(spectra, id_column)
    totals = total_counts(sa)
    ids = totals.index
    m = _meta_frame(meta, ids, id_column)
    pol = (
        m["polarity"].astype(object).where(m["polarity"].notna(), "unknown")
        if "polarity" in m
        else pd.Series("unknown", index=ids)
    )
    iv = default_intervals() if intervals is None else intervals
    if method == "unit_mass":
        allx = unit_mass_table(sa, mz_min=unit_mass_range[0], mz_max=unit_mass_range[1])
    out: dict[str, FeatureTable] = {}
    for p in sorted(set(pol)):
        rows = pol.index[pol.to_numpy() == p]
        if method == "intervals":
            if "polarity" in iv and p in POLARITIES and iv["polarity"].eq(p).any():
                ivp = iv[iv["polarity"].eq(p) | iv["polarity"].isna()]
            else:
                ivp = iv
            X = peak_areas(sa.select(rows), ivp, variable=variable)
            X.index.name = id_column
            feat_rec: dict[str, Any] = {
                "kind": "intervals",
                "variable": variable,
                "intervals": ivp[["assignment", "lower_mass_u", "upper_mass_u"]].to_dict("list"),
            }
        else:
            X = allx.loc[rows]
            feat_rec = {"kind": "unit_mass", "range": list(unit_mass_range)}
        tot = totals.loc[rows].to_numpy()
        prm = dict(params or {})
        if strategy == "total_ion_count" and "total" not in prm:
            prm["total"] = tot
        Xn, rec = normalize(X, strategy, **prm)
        if strategy == "total_ion_count" and isinstance(prm.get("total"), np.ndarray):
            rec["params"]["total"] = "spectrum total counts"
        mm = m.loc[rows].copy()
        mm["polarity"] = p
        mm["total"] = tot
        out[p] = FeatureTable(
            Xn,
            mm,
            {
                "features": feat_rec,
                "normalization": rec,
                "polarity": p,
                "columns": list(Xn.columns),
                "blocks": {p: list(Xn.columns)},
            },
        )
    return out


def areas_from_peak_lists(
    peak_lists: pa.Table | pd.DataFrame,
    *,
    assignments: Sequence[str] | None = None,
    value: str = "area",
    id_column: str = "measurement_id",
) -> pd.DataFrame:
    """Align exported peak lists of many measurements on their assignments (wide matrix).

    The ``total`` rows are dropped; a peak missing from a measurement's list is NaN (not
    measured, distinct from a zero area). ``assignments`` fixes the columns and their order.
    """
    df = peak_lists.to_pandas() if isinstance(peak_lists, pa.Table) else peak_lists
    keep = df["description"].astype(str).str.lower().ne("total") if "description" in df else True
    df = df.loc[keep]
    wide = df.pivot_table(index=id_column, columns="assignment", values=value, aggfunc="sum")
    if assignments is not None:
        wide = wide.reindex(columns=list(assignments))
    wide.columns.name = None
    return wide


def pair_polarities(
    positive: FeatureTable,
    negative: FeatureTable,
    *,
    on: Sequence[str] = ("sample_id", "spot"),
) -> FeatureTable:
    """One row per (sample, spot) measured in both polarities: positive then negative columns.

    Columns keep their names when the two sets are disjoint (ion names carry their charge),
    else get ``pos:`` / ``neg:`` prefixes. Rows measured in one polarity only are dropped.
    The meta columns come from the positive row, plus ``measurement_id_positive`` /
    ``measurement_id_negative`` and both totals.
    """
    on = list(on)
    for ft, name in ((positive, "positive"), (negative, "negative")):
        missing = [c for c in on if c not in ft.meta]
        if missing:
            raise ValueError(f"{name} features lack meta columns {missing} to pair on")

    def keyed(ft: FeatureTable) -> tuple[pd.DataFrame, pd.DataFrame]:
        key = ft.meta[on].astype(str).agg("|".join, axis=1)
        if key.duplicated().any():
            raise ValueError(f"several spectra share {on} = {key[key.duplicated()].iloc[0]!r}")
        X = ft.X.set_axis(key.to_numpy(), axis=0)
        meta = ft.meta.copy()
        meta[ft.meta.index.name or "measurement_id"] = ft.meta.index
        return X, meta.set_axis(key.to_numpy(), axis=0)

    Xp, mp = keyed(positive)
    Xn, mn = keyed(negative)
    common = [k for k in Xp.index if k in set(Xn.index)]
    clash = set(Xp.columns) & set(Xn.columns)
    cp = [f"pos:{c}" for c in Xp.columns] if clash else list(Xp.columns)
    cn = [f"neg:{c}" for c in Xn.columns] if clash else list(Xn.columns)
    X = pd.concat(
        [Xp.loc[common].set_axis(cp, axis=1), Xn.loc[common].set_axis(cn, axis=1)], axis=1
    )
    X.index.name = "pair_id"
    idname = positive.meta.index.name or "measurement_id"
    meta = mp.loc[common].drop(columns=["polarity", "total", idname], errors="ignore")
    meta["measurement_id_positive"] = mp.loc[common, idname].to_numpy()
    meta["measurement_id_negative"] = mn.loc[common, idname].to_numpy()
    meta["total_positive"] = mp.loc[common, "total"].to_numpy() if "total" in mp else np.nan
    meta["total_negative"] = mn.loc[common, "total"].to_numpy() if "total" in mn else np.nan
    meta["polarity"] = "paired"
    meta.index.name = "pair_id"
    rec = {
        "paired_on": on,
        "positive": positive.record,
        "negative": negative.record,
        "columns": list(X.columns),
        "blocks": {"positive": cp, "negative": cn},
    }
    return FeatureTable(X, meta, rec)


def feature_table_from_areas(
    areas: pd.DataFrame,
    totals: pd.Series | np.ndarray,
    meta: pd.DataFrame | None,
    polarity: str,
    *,
    intervals: pd.DataFrame | None = None,
    strategy: str = "total_ion_count",
    params: dict | None = None,
) -> FeatureTable:
    """A :class:`FeatureTable` from stored raw peak areas (one row per measurement, one column
    per interval) and the spectra's total counts: the same normalisation and record as
    :func:`spectra_features`, without reading the spectra again."""
    tot = np.asarray(totals, float)
    prm = dict(params or {})
    if strategy == "total_ion_count" and "total" not in prm:
        prm["total"] = tot
    Xn, rec = normalize(areas, strategy, **prm)
    if strategy == "total_ion_count" and isinstance(prm.get("total"), np.ndarray):
        rec["params"]["total"] = "spectrum total counts"
    mm = _meta_frame(meta, areas.index, areas.index.name or "measurement_id").copy()
    mm["polarity"] = polarity
    mm["total"] = tot
    feat_rec: dict[str, Any] = {"kind": "intervals", "variable": "channel"}
    if intervals is not None:
        feat_rec["intervals"] = intervals[["assignment", "lower_mass_u", "upper_mass_u"]].to_dict("list")
    return FeatureTable(
        Xn, mm,
        {"features": feat_rec, "normalization": rec, "polarity": polarity,
         "columns": list(Xn.columns), "blocks": {polarity: list(Xn.columns)}},
    )
