"""Classifier logic on small synthetic spectra whose truth the test constructs: grouped folds,
candidate comparison, fold re-evaluation, characteristic ions, PCA and the plots."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from progral_dagster.ml.classification import (
    PUBLISHED,
    characteristic_ions,
    evaluate_on_folds,
    grouped_folds,
    make_candidate,
    soft_label_rows,
    train_classifier,
)
from progral_dagster.processing.spectral_features import (
    FeatureTable,
    composition_matrix,
    pair_polarities,
    parse_composition,
)

COMPOUNDS = ["A", "B", "C"]
IONS = [f"ion{i}" for i in range(12)]
# ion 0 is shared by all; compound k carries a marker ion 1 + k (and 4 + k weaker)
PURE = np.full((3, 12), 2.0)
PURE[:, 0] = 100.0
for k in range(3):
    PURE[k, 1 + k] = 40.0
    PURE[k, 4 + k] = 15.0


def synthetic(n_samples: int = 4, n_spots: int = 3, seed: int = 0, counts: float = 2000.0):
    """Poisson spectra; spot-to-spot and sample-to-sample multiplicative variation."""
    rng = np.random.default_rng(seed)
    rows, labels, groups = [], [], []
    for k, c in enumerate(COMPOUNDS):
        for s in range(n_samples):
            sample = PURE[k] * rng.lognormal(0, 0.15, 12)
            for _ in range(n_spots):
                lam = sample * rng.lognormal(0, 0.1, 12)
                rows.append(rng.poisson(lam / lam.sum() * counts))
                labels.append(c)
                groups.append(f"{c}-{s}")
    X = pd.DataFrame(np.array(rows, float), columns=IONS)
    return X, np.array(labels), np.array(groups)


def test_grouped_folds_never_split_a_sample():
    X, y, g = synthetic()
    folds = grouped_folds(y, g, n_splits=4, seed=1)
    assert len(folds) == 4
    seen = np.zeros(len(y), int)
    for tr, te in folds:
        assert not set(g[tr]) & set(g[te])
        seen[te] += 1
    assert (seen == 1).all()
    with pytest.raises(ValueError, match="at least 2"):
        grouped_folds(["A", "A"], ["s", "s"])


def test_train_classifier_separates_and_reports():
    X, y, g = synthetic()
    rep = train_classifier(X, y, g, n_splits=4, seed=0)
    assert set(rep.cv) == {PUBLISHED, "log_logreg_mix", "sqrt_logreg_mix", "random_forest_mix"}
    # every candidate was scored on the same folds
    for r in rep.cv.values():
        assert r.proba.shape == (len(y), 3)
        np.testing.assert_allclose(r.proba.sum(axis=1), 1.0)
    m = rep.metrics()
    assert m["accuracy"] >= 0.95 and m["macro_f1"] >= 0.95
    assert m["log_loss"] < 0.5
    cm = rep.confusion
    assert cm.to_numpy().sum() == len(y)
    assert np.trace(cm.to_numpy()) >= 0.95 * len(y)
    # the markers built in are each compound's top characteristic ions
    ions = rep.characteristic_ions
    for k, c in enumerate(COMPOUNDS):
        top2 = set(ions[(ions.compound == c) & (ions["rank"] <= 2)]["ion"])
        assert top2 == {f"ion{1 + k}", f"ion{4 + k}"}, (c, top2)
    # probabilities for new data, columns = compounds
    Xn, yn, _ = synthetic(n_samples=1, seed=5)
    p = rep.predict_proba(Xn)
    assert list(p.columns) == COMPOUNDS
    assert (p.idxmax(axis=1).to_numpy() == yn).mean() >= 0.9
    # PCA: 3 PCs; a 1:1 mix of A and B lies between A and B on PC1/PC2
    sc = rep.pca_scores(X)
    assert list(sc.columns) == ["PC1", "PC2", "PC3"]
    mix = pd.DataFrame([(PURE[0] / PURE[0].sum() + PURE[1] / PURE[1].sum()) * 1000], columns=IONS)
    ms = rep.pca_scores(mix).iloc[0, :2].to_numpy()
    ca = sc[y == "A"].iloc[:, :2].mean().to_numpy()
    cb = sc[y == "B"].iloc[:, :2].mean().to_numpy()
    cc = sc[y == "C"].iloc[:, :2].mean().to_numpy()
    d_ab = np.linalg.norm(ms - (ca + cb) / 2)
    assert d_ab < np.linalg.norm(ms - cc)
    assert d_ab < 0.5 * np.linalg.norm(ca - cb)
    pickle.loads(pickle.dumps(rep.pipeline))


def test_evaluate_on_folds_reproduces_report_and_detects_a_bad_model():
    X, y, g = synthetic(seed=2)
    rep = train_classifier(X, y, g, candidates=[PUBLISHED], n_splits=3, seed=3)
    again = evaluate_on_folds(make_candidate(PUBLISHED), X, y, rep.folds)
    np.testing.assert_allclose(again.proba, rep.cv[PUBLISHED].proba)
    # a pipeline trained on shuffled labels is judged worse on the same folds
    from sklearn.dummy import DummyClassifier

    dummy = evaluate_on_folds(DummyClassifier(strategy="prior"), X, y, rep.folds)
    assert dummy.accuracy < 0.5 < again.accuracy
    assert dummy.log_loss > again.log_loss


def test_missing_class_in_a_training_fold_gets_zero_probability():
    X, y, g = synthetic(n_samples=2, n_spots=2)
    # leave-one-compound-out folds: each training part lacks the compound it is tested on
    folds = [(np.flatnonzero(y != c), np.flatnonzero(y == c)) for c in COMPOUNDS]
    r = evaluate_on_folds(make_candidate(PUBLISHED), X, y, folds, classes=COMPOUNDS)
    for k, (_tr, te) in enumerate(folds):
        assert (r.proba[te, k] == 0).all()
    assert r.accuracy == 0.0


def test_blockwise_minmax_for_paired_polarities():
    X, y, g = synthetic()
    # a second "polarity" block with 1000x larger numbers: without blocks it would dominate
    Xp = pd.concat([X, (X * 1000).add_prefix("neg_")], axis=1)
    blocks = [list(range(12)), list(range(12, 24))]
    rep = train_classifier(Xp, y, g, candidates=[PUBLISHED], n_splits=4, blocks=blocks)
    scaled = rep.pipeline[0].transform(Xp.to_numpy())
    assert scaled.shape == (len(y), 24)
    assert scaled[:, :12].max() == pytest.approx(1.0) and scaled[:, 12:].max() == pytest.approx(1.0)
    ions = characteristic_ions(rep.pipeline, list(Xp.columns))
    assert ions["ion"].isin(Xp.columns).all()


def test_pair_polarities_and_compositions():
    idx_p = pd.Index(["p1", "p2", "p3"], name="measurement_id")
    idx_n = pd.Index(["n1", "n2"], name="measurement_id")
    meta_p = pd.DataFrame(
        {
            "sample_id": ["s1", "s1", "s2"],
            "spot": [1, 2, 1],
            "label": ["A", "A", "B"],
            "total": [1.0, 2.0, 3.0],
        },
        index=idx_p,
    )
    meta_n = pd.DataFrame(
        {"sample_id": ["s1", "s2"], "spot": [2, 1], "label": ["A", "B"], "total": [5.0, 6.0]},
        index=idx_n,
    )
    pos = FeatureTable(pd.DataFrame({"Li+": [1.0, 2.0, 3.0]}, index=idx_p), meta_p)
    neg = FeatureTable(pd.DataFrame({"OH-": [7.0, 8.0]}, index=idx_n), meta_n)
    pair = pair_polarities(pos, neg)
    assert list(pair.X.columns) == ["Li+", "OH-"]
    assert pair.X.loc["s1|2"].tolist() == [2.0, 7.0]
    assert pair.X.loc["s2|1"].tolist() == [3.0, 8.0]
    assert "s1|1" not in pair.X.index  # no negative partner
    assert pair.meta.loc["s1|2", "measurement_id_negative"] == "n1"
    assert pair.meta.loc["s2|1", "total_negative"] == 6.0
    X, yy, gg = pair.xy()
    assert yy.tolist() == ["A", "B"] and gg.tolist() == ["s1", "s2"]
    # same-named columns get prefixes
    pair2 = pair_polarities(pos, FeatureTable(neg.X.set_axis(["Li+"], axis=1), meta_n))
    assert list(pair2.X.columns) == ["pos:Li+", "neg:Li+"]
    tbl = pair.to_arrow()
    back = FeatureTable.from_arrow(tbl)
    assert list(back.X.columns) == ["Li+", "OH-"]
    assert parse_composition("Li2CO3:0.5,LiOH:0.5") == {"Li2CO3": 0.5, "LiOH": 0.5}
    assert parse_composition(float("nan")) == {}
    with pytest.raises(ValueError, match="sum"):
        parse_composition("A:0.5,B:0.2")
    F = composition_matrix(["A:0.25,B:0.75", ""], ["A", "B", "C"])
    assert F.tolist() == [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]]


def test_plots_render():
    from progral_dagster.ml import spectral_plots as sp

    X, y, g = synthetic(n_samples=2, n_spots=2)
    rep = train_classifier(X, y, g, candidates=[PUBLISHED], n_splits=2)
    figs = [
        sp.confusion_matrix_figure(rep.confusion),
        sp.pca_scores_figure(rep.pca_scores(X), y, rep.pca_scores(X.iloc[:2]), ["m1", "m2"]),
        sp.characteristic_ions_figure(rep.characteristic_ions),
    ]
    assert len(figs[1].axes) == 3
    # one scatter group per compound + mixtures in each panel
    assert len(figs[1].axes[0].collections) == 4
    assert len(figs[2].axes) == 3
    for f in figs:
        png = sp.to_png(f, dpi=40)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def matrix_mixture(fa: float, rng: np.random.Generator, counts: float = 5000.0) -> np.ndarray:
    """A + B mixture in which A's surroundings suppress B's ions (exp(-5 f_A)) and A and B together
    form an ion that is C's marker (ion3): the test's own matrix effect, so read naively an
    A-rich A+B mixture looks like A + C."""
    fb = 1.0 - fa
    pa, pb = PURE[0] / PURE[0].sum(), PURE[1] / PURE[1].sum()
    lam = fa * pa + fb * np.exp(-5.0 * fa) * pb
    lam[3] += 0.8 * fa * fb
    return rng.poisson(lam / lam.sum() * counts).astype(float)


def test_calibration_mixtures_as_soft_labels_fix_matrix_distorted_mixtures():
    X, y, g = synthetic(seed=3)
    rng = np.random.default_rng(9)
    cal_f = [0.5, 0.75, 0.5, 0.75]
    Xc = pd.DataFrame([matrix_mixture(f, rng) for f in cal_f], columns=IONS)
    Fc = pd.DataFrame({"A": cal_f, "B": [1 - f for f in cal_f], "C": 0.0})
    hidden = pd.DataFrame([matrix_mixture(0.65, rng) for _ in range(6)], columns=IONS)
    Xe, ye, we = soft_label_rows(Xc, Fc, COMPOUNDS, weight=2.0)
    assert len(ye) == 8 and set(ye) == {"A", "B"}
    np.testing.assert_allclose(we[ye == "A"], [1.0, 1.5, 1.0, 1.5])
    plain = train_classifier(X, y, g, candidates=["log_logreg_mix"], n_splits=4)
    cal = train_classifier(
        X, y, g, candidates=["log_logreg_mix"], n_splits=4,
        calibration_features=Xc, calibration_fractions=Fc,
    )  # fmt: skip
    assert plain.params["n_calibration_rows"] == 0 and cal.params["n_calibration_rows"] == 8

    def top2_ab(rep) -> float:
        p = rep.predict_proba(hidden).to_numpy()
        return float(np.mean([set(np.argsort(-r)[:2]) == {0, 1} for r in p]))

    assert top2_ab(plain) < 0.5  # C's marker pulls the naive model to A + C
    assert top2_ab(cal) == 1.0
    # calibration rows never enter a test fold: grouped CV on the pure references stays perfect
    assert cal.cv["log_logreg_mix"].accuracy >= 0.95
    # promotion: the report re-evaluates another pipeline on its folds and calibration rows
    again = cal.evaluate(make_candidate("log_logreg_mix"), X, y)
    np.testing.assert_allclose(again.proba, cal.cv["log_logreg_mix"].proba)
