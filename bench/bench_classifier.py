"""Training and prediction throughput (spectra/s) of the Li-compound classifier pipelines, and of
peak integration, at 60, 6,000 and 60,000 spectra.

    .venv/bin/python bench/bench_classifier.py [--quick] [--json OUT]

Synthetic feature matrices (32 TIC-normalised peak areas of paired polarities, 5 compounds) are
enough for throughput. Reference measured in the same run: scikit-learn's stock
``make_pipeline(StandardScaler(), LogisticRegression())`` on the same matrix; the ratios (time
of ours / time of the reference) show what the project's normalisation steps (and, for the
forest, the model) cost beside it. Peak integration is
compared with a per-window ``np.trapezoid`` loop over the same spectra (what the vectorised
kernel replaces).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from progral_dagster.ml.classification import make_candidate  # noqa: E402
from progral_dagster.processing.peaks import default_intervals, integrate_windows  # noqa: E402

SIZES = (60, 6_000, 60_000)
N_FEATURES = 32
N_CLASSES = 5


def features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pure = rng.uniform(0, 1, (N_CLASSES, N_FEATURES)) ** 3 + 0.01
    pure[:, 0] += 5.0  # a dominant shared ion, like Li+
    y = rng.integers(0, N_CLASSES, n)
    X = pure[y] * rng.lognormal(0, 0.15, (n, N_FEATURES))
    X /= X.sum(axis=1, keepdims=True)
    return X, np.array([f"c{k}" for k in y])


def timed(fn, repeat: int = 1) -> float:
    """Best of ``repeat`` wall times (the machine is shared; the minimum is the least noisy)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_models(sizes: tuple[int, ...], forest_max: int) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    blocks = [list(range(16)), list(range(16, 32))]
    rows = []
    for n in sizes:
        X, y = features(n)
        rep = 5 if n <= 6_000 else 1
        ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        ref_fit = timed(lambda: ref.fit(X, y), rep)  # noqa: B023
        ref_pred = timed(lambda: ref.predict_proba(X), rep)  # noqa: B023
        names = ["minmax_logreg", "sqrt_logreg_mix", "log_logreg_mix"]
        if n <= forest_max:
            names.append("random_forest_mix")
        for name in names:
            pipe = make_candidate(name, blocks=blocks)
            fit = timed(lambda: pipe.fit(X, y), rep)  # noqa: B023
            pred = timed(lambda: pipe.predict_proba(X), rep)  # noqa: B023
            rows.append(
                {
                    "n_spectra": n,
                    "pipeline": name,
                    "train_spectra_per_s": n / fit,
                    "predict_spectra_per_s": n / pred,
                    "train_time_vs_reference": fit / ref_fit,
                    "predict_time_vs_reference": pred / ref_pred,
                }
            )
            r = rows[-1]
            print(
                f"{n:>7,} {name:<18} train {r['train_spectra_per_s']:>12,.0f}/s "
                f"({r['train_time_vs_reference']:.2f}x reference)  predict "
                f"{r['predict_spectra_per_s']:>12,.0f}/s ({r['predict_time_vs_reference']:.2f}x)"
            )
    return rows


def bench_integration(n: int, channels: int = 800) -> dict:
    rng = np.random.default_rng(1)
    mz = np.linspace(1.0, 200.0, channels)
    Y = rng.poisson(5.0, (n, channels)).astype(float)
    iv = default_intervals()
    lo, hi = iv["lower_mass_u"].to_numpy(), iv["upper_mass_u"].to_numpy()
    t_vec = timed(lambda: integrate_windows(mz, Y, lo, hi, variable="mz"))
    m = min(n, 2_000)

    def loop() -> None:
        for s in range(m):
            for a, b in zip(lo, hi, strict=True):
                sel = (mz >= a) & (mz <= b)
                np.trapezoid(Y[s, sel], mz[sel])

    t_loop = timed(loop) * n / m
    out = {
        "n_spectra": n,
        "channels": channels,
        "windows": len(lo),
        "vectorised_spectra_per_s": n / t_vec,
        "loop_spectra_per_s": n / t_loop,
        "speedup": t_loop / t_vec,
    }
    print(
        f"peak integration, {n:,} spectra x {channels:,} channels x {len(lo)} windows: "
        f"{out['vectorised_spectra_per_s']:,.0f} spectra/s vectorised, "
        f"{out['loop_spectra_per_s']:,.0f}/s per-window loop ({out['speedup']:.0f}x)"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="60 and 6,000 spectra only")
    ap.add_argument("--json", type=Path, help="write results here")
    a = ap.parse_args()
    sizes = SIZES[:2] if a.quick else SIZES
    res = {
        "models": bench_models(sizes, forest_max=6_000),
        # 100,000 spectra x 800 channels = 640 MB of float64 counts
        "integration": bench_integration(10_000 if a.quick else 100_000),
    }
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
