"""Training the deployable lithium-compound model from the lake's data set.

Runs :func:`~.classification.train_classifier` on paired reference rows (calibration mixtures as
soft labels for the ``_mix`` candidates), fits the selected candidate per polarity as the
fallback for unpaired spectra, and the unmixer (:func:`~.unmixing.fit_unmixer`) on references and
calibration mixtures. Returns the :class:`~.li_compound_model.LiCompoundModel`, the report, and
the evaluation data a promotion step needs to re-score another model on the same folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..processing.li_dataset import COMPOUNDS, LiDataset, calibration_fractions
from .classification import (
    USES_CALIBRATION,
    ClassifierReport,
    blocks_from_columns,
    evaluate_on_folds,
    fit_weighted,
    make_candidate,
    soft_label_rows,
    train_classifier,
)
from .li_compound_model import LiCompoundModel
from .unmixing import fit_unmixer


@dataclass
class Evaluation:
    """The candidate's evaluation data: rows, labels, folds and calibration rows."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    folds: list
    classes: list[str]
    extra: Any


@dataclass
class Trained:
    model: LiCompoundModel
    report: ClassifierReport
    evaluation: Evaluation


def train_li_model(ds: LiDataset, *, seed: int = 0, n_splits: int = 5) -> Trained:
    if ds.paired is None:
        raise ValueError("no spectra measured in both polarities with a sample sheet: cannot pair features")
    pair = ds.paired
    X, y, g = pair.xy()
    keep = pd.Series(y).isin(COMPOUNDS).to_numpy()
    X, y, g = X.loc[keep], y[keep], g[keep]
    if len(set(y)) < 2:
        raise ValueError(f"need labelled references of at least two compounds, found {sorted(set(y))}")
    cal_rows = ds.role.index[ds.role.eq("calibration")]
    cal = pair.X.loc[cal_rows]
    cal_f = calibration_fractions(pair.meta.loc[cal_rows]) if len(cal_rows) else None
    blocks = blocks_from_columns(list(X.columns), pair.record["blocks"])
    # every compound must be in each fold's test part: no more folds than its fewest samples
    per_class = pd.DataFrame({"y": y, "g": g}).groupby("y")["g"].nunique()
    k = int(min(n_splits, per_class.min()))
    if k < 2:
        raise ValueError(f"need references of every compound from at least two samples for grouped CV; "
                         f"samples per compound: {per_class.to_dict()}")
    rep = train_classifier(
        X, y, g, blocks=blocks, seed=seed, n_splits=k,
        calibration_features=cal if len(cal_rows) else None,
        calibration_fractions=cal_f.to_numpy() if cal_f is not None else None,
    )
    per_pol = {}
    for pol, ft in ds.per_polarity.items():
        Xp, yp, _ = ft.xy()
        kp = pd.Series(yp).isin(COMPOUNDS).to_numpy()
        Xp, yp = Xp.loc[kp], yp[kp]
        if len(set(yp)) < 2:
            continue
        pipe = make_candidate(rep.best, seed=seed)
        per_pol[pol] = pipe.fit(Xp.to_numpy(float), yp)
    refs = pair.X.loc[X.index]
    unmixer = None
    if len(cal_rows):
        unmixer = fit_unmixer(refs, y, cal, cal_f, blocks=list(pair.record["blocks"].values()),
                              compounds=list(COMPOUNDS))
    model = LiCompoundModel(
        classes=[str(c) for c in rep.pipeline.classes_], paired=rep.pipeline, paired_columns=list(X.columns),
        blocks={k: list(v) for k, v in pair.record["blocks"].items()}, per_polarity=per_pol, unmixer=unmixer,
        strategy=pair.record["positive"]["normalization"]["strategy"] if "positive" in pair.record else "total_ion_count",
        candidate=rep.best, uses_calibration=rep.best in USES_CALIBRATION,
        record={"features": pair.record, "metrics": rep.cv[rep.best].metrics()},
    )
    ev = Evaluation(X, y, g, rep.folds, rep.classes, rep.extra)
    return Trained(model, rep, ev)


def rescore(model: LiCompoundModel, ev: Evaluation, metric: str = "log_loss") -> float:
    """Score another model's recipe on a candidate's evaluation data: its selected pipeline is
    refitted on the same training folds (with the same calibration rows when it uses them) and
    scored on the same held-out folds."""
    Xa = ev.X.reindex(columns=model.paired_columns).fillna(0.0)
    extra = ev.extra if model.uses_calibration else None
    if extra is not None and ev.X.shape[1] != Xa.shape[1]:
        extra = None  # the calibration rows are in the candidate's columns only
    res = evaluate_on_folds(model.paired, Xa, ev.y, ev.folds, classes=ev.classes, extra=extra)
    return float(res.metrics()[metric])


__all__ = ["train_li_model", "rescore", "Trained", "Evaluation", "fit_weighted", "soft_label_rows"]
