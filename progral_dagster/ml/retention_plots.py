"""Figures of a capacity-retention report: parity plot, permutation importances, comparison of
every candidate against the baselines.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot (no global state, no
GUI backend), so assets can save it as an MLflow artifact or embed it as a PNG
(:func:`figure_png`). matplotlib is imported inside the functions (heavy import).
"""

from __future__ import annotations

import io

import numpy as np

from .retention import BASELINES, RetentionReport


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def parity_plot(report: RetentionReport, candidate: str | None = None):
    """Out-of-fold predicted vs measured retention of a candidate (default the champion), one
    colour per outer fold, with the 1:1 line and the metrics in the title."""
    name = candidate or report.champion
    y = report.y
    pred = report.oof_predictions[name].to_numpy(float)
    fig = _figure(4.8, 4.6)
    ax = fig.add_subplot()
    for k, (_tr, te) in enumerate(report.folds):
        ax.scatter(y[te], pred[te], s=18, alpha=0.8, label=f"fold {k + 1}")
    lo = float(np.nanmin([y.min(), np.nanmin(pred)])) - 1
    hi = float(np.nanmax([y.max(), np.nanmax(pred)])) + 1
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("measured retention (%)")
    ax.set_ylabel("predicted retention, out of fold (%)")
    m = report.metrics.set_index("candidate").loc[name]
    ax.set_title(f"{name}: R$^2$ {m['r2']:.3f}, RMSE {m['rmse']:.2f} %", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def importance_plot(report: RetentionReport, top: int = 15):
    """Permutation importances of the champion (increase of RMSE when a feature is shuffled),
    mean +- sd over the outer folds."""
    imp = report.importances.head(top).iloc[::-1]
    fig = _figure(5.5, 0.3 * len(imp) + 1.2)
    ax = fig.add_subplot()
    ax.barh(imp["feature"], imp["mean"], xerr=imp["std"], color="tab:blue", alpha=0.8)
    ax.set_xlabel("RMSE increase when permuted (%)")
    ax.set_title(f"{report.variant}: {report.champion}", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    return fig


def comparison_plot(report: RetentionReport):
    """Grouped-CV RMSE with 95 % bootstrap intervals of every candidate; baselines in grey,
    the champion highlighted."""
    t = report.comparison_table()
    fig = _figure(5.5, 0.32 * len(t) + 1.2)
    ax = fig.add_subplot()
    colors = [
        "0.6" if c in BASELINES else ("tab:orange" if c == report.champion else "tab:blue")
        for c in t["candidate"]
    ]
    err = np.vstack([t["rmse"] - t["rmse_lo"], t["rmse_hi"] - t["rmse"]])
    ax.barh(t["candidate"][::-1], t["rmse"][::-1], xerr=err[:, ::-1], color=colors[::-1])
    ax.set_xlabel("grouped-CV RMSE (%)")
    verdict = "beats" if report.beats_linear_baseline else "does not beat"
    ax.set_title(f"champion {report.champion} {verdict} the linear baseline", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    return fig


def figure_png(fig, dpi: int = 90) -> bytes:
    """PNG bytes of a figure (for MLflow artifacts or a data: URI in asset metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
