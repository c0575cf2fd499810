"""Segmented microstructures: TIFF label images (2D) and volumes (3D multipage TIFF)
(technique ``microstructure``, format ``tiff-labels``).

A label TIFF holds one integer phase label per pixel/voxel (e.g. 0 = pore, 1 = active
material, 2 = carbon-binder domain; or grey levels 0/85/170 standing for phases). Pages of a
multipage file (or an ImageJ hyperstack) are the z slices.

Accepted: one image series of integer (or boolean) samples, one sample per pixel, 2D (y, x) or
3D (z, y, x), at most 255 distinct values. Refused with a ReaderError: floating-point data
(a grey-scale or probability image, not labels), more than 255 distinct values, colour (RGB)
images, more than 3 dimensions, and files whose stated image size exceeds what the file can
hold (a corrupt header must not allocate gigabytes).

Voxel size (``voxel_size_um``): from ImageJ metadata where a length unit is given
(``unit`` = um/micron/nm/mm, pixel size 1/XResolution, z from ``spacing``), else from
``ResolutionUnit`` = centimetre; an inch resolution (72 or 96 dpi written by image programs)
is a print setting, not a physical scale, and gives None. Anisotropic voxels keep the x size
in ``voxel_size_um`` and all three in metadata ``voxel_size_zyx_um``.

Table ``microstructures``: one row: ndim, shape ((z, y, x) or (y, x)), voxel_size_um, labels
(sorted distinct values) and fractions (voxel fraction of each label, same order).
``Measurement.arrays["labels"]``: the label array itself (numpy, original integer dtype).

Why tifffile: it is the maintained reference TIFF reader (BSD), handles multipage, BigTIFF,
ImageJ hyperstacks and the usual compressions; this module adds only the label checks, the
voxel size and the size guard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from .base import Measurement, ReaderError, guarded

FORMATS = ("tiff-labels",)
READER_VERSION = "1"
MAX_LABELS = 255
_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_UNIT_UM = {"um": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}
# Compressed data can expand; no real label image compresses better than this.
_MAX_EXPANSION = 4096
_MAX_BYTES = 8 << 30


def sniff(path: Path, head: bytes) -> str | None:
    return "tiff-labels" if head[:4] in _MAGIC else None


def _unit_scale(unit: str) -> float | None:
    u = unit.strip().replace("\u00b5", "u").replace("\u03bc", "u").replace("\\u00B5", "u").lower()
    return _UNIT_UM.get(u)


def _voxel_size(tif, page, ndim: int) -> tuple[float, ...] | None:
    """(z, y, x) or (y, x) voxel size in um, or None when the file gives no physical scale."""
    ij = tif.imagej_metadata or {}
    tags = page.tags

    def res(name: str) -> float | None:
        t = tags.get(name)
        if t is None:
            return None
        v = t.value
        try:
            num, den = (v if isinstance(v, tuple) else (v, 1))[:2]
            r = num / den
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return r if r > 0 and np.isfinite(r) else None

    xres, yres = res("XResolution"), res("YResolution")
    scale = _unit_scale(str(ij.get("unit", ""))) if ij.get("unit") else None
    if scale is None:
        ru = tags.get("ResolutionUnit")
        if ru is not None and int(ru.value) == 3:  # centimetre
            scale = 1e4
    if scale is None or xres is None:
        return None
    px = scale / xres
    py = scale / yres if yres else px
    if ndim == 2:
        return (py, px)
    try:
        pz = float(ij["spacing"]) * scale if "spacing" in ij else px
    except (TypeError, ValueError):
        pz = px
    return (pz, py, px)


def _fractions(arr: np.ndarray) -> tuple[list[int], list[float]]:
    """Sorted distinct labels and their voxel fractions.

    Label images hold a few labels: find candidates on a subsample and count each with a
    vectorised comparison (several times faster than ``np.bincount``, which first widens
    every voxel to int64); if the candidates miss a label, count everything.
    """
    flat = arr.reshape(-1)
    n = flat.size
    if n == 0:
        return [], []
    cand = np.unique(flat[:: max(1, n // 65536)])
    if len(cand) <= 16:
        counts = [int(np.count_nonzero(flat == v)) for v in cand]
        if sum(counts) == n:
            return [int(v) for v in cand], [c / n for c in counts]
    vals, counts = np.unique(flat, return_counts=True)
    return [int(v) for v in vals], (counts / n).tolist()


@guarded
def read(paths) -> Measurement:
    import tifffile  # imported here: loading the code location stays fast

    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    size = path.stat().st_size
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ReaderError(path, "TIFF holds no image")
        if len(tif.series) > 1:
            shapes = {s.shape for s in tif.series}
            if len(shapes) > 1:
                raise ReaderError(
                    path,
                    f"TIFF holds {len(tif.series)} image series of different shapes "
                    f"{sorted(shapes)}: not one label image",
                )
        series = tif.series[0]
        page = series.pages[0] if series.pages else tif.pages[0]
        dtype = np.dtype(series.dtype)
        if dtype.kind == "f":
            raise ReaderError(
                path,
                f"floating-point samples ({dtype}): a grey-scale or probability image, not labels",
            )
        if dtype.kind not in "uib":
            raise ReaderError(path, f"samples of type {dtype} are not integer labels")
        if getattr(page, "samplesperpixel", 1) > 1:
            raise ReaderError(
                path, f"{page.samplesperpixel} samples per pixel (colour image), not labels"
            )
        shape = tuple(int(s) for s in series.shape if s != 1) or (1, 1)
        if len(shape) not in (2, 3):
            raise ReaderError(
                path, f"image of shape {series.shape}: expected 2D (y, x) or 3D (z, y, x)"
            )
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        compressed = int(getattr(page, "compression", 1)) != 1
        limit = min(size * (_MAX_EXPANSION if compressed else 1) + 4096, _MAX_BYTES)
        if nbytes > limit:
            raise ReaderError(
                path,
                f"header states {nbytes} bytes of image data, more than this {size}-byte file can hold",
            )
        arr = series.asarray().reshape(shape)
        voxel = _voxel_size(tif, page, len(shape))
    labels, fractions = _fractions(arr)
    if len(labels) > MAX_LABELS:
        raise ReaderError(
            path,
            f"{len(labels)} distinct values: a grey-scale image, not labels (at most {MAX_LABELS})",
        )
    meta: dict = {
        "dtype": str(arr.dtype),
        "n_labels": len(labels),
        "voxel_size_zyx_um": list(voxel) if voxel else None,
    }
    table = pa.table(
        {
            "ndim": pa.array([len(shape)], pa.int8()),
            "shape": pa.array([list(shape)], pa.list_(pa.int64())),
            "voxel_size_um": pa.array([voxel[-1] if voxel else None], pa.float64()),
            "labels": pa.array([labels], pa.list_(pa.int64())),
            "fractions": pa.array([fractions], pa.list_(pa.float64())),
        }
    )
    return Measurement(
        technique="microstructure",
        format="tiff-labels",
        reader="tiff_labels",
        reader_version=READER_VERSION,
        instrument=None,
        metadata=meta,
        tables={"microstructures": table},
        arrays={"labels": arr},
        paths=[str(path)],
    )
