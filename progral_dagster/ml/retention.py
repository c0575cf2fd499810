"""Capacity-retention regression of stored-cathode half-cells (workflow 4, SCIENCE.md).

Follows the published workflow (LiNiO2 half-cells after defined storage): features from
ToF-SIMS (normalised fragment areas), XPS (atomic %, carbonate fraction of C 1s, LiF vs
fluorophosphate in F 1s, Ni2+ share) and early-cycle electrochemistry, plus the storage
conditions; removal of highly correlated features; z-score vs min-max scaling; Ridge, Lasso,
Elastic-Net and a tuned random forest, always reported beside a simple linear regression
(and the mean); validation split by sample so no sheet has cells in both training and test.

Validation (:func:`train_retention`)
------------------------------------
Nested cross-validation grouped by sample (cathode sheet): the outer ``GroupKFold`` folds are
shared by every candidate (and returned, so promotion can re-evaluate a champion on the same
folds with :func:`evaluate_on_folds`); hyper-parameters are chosen inside each outer training
fold by an inner ``GroupKFold`` grid search. Out-of-fold predictions give R2, RMSE and MAE; their
95 % intervals come from a cluster bootstrap over samples (sheets resampled with replacement,
Field & Welsh, J. R. Stat. Soc. B 69 (2007) 369). The champion is the candidate with the lowest
out-of-fold RMSE; ``beats_linear_baseline`` says whether that RMSE is below the single-feature
linear regression's, with the bootstrap probability of it beside. Permutation importances
(Breiman 2001) of the champion are computed on each outer test fold with the model fitted on
its training fold, then averaged.

Correlated-feature removal happens once before the pipelines (it does not look at the target,
so it leaks nothing about it): greedy, visiting XPS, cycling, ToF-SIMS and storage features in
that order (:data:`CORRELATION_PRIORITY`: the more quantitative measurement is kept), a column
is dropped when its absolute Pearson correlation with an already kept column exceeds the
threshold. Pipelines are sklearn
built-ins only (SimpleImputer, StandardScaler / MinMaxScaler, SelectKBest, linear models,
RandomForestRegressor), so they serialise with pickle/skops.

Prediction intervals (:func:`predict_with_interval`): prediction +- the conformal quantile
(level ceil((n+1)(1-alpha))/n) of the champion's absolute out-of-fold residuals: the CV+
approximation of Barber, Candes, Ramdas & Tibshirani, Ann. Stat. 49 (2021) 486. The residuals
are those of whole unseen sheets, so the interval is meant for a new cell of an unseen sheet.

Why scikit-learn: it provides every estimator, scaler and grouped splitter needed; only the
nesting, the grouped bootstrap and the report are written here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..processing.retention_features import (  # noqa: F401 - re-exported: the model's inputs
    CATHODE_IONS,
    CORRELATION_PRIORITY,
    CYCLING_PREFIX,
    FEATURE_PREFIXES,
    NON_FEATURES,
    TOF_RATIOS,
    VARIANTS,
    build_feature_table,
    drop_correlated,
    feature_columns,
    storage_features,
    tof_fragment_table,
)

BASELINES = ("mean", "linear_best_feature")
CANDIDATES = (
    "mean",
    "linear_best_feature",
    "ridge_zscore",
    "lasso_zscore",
    "elasticnet_zscore",
    "ridge_minmax",
    "lasso_minmax",
    "elasticnet_minmax",
    "random_forest",
)

# ToF-SIMS fragments of a stored cathode surface: carbonate, hydroxide, fluoride,
# fluorophosphate and transition-metal ions (SCIENCE.md workflows 1, 2 and 4).




# ---------------------------------------------------------------------------------------------
# candidates
# ---------------------------------------------------------------------------------------------
def make_candidate(name: str, seed: int = 0, *, rf_trees: int = 100):
    """(sklearn Pipeline, parameter grid) of a candidate (see :data:`CANDIDATES`)."""
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.feature_selection import SelectKBest, f_regression
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    imp = ("impute", SimpleImputer(strategy="median"))
    if name == "mean":
        return Pipeline([imp, ("model", DummyRegressor())]), {}
    if name == "linear_best_feature":
        sel = ("select", SelectKBest(f_regression, k=1))
        return Pipeline([imp, sel, ("model", LinearRegression())]), {}
    if name == "random_forest":
        rf = RandomForestRegressor(n_estimators=rf_trees, random_state=seed, n_jobs=1)
        grid = {"model__max_features": [0.33, 1.0], "model__min_samples_leaf": [1, 3]}
        return Pipeline([imp, ("model", rf)]), grid
    kind, _, scaling = name.partition("_")
    scaler = {"zscore": StandardScaler(), "minmax": MinMaxScaler()}.get(scaling)
    if scaler is None:
        raise ValueError(f"unknown candidate {name!r}; known: {CANDIDATES}")
    if kind == "ridge":
        model, grid = Ridge(), {"model__alpha": np.logspace(-3, 3, 9).tolist()}
    elif kind == "lasso":
        model = Lasso(max_iter=20000, random_state=seed)
        grid = {"model__alpha": np.logspace(-3, 0.5, 7).tolist()}
    elif kind == "elasticnet":
        model = ElasticNet(max_iter=20000, random_state=seed)
        grid = {
            "model__alpha": np.logspace(-3, 0.5, 5).tolist(),
            "model__l1_ratio": [0.3, 0.7],
        }
    else:
        raise ValueError(f"unknown candidate {name!r}; known: {CANDIDATES}")
    return Pipeline([imp, ("scale", scaler), ("model", model)]), grid


def grouped_folds(groups: Sequence, n_splits: int = 5, seed: int = 0) -> list[tuple]:
    """Outer folds: ``GroupKFold`` (shuffled by ``seed``); a group never spans train and test."""
    from sklearn.model_selection import GroupKFold

    g = np.asarray(groups)
    k = min(n_splits, len(np.unique(g)))
    if k < 2:
        raise ValueError("need at least two groups (samples) for grouped cross-validation")
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(np.zeros(len(g)), groups=g)]


def _fit(pipe, grid, x, y, groups, n_inner: int, n_jobs: int):
    """Fit a candidate; with a grid, an inner grouped grid search chooses its parameters."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, GroupKFold

    if not grid:
        return clone(pipe).fit(x, y), {}
    k = min(n_inner, len(np.unique(groups)))
    search = GridSearchCV(
        clone(pipe),
        grid,
        cv=GroupKFold(n_splits=k),
        scoring="neg_root_mean_squared_error",
        n_jobs=n_jobs,
    )
    search.fit(x, y, groups=groups)
    return search.best_estimator_, search.best_params_


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------
def regression_metrics(y, pred) -> dict[str, float]:
    """R2, RMSE and MAE."""
    y = np.asarray(y, float)
    p = np.asarray(pred, float)
    resid = y - p
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "r2": 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "mae": float(np.mean(np.abs(resid))),
    }


