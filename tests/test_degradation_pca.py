"""Degradation PCA on synthetic peak areas whose structure the test builds: a degradation
trend carried by known fragments must come out as PC1 with those fragments on top; scores,
loadings and explained variance agree with an independent SVD of the same normalised matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from progral_dagster.ml.degradation_pca import degradation_pca, degradation_pca_by_project
from progral_dagster.processing.normalization import normalize

FRAGMENTS = ["Li+", "F-", "PO2F2-", "PO3-", "S2-", "SO3-", "C2H-", "OH-", "CO3-", "LiF2-"]
DEGRADATION = ["SO3-", "PO3-", "S2-"]  # grow with storage time


def areas(n: int = 24, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(2e3, 2e4, len(FRAGMENTS))
    t = np.linspace(0, 1, n)  # degradation progress of each sample
    lam = np.tile(base, (n, 1))
    for f in DEGRADATION:
        lam[:, FRAGMENTS.index(f)] *= 1 + 4 * t
    counts = rng.poisson(lam * rng.lognormal(0, 0.02, (n, 1)))
    return pd.DataFrame(counts, columns=FRAGMENTS, index=[f"s{i}" for i in range(n)]), t


@pytest.mark.parametrize("strategy", ["poisson", "peak_max"])
def test_degradation_fragments_lead_pc1(strategy):
    A, t = areas()
    rep = degradation_pca(A, strategy, n_components=3, top=3)
    top = set(rep.top_fragments.query("component == 'PC1'")["fragment"])
    assert top == set(DEGRADATION), (strategy, top)
    # PC1 follows the degradation progress (sign fixed by the largest loading being positive)
    r = np.corrcoef(rep.scores["PC1"], t)[0, 1]
    assert r > 0.95, (strategy, r)
    assert rep.explained_variance_ratio[0] > 0.5
    assert rep.normalization["strategy"] == strategy
    assert list(rep.scores.index) == list(A.index)


def test_matches_independent_svd():
    A, _t = areas(seed=3)
    rep = degradation_pca(A, "poisson", n_components=4)
    Z, _ = normalize(A.astype(float), "poisson")
    Zc = Z.to_numpy() - Z.to_numpy().mean(axis=0)
    U, S, Vt = np.linalg.svd(Zc, full_matrices=False)
    ev = S**2 / (S**2).sum()
    np.testing.assert_allclose(rep.explained_variance_ratio, ev[:4], rtol=1e-8)
    for k in range(4):
        v = rep.loadings.iloc[:, k].to_numpy()
        assert abs(abs(v @ Vt[k]) - 1) < 1e-8  # same direction up to sign
        np.testing.assert_allclose(np.abs(rep.scores.iloc[:, k]), np.abs(U[:, k] * S[k]), rtol=1e-6)
        assert v[np.argmax(np.abs(v))] > 0  # sign convention
    # new samples project like the training ones
    np.testing.assert_allclose(rep.transform(A.iloc[:5]), rep.scores.iloc[:5], atol=1e-9)


def test_by_project_and_edge_cases():
    A, _ = areas(n=12)
    A["dead"] = 0  # a fragment never seen is dropped, not a NaN source
    projects = ["coated"] * 6 + ["uncoated"] * 5 + ["single"]
    reps = degradation_pca_by_project(A, projects, "peak_max", n_components=2)
    assert set(reps) == {"coated", "uncoated"}  # one sample is no PCA
    assert "dead" not in reps["coated"].loadings.index
    assert np.isfinite(reps["coated"].scores.to_numpy()).all()
    with pytest.raises(ValueError, match="at least 2"):
        degradation_pca(A.iloc[:1])


def test_pca_plots_render():
    from progral_dagster.ml import spectral_plots as sp

    A, t = areas()
    rep = degradation_pca(A, "poisson", n_components=3)
    figs = [
        sp.scree_figure(rep),
        sp.pca_score_plot(rep, groups=np.where(t > 0.5, "aged", "fresh")),
        sp.loadings_figure(rep, top=5),
    ]
    assert len(figs[2].axes) == 3
    # scree bars = explained variance in %
    heights = [p.get_height() for p in figs[0].axes[0].patches]
    np.testing.assert_allclose(heights, 100 * rep.explained_variance_ratio)
    for f in figs:
        assert sp.to_png(f, dpi=40)[:4] == b"\x89PNG"
