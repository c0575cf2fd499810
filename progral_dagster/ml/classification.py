"""Which lithium compound a ToF-SIMS spectrum shows: candidate pipelines, grouped cross-validation,
characteristic ions and a PCA view.

Follows Zhao et al., ACS AMI 15 (2023) 50469 (workflow 1 in SCIENCE.md): min-max scaling per
spectrum, logistic regression, 5-fold cross-validation, PCA with 3 components to see where mixtures
lie between their components, and the logistic-regression coefficients as each compound's
characteristic secondary ions. That recipe is candidate ``minmax_logreg``; stronger candidates
compete with it on the same folds, and the one with the best grouped-CV macro-F1 (rounded to two
decimals; ties: lower log-loss) becomes the report's pipeline.

Calibration mixtures as soft labels. The class probabilities are read as a qualitative
composition of mixtures and anodes, and matrix effects distort mixture spectra (a minor LiH in
Li2O loses most of its hydride signal and forms OH-/Li2OH+ that look like LiOH). The lake holds
calibration mixtures of known composition (sample sheet ``composition``); the ``*_mix``
candidates add each of them to every training fold once per component, labelled with that
component and weighted by its molar fraction (soft labels through sample weights), so the models
see what real mixtures look like. Calibration rows never enter a test fold: the grouped-CV scores
are on pure references only and stay comparable with the published recipe, which trains on the
references alone.

Folds are grouped by sample (``StratifiedGroupKFold``): the replicate spots of one sample never
sit in both train and test, since spots of one sample share its surface film and contamination
and would inflate the score. The folds are returned so that a promotion step can re-evaluate an
older champion on exactly the same splits (:func:`evaluate_on_folds`).

Polarities. The models take any feature matrix; the lab's default is *paired* polarities (one row
per sample spot, positive then negative peak areas, built by
:func:`progral_dagster.processing.spectral_features.pair_polarities`), because the compounds'
distinguishing ions are split across polarities: Li3N's N-bearing ions are mostly negative (CN-,
LiN-) beside positive Li2N+; LiH shows H- and LiH2- (negative) beside Li2H+; LiOH and Li2O differ in
Li2OH+ (positive) and OH-/O- (negative). With paired rows the min-max scaling is applied to each
polarity block separately (``blocks``), so the stronger polarity does not flatten the other.
Per-polarity models are the fallback for a spectrum whose partner polarity was not measured.

Everything is scikit-learn (maintained, serialisable with skops): the only project class inside a
pipeline is :class:`~progral_dagster.processing.normalization.SpectralNormalizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..processing.normalization import SpectralNormalizer

PUBLISHED = "minmax_logreg"
DEFAULT_CANDIDATES: tuple[str, ...] = (
    "minmax_logreg",
    "log_logreg_mix",
    "sqrt_logreg_mix",
    "random_forest_mix",
)
# candidates that train on calibration mixtures (soft labels) when they are given
USES_CALIBRATION = frozenset({"log_logreg_mix", "sqrt_logreg_mix", "random_forest_mix"})

# project classes a serialiser (skops) must trust to load these pipelines
TRUSTED_TYPES = ("progral_dagster.processing.normalization.SpectralNormalizer",)


def _scaler(strategy: str, blocks: Sequence[Sequence[int]] | None) -> Any:
    """One normaliser, or one per polarity block (column positions) via ColumnTransformer."""
    if not blocks or len(blocks) < 2:
        return SpectralNormalizer(strategy)
    return ColumnTransformer(
        [(f"block{i}", SpectralNormalizer(strategy), list(b)) for i, b in enumerate(blocks)],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def make_candidate(
    name: str, *, blocks: Sequence[Sequence[int]] | None = None, seed: int = 0
) -> Pipeline:
    """A fresh, unfitted candidate pipeline (the final step is named ``clf``).

    - ``minmax_logreg``: min-max per spectrum (per polarity block) + multinomial logistic
      regression with sklearn defaults (C = 1, L2): the published recipe.
    - ``log_logreg_mix``: log of the TIC-normalised areas (spot-to-spot and matrix variation of
      ion yields is multiplicative, so it becomes additive and small characteristic ions count
      as much as Li+), auto-scaling per feature, logistic regression (C = 1).
    - ``sqrt_logreg_mix``: the same with the square root (Poisson variance stabilisation).
    - ``random_forest_mix``: 200 trees on the features as given (scale-free).

    The ``_mix`` candidates also learn from calibration mixtures when
    :func:`train_classifier` gets them.
    """
    if name == "minmax_logreg":
        return Pipeline(
            [("scale", _scaler("min_max", blocks)), ("clf", LogisticRegression(max_iter=5000))]
        )
    if name in ("log_logreg_mix", "sqrt_logreg_mix"):
        tf = "log" if name.startswith("log") else "sqrt"
        return Pipeline(
            [
                ("transform", SpectralNormalizer(tf)),
                ("std", StandardScaler()),
                ("clf", LogisticRegression(C=1.0, max_iter=5000)),
            ]
        )
    if name == "random_forest_mix":
        return Pipeline(
            [
                (
                    "clf",
                    RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1),
                )
            ]
        )
    raise ValueError(f"unknown candidate {name!r}; known: {list(DEFAULT_CANDIDATES)}")


def soft_label_rows(
    features: Any, fractions: Any, compounds: Sequence[str], *, weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibration mixtures as weighted rows: one row per (mixture, component with fraction > 0),
    labelled with the component, weighted ``weight x fraction``.

    Parameters
    ----------
    features : mixture features (n_mixtures x n_features).
    fractions : known molar fractions, DataFrame with compound columns or an array in
        ``compounds`` order.
    """
    Xc = features.to_numpy(float) if isinstance(features, pd.DataFrame) else np.asarray(features)
    if isinstance(fractions, pd.DataFrame):
        F = fractions.reindex(columns=list(compounds)).fillna(0.0).to_numpy(float)
    else:
        F = np.asarray(fractions, dtype=float)
    if F.shape != (Xc.shape[0], len(compounds)):
        raise ValueError(f"fractions must have shape {(Xc.shape[0], len(compounds))}")
    r, c = np.nonzero(F > 0)
    return Xc[r], np.asarray(compounds, dtype=object)[c].astype(str), weight * F[r, c]


