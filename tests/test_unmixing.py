"""Unmixing logic on synthetic spectra built by the test from a known forward model: linear
mixing is recovered exactly, relative sensitivity factors and pairwise matrix effects are learned
from calibration mixtures and undone on unseen compositions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from progral_dagster.ml.unmixing import fit_unmixer, forward, invert, nnls_weights

COMP = ["A", "B", "C"]
N_ION = 10
rng0 = np.random.default_rng(42)
PURE = rng0.uniform(0.0, 1.0, (3, N_ION)) ** 3  # spiky, overlapping spectra
PURE[:, 0] += 2.0  # a big shared peak (like Li+)
PURE /= PURE.sum(axis=1, keepdims=True)


def mixture(f: np.ndarray, sens: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Ground-truth forward model of this test: compound c emits f_c * s_c * exp(sum_d A_cd f_d)
    of its pure spectrum; the spectrum is normalised to unit total."""
    amp = f * sens * np.exp(A @ f)
    x = amp @ PURE
    return x / x.sum()


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(np.array(rows), columns=[f"i{k}" for k in range(N_ION)])


def refs(noise: float = 0.0, n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for k, c in enumerate(COMP):
        for _ in range(n):
            rows.append(PURE[k] * rng.lognormal(0, noise, N_ION) if noise else PURE[k])
            labels.append(c)
    return frame(rows), labels


def test_linear_mixtures_recovered_exactly_without_calibration():
    R, lab = refs()
    um = fit_unmixer(R, lab)
    F = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    X = frame([mixture(f, np.ones(3), np.zeros((3, 3))) for f in F])
    est = um.estimate(X)
    assert list(est.columns) == COMP
    np.testing.assert_allclose(est.to_numpy(), F, atol=1e-6)
    np.testing.assert_allclose(est.sum(axis=1), 1.0)


def test_nnls_weights_are_non_negative_least_squares():
    w = nnls_weights(np.array([PURE[0] * 2 + PURE[2]]), PURE, np.ones(N_ION))
    np.testing.assert_allclose(w, [[2.0, 0.0, 1.0]], atol=1e-9)
    # a spectrum outside the cone gets no negative weight
    w = nnls_weights(np.array([PURE[0] - 0.5 * PURE[1]]), PURE, np.ones(N_ION))
    assert (w >= 0).all()


def test_invert_is_the_inverse_of_forward():
    r = np.log([1.0, 0.3, 2.0])
    A = np.array([[0.0, 0.5, -0.3], [-1.2, 0.0, 0.2], [0.4, -0.6, 0.0]])
    f = np.array([[0.2, 0.5, 0.3], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(invert(forward(f, r, A), r, A), f, atol=1e-6)


def test_calibration_learns_rsf_and_matrix_effect():
    """B emits 0.2x the signal per mole (an RSF) and is suppressed further by A around it (a
    matrix effect): plain NNLS reads a 1:1 A+B mixture far off, the corrected estimate does not,
    also for compositions not among the calibration mixtures."""
    sens = np.array([1.0, 0.2, 1.0])
    A = np.zeros((3, 3))
    A[1, 0] = -1.5  # B's yield falls with A around it
    A[2, 1] = 0.5  # C's yield rises with B around it
    R, lab = refs(noise=0.05)
    cal_f = np.array(
        [
            [0.5, 0.5, 0.0],
            [0.25, 0.75, 0.0],
            [0.75, 0.25, 0.0],
            [0.0, 0.5, 0.5],
            [0.5, 0.0, 0.5],
            [0.0, 0.25, 0.75],
        ]
    )
    cal = frame([mixture(f, sens, A) for f in cal_f])
    test_f = np.array([[0.4, 0.6, 0.0], [0.65, 0.35, 0.0], [0.0, 0.35, 0.65], [0.3, 0.3, 0.4]])
    X = frame([mixture(f, sens, A) for f in test_f])
    um = fit_unmixer(
        R, lab, cal, pd.DataFrame(cal_f, columns=COMP), ridge_rsf=1e-6, ridge_matrix=1e-6
    )
    plain = um.estimate(X, correct=False).to_numpy()
    corrected = um.estimate(X).to_numpy()
    # the 1:1-like mixture: plain NNLS reads little B (0.6 B -> ~0.1)
    assert plain[0, 1] < 0.2
    assert np.abs(plain - test_f).max() > 0.3
    assert np.abs(corrected - test_f).max() < 0.03
    # the calibration mixtures are reproduced by the fitted forward model (the individual RSF /
    # matrix numbers are not unique from binary calibrations: only the per-pair combinations are)
    assert um.record["blocks"][0]["calibration_rms_share"] < 0.005


def test_uncalibrated_compound_keeps_rsf_one_and_blocks_average():
    R, lab = refs()
    cal_f = np.array([[0.5, 0.5, 0.0]])
    cal = frame([mixture(cal_f[0], np.array([1.0, 0.5, 1.0]), np.zeros((3, 3)))])
    blocks = [[f"i{k}" for k in range(5)], [f"i{k}" for k in range(5, N_ION)]]
    um = fit_unmixer(R, lab, cal, cal_f, blocks=blocks, compounds=COMP)
    assert len(um.blocks) == 2
    for b in um.record["blocks"]:
        assert b["rsf"]["C"] == 1.0
    with pytest.raises(ValueError, match="no reference spectra"):
        fit_unmixer(R, lab, compounds=["A", "B", "C", "D"])
    with pytest.raises(ValueError, match="shape"):
        fit_unmixer(R, lab, cal, np.ones((1, 2)))
    with pytest.raises(ValueError, match="features missing"):
        um.estimate(R.drop(columns=["i3"]))
