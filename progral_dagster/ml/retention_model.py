"""The deployable retention model: a fitted pipeline with its feature names and the conformal
interval half-widths from its out-of-fold residuals (see :mod:`.retention`). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .retention import RetentionReport


@dataclass
class RetentionModel:
    variant: str
    candidate: str
    pipeline: object
    feature_names: list[str]
    halfwidth: dict[float, float] = field(default_factory=dict)  # alpha -> half-width (pct points)
    metrics: dict = field(default_factory=dict)

    @classmethod
    def from_report(cls, rep: RetentionReport, alphas=(0.1, 0.05, 0.32)) -> RetentionModel:
        m = {k: float(v) for k, v in rep.champion_metrics.items() if isinstance(v, (int, float, np.floating))}
        return cls(rep.variant, rep.champion, rep.pipeline, list(rep.feature_names),
                   {a: rep.interval_halfwidth(a) for a in alphas}, m)

    def predict(self, X: pd.DataFrame, alpha: float = 0.1) -> pd.DataFrame:
        """``retention_pct`` with the (1 - alpha) interval ``lower`` / ``upper``."""
        x = X.reindex(columns=self.feature_names).apply(pd.to_numeric, errors="coerce").astype(float)
        pred = np.asarray(self.pipeline.predict(x), float)
        half = self.halfwidth.get(alpha) or self.halfwidth[min(self.halfwidth, key=lambda a: abs(a - alpha))]
        return pd.DataFrame({"retention_pct": pred, "lower": pred - half, "upper": pred + half,
                             "alpha": alpha}, index=X.index)
