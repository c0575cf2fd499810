"""Named, recorded normalisation strategies for ToF-SIMS peak areas and binned spectra.

Rows of ``X`` are spectra, columns are peaks (or unit-mass bins). Each strategy is registered in
:data:`STRATEGIES` under a stable name; :func:`normalize` applies one and returns a JSON-able
*record* (strategy, parameters, scope, reference) that goes with every feature table and model,
and :class:`SpectralNormalizer` is the same thing as a scikit-learn transformer (fit/transform),
so the normalisation sits inside a Pipeline and is logged with the model.

Definitions (SCIENCE.md "ToF-SIMS processing"):

=====================  ========  =================================================================
name                   scope     definition
=====================  ========  =================================================================
none                   -         X unchanged
total_ion_count        spectrum  X / total counts of the spectrum (``total``: per-row totals, a
                                 column name holding them, or None = sum of all columns)
reference_peak         spectrum  X / X[:, reference]
selected_peaks_sum     spectrum  X / sum of the columns ``peaks``
min_max                spectrum  (x - min(x)) / (max(x) - min(x)) per spectrum (Zhao et al., ACS
                                 AMI 15 (2023) 50469: the classifier's scaling)
z_score                feature   (X - mean) / std per column, fitted on the training spectra
                                 (auto-scaling)
sqrt                   element   sqrt(X) (variance stabilisation of Poisson counts)
log                    element   log(X + eps) (multiplicative yield variation -> additive; eps
                                 default 1e-6, about one count in a TIC-normalised spectrum)
poisson                both      X_ij / sqrt(g_i h_j), g_i = mean of row i (the "mean image" value),
                                 h_j = fitted column mean (the mean spectrum): Keenan & Kotula,
                                 Surf. Interface Anal. 36 (2004) 203, recommended for PCA of counts
peak_max               feature   X / max of each column over the training spectra (the lab's PCA
                                 practice, Lombardo et al. scripts)
=====================  ========  =================================================================

A zero divisor gives 0 (not inf/NaN): an empty spectrum or a peak never seen stays at zero.

Why not sklearn's scalers alone: ``MinMaxScaler`` / ``StandardScaler`` / ``MaxAbsScaler`` scale
per column; the per-spectrum strategies (TIC, reference peak, min-max per spectrum) and Poisson
scaling have no sklearn equivalent, and one class for all keeps the record uniform. The class is
a plain top-level ``BaseEstimator`` (numpy state only) so skops can serialise it once
``progral_dagster.processing.normalization.SpectralNormalizer`` is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


@dataclass(frozen=True)
class Strategy:
    """A registered normalisation strategy."""

    name: str
    scope: str  # spectrum | feature | element | both | -
    stateful: bool  # learns per-feature statistics in fit
    params: tuple[str, ...]
    description: str
    reference: str = ""


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("none", "-", False, (), "unchanged"),
        Strategy(
            "total_ion_count",
            "spectrum",
            False,
            ("total",),
            "divide by the spectrum's total counts",
        ),
        Strategy(
            "reference_peak", "spectrum", False, ("reference",), "divide by one reference peak"
        ),
        Strategy(
            "selected_peaks_sum",
            "spectrum",
            False,
            ("peaks",),
            "divide by the sum of selected peaks",
        ),
        Strategy(
            "min_max",
            "spectrum",
            False,
            (),
            "(x - min) / (max - min) per spectrum",
            "Zhao et al., ACS AMI 15 (2023) 50469",
        ),
        Strategy("z_score", "feature", True, (), "(x - mean) / std per feature (auto-scaling)"),
        Strategy("sqrt", "element", False, (), "square root (Poisson variance stabilisation)"),
        Strategy(
            "log",
            "element",
            False,
            ("eps",),
            "log(x + eps): multiplicative (matrix, spot) variation becomes additive",
        ),
        Strategy(
            "poisson",
            "both",
            True,
            (),
            "x_ij / sqrt(mean of row i x mean of column j)",
            "Keenan & Kotula, Surf. Interface Anal. 36 (2004) 203",
        ),
        Strategy(
            "peak_max",
            "feature",
            True,
            (),
            "divide each feature by its maximum over the training spectra",
            "Lombardo et al. (lab PCA practice)",
        ),
    )
}


def list_strategies() -> list[dict[str, Any]]:
    """The registry as JSON-able dicts (for docs, CLI and MLflow params)."""
    return [
        {
            "name": s.name,
            "scope": s.scope,
            "stateful": s.stateful,
            "params": list(s.params),
            "description": s.description,
            "reference": s.reference,
        }
        for s in STRATEGIES.values()
    ]


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return np.divide(a, b, out=np.zeros(a.shape), where=(b != 0) & np.isfinite(b))


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray | pd.Series | pd.Index):
        return f"<array of {len(v)} values>"
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


class SpectralNormalizer(TransformerMixin, BaseEstimator):
    """A normalisation strategy of :data:`STRATEGIES` as a scikit-learn transformer.

    Parameters
    ----------
    strategy : a key of :data:`STRATEGIES`.
    params : the strategy's parameters (``total``, ``reference``, ``peaks``); column names refer
        to the columns of a DataFrame ``X`` (or integer positions for arrays).

    Attributes (after fit)
    ----------------------
    n_features_in_, feature_names_in_ (DataFrame input), center_, scale_ : fitted per-feature
    statistics of the stateful strategies (z_score: mean/std; poisson: column means;
    peak_max: column maxima).
    """

    def __init__(self, strategy: str = "min_max", params: dict | None = None):
        self.strategy = strategy
        self.params = params

    # --- helpers ------------------------------------------------------------------------------
    def _p(self) -> dict:
        p = dict(self.params or {})
        s = STRATEGIES.get(self.strategy)
        if s is None:
            raise ValueError(
                f"unknown normalisation strategy {self.strategy!r}; known: {sorted(STRATEGIES)}"
            )
        unknown = set(p) - set(s.params)
        if unknown:
            raise ValueError(f"strategy {s.name!r} takes {list(s.params)}, not {sorted(unknown)}")
        return p

    def _columns(self, X: Any) -> list | None:
        return list(X.columns) if isinstance(X, pd.DataFrame) else None

    def _index(self, cols: list | None, key: Any) -> int:
        if isinstance(key, (int, np.integer)):
            return int(key)
        if cols is None or key not in cols:
            raise ValueError(f"column {key!r} not in the feature table")
        return cols.index(key)

    def _split_total(self, X: Any) -> tuple[np.ndarray, np.ndarray | None, list | None]:
        """(features, totals or None, output column names) for total_ion_count."""
        cols = self._columns(X)
        A = np.asarray(X, dtype=float)
        total = self._p().get("total")
        if self.strategy != "total_ion_count" or total is None:
            return A, None, cols
        if isinstance(total, (str, int, np.integer)) and not isinstance(total, bool):
            j = self._index(cols, total)
            keep = [i for i in range(A.shape[1]) if i != j]
            return A[:, keep], A[:, j], None if cols is None else [cols[i] for i in keep]
        t = np.asarray(total, dtype=float).ravel()
        if t.size != A.shape[0]:
            raise ValueError(f"total has {t.size} values for {A.shape[0]} spectra")
        return A, t, cols

    # --- sklearn API --------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> SpectralNormalizer:
        self._p()
        cols = self._columns(X)
        A, _t, out_cols = self._split_total(X)
        if A.ndim != 2:
            raise ValueError("X must be 2-D (spectra x features)")
        self.n_features_in_ = np.asarray(X).shape[1]
        if cols is not None:
            self.feature_names_in_ = np.asarray(cols, dtype=object)
        self._out_cols = out_cols
        s = self.strategy
        if s == "z_score":
            self.center_ = A.mean(axis=0)
            sd = A.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
        elif s == "poisson":
            self.center_ = np.zeros(A.shape[1])
            self.scale_ = A.mean(axis=0)
        elif s == "peak_max":
            self.center_ = np.zeros(A.shape[1])
            self.scale_ = A.max(axis=0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        p = self._p()
        cols = self._columns(X)
        A, t, _ = self._split_total(X)
        if hasattr(self, "n_features_in_") and np.asarray(X).shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {np.asarray(X).shape[1]} features, fitted with {self.n_features_in_}"
            )
        s = self.strategy
        if s == "none":
            return A.copy()
        if s == "total_ion_count":
            tot = A.sum(axis=1) if t is None else t
            return _safe_div(A, tot[:, None])
        if s == "reference_peak":
            if "reference" not in p:
                raise ValueError("reference_peak needs params={'reference': column}")
            return _safe_div(A, A[:, [self._index(cols, p["reference"])]])
        if s == "selected_peaks_sum":
            if not p.get("peaks"):
                raise ValueError("selected_peaks_sum needs params={'peaks': [columns]}")
            idx = [self._index(cols, c) for c in p["peaks"]]
            return _safe_div(A, A[:, idx].sum(axis=1, keepdims=True))
        if s == "min_max":
            lo = A.min(axis=1, keepdims=True)
            return _safe_div(A - lo, A.max(axis=1, keepdims=True) - lo)
        if s == "sqrt":
            return np.sqrt(np.clip(A, 0.0, None))
        if s == "log":
            eps = float(p.get("eps", 1e-6))
            if eps <= 0:
                raise ValueError("log needs eps > 0")
            return np.log(np.clip(A, 0.0, None) + eps)
        # stateful strategies
        if not hasattr(self, "scale_"):
            raise ValueError(f"strategy {s!r} must be fitted before transform")
        if s == "z_score":
            return (A - self.center_) / self.scale_
        if s == "poisson":
            g = A.mean(axis=1, keepdims=True)
            return _safe_div(A, np.sqrt(np.clip(g * self.scale_[None, :], 0.0, None)))
        if s == "peak_max":
            return _safe_div(A, self.scale_[None, :])
        raise AssertionError(s)  # pragma: no cover - registry and branches agree

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = getattr(self, "_out_cols", None)
        if names is None:
            if input_features is not None:
                names = list(input_features)
            elif hasattr(self, "feature_names_in_"):
                names = list(self.feature_names_in_)
            else:
                names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(names, dtype=object)

    def record(self) -> dict[str, Any]:
        """What was done, JSON-able: strategy, parameters, scope, reference."""
        s = STRATEGIES[self.strategy]
        rec: dict[str, Any] = {
            "strategy": s.name,
            "params": {k: _jsonable(v) for k, v in (self.params or {}).items()},
            "scope": s.scope,
            "description": s.description,
            "reference": s.reference,
        }
        if hasattr(self, "n_features_in_"):
            rec["n_features_in"] = int(self.n_features_in_)
        return rec


def normalize(X: Any, strategy: str, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Normalise ``X`` with a named strategy (fit on ``X`` itself) and record it.

    Returns
    -------
    (X normalised: a DataFrame with the same index when ``X`` is one, else an ndarray;
    the record dict of :meth:`SpectralNormalizer.record`, plus ``n_spectra``)
    """
    norm = SpectralNormalizer(strategy, params or None).fit(X)
    out = norm.transform(X)
    rec = norm.record()
    rec["n_spectra"] = int(np.asarray(X).shape[0])
    if isinstance(X, pd.DataFrame):
        out = pd.DataFrame(out, index=X.index, columns=norm.get_feature_names_out())
    return out, rec
