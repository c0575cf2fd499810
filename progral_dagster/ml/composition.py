"""Composition predictions for unlabelled spectra with a deployed lithium-compound model."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from ..processing.li_dataset import LiDataset
from .li_compound_model import LiCompoundModel


def predict_dataset(model: LiCompoundModel, ds: LiDataset) -> pd.DataFrame:
    """One row per unlabelled sample spot (paired) or unpaired unlabelled spectrum: the class
    probabilities, the unmixing fractions (paired rows only), the most probable compound."""
    rows = []
    if ds.paired is not None:
        idx = ds.role.index[ds.role.eq("unlabelled")]
        if len(idx):
            p = model.predict(ds.paired.X.loc[idx])
            meta = ds.paired.meta.loc[idx]
            p.insert(0, "measurement_id_positive", meta["measurement_id_positive"].to_numpy())
            p.insert(1, "measurement_id_negative", meta["measurement_id_negative"].to_numpy())
            rows.append(_with_meta(p, meta))
    for pol, ft in ds.unpaired.items():
        lab = ft.meta.get("label")
        comp = ft.meta.get("composition")
        unl = ft.X.index[(lab.isna() if lab is not None else True) & (comp.isna() if comp is not None else True)]
        if not len(unl) or pol not in model.blocks:
            continue
        X = pd.DataFrame(ft.X.loc[unl].to_numpy(float), index=unl,
                         columns=model.blocks[pol]).reindex(columns=model.paired_columns)
        p = model.predict(X)
        p.insert(0, "measurement_id_positive", list(unl) if pol == "positive" else None)
        p.insert(1, "measurement_id_negative", list(unl) if pol == "negative" else None)
        rows.append(_with_meta(p, ft.meta.loc[unl]))
    if not rows:
        return pd.DataFrame(columns=["measurement_id_positive", "measurement_id_negative", "sample_id", "spot",
                                     "project", "predicted", *model.output_columns])
    out = pd.concat(rows, ignore_index=True)
    out["predicted"] = out[model.classes].idxmax(axis=1, skipna=True)
    return out


def _with_meta(p: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    p = p.reset_index(drop=True)
    for c in ("sample_id", "spot", "project"):
        p.insert(2, c, meta[c].to_numpy() if c in meta else None)
    return p


def pairing_key(name: str) -> str:
    """A file name with its polarity marker removed (``P_x.txt`` and ``N_x.txt`` pair up)."""
    import re
    from pathlib import PurePath

    stem = PurePath(name).stem
    stem = re.sub(r"^[PN]_", "", stem)
    stem = re.sub(r"(?i)([_\-\s])(pos|neg|positive|negative)(?=([_\-\s.]|$))", r"\1", stem)
    return stem


def predict_files(model: LiCompoundModel, paths: list) -> dict[str, dict]:
    """Probabilities and fractions for IONTOF spectrum files read with the ordinary readers.

    Files whose names differ only in the polarity marker (``P_``/``N_``, ``_pos``/``_neg``) are
    paired; a file without its partner is classified by its polarity's model."""
    import numpy as np

    from ..processing.peaks import interval_table, peak_areas, total_counts
    from ..processing.polarity import infer_polarity
    from ..readers import read

    areas: dict[str, list] = {}
    totals: dict[str, list] = {}
    keys: dict[str, dict] = {}
    info: dict[str, dict] = {}
    for p in paths:
        m = read(p)
        if m.format != "iontof-spectrum":
            raise ValueError(f"{p}: a {m.format} file, not an IONTOF spectrum export")
        t = m.tables["tof_sims_spectra"]
        pol = m.metadata.get("polarity") or infer_polarity(np.asarray(t["mz"]), np.asarray(t["intensity"]))
        if pol not in model.blocks:
            raise ValueError(f"{p}: ion polarity unknown (name it P_/N_ or _pos/_neg)")
        iv = model.record["features"][pol]["features"]["intervals"]
        ivt = interval_table(iv["assignment"], iv["lower_mass_u"], iv["upper_mass_u"])
        sid = str(p)
        long = pa.table({"measurement_id": [sid] * t.num_rows, "mz": t["mz"], "intensity": t["intensity"]})
        areas.setdefault(pol, []).append(peak_areas(long, ivt))
        totals.setdefault(pol, []).append(total_counts(long))
        keys.setdefault(pol, {})[sid] = pairing_key(str(p))
        info[sid] = {"polarity": pol}
    A = {k: pd.concat(v) for k, v in areas.items()}
    T = {k: pd.concat(v) for k, v in totals.items()}
    K = {k: pd.Series(v) for k, v in keys.items()}
    X = model.features(A, T, K)
    P = model.predict(X)
    out = {}
    for sid, d in info.items():
        row = P.loc[keys[d["polarity"]][sid]]
        paired = all(row_ok for row_ok in X.loc[keys[d["polarity"]][sid]].notna())
        out[sid] = {
            "polarity": d["polarity"],
            "paired": bool(paired),
            "probabilities": {c: float(row[c]) for c in model.classes},
            "fractions": {c[len("fraction_"):]: (None if pd.isna(row[c]) else float(row[c]))
                          for c in model.output_columns if c.startswith("fraction_")},
        }
    return out
