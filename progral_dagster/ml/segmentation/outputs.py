"""Files of one segmented measurement, as the ``progral segment`` command writes them.

``<name>.tif`` (uint8 label image; resolution tags in pixels per centimetre when the pixel size
is known, which the ``tiff_labels`` reader turns back into a voxel size), ``<name>.phases.json``
(label value -> phase name), ``<name>.particles.csv`` (one row per particle),
``<name>.overlay.png`` (phases and particle outlines on the total-ion image). tifffile writes
the TIFF (maintained, BSD); JSON and CSV are written with the standard library and pandas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .pipeline import SegmentationResult


def write_label_tiff(
    path: Path,
    labels: np.ndarray,
    pixel_size_um: float | None = None,
    description: str | None = None,
) -> Path:
    """uint8 label TIFF (deterministic bytes: no date or software tag)."""
    import tifffile

    kw: dict[str, Any] = {}
    if pixel_size_um:
        per_cm = 1e4 / float(pixel_size_um)
        kw["resolution"] = (per_cm, per_cm)
        kw["resolutionunit"] = "CENTIMETER"
    if description is not None:
        kw["description"] = description
    tifffile.imwrite(path, np.asarray(labels, np.uint8), metadata=None, software=None, **kw)
    return Path(path)


def summary_metrics(result: SegmentationResult) -> dict[str, float]:
    """Flat numeric summary (phase fractions, particle counts and medians per phase, interface
    lengths, rim enrichment), e.g. for MLflow metrics or Dagster metadata."""
    out: dict[str, float] = {}
    for phase, f in result.phase_fractions.items():
        out[f"fraction_{phase}"] = float(f)
    parts = result.particles
    for phase, grp in parts.groupby("phase", sort=True):
        out[f"n_particles_{phase}"] = float(len(grp))
        for col in ("equivalent_diameter_um", "equivalent_diameter_px", "aspect_ratio", "solidity"):
            v = grp[col].replace([np.inf, -np.inf], np.nan).dropna()
            if len(v):
                out[f"median_{col}_{phase}"] = float(v.median())
    for pair, length in result.interface_lengths.items():
        out[f"interface_{pair}"] = float(length)
    rim = result.rim_enrichment
    if rim.get("median") is not None:
        out["rim_enrichment_median"] = float(rim["median"])
        out["rim_enriched_fraction"] = float(rim["fraction_enriched"])
    return out


def write_segmentation_outputs(
    result: SegmentationResult, out_dir: Path, name: str, *, overlay: bool = True
) -> dict[str, Path]:
    """Write ``<name>.tif``, ``<name>.phases.json``, ``<name>.particles.csv`` and (unless
    ``overlay`` is False) ``<name>.overlay.png`` into ``out_dir``; returns kind -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    phases = {str(k): v for k, v in sorted(result.phases.items())}
    paths = {
        "labels": write_label_tiff(
            out_dir / f"{name}.tif",
            result.labels,
            result.pixel_size_um,
            description=json.dumps({"labels": phases}, sort_keys=True),
        ),
        "phases": out_dir / f"{name}.phases.json",
        "particles": out_dir / f"{name}.particles.csv",
    }
    paths["phases"].write_text(json.dumps(phases, indent=1) + "\n", encoding="utf-8")
    result.particles.to_csv(
        paths["particles"], index=False, float_format="%.6g", lineterminator="\n"
    )
    if overlay:
        from .plots import overlay_figure

        fig = overlay_figure(result, title=name)
        paths["overlay"] = out_dir / f"{name}.overlay.png"
        fig.savefig(paths["overlay"], dpi=100)
    return paths
