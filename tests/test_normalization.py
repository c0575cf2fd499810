"""Normalisation strategies: values computed by hand, sklearn behaviour, and the normalisation
columns of the real SurfaceLab peak list recomputed from its area columns."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from progral_dagster.processing.normalization import (
    STRATEGIES,
    SpectralNormalizer,
    list_strategies,
    normalize,
)
from tests.conftest import SAMPLES

PEAK_LIST = SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt"

X = np.array([[1.0, 3.0, 6.0], [4.0, 0.0, 4.0]])
DF = pd.DataFrame(X, columns=["a", "b", "c"], index=["s1", "s2"])


def test_registry_lists_every_required_strategy():
    need = {
        "total_ion_count",
        "reference_peak",
        "selected_peaks_sum",
        "min_max",
        "z_score",
        "sqrt",
        "poisson",
        "peak_max",
    }
    assert need <= set(STRATEGIES)
    assert {d["name"] for d in list_strategies()} == set(STRATEGIES)
    json.dumps(list_strategies())


@pytest.mark.parametrize(
    ("strategy", "params", "expected"),
    [
        ("none", {}, [[1, 3, 6], [4, 0, 4]]),
        # row sums 10 and 8
        ("total_ion_count", {}, [[0.1, 0.3, 0.6], [0.5, 0.0, 0.5]]),
        # given totals (whole-spectrum counts, not the sum of these peaks)
        (
            "total_ion_count",
            {"total": np.array([20.0, 16.0])},
            [[0.05, 0.15, 0.3], [0.25, 0, 0.25]],
        ),
        # reference c: 6 and 4
        ("reference_peak", {"reference": "c"}, [[1 / 6, 0.5, 1.0], [1.0, 0.0, 1.0]]),
        # a + b: 4 and 4
        ("selected_peaks_sum", {"peaks": ["a", "b"]}, [[0.25, 0.75, 1.5], [1.0, 0.0, 1.0]]),
        # per spectrum: (x - min) / (max - min): row 1 (x-1)/5, row 2 (x-0)/4
        ("min_max", {}, [[0.0, 0.4, 1.0], [1.0, 0.0, 1.0]]),
        # columns: a mean 2.5 sd 1.5; b mean 1.5 sd 1.5; c mean 5 sd 1
        ("z_score", {}, [[-1, 1, 1], [1, -1, -1]]),
        ("sqrt", {}, [[1, np.sqrt(3), np.sqrt(6)], [2, 0, 2]]),
        # row means g = 10/3, 8/3; column means h = 2.5, 1.5, 5
        (
            "poisson",
            {},
            [
                [1 / np.sqrt(10 / 3 * 2.5), 3 / np.sqrt(10 / 3 * 1.5), 6 / np.sqrt(10 / 3 * 5)],
                [4 / np.sqrt(8 / 3 * 2.5), 0.0, 4 / np.sqrt(8 / 3 * 5)],
            ],
        ),
        # column maxima 4, 3, 6
        ("peak_max", {}, [[0.25, 1.0, 1.0], [1.0, 0.0, 4 / 6]]),
    ],
)
def test_strategies_by_hand(strategy, params, expected):
    out, rec = normalize(DF, strategy, **params)
    np.testing.assert_allclose(out.to_numpy(), np.array(expected, dtype=float), atol=1e-12)
    assert list(out.index) == ["s1", "s2"]
    assert rec["strategy"] == strategy
    assert rec["n_spectra"] == 2
    json.dumps(rec)  # recorded with every feature table and model: must be JSON-able


def test_total_column_is_divisor_and_dropped():
    df = DF.assign(total=[20.0, 16.0])
    out, rec = normalize(df, "total_ion_count", total="total")
    assert list(out.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(out.to_numpy(), [[0.05, 0.15, 0.3], [0.25, 0, 0.25]])
    assert rec["params"] == {"total": "total"}


def test_zero_divisors_give_zero_not_nan():
    Z = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    for s in ("total_ion_count", "min_max", "poisson"):
        out, _ = normalize(Z, s)
        assert np.isfinite(out).all(), s
        assert (out[0] == 0).all(), s
    out, _ = normalize(Z, "reference_peak", reference=0)
    assert out.tolist() == [[0, 0, 0], [1, 1, 1]]


def test_stateful_strategies_use_training_statistics():
    train = np.array([[1.0, 10.0], [3.0, 30.0]])
    test = np.array([[2.0, 60.0]])
    z = SpectralNormalizer("z_score").fit(train)
    # mean (2, 20), sd (1, 10)
    np.testing.assert_allclose(z.transform(test), [[0.0, 4.0]])
    pm = SpectralNormalizer("peak_max").fit(train)
    np.testing.assert_allclose(pm.transform(test), [[2 / 3, 2.0]])
    with pytest.raises(ValueError, match="fitted"):
        SpectralNormalizer("z_score").transform(test)
    with pytest.raises(ValueError, match="features"):
        z.transform(np.ones((1, 3)))


def test_errors_are_clear():
    with pytest.raises(ValueError, match="unknown normalisation strategy"):
        normalize(X, "l2")
    with pytest.raises(ValueError, match="takes"):
        normalize(X, "min_max", reference="a")
    with pytest.raises(ValueError, match="not in the feature table"):
        normalize(DF, "reference_peak", reference="zz")


def test_transformer_in_pipeline_is_picklable_and_sklearn_clonable():
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    A = rng.poisson(50, (40, 6)).astype(float)
    y = (A[:, 0] > 50).astype(int)
    pipe = Pipeline([("n", SpectralNormalizer("poisson")), ("lr", LogisticRegression())])
    pipe.fit(A, y)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(again.predict_proba(A), pipe.predict_proba(A))
    c = clone(pipe)
    assert c.get_params()["n__strategy"] == "poisson"
    assert pipe.named_steps["n"].record()["reference"].startswith("Keenan")
    # set_output: DataFrame in, DataFrame out with the names
    n = SpectralNormalizer("min_max").set_output(transform="pandas")
    assert list(n.fit_transform(DF).columns) == ["a", "b", "c"]


@pytest.mark.slow  # importing skops takes seconds
def test_skops_round_trip_if_available():
    sio = pytest.importorskip("skops.io")
    n = SpectralNormalizer("z_score").fit(X)
    blob = sio.dumps(n)
    trusted = sio.get_untrusted_types(data=blob)
    back = sio.loads(blob, trusted=trusted)
    np.testing.assert_allclose(back.transform(X), n.transform(X))


# ------------------------------------------------------------------- the real SurfaceLab list
def _peak_list() -> tuple[dict[str, float], list[dict[str, float]]]:
    """(total row, peak rows) of the real export, read with plain csv."""
    with open(PEAK_LIST, newline="", encoding="latin-1") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if None not in r.values()]
    cols = [
        "Area",
        "Uncorrected Area",
        "Norm. By Total Ion Intensity",
        "Norm. By Total Shots",
        "Norm. By Corrected Total Ion Intensity",
        "Norm. By Primary Ion Dose",
    ]
    parsed = [{c: float(r[c]) for c in cols} | {"desc": r["Description"]} for r in rows]
    total = next(r for r in parsed if r["desc"] == "total")
    return total, [r for r in parsed if r["desc"] != "total"]


def test_surfacelab_normalisation_columns_recomputed_from_areas():
    """SurfaceLab's columns, to the file's 2-decimal rounding:

    - Norm. By Corrected Total Ion Intensity = Area / total Area (our total_ion_count with the
      total row as the spectrum total; the total row itself reads 1.00);
    - Norm. By Total Ion Intensity = Uncorrected Area / TII, TII implied by the total row;
    - Norm. By Total Shots and By Primary Ion Dose = Area / constant implied by the total row.
    """
    total, peaks = _peak_list()
    area = pd.DataFrame([[p["Area"] for p in peaks]])
    unc = pd.DataFrame([[p["Uncorrected Area"] for p in peaks]])
    tol = 0.005 + 1e-9

    def check(got: np.ndarray, column: str) -> None:
        want = np.array([p[column] for p in peaks])
        err = np.abs(got.ravel() - want)
        assert err.max() <= tol, (column, err.max())
        assert (np.round(got.ravel(), 2) == want).mean() > 0.98, column

    corr, rec = normalize(area, "total_ion_count", total=np.array([total["Area"]]))
    assert total["Norm. By Corrected Total Ion Intensity"] == 1.0
    check(corr.to_numpy(), "Norm. By Corrected Total Ion Intensity")
    assert rec["strategy"] == "total_ion_count"

    tii = total["Uncorrected Area"] / total["Norm. By Total Ion Intensity"]
    check(
        normalize(unc, "total_ion_count", total=np.array([tii]))[0].to_numpy(),
        "Norm. By Total Ion Intensity",
    )

    shots = total["Area"] / total["Norm. By Total Shots"]
    check(
        normalize(area, "total_ion_count", total=np.array([shots]))[0].to_numpy(),
        "Norm. By Total Shots",
    )

    # the same numbers through the reference-peak strategy, with the total row as a column
    with_total = area.assign(total=total["Area"])
    ref, _ = normalize(with_total, "reference_peak", reference="total")
    check(ref.to_numpy()[:, :-1], "Norm. By Corrected Total Ion Intensity")

    # and through the lake reader's table, when the reader exists
    rd = pytest.importorskip("progral_dagster.readers.iontof_peak_list")
    t = rd.read(PEAK_LIST).tables["tof_sims_peak_lists"].to_pandas()
    body = t[t["description"].ne("total")]
    tot_area = float(t.loc[t["description"].eq("total"), "area"].iloc[0])
    got, _ = normalize(
        body[["area"]].T.reset_index(drop=True), "total_ion_count", total=np.array([tot_area])
    )
    np.testing.assert_allclose(
        got.to_numpy().ravel(), body["norm_by_corrected_total_ion_intensity"], atol=tol
    )
