"""The deployable lithium-compound model: everything needed to go from a spectrum's peak areas
to class probabilities and a composition estimate, in one picklable object.

It bundles the paired-polarity pipeline selected by :func:`~.classification.train_classifier`,
per-polarity fallback pipelines (a spectrum whose partner polarity was not measured), the
unmixer (:mod:`.unmixing`), the interval lists and the normalisation used to build features.
Its input is a wide table with the paired feature columns; a row whose columns of one polarity
are all missing (NaN) is classified by that polarity's fallback model, and gets no unmixing
estimate (the unmixer needs both polarities). Pure: no mlflow, no dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FRACTION_PREFIX = "fraction_"


@dataclass
class LiCompoundModel:
    classes: list[str]
    paired: Any  # sklearn Pipeline on paired columns
    paired_columns: list[str]
    blocks: dict[str, list[str]]  # polarity -> its columns in paired_columns
    per_polarity: dict[str, Any] = field(default_factory=dict)  # polarity -> Pipeline on its columns
    unmixer: Any = None
    intervals: dict[str, pd.DataFrame] = field(default_factory=dict)  # polarity -> interval table
    strategy: str = "total_ion_count"
    candidate: str = ""
    uses_calibration: bool = False
    record: dict = field(default_factory=dict)

    @property
    def output_columns(self) -> list[str]:
        return [*self.classes, *(FRACTION_PREFIX + c for c in self.classes)]

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probabilities (one column per compound) and unmixing fractions (``fraction_<c>``)."""
        X = X.reindex(columns=self.paired_columns)
        out = pd.DataFrame(np.nan, index=X.index, columns=self.output_columns, dtype=float)
        have = {p: X[cols].notna().all(axis=1) for p, cols in self.blocks.items()}
        both = np.logical_and.reduce([h.to_numpy() for h in have.values()]) if have else np.zeros(len(X), bool)
        if both.any():
            p = self.paired.predict_proba(X.loc[both].to_numpy(float))
            out.loc[both, [str(c) for c in self.paired.classes_]] = p
            if self.unmixer is not None:
                out.loc[both, [FRACTION_PREFIX + c for c in self.unmixer.compounds]] = (
                    self.unmixer.estimate(X.loc[both]).to_numpy()
                )
        for k, (pol, cols) in enumerate(self.blocks.items()):
            rows = have[pol].to_numpy() & ~both
            model = self.per_polarity.get(pol)
            if rows.any() and model is not None:
                p = model.predict_proba(X.loc[rows, cols].to_numpy(float))
                out.loc[rows, [str(c) for c in model.classes_]] = p
            if rows.any() and self.unmixer is not None:
                filled = X.loc[rows].fillna(0.0)
                out.loc[rows, [FRACTION_PREFIX + c for c in self.unmixer.compounds]] = (
                    self.unmixer.estimate_block(filled, k).to_numpy()
                )
        probs = out[self.classes]
        out[self.classes] = probs.fillna(0.0).where(probs.notna().any(axis=1), np.nan, axis=0)
        return out

    def raw_names(self, polarity: str) -> list[str]:
        """Interval names (peak-area columns) behind a polarity's paired columns (paired columns
        carry a ``pos:``/``neg:`` prefix when the two polarities share ion names)."""
        return [c.split(":", 1)[1] if c[:4] in ("pos:", "neg:") else c for c in self.blocks[polarity]]

    def features(self, areas: dict[str, pd.DataFrame], totals: dict[str, pd.Series],
                 pair_keys: dict[str, pd.Series] | None = None) -> pd.DataFrame:
        """Paired feature rows from raw peak areas per polarity (rows: measurements).

        ``pair_keys`` (polarity -> key per measurement, e.g. ``sample|spot``) pairs a positive
        and a negative spectrum into one row; unpaired spectra get a row of their own with the
        other polarity's columns missing."""
        from ..processing.normalization import normalize

        parts = []
        for pol, A in areas.items():
            if pol not in self.blocks or A.empty:
                continue
            A = A.reindex(columns=self.raw_names(pol)).fillna(0.0)
            Xn, _ = normalize(A, self.strategy, total=np.asarray(totals[pol].reindex(A.index), float))
            Xn = pd.DataFrame(np.asarray(Xn, float), index=A.index, columns=self.blocks[pol])
            key = (pair_keys or {}).get(pol)
            if key is not None:
                Xn.index = [str(key.get(i, i)) for i in A.index]
            parts.append(Xn)
        if not parts:
            return pd.DataFrame(columns=self.paired_columns)
        wide = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        return wide.reindex(columns=self.paired_columns)
