"""Writer for IONTOF SurfaceLab ASCII image exports (one text file per ion, ``total`` among them).

Layout (SCIENCE.md, "IONTOF image export"; the same header the ``iontof_image`` reader expects)::

    # IONTOF SurfaceLab image export
    # Measurement: <measurement name>
    # Ion: <ion name>
    # Polarity: negative
    # Field of view: 100.0 x 100.0 um
    # Pixels: 256 x 256
    # Scans: 50
    x y intensity
    0 0 12
    ...

One space-separated ``x y intensity`` row per pixel, x (column) varying fastest, x and y integer
pixel indices from 0; files named ``<measurement> (<n>) - <ion>.txt`` with n the 1-based index
of the ion in the export. Integer counts are written as integers, anything else with 6
significant digits. Line ends are LF; output is byte-identical for identical input.

No library writes this format (it is SurfaceLab's own export), so rows are formatted here; the
x/y prefix of every row is built once per image shape and reused for every ion.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

_FORBIDDEN = set('/\\:*?"<>|')


def export_file_name(measurement_name: str, index: int, ion: str) -> str:
    """``<measurement> (<n>) - <ion>.txt`` (n 1-based)."""
    return f"{measurement_name} ({index}) - {ion}.txt"


def _row_prefixes(ny: int, nx: int) -> list[str]:
    xs = np.tile(np.arange(nx), ny)
    ys = np.repeat(np.arange(ny), nx)
    return [f"{x} {y} " for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]


def _format_values(img: np.ndarray) -> list[str]:
    flat = np.asarray(img).ravel()
    if np.issubdtype(flat.dtype, np.integer):
        return [str(v) for v in flat.tolist()]
    if np.all(np.isfinite(flat)) and np.all(flat == np.round(flat)):
        return [str(v) for v in flat.astype(np.int64).tolist()]
    return [f"{v:.6g}" for v in flat.tolist()]


def write_image_export(
    folder: Path,
    measurement_name: str,
    ion_images: Mapping[str, np.ndarray],
    *,
    fov_um: float | tuple[float, float] = 100.0,
    polarity: str = "negative",
    scans: int = 50,
) -> list[Path]:
    """Write one IONTOF image export file per ion into ``folder``.

    Parameters
    ----------
    folder : output folder (created if missing)
    measurement_name : the measurement's name (file-name prefix and ``# Measurement:`` line)
    ion_images : ion name -> 2D (ny, nx) image of counts, written in this order; a ``total``
        image is added (sum of the ions) when the mapping has none
    fov_um : field of view along x (square pixels: y follows from the shape), or (x, y)
    polarity : ``negative`` or ``positive``
    scans : number of scans, written to the header

    Returns
    -------
    The written paths, in ion order.
    """
    if not ion_images:
        raise ValueError("no ion images to write")
    if any(c in _FORBIDDEN for c in measurement_name):
        raise ValueError(f"measurement name {measurement_name!r} is not a valid file name")
    images = dict(ion_images)
    shapes = {np.shape(v) for v in images.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"ion images must share one 2D shape, got {sorted(shapes)}")
    ny, nx = next(iter(shapes))
    if "total" not in images:
        images["total"] = np.sum([np.asarray(v) for v in images.values()], axis=0)
    if isinstance(fov_um, tuple):
        fov_x, fov_y = (float(v) for v in fov_um)
    else:
        fov_x = float(fov_um)
        fov_y = fov_x * ny / nx
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefixes = _row_prefixes(ny, nx)
    paths = []
    for n, (ion, img) in enumerate(images.items(), start=1):
        if any(c in _FORBIDDEN for c in ion):
            raise ValueError(f"ion name {ion!r} cannot be part of a file name")
        header = (
            "# IONTOF SurfaceLab image export\n"
            f"# Measurement: {measurement_name}\n"
            f"# Ion: {ion}\n"
            f"# Polarity: {polarity}\n"
            f"# Field of view: {fov_x:.1f} x {fov_y:.1f} um\n"
            f"# Pixels: {nx} x {ny}\n"
            f"# Scans: {int(scans)}\n"
            "x y intensity\n"
        )
        body = "\n".join(p + v for p, v in zip(prefixes, _format_values(img), strict=True))
        path = folder / export_file_name(measurement_name, n, ion)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(header)
            fh.write(body)
            fh.write("\n")
        paths.append(path)
    return paths
