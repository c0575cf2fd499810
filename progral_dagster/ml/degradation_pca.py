"""PCA of normalised ToF-SIMS peak areas that points at degradation-related fragments.

Follows Hertle et al., ACS AMI 16 (2024) 14456 (SCIENCE.md "Degradation fragments"): peak areas
of many samples of one project (e.g. coated / uncoated cathodes, or storage conditions), a
normalisation, PCA, and the fragments with the largest loadings per component as the candidates
for degradation products. The normalisation is a named strategy of
:mod:`progral_dagster.processing.normalization`; the default is Poisson scaling (Keenan & Kotula,
Surf. Interface Anal. 36 (2004) 203), which weights counts by their noise so that intense peaks do
not dominate the components by their Poisson variance alone; ``peak_max`` (each peak divided by
its maximum over the samples) is the lab's own practice.

Sign convention: PCA fixes components only up to sign; here each component's largest-magnitude
loading is made positive, so reruns on the same data give the same plots.

PCA itself is scikit-learn's (maintained; SVD-based, centres the data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ..processing.normalization import SpectralNormalizer


@dataclass
class PCAReport:
    """Result of :func:`degradation_pca`.

    Attributes
    ----------
    scores : samples x components (PC1, PC2, ...).
    loadings : fragments x components (unit-norm eigenvectors).
    explained_variance_ratio : per component.
    top_fragments : component, rank, fragment, loading (largest |loading| first).
    normalization : the strategy's record.
    normalizer, pca : the fitted transformer and PCA (to project new samples).
    """

    scores: pd.DataFrame
    loadings: pd.DataFrame
    explained_variance_ratio: np.ndarray
    top_fragments: pd.DataFrame
    normalization: dict[str, Any]
    normalizer: SpectralNormalizer
    pca: PCA
    params: dict[str, Any] = field(default_factory=dict)

    def transform(self, areas: pd.DataFrame) -> pd.DataFrame:
        """Scores of new samples (same fragment columns) on the fitted components."""
        A = areas[list(self.loadings.index)]
        s = self.pca.transform(self.normalizer.transform(A.to_numpy(float)))
        s = s * self.params["signs"][None, :]
        return pd.DataFrame(s, index=areas.index, columns=self.scores.columns)


def degradation_pca(
    areas: pd.DataFrame,
    strategy: str = "poisson",
    n_components: int = 3,
    *,
    params: dict | None = None,
    top: int = 10,
) -> PCAReport:
    """PCA of normalised peak areas (rows: samples/spectra, columns: fragments).

    Parameters
    ----------
    areas : peak areas (counts); NaN (peak not in a sample's list) is taken as 0.
    strategy, params : normalisation strategy and its parameters.
    n_components : number of components (at most min(n_samples, n_fragments)).
    top : fragments listed per component in ``top_fragments``.
    """
    if areas.shape[0] < 2 or areas.shape[1] < 1:
        raise ValueError("PCA needs at least 2 samples and 1 fragment")
    A = areas.fillna(0.0)
    # fragments that are zero everywhere carry nothing and would break scaling
    A = A.loc[:, (A != 0).any(axis=0)]
    k = min(n_components, A.shape[0], A.shape[1])
    norm = SpectralNormalizer(strategy, params).fit(A.to_numpy(float))
    Z = norm.transform(A.to_numpy(float))
    pca = PCA(n_components=k, svd_solver="full").fit(Z)
    comps = pca.components_
    big = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(k), big])
    signs[signs == 0] = 1.0
    comps = comps * signs[:, None]
    cols = [f"PC{i + 1}" for i in range(k)]
    scores = pd.DataFrame(pca.transform(Z) * signs[None, :], index=areas.index, columns=cols)
    loadings = pd.DataFrame(comps.T, index=A.columns, columns=cols)
    rows = []
    for c in cols:
        order = loadings[c].abs().sort_values(ascending=False).index[:top]
        for r, frag in enumerate(order, start=1):
            rows.append((c, r, str(frag), float(loadings.loc[frag, c])))
    top_df = pd.DataFrame(rows, columns=["component", "rank", "fragment", "loading"])
    rec = norm.record()
    rec["n_spectra"] = int(A.shape[0])
    return PCAReport(
        scores=scores,
        loadings=loadings,
        explained_variance_ratio=pca.explained_variance_ratio_.copy(),
        top_fragments=top_df,
        normalization=rec,
        normalizer=norm,
        pca=pca,
        params={"n_components": k, "top": top, "signs": signs, "strategy": strategy},
    )


def degradation_pca_by_project(
    areas: pd.DataFrame,
    projects: Sequence[Any] | pd.Series,
    strategy: str = "poisson",
    n_components: int = 3,
    **kwargs: Any,
) -> dict[str, PCAReport]:
    """One :func:`degradation_pca` per project (projects with fewer than 2 samples skipped)."""
    proj = pd.Series(np.asarray(projects), index=areas.index).astype(str)
    out: dict[str, PCAReport] = {}
    for p, idx in proj.groupby(proj).groups.items():
        if len(idx) >= 2:
            out[str(p)] = degradation_pca(areas.loc[idx], strategy, n_components, **kwargs)
    return out
