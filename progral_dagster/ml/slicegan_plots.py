"""Plots of SliceGAN training (matplotlib; kept out of ``ml/slicegan``, which needs torch and
numpy only): the WGAN-GP losses over iterations, and generated slices beside the real image."""

from __future__ import annotations

import numpy as np
import pandas as pd


def loss_figure(history: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    it = history["iteration"]
    for k, lab in (("critic_loss", "critic loss"), ("generator_loss", "generator loss"),
                   ("wasserstein", "Wasserstein estimate")):
        if k in history:
            ax.plot(it, history[k].rolling(10, min_periods=1).mean(), label=lab, lw=1)
    ax.set_xlabel("generator iteration")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def slices_figure(generated: np.ndarray, real: np.ndarray):
    """Three orthogonal central slices of the generated volume beside the real image (or the
    central slice of a real volume), on one colour scale of label values."""
    from matplotlib.figure import Figure

    labels = np.unique(np.concatenate([np.unique(generated), np.unique(real)]))
    vmin, vmax = float(labels.min()), float(labels.max())
    r2d = real if real.ndim == 2 else real[real.shape[0] // 2]
    c = [s // 2 for s in generated.shape]
    panels = [("real", r2d), ("generated z", generated[c[0]]), ("generated y", generated[:, c[1]]),
              ("generated x", generated[:, :, c[2]])]
    fig = Figure(figsize=(10, 2.8))
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.imshow(img, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