def fit_weighted(
    pipeline: Pipeline, X: np.ndarray, y: np.ndarray, w: np.ndarray | None
) -> Pipeline:
    """Fit a pipeline, passing sample weights to its final step when given."""
    if w is None:
        return pipeline.fit(X, y)
    return pipeline.fit(X, y, **{f"{pipeline.steps[-1][0]}__sample_weight": w})


def grouped_folds(
    y: Sequence[Any], groups: Sequence[Any], *, n_splits: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds grouped by sample: no group in both train and test of a fold.

    ``n_splits`` is lowered to the number of groups when there are fewer.
    """
    y = np.asarray(y)
    g = np.asarray(groups)
    n_groups = len(np.unique(g))
    k = min(n_splits, n_groups)
    if k < 2:
        raise ValueError(f"grouped CV needs at least 2 samples (groups), got {n_groups}")
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(y)), y, g)]


@dataclass
class CVResult:
    """Out-of-fold evaluation of one pipeline on given folds."""

    classes: list[str]
    proba: np.ndarray  # (n_samples, n_classes), out of fold
    y: np.ndarray
    fold_accuracy: list[float]

    @property
    def predicted(self) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.proba, axis=1)]

    @property
    def accuracy(self) -> float:
        return float(accuracy_score(self.y, self.predicted))

    @property
    def macro_f1(self) -> float:
        return float(f1_score(self.y, self.predicted, average="macro", labels=self.classes))

    @property
    def log_loss(self) -> float:
        p = np.clip(self.proba, 1e-15, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        return float(log_loss(self.y, p, labels=self.classes))

    def confusion(self) -> pd.DataFrame:
        """Rows: true compound, columns: predicted compound (counts)."""
        cm = confusion_matrix(self.y, self.predicted, labels=self.classes)
        return pd.DataFrame(
            cm,
            index=pd.Index(self.classes, name="true"),
            columns=pd.Index(self.classes, name="predicted"),
        )

    def metrics(self) -> dict[str, float]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "log_loss": self.log_loss,
            "fold_accuracy_min": float(np.min(self.fold_accuracy)),
        }


def evaluate_on_folds(
    pipeline: Pipeline,
    X: Any,
    y: Sequence[Any],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    classes: Sequence[str] | None = None,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> CVResult:
    """Refit a clone of ``pipeline`` on each training fold and predict the held-out fold.

    Parameters
    ----------
    extra : ``(X, y, weights)`` rows added to every training fold (never tested), e.g.
        :func:`soft_label_rows` of calibration mixtures; the training rows get weight 1.

    Classes missing from a training fold get probability 0 in that fold's predictions.
    """
    Xa = X.to_numpy(float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    y = np.asarray(y).astype(str)
    cls = sorted(np.unique(y)) if classes is None else [str(c) for c in classes]
    pos = {c: i for i, c in enumerate(cls)}
    proba = np.full((len(y), len(cls)), np.nan)
    accs = []
    for tr, te in folds:
        if extra is not None and len(extra[0]):
            Xt = np.vstack([Xa[tr], extra[0]])
            yt = np.concatenate([y[tr], np.asarray(extra[1]).astype(str)])
            wt = np.concatenate([np.ones(len(tr)), extra[2]])
        else:
            Xt, yt, wt = Xa[tr], y[tr], None
        model = fit_weighted(clone(pipeline), Xt, yt, wt)
        p = model.predict_proba(Xa[te])
        full = np.zeros((len(te), len(cls)))
        for j, c in enumerate(model.classes_):
            if str(c) in pos:
                full[:, pos[str(c)]] = p[:, j]
        proba[te] = full
        accs.append(float(np.mean(np.asarray(cls)[full.argmax(axis=1)] == y[te])))
    if np.isnan(proba).any():
        raise ValueError("folds do not cover every sample exactly once")
    return CVResult(classes=cls, proba=proba, y=y, fold_accuracy=accs)


def characteristic_ions(
    pipeline: Pipeline, feature_names: Sequence[str], *, top: int = 5
) -> pd.DataFrame:
    """Each compound's ions with the largest positive logistic-regression coefficients.

    Columns: compound, rank (1 = strongest), ion, coefficient.
    """
    clf = pipeline.steps[-1][1]
    if not hasattr(clf, "coef_"):
        raise ValueError("characteristic ions need a linear model with coef_")
    coef = np.atleast_2d(clf.coef_)
    classes = [str(c) for c in clf.classes_]
    if coef.shape[0] == 1 and len(classes) == 2:
        coef = np.vstack([-coef[0], coef[0]])
    names = np.asarray(_names_into_model(pipeline, feature_names))
    rows = []
    for c, w in zip(classes, coef, strict=True):
        order = np.argsort(-w)[:top]
        for r, j in enumerate(order, start=1):
            rows.append((c, r, str(names[j]), float(w[j])))
    return pd.DataFrame(rows, columns=["compound", "rank", "ion", "coefficient"])


def _names_into_model(pipeline: Pipeline, feature_names: Sequence[str]) -> list[str]:
    """Feature names in the order the final estimator sees them (a block ColumnTransformer
    reorders columns block by block)."""
    names = [str(n) for n in feature_names]
    for _name, step in pipeline.steps[:-1]:
        if isinstance(step, ColumnTransformer):
            names = [
                names[j] for _n, _t, cols in step.transformers_ if _n != "remainder" for j in cols
            ]
    return names


@dataclass
class ClassifierReport:
    """What :func:`train_classifier` returns.

    Attributes
    ----------
    best : name of the selected candidate.
    pipeline : the selected candidate refitted on all labelled spectra (sklearn Pipeline).
    cv : candidate name -> CVResult on :attr:`folds` (the same folds for every candidate).
    folds : list of (train indices, test indices) into the training rows.
    classes : compound names (column order of probabilities).
    feature_names : columns the pipeline expects, in order.
    characteristic_ions : table from the published recipe's coefficients (refitted on all).
    coefficient_pipeline : that published-recipe pipeline (for the coefficient plot).
    pca : Pipeline(min-max scaling, PCA(3)) fitted on the labelled spectra.
    blocks : polarity blocks (column positions) used for per-block scaling, if any.
    extra : calibration soft-label rows ``(X, y, weights)`` given to the ``_mix`` candidates.
    """

    best: str
    pipeline: Pipeline
    cv: dict[str, CVResult]
    folds: list[tuple[np.ndarray, np.ndarray]]
    classes: list[str]
    feature_names: list[str]
    characteristic_ions: pd.DataFrame
    coefficient_pipeline: Pipeline
    pca: Pipeline
    blocks: list[list[int]] | None = None
    extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def evaluate(
        self, pipeline: Pipeline, X: Any, y: Sequence[Any], *, uses_calibration: bool = True
    ) -> CVResult:
        """Re-evaluate another (e.g. the current champion's) unfitted pipeline on this report's
        folds and calibration rows, for a like-for-like promotion decision."""
        return evaluate_on_folds(
            pipeline, _align(X, self.feature_names) if isinstance(X, pd.DataFrame) else X, y,
            self.folds, classes=self.classes, extra=self.extra if uses_calibration else None,
        )  # fmt: skip

    @property
    def confusion(self) -> pd.DataFrame:
        """Grouped-CV confusion matrix of the selected candidate."""
        return self.cv[self.best].confusion()

    def metrics(self) -> dict[str, float]:
        """Flat metric dict (``<candidate>.<metric>`` and the selected one's plain names)."""
        out: dict[str, float] = {}
        for name, r in self.cv.items():
            for k, v in r.metrics().items():
                out[f"{name}.{k}"] = v
        out.update(self.cv[self.best].metrics())
        return out

    def predict_proba(self, X: Any) -> pd.DataFrame:
        """Class probabilities of new spectra (columns: compounds), rows as in ``X``."""
        Xa = _align(X, self.feature_names)
        p = self.pipeline.predict_proba(Xa)
        idx = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(p, index=idx, columns=[str(c) for c in self.pipeline.classes_])

    def pca_scores(self, X: Any) -> pd.DataFrame:
        """Scores on the 3 principal components (PC1..PC3) of new or training spectra."""
        s = self.pca.transform(_align(X, self.feature_names))
        idx = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(s, index=idx, columns=[f"PC{i + 1}" for i in range(s.shape[1])])


def _align(X: Any, names: Sequence[str]) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"features missing: {missing[:5]}")
        return X[list(names)].to_numpy(float)
    A = np.asarray(X, float)
    if A.shape[1] != len(names):
        raise ValueError(f"expected {len(names)} features, got {A.shape[1]}")
    return A


def blocks_from_columns(
    columns: Sequence[str], blocks: dict[str, Sequence[str]]
) -> list[list[int]]:
    """Column positions of each polarity block (from a FeatureTable record's ``blocks``)."""
    pos = {c: i for i, c in enumerate(columns)}
    return [[pos[c] for c in cols if c in pos] for cols in blocks.values()]


def train_classifier(
    features: pd.DataFrame,
    labels: Sequence[Any],
    groups: Sequence[Any],
    *,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    n_splits: int = 5,
    seed: int = 0,
    blocks: Sequence[Sequence[int]] | None = None,
    calibration_features: Any = None,
    calibration_fractions: Any = None,
    calibration_weight: float = 1.0,
    top_ions: int = 5,
) -> ClassifierReport:
    """Grouped-CV comparison of candidate pipelines on labelled reference spectra.

    Parameters
    ----------
    features : one row per labelled spectrum (or paired spot), one column per feature.
    labels : compound of each row.
    groups : sample of each row (rows of one sample never split across train/test).
    candidates : names for :func:`make_candidate`; the published recipe is always evaluated
        (its coefficients give the characteristic ions).
    blocks : column positions of each polarity block for per-block min-max scaling.
    calibration_features, calibration_fractions : calibration mixtures (same columns as
        ``features``) and their known molar fractions (DataFrame with compound columns, or an
        array in sorted-compound order); used as soft labels by the ``_mix`` candidates.
    calibration_weight : weight of a whole calibration mixture relative to one reference row.

    Returns
    -------
    ClassifierReport
    """
    X = features.to_numpy(float) if isinstance(features, pd.DataFrame) else np.asarray(features)
    names = (
        [str(c) for c in features.columns]
        if isinstance(features, pd.DataFrame)
        else [f"x{i}" for i in range(X.shape[1])]
    )
    y = np.asarray(labels).astype(str)
    g = np.asarray(groups).astype(str)
    if not (len(y) == len(g) == X.shape[0]):
        raise ValueError("features, labels and groups differ in length")
    if len(np.unique(y)) < 2:
        raise ValueError("need at least two compounds to train a classifier")
    classes = sorted(np.unique(y))
    extra = None
    if calibration_features is not None and calibration_fractions is not None:
        Xc = (
            _align(calibration_features, names)
            if isinstance(calibration_features, pd.DataFrame)
            else calibration_features
        )
        extra = soft_label_rows(Xc, calibration_fractions, classes, weight=calibration_weight)
    folds = grouped_folds(y, g, n_splits=n_splits, seed=seed)
    bl = [list(b) for b in blocks] if blocks else None
    cands = list(dict.fromkeys([*candidates, PUBLISHED]))

    def extra_for(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        return extra if name in USES_CALIBRATION else None

    cv = {
        name: evaluate_on_folds(
            make_candidate(name, blocks=bl, seed=seed), X, y, folds, classes=classes,
            extra=extra_for(name),
        )
        for name in cands
    }  # fmt: skip

    def rank(n: str) -> tuple[float, float]:
        return (-round(cv[n].macro_f1, 2), cv[n].log_loss)

    best = min(list(candidates), key=rank)

    def fit_all(name: str) -> Pipeline:
        e = extra_for(name)
        if e is None:
            return make_candidate(name, blocks=bl, seed=seed).fit(X, y)
        return fit_weighted(
            make_candidate(name, blocks=bl, seed=seed),
            np.vstack([X, e[0]]),
            np.concatenate([y, e[1]]),
            np.concatenate([np.ones(len(y)), e[2]]),
        )

    pipe = fit_all(best)
    coef_pipe = pipe if best == PUBLISHED else fit_all(PUBLISHED)
    ions = characteristic_ions(coef_pipe, names, top=top_ions)
    pca = Pipeline([("scale", _scaler("min_max", bl)), ("pca", PCA(n_components=3))]).fit(X)
    return ClassifierReport(
        best=best,
        pipeline=pipe,
        cv=cv,
        folds=folds,
        classes=classes,
        feature_names=names,
        characteristic_ions=ions,
        coefficient_pipeline=coef_pipe,
        pca=pca,
        blocks=bl,
        extra=extra,
        params={
            "candidates": list(candidates),
            "n_splits": len(folds),
            "seed": seed,
            "selection": "max grouped-CV macro-F1 (2 decimals), then min log-loss",
            "n_spectra": int(X.shape[0]),
            "n_groups": int(len(np.unique(g))),
            "n_features": int(X.shape[1]),
            "n_calibration_rows": 0 if extra is None else int(len(extra[1])),
            "calibration_weight": calibration_weight,
        },
    )