def _group_bootstrap_index(groups: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in uniq}
    out = []
    for _ in range(n_boot):
        pick = rng.choice(uniq, size=uniq.size, replace=True)
        out.append(np.concatenate([members[g] for g in pick]))
    return out


def bootstrap_metrics(y, pred, groups, boot: list[np.ndarray]) -> dict[str, float]:
    """95 % cluster-bootstrap intervals of R2, RMSE, MAE (``<metric>_lo`` / ``_hi``)."""
    y = np.asarray(y, float)
    p = np.asarray(pred, float)
    vals = {"r2": [], "rmse": [], "mae": []}
    for idx in boot:
        m = regression_metrics(y[idx], p[idx])
        for k in vals:
            vals[k].append(m[k])
    out = {}
    for k, v in vals.items():
        arr = np.asarray(v, float)
        arr = arr[np.isfinite(arr)]
        out[f"{k}_lo"] = float(np.percentile(arr, 2.5)) if arr.size else float("nan")
        out[f"{k}_hi"] = float(np.percentile(arr, 97.5)) if arr.size else float("nan")
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
@dataclass
class RetentionReport:
    """What :func:`train_retention` returns.

    Attributes
    ----------
    variant : model name (``capacity-retention-regressor`` or ``-surface-only``)
    champion : name of the best candidate (lowest grouped-CV RMSE)
    pipeline : the champion refitted on all rows (sklearn Pipeline)
    feature_names : columns the pipeline expects, in order
    dropped_features : dropped column -> kept column it correlates with (or ``constant``)
    metrics : one row per candidate: r2, rmse, mae with 95 % bootstrap bounds, fold RMSE mean
        and sd, best parameters, ``is_baseline``
    folds : the outer (train index, test index) pairs, shared by every candidate
    groups : sample id per row (rows in the order of ``y``)
    y : the target per row
    oof_predictions : DataFrame, one column per candidate, out-of-fold predictions per row
    importances : permutation importances of the champion (feature, mean, std), by mean
    beats_linear_baseline : champion RMSE below the single-feature linear regression's
    p_beats_linear : bootstrap probability that the champion's RMSE is the lower one
    residual_abs : absolute out-of-fold residuals of the champion (for the intervals)
    """

    variant: str
    champion: str
    pipeline: object
    feature_names: list[str]
    dropped_features: dict[str, str]
    metrics: pd.DataFrame
    folds: list[tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray
    y: np.ndarray
    oof_predictions: pd.DataFrame
    importances: pd.DataFrame
    beats_linear_baseline: bool
    p_beats_linear: float
    residual_abs: np.ndarray
    seed: int = 0
    params: dict = field(default_factory=dict)

    @property
    def champion_metrics(self) -> dict[str, float]:
        return self.metrics.set_index("candidate").loc[self.champion].to_dict()

    def comparison_table(self) -> pd.DataFrame:
        """Every candidate beside the baselines: metrics and RMSE difference to each baseline
        (negative = better than the baseline)."""
        t = self.metrics.copy()
        base = t.set_index("candidate")["rmse"]
        for b in BASELINES:
            if b in base:
                t[f"rmse_minus_{b}"] = t["rmse"] - base[b]
        return t.sort_values("rmse").reset_index(drop=True)

    def interval_halfwidth(self, alpha: float = 0.1) -> float:
        """Conformal quantile of the absolute out-of-fold residuals at level 1 - alpha."""
        r = np.sort(np.asarray(self.residual_abs, float))
        n = r.size
        k = math.ceil((n + 1) * (1 - alpha))
        return float(r[min(k, n) - 1]) if n else float("nan")


def _permutation_importance(pipes, x, y, folds, names, seed) -> pd.DataFrame:
    from sklearn.inspection import permutation_importance

    per = []
    for pipe, (_tr, te) in zip(pipes, folds, strict=True):
        r = permutation_importance(
            pipe,
            x.iloc[te],
            y[te],
            scoring="neg_root_mean_squared_error",
            n_repeats=5,
            random_state=seed,
        )
        per.append(r.importances_mean)
    arr = np.vstack(per)
    return (
        pd.DataFrame({"feature": names, "mean": arr.mean(axis=0), "std": arr.std(axis=0)})
        .sort_values("mean", ascending=False)
        .reset_index(drop=True)
    )


def train_retention(
    features: pd.DataFrame,
    target: str | Sequence[float] = "retention_pct",
    groups: str | Sequence = "sample_id",
    *,
    variant: str = "capacity-retention-regressor",
    seed: int = 0,
    corr_threshold: float = 0.95,
    n_outer: int = 5,
    n_inner: int = 3,
    n_bootstrap: int = 1000,
    candidates: Iterable[str] = CANDIDATES,
    rf_trees: int = 100,
    n_jobs: int = 1,
) -> RetentionReport:
    """Nested grouped cross-validation of every candidate, champion refit, importances.

    Parameters
    ----------
    features : a :func:`build_feature_table` result (or any frame with prefixed features)
    target : target column name, or the values per row
    groups : sample (sheet) column name, or the values per row; rows of a group never span
        training and test folds
    variant : ``capacity-retention-regressor`` (all features) or
        ``capacity-retention-surface-only`` (no ``cyc_`` features)
    seed : folds, forests, bootstrap, permutations
    corr_threshold : correlated-feature removal threshold (|r|)
    n_outer, n_inner : outer and inner grouped folds
    n_bootstrap : cluster-bootstrap resamples for the metric intervals
    candidates : subset of :data:`CANDIDATES` (must include the baselines)
    rf_trees : trees per random forest

    Returns
    -------
    RetentionReport
    """
    df = features.reset_index(drop=True)
    y_all = df[target] if isinstance(target, str) else pd.Series(np.asarray(target, float))
    g_all = df[groups] if isinstance(groups, str) else pd.Series(np.asarray(groups))
    keep = y_all.notna().to_numpy()
    if keep.sum() < 6:
        raise ValueError("fewer than 6 rows with a target")
    cols = feature_columns(df, variant)
    cols = [c for p in CORRELATION_PRIORITY for c in cols if c.startswith(p)]
    kept, dropped = drop_correlated(df.loc[keep, cols], corr_threshold)
    # a DataFrame, so the fitted pipeline records (and on predict checks) the feature names
    x = df.loc[keep, kept].apply(pd.to_numeric, errors="coerce").astype(float)
    x = x.reset_index(drop=True)
    y = y_all[keep].to_numpy(float)
    grp = g_all[keep].astype(str).to_numpy()
    folds = grouped_folds(grp, n_outer, seed)
    boot = _group_bootstrap_index(grp, n_bootstrap, seed)
    candidates = list(candidates)
    missing = [b for b in BASELINES if b not in candidates]
    if missing:
        raise ValueError(f"candidates must include the baselines {missing}")

    oof = pd.DataFrame(index=range(len(y)), columns=candidates, dtype=float)
    fold_models: dict[str, list] = {}
    rows = []
    for name in candidates:
        pipe, grid = make_candidate(name, seed, rf_trees=rf_trees)
        fold_models[name] = []
        fold_rmse = []
        params = []
        for tr, te in folds:
            model, best = _fit(pipe, grid, x.iloc[tr], y[tr], grp[tr], n_inner, n_jobs)
            pred = model.predict(x.iloc[te])
            oof.loc[te, name] = pred
            fold_rmse.append(regression_metrics(y[te], pred)["rmse"])
            fold_models[name].append(model)
            params.append(best)
        m = regression_metrics(y, oof[name])
        rows.append(
            {
                "candidate": name,
                **m,
                **bootstrap_metrics(y, oof[name], grp, boot),
                "fold_rmse_mean": float(np.mean(fold_rmse)),
                "fold_rmse_sd": float(np.std(fold_rmse)),
                "params": params,
                "is_baseline": name in BASELINES,
            }
        )
    metrics = pd.DataFrame(rows)
    champion = str(metrics.sort_values("rmse").iloc[0]["candidate"])
    pipe, grid = make_candidate(champion, seed, rf_trees=rf_trees)
    final, best = _fit(pipe, grid, x, y, grp, n_inner, n_jobs)
    importances = _permutation_importance(fold_models[champion], x, y, folds, kept, seed)

    res_c = y - oof[champion].to_numpy(float)
    res_b = y - oof["linear_best_feature"].to_numpy(float)
    wins = [np.mean(res_c[i] ** 2) < np.mean(res_b[i] ** 2) for i in boot]
    rmse = metrics.set_index("candidate")["rmse"]
    return RetentionReport(
        variant=variant,
        champion=champion,
        pipeline=final,
        feature_names=kept,
        dropped_features=dropped,
        metrics=metrics,
        folds=folds,
        groups=grp,
        y=y,
        oof_predictions=oof,
        importances=importances,
        beats_linear_baseline=bool(rmse[champion] < rmse["linear_best_feature"]),
        p_beats_linear=float(np.mean(wins)),
        residual_abs=np.abs(res_c),
        seed=seed,
        params={"champion_params": best, "corr_threshold": corr_threshold, "n_outer": n_outer},
    )


def evaluate_on_folds(pipeline, x, y, folds: Sequence[tuple]) -> dict:
    """Refit a (cloned) pipeline on each training fold and score its out-of-fold predictions.

    Used by promotion to re-evaluate the current champion on a candidate's folds.

    Returns
    -------
    dict with ``r2``, ``rmse``, ``mae`` and ``predictions`` (out-of-fold, row order)
    """
    from sklearn.base import clone

    xa = x.reset_index(drop=True) if hasattr(x, "iloc") else pd.DataFrame(np.asarray(x, float))
    ya = np.asarray(y, float)
    pred = np.full(ya.shape, np.nan)
    for tr, te in folds:
        model = clone(pipeline).fit(xa.iloc[tr], ya[tr])
        pred[te] = model.predict(xa.iloc[te])
    done = np.isfinite(pred)
    return {**regression_metrics(ya[done], pred[done]), "predictions": pred}


def predict_with_interval(
    report: RetentionReport, features: pd.DataFrame, *, alpha: float = 0.1
) -> pd.DataFrame:
    """Champion predictions with a (1 - alpha) interval (see the module docstring).

    Parameters
    ----------
    report : a trained :class:`RetentionReport` (e.g. the surface-only variant)
    features : rows with (at least) ``report.feature_names`` (the pipeline takes a DataFrame
        with exactly those columns, in that order); missing columns are imputed as missing
        values

    Returns
    -------
    DataFrame with ``prediction``, ``lower``, ``upper``, ``alpha`` (and ``sample_id`` /
    ``cell_id`` when the input has them)
    """
    x = features.reindex(columns=report.feature_names).apply(pd.to_numeric, errors="coerce")
    pred = report.pipeline.predict(x.astype(float))
    half = report.interval_halfwidth(alpha)
    out = pd.DataFrame(
        {"prediction": pred, "lower": pred - half, "upper": pred + half, "alpha": alpha},
        index=features.index,
    )
    for c in ("cell_id", "sample_id"):
        if c in features:
            out.insert(0, c, features[c].to_numpy())
    return out
