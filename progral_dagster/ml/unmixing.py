"""Composition of a surface from its ToF-SIMS peak areas: non-negative unmixing against the
reference spectra, corrected for matrix effects with calibration mixtures of known composition.

Model. Let ``x`` be a spectrum's normalised peak areas (each polarity block divided by its total
counts) and ``E`` the endmembers: the mean normalised spectrum of each reference compound.
Non-negative least squares (Lawson & Hanson; ``scipy.optimize.nnls``) gives signal weights ``w``
with ``x ~ E^T w``; ``w_c`` normalised to sum 1 is compound c's share of the *signal*. Residuals
are weighted relative to each peak's mean reference intensity (``weighting="relative"``): the
dominant error of peak areas between spots and samples is multiplicative (10-20 % yield
variation), so every peak counts by its relative misfit and Li+ (90 % of the positive counts)
does not drown the small characteristic ions; ``"poisson"`` (1/sqrt(mean)) suits counting noise
alone.

The signal share is not the molar fraction: compounds differ in ion yield (a relative
sensitivity factor, RSF), and the yield of a compound depends on what surrounds it (the matrix
effect: Zhao et al., ACS AMI 15 (2023) 50469, read 1:1 LiH + Li2O as 0.14 / 0.83). The forward
model used here is the first-order (log-linear) sensitivity model

    w_c  proportional to  f_c * exp(r_c + sum_d A_cd f_d),     A_cc = 0,

where ``r_c`` is the log RSF and ``A_cd`` how compound d in the surroundings changes c's yield.
``r`` and ``A`` are fitted to the calibration mixtures (known ``f``, measured ``w``) by regularised
least squares (ridge towards 0, i.e. towards linear mixing, so pairs never seen together in a
calibration mixture keep ``A_cd = 0`` and compounds never calibrated keep RSF 1). A new
spectrum's composition is the ``f`` on the simplex that reproduces its ``w``, found by the damped
fixed point ``f <- normalise(w * exp(-(r + A f)))``. Each polarity block is unmixed and corrected
on its own (the yields differ by polarity); the estimate is the mean of the blocks' estimates.

Binary calibration mixtures identify only two combinations per pair (``r_c - r_d + A_cd`` and
``A_cd + A_dc``); the ridge picks the smallest parameters among the equivalent ones, so the
recorded RSFs and matrix coefficients describe the fit, they are not unique physical constants;
the estimates are what is validated.

Why not a library: NNLS is scipy's; the matrix-effect correction is specific to this use and a
few lines of numpy/scipy. (``pymcr`` does multivariate curve resolution with free spectra, not
calibration against known mixtures.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls


def _as_array(X: Any, names: Sequence[str] | None) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        if names is not None:
            missing = [n for n in names if n not in X.columns]
            if missing:
                raise ValueError(f"features missing: {missing[:5]}")
            return X[list(names)].to_numpy(float)
        return X.to_numpy(float)
    return np.atleast_2d(np.asarray(X, dtype=float))


def nnls_weights(X: np.ndarray, endmembers: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Non-negative weights of each row of ``X`` on the endmembers (rows of ``endmembers``),
    features divided by ``scale`` first (noise weighting)."""
    E = (endmembers / scale[None, :]).T
    out = np.zeros((X.shape[0], endmembers.shape[0]))
    for i, x in enumerate(X / scale[None, :]):
        out[i] = nnls(E, x)[0]
    return out


def _share(w: np.ndarray) -> np.ndarray:
    s = w.sum(axis=-1, keepdims=True)
    return np.divide(w, s, out=np.full_like(w, 1.0 / w.shape[-1]), where=s > 0)


