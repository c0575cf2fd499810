"""Figures of the spectral models: confusion matrix, 3-PC score plot with mixtures overlaid,
characteristic-ion coefficients (Zhao et al. 2023), and scree / score / loading plots of the
degradation PCA (Hertle et al. 2024).

Every function returns a matplotlib ``Figure`` (Agg backend, selected inside the function so that
importing this module stays cheap); :func:`to_png` renders one to PNG bytes for MLflow artifacts
and the Markdown metadata of Dagster assets. The caller closes figures (``plt.close(fig)``) or
uses :func:`to_png`, which closes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .degradation_pca import PCAReport


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a figure; the figure is closed afterwards."""
    import io

    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def confusion_matrix_figure(confusion: pd.DataFrame, title: str = "Grouped-CV confusion") -> Figure:
    """Heat map of a confusion matrix (rows true, columns predicted), counts annotated."""
    plt = _plt()
    cm = confusion.to_numpy()
    fig, ax = plt.subplots(figsize=(1.1 * cm.shape[1] + 2, 1.0 * cm.shape[0] + 1.5))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(cm.shape[1]), [str(c) for c in confusion.columns], rotation=45, ha="right")
    ax.set_yticks(range(cm.shape[0]), [str(c) for c in confusion.index])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = cm.max() if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                color="white" if cm[i, j] > top / 2 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def pca_scores_figure(
    scores: pd.DataFrame,
    labels: Sequence[Any],
    mixture_scores: pd.DataFrame | None = None,
    mixture_labels: Sequence[Any] | None = None,
    explained: Sequence[float] | None = None,
) -> Figure:
    """PC1-PC2, PC1-PC3 and PC2-PC3 panels: references coloured by compound, mixtures as black
    crosses (annotated with ``mixture_labels`` when given)."""
    plt = _plt()
    pcs = list(scores.columns[:3])
    pairs = [(0, 1), (0, 2), (1, 2)] if len(pcs) >= 3 else [(0, 1)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4))
    axes = np.atleast_1d(axes)
    lab = np.asarray(labels).astype(str)
    cmap = plt.get_cmap("tab10")
    for ax, (a, b) in zip(axes, pairs, strict=True):
        for k, c in enumerate(sorted(set(lab))):
            m = lab == c
            ax.scatter(scores.iloc[m, a], scores.iloc[m, b], s=18, color=cmap(k % 10), label=c)
        if mixture_scores is not None and len(mixture_scores):
            ax.scatter(
                mixture_scores.iloc[:, a],
                mixture_scores.iloc[:, b],
                marker="x",
                color="black",
                s=30,
                label="mixtures",
            )
            if mixture_labels is not None:
                for (_i, row), t in zip(mixture_scores.iterrows(), mixture_labels, strict=False):
                    ax.annotate(str(t), (row.iloc[a], row.iloc[b]), fontsize=6)

        def axis_label(i: int) -> str:
            if explained is not None and i < len(explained):
                return f"{pcs[i]} ({100 * explained[i]:.0f} %)"
            return pcs[i]

        ax.set_xlabel(axis_label(a))
        ax.set_ylabel(axis_label(b))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def characteristic_ions_figure(table: pd.DataFrame) -> Figure:
    """One horizontal bar panel per compound: its ions by logistic-regression coefficient."""
    plt = _plt()
    comps = list(dict.fromkeys(table["compound"]))
    fig, axes = plt.subplots(1, len(comps), figsize=(2.8 * len(comps), 3.2), squeeze=False)
    for ax, c in zip(axes[0], comps, strict=True):
        t = table[table["compound"] == c].sort_values("coefficient")
        ax.barh(t["ion"], t["coefficient"], color="tab:blue")
        ax.set_title(c)
        ax.set_xlabel("coefficient")
    fig.tight_layout()
    return fig


def scree_figure(report: PCAReport) -> Figure:
    """Explained variance per component (bars) and cumulative (line)."""
    plt = _plt()
    ev = np.asarray(report.explained_variance_ratio)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    x = np.arange(1, ev.size + 1)
    ax.bar(x, 100 * ev, color="tab:blue")
    ax.plot(x, 100 * np.cumsum(ev), "o-", color="tab:orange", label="cumulative")
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance (%)")
    ax.set_xticks(x)
    ax.legend()
    fig.tight_layout()
    return fig


def pca_score_plot(report: PCAReport, groups: Sequence[Any] | None = None) -> Figure:
    """PC1 vs PC2 scores of the degradation PCA, coloured by group (e.g. sample condition)."""
    plt = _plt()
    s = report.scores
    fig, ax = plt.subplots(figsize=(4.8, 4))
    if s.shape[1] < 2:
        ax.scatter(s.iloc[:, 0], np.zeros(len(s)))
    elif groups is None:
        ax.scatter(s.iloc[:, 0], s.iloc[:, 1], s=18)
    else:
        g = np.asarray(groups).astype(str)
        for c in sorted(set(g)):
            m = g == c
            ax.scatter(s.iloc[m, 0], s.iloc[m, 1], s=18, label=c)
        ax.legend(fontsize=7)
    ev = report.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f} %)")
    if s.shape[1] > 1:
        ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f} %)")
    fig.tight_layout()
    return fig


def loadings_figure(report: PCAReport, top: int = 10) -> Figure:
    """Per component, the fragments with the largest |loading| (signed bars)."""
    plt = _plt()
    cols = list(report.loadings.columns)
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.6), squeeze=False)
    for ax, c in zip(axes[0], cols, strict=True):
        t = report.top_fragments[report.top_fragments["component"] == c].head(top)
        t = t.iloc[::-1]
        ax.barh(
            t["fragment"],
            t["loading"],
            color=["tab:red" if v < 0 else "tab:blue" for v in t["loading"]],
        )
        ax.set_title(c)
        ax.set_xlabel("loading")
    fig.tight_layout()
    return fig
