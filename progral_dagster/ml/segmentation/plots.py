"""Figures of a segmentation: phase + particle-outline overlay on the total-ion image, particle
size / aspect-ratio histograms, rim-enrichment histogram.

matplotlib is imported inside the functions (it is heavy) and figures are built with the
object API (``matplotlib.figure.Figure``), never pyplot, so nothing touches global state and
the functions are safe in worker processes. Each returns the Figure; ``fig.savefig`` writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .pipeline import SegmentationResult

# colours by phase name (others from the tab10 cycle)
PHASE_COLOURS = {
    "pore": "#1f1f1f",
    "carbon-binder": "#3b75af",
    "NMC": "#d98b2b",
    "graphite": "#7f7f7f",
    "Si": "#c43b3b",
}


def _colour(name: str, i: int) -> str:
    from matplotlib import colormaps

    if name in PHASE_COLOURS:
        return PHASE_COLOURS[name]
    r, g, b, _a = colormaps["tab10"](i % 10)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _grey(image: np.ndarray) -> np.ndarray:
    """Robust 0..1 scaling (1st to 99th percentile)."""
    img = np.asarray(image, np.float32)
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def overlay_figure(
    result: SegmentationResult,
    background: np.ndarray | None = None,
    *,
    alpha: float = 0.35,
    title: str | None = None,
    max_pixels: int = 1024,
) -> Figure:
    """Phases (translucent colours) and particle outlines on the total-ion image.

    ``background`` defaults to ``result.total_image``; images larger than ``max_pixels`` on a
    side are shown subsampled (outlines are computed on the subsampled instances).
    """
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from skimage.segmentation import find_boundaries

    labels = result.labels
    bg = result.total_image if background is None else background
    step = max(1, int(np.ceil(max(labels.shape) / max_pixels)))
    lab = labels[::step, ::step]
    inst = result.instances[::step, ::step]
    grey = _grey(bg[::step, ::step]) if bg is not None else np.full(lab.shape, 0.5, np.float32)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    handles = []
    for i, (value, name) in enumerate(sorted(result.phases.items())):
        col = np.asarray(to_rgb(_colour(name, i)), np.float32)
        sel = lab == value
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * col
        handles.append(Patch(facecolor=_colour(name, i), label=name))
    rgb[find_boundaries(inst, mode="inner")] = (1.0, 1.0, 0.2)
    ny, nx = lab.shape
    fig = Figure(figsize=(6.4, 6.4 * ny / nx + 0.6), layout="constrained")
    ax = fig.add_subplot()
    px = result.pixel_size_um
    extent = (0, nx * step * px, ny * step * px, 0) if px else None
    ax.imshow(rgb, extent=extent, interpolation="nearest")
    ax.set_xlabel("x (um)" if px else "x (px)")
    ax.set_ylabel("y (um)" if px else "y (px)")
    handles.append(Patch(facecolor=(1.0, 1.0, 0.2), label="particle outline"))
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_title(title or f"{len(result.particles)} particles")
    return fig


def particle_histograms(particles: pd.DataFrame, *, bins: int = 20) -> Figure:
    """Equivalent diameter (um, or px without a pixel size) and aspect-ratio histograms per
    particle phase."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_d, ax_a = fig.subplots(1, 2)
    use_um = (
        "equivalent_diameter_um" in particles and particles["equivalent_diameter_um"].notna().any()
    )
    dcol = "equivalent_diameter_um" if use_um else "equivalent_diameter_px"
    finite_d = particles[dcol].replace([np.inf, -np.inf], np.nan).dropna()
    finite_a = particles["aspect_ratio"].replace([np.inf, -np.inf], np.nan).dropna()
    # shared bin edges, so the phases compare bar for bar
    d_edges = np.histogram_bin_edges(finite_d, bins=bins) if len(finite_d) else bins
    a_edges = np.histogram_bin_edges(finite_a, bins=bins) if len(finite_a) else bins
    for i, (phase, grp) in enumerate(particles.groupby("phase", sort=True)):
        c = _colour(str(phase), i)
        d = grp[dcol].replace([np.inf, -np.inf], np.nan).dropna()
        a = grp["aspect_ratio"].replace([np.inf, -np.inf], np.nan).dropna()
        ax_d.hist(d, bins=d_edges, alpha=0.6, color=c, label=f"{phase} (n={len(grp)})")
        ax_a.hist(a, bins=a_edges, alpha=0.6, color=c, label=str(phase))
        if len(d):
            ax_d.axvline(float(d.median()), color=c, ls="--", lw=1)
    ax_d.set_xlabel("equivalent diameter (um)" if use_um else "equivalent diameter (px)")
    ax_a.set_xlabel("aspect ratio (major / minor axis)")
    for ax in (ax_d, ax_a):
        ax.set_ylabel("particles")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return fig


def rim_histogram(particles: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Histogram of per-particle CEI rim enrichment (rim / core), threshold marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 3.6), layout="constrained")
    ax = fig.add_subplot()
    v = particles.get("rim_enrichment", pd.Series(dtype=float)).dropna()
    if len(v):
        ax.hist(v, bins=25, color="#6a3d9a", alpha=0.8)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.legend(fontsize="small")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("CEI rim enrichment (rim / core)")
    ax.set_ylabel("particles")
    return fig