def forward(f: np.ndarray, r: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Signal shares predicted from molar fractions ``f`` (rows) by the sensitivity model."""
    return _share(f * np.exp(r[None, :] + f @ A.T))


def invert(
    w: np.ndarray, r: np.ndarray, A: np.ndarray, *, iterations: int = 200, damping: float = 0.5
) -> np.ndarray:
    """Molar fractions reproducing signal shares ``w`` (rows), by a damped fixed point."""
    w = _share(np.atleast_2d(w))
    f = _share(w * np.exp(-r[None, :]))
    for _ in range(iterations):
        new = _share(w * np.exp(-(r[None, :] + f @ A.T)))
        if np.max(np.abs(new - f)) < 1e-10:
            f = new
            break
        f = (1 - damping) * f + damping * new
    return f


@dataclass
class _Block:
    columns: list[int]
    endmembers: np.ndarray  # (n_compounds, n_features of the block)
    scale: np.ndarray
    log_rsf: np.ndarray
    matrix: np.ndarray


@dataclass
class Unmixer:
    """A fitted unmixing model (see module docstring). Use :func:`fit_unmixer`.

    Attributes
    ----------
    compounds : endmember names (column order of estimates).
    feature_names : feature columns expected, in order.
    blocks : one fitted block per polarity block.
    record : JSON-able summary: compounds, RSFs and matrix coefficients per block, fit residuals.
    """

    compounds: list[str]
    feature_names: list[str]
    blocks: list[_Block]
    record: dict[str, Any] = field(default_factory=dict)

    def signal_shares(self, features: Any) -> list[np.ndarray]:
        """Per block, each spectrum's NNLS signal shares (rows sum to 1)."""
        X = _as_array(features, self.feature_names)
        return [_share(nnls_weights(X[:, b.columns], b.endmembers, b.scale)) for b in self.blocks]

    def estimate(self, features: Any, *, correct: bool = True) -> pd.DataFrame:
        """Molar fractions (rows sum to 1) of each spectrum; ``correct=False`` gives the plain
        NNLS signal shares (no RSF / matrix correction), averaged over blocks."""
        shares = self.signal_shares(features)
        est = [
            invert(w, b.log_rsf, b.matrix) if correct else w
            for w, b in zip(shares, self.blocks, strict=True)
        ]
        f = _share(np.mean(est, axis=0))
        idx = features.index if isinstance(features, pd.DataFrame) else None
        return pd.DataFrame(f, index=idx, columns=self.compounds)

    def estimate_block(self, features: Any, block: int, *, correct: bool = True) -> pd.DataFrame:
        """Molar fractions from one polarity block only (a spectrum whose partner polarity was
        not measured); ``features`` holds all feature columns, those of other blocks ignored."""
        X = _as_array(features, self.feature_names)
        b = self.blocks[block]
        w = _share(nnls_weights(X[:, b.columns], b.endmembers, b.scale))
        f = _share(invert(w, b.log_rsf, b.matrix) if correct else w)
        idx = features.index if isinstance(features, pd.DataFrame) else None
        return pd.DataFrame(f, index=idx, columns=self.compounds)


def _fit_correction(
    w: np.ndarray, f: np.ndarray, ridge_rsf: float, ridge_matrix: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit log-RSF r and matrix A so that forward(f) matches w (least squares + ridge)."""
    k = f.shape[1]
    off = ~np.eye(k, dtype=bool)
    # a compound absent from every calibration mixture cannot be calibrated: keep r = 0
    seen = (f > 0).any(axis=0)
    pair_seen = (f.T @ f > 0) & off & seen[:, None]

    def unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.zeros(k)
        r[seen] = p[: seen.sum()]
        A = np.zeros((k, k))
        A[pair_seen] = p[seen.sum() :]
        return r, A

    def resid(p: np.ndarray) -> np.ndarray:
        r, A = unpack(p)
        res = (forward(f, r, A) - w).ravel()
        return np.concatenate(
            [res, np.sqrt(ridge_rsf) * p[: seen.sum()], np.sqrt(ridge_matrix) * p[seen.sum() :]]
        )

    n_par = int(seen.sum() + pair_seen.sum())
    if n_par == 0 or len(f) == 0:
        return np.zeros(k), np.zeros((k, k)), 0.0
    sol = least_squares(resid, np.zeros(n_par), method="trf")
    r, A = unpack(sol.x)
    rms = float(np.sqrt(np.mean((forward(f, r, A) - w) ** 2)))
    return r, A, rms


def fit_unmixer(
    reference_features: pd.DataFrame,
    reference_labels: Sequence[str],
    calibration_features: pd.DataFrame | None = None,
    calibration_fractions: pd.DataFrame | np.ndarray | None = None,
    *,
    blocks: Sequence[Sequence[str]] | None = None,
    compounds: Sequence[str] | None = None,
    ridge_rsf: float = 1e-3,
    ridge_matrix: float = 1e-2,
    weighting: str = "relative",
) -> Unmixer:
    """Fit endmembers on the references and the matrix-effect correction on calibrations.

    Parameters
    ----------
    reference_features : normalised peak areas of the pure reference spectra.
    reference_labels : compound of each reference row.
    calibration_features : the same features of calibration mixtures (optional: without them
        the estimate is the plain NNLS signal share).
    calibration_fractions : their known molar fractions, DataFrame with compound columns, or an
        array with columns in ``compounds`` order.
    blocks : feature-name lists unmixed separately (e.g. the positive and the negative columns
        of paired features); default one block of all columns.
    ridge_rsf, ridge_matrix : shrinkage of log-RSFs and matrix coefficients towards 0 (relative
        to the squared error of signal shares).
    weighting : NNLS residual weights: ``"relative"`` (divide by each feature's mean reference
        value), ``"poisson"`` (by its square root) or ``"none"``.
    """
    if weighting not in ("relative", "poisson", "none"):
        raise ValueError(f"weighting must be relative, poisson or none, not {weighting!r}")
    names = [str(c) for c in reference_features.columns]
    labels = np.asarray(reference_labels).astype(str)
    comps = sorted(set(labels)) if compounds is None else [str(c) for c in compounds]
    missing = [c for c in comps if c not in set(labels)]
    if missing:
        raise ValueError(f"no reference spectra for {missing}")
    R = reference_features.to_numpy(float)
    pos = {n: i for i, n in enumerate(names)}
    blk = [list(names)] if not blocks else [[c for c in b if c in pos] for b in blocks]
    if calibration_features is not None and calibration_fractions is not None:
        C = _as_array(calibration_features, names)
        if isinstance(calibration_fractions, pd.DataFrame):
            F = calibration_fractions.reindex(columns=comps).fillna(0.0).to_numpy(float)
        else:
            F = np.asarray(calibration_fractions, dtype=float)
        if F.shape != (C.shape[0], len(comps)):
            raise ValueError(f"calibration fractions must have shape {(C.shape[0], len(comps))}")
        F = _share(F)
    else:
        C = np.zeros((0, len(names)))
        F = np.zeros((0, len(comps)))
    fitted: list[_Block] = []
    rec_blocks = []
    for b in blk:
        cols = [pos[c] for c in b]
        Rb = R[:, cols]
        E = np.vstack([Rb[labels == c].mean(axis=0) for c in comps])
        m = E.mean(axis=0)
        floor = max(float(m[m > 0].min()) if (m > 0).any() else 1.0, 1e-12)
        if weighting == "poisson":
            scale = np.sqrt(np.maximum(m, floor))
        elif weighting == "relative":
            scale = np.maximum(m, floor)
        else:
            scale = np.ones_like(m)
        if len(C):
            w = _share(nnls_weights(C[:, cols], E, scale))
            r, A, rms = _fit_correction(w, F, ridge_rsf, ridge_matrix)
        else:
            r, A, rms = np.zeros(len(comps)), np.zeros((len(comps), len(comps))), float("nan")
        fitted.append(_Block(cols, E, scale, r, A))
        rec_blocks.append(
            {
                "n_features": len(cols),
                "rsf": dict(zip(comps, np.exp(r).round(4).tolist(), strict=True)),
                "matrix": {
                    f"{c}<-{d}": round(float(A[i, j]), 4)
                    for i, c in enumerate(comps)
                    for j, d in enumerate(comps)
                    if A[i, j] != 0
                },
                "calibration_rms_share": rms,
            }
        )
    record = {
        "model": "NNLS on mean reference spectra + log-linear RSF/matrix correction",
        "compounds": comps,
        "n_references": int(len(labels)),
        "n_calibrations": int(len(C)),
        "ridge_rsf": ridge_rsf,
        "ridge_matrix": ridge_matrix,
        "weighting": weighting,
        "blocks": rec_blocks,
    }
    return Unmixer(compounds=comps, feature_names=names, blocks=fitted, record=record)
