"""IONTOF SurfaceLab ASCII image exports, one file per ion, read as one multi-channel
measurement (technique ``tof-sims``, format ``iontof-image``).

No sample file is available; the layout follows the description of the lab's own published
parser (SCIENCE.md) and the header the project's simulator writes:

- files named ``<measurement> (<n>) - <ion>.txt``, a ``total`` image beside the ion images
  (grouped by :mod:`.grouping`: same folder, same measurement name);
- header lines starting with ``#`` (``# Key: value``), for example::

      # IONTOF SurfaceLab image export
      # Measurement: NMC_cross_section
      # Ion: NiO-
      # Polarity: negative
      # Field of view: 100.0 x 100.0 um        (or "# Field of View (µm): 100", mm, nm)
      # Pixels: 256 x 256                      (3D: 256 x 256 x 10)
      # Scans: 50

- then one column-title line (``x y intensity``; 3D ``x y z value``), skipped (a line of
  numbers in its place is read as data);
- then one whitespace-separated row per pixel, x (column) varying fastest, x, y (and z)
  integer pixel indices from 0; intensity in counts.

UTF-8 and Latin-1 files are accepted (the micro sign differs). The grid of a file is its
``Pixels`` header, else max index + 1; every pixel must occur exactly once.

``read(paths)`` takes every member file of one measurement. All members must belong to the same
measurement and have the same grid; an ion may occur once. A member file that cannot be read
fails the whole group with a ReaderError naming it.

Table ``tof_sims_images``: ion (as in the header, else from the file name), x (column), y (row),
z (layer, null for 2D), intensity (counts); ions in image-number order, pixels in file order.

Metadata: ``measurement_name``, ``ions`` (in table order), ``image_numbers``, ``has_total``,
``shape`` ((y, x) or (z, y, x)), ``field_of_view_um`` ((x, y), or None), ``pixel_size_um``
(x pixel size; ``pixel_size_y_um`` too when pixels are not square), ``polarity``, ``scans``,
``total_counts`` per ion, and every other header line per file under ``headers``;
``decimal_separator``: ``,`` when the pixel rows write decimal commas (``0 0 12,5``, SurfaceLab
on a German-locale Windows; decided per file from the first pixel rows; a file of integer counts
decides nothing and is read as before), else ``.``. A field of view written with a decimal
comma (``100,0 x 100,0 um``) is read too.

Why not a library: pySPM reads the binary .ita files, not these exports, and no library reads
them; the body is parsed with ``pyarrow.csv`` (space-delimited), falling back to a plain
whitespace split for irregular spacing.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .base import Measurement, ReaderError, as_paths, guarded
from .grouping import member_parts
from .iontof_depth_profile import decimal_separator, first_rows

FORMATS = ("iontof-image",)
READER_VERSION = "1"
TABLE = "tof_sims_images"
_MAX_HEADER_LINES = 200
_NON_SPACE = re.compile(rb"\S")
_NUM_ROW = re.compile(rb"^\s*-?\d+\s+-?\d+\s+(-?\d+\s+)?[-+0-9.,eEinfaINFA]+\s*$")
_UNIT_UM = {"um": 1.0, "micron": 1.0, "microns": 1.0, "mm": 1000.0, "nm": 1e-3}
_FOV = re.compile(r"^\s*([0-9.eE+-]+)\s*(?:[x×*]\s*([0-9.eE+-]+))?\s*([a-z]+)?\s*$", re.I)


def sniff(path: Path, head: bytes) -> str | None:
    lines = head.split(b"\n", 60)[:60]
    i = 0
    hdr: list[bytes] = []
    while i < len(lines) and lines[i].startswith(b"#"):
        hdr.append(lines[i].lower())
        i += 1
    if not hdr or i >= len(lines):
        return None
    text = b"".join(hdr)
    hinted = (
        b"image" in hdr[0]
        or (b"# ion" in text and (b"pixels" in text or b"field of view" in text))
        or member_parts(path.name) is not None
    )
    if not hinted:
        return None
    rows = [ln.rstrip(b"\r") for ln in lines[i : i + 4] if ln.strip()]
    if not rows:
        return None
    if not _NUM_ROW.match(rows[0]):  # the column-title line
        rows = rows[1:]
    rows = rows[:2]
    if rows and all(b"\t" not in r and _NUM_ROW.match(r) for r in rows):
        return "iontof-image"
    return None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_fov(key: str, value: str) -> tuple[float, float] | None:
    """Field of view (x, y) in um from ``100.0 x 100.0 um`` or key ``Field of View (mm)``."""
    value, key = (t.replace("\u00b5", "u").replace("\u03bc", "u") for t in (value, key))
    if "." not in value:  # decimal comma (German-locale SurfaceLab)
        value = value.replace(",", ".")
    m = _FOV.match(value)
    if not m:
        return None
    unit = m.group(3)
    if unit is None:
        km = re.search(r"\(\s*([a-z]+)\s*\)", key, re.I)
        unit = km.group(1) if km else "um"
    scale = _UNIT_UM.get(unit.lower())
    if scale is None:
        return None
    try:
        fx = float(m.group(1)) * scale
        fy = float(m.group(2)) * scale if m.group(2) else fx
    except ValueError:
        return None
    if not (fx > 0 and fy > 0 and np.isfinite(fx) and np.isfinite(fy)):
        return None
    return fx, fy


def _parse_file(path: Path) -> dict:
    """Header and pixel columns of one member file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReaderError(path, "member file of the image group is missing") from None
    header: dict[str, str] = {}
    first_line = None
    pos = 0
    nline = 0
    while pos < len(data) and data[pos : pos + 1] == b"#":
        nline += 1
        if nline > _MAX_HEADER_LINES:
            raise ReaderError(path, f"more than {_MAX_HEADER_LINES} header lines")
        end = data.find(b"\n", pos)
        if end < 0:
            raise ReaderError(path, "file ends inside the header", f"line {nline}")
        line = _decode(data[pos:end]).strip().lstrip("#").strip()
        pos = end + 1
        if first_line is None:
            first_line = line
        key, sep, value = line.partition(":")
        if sep:
            header[key.strip()] = value.strip()
    # The column-title line, unless it already holds numbers.
    end = data.find(b"\n", pos)
    title_line = data[pos : end if end >= 0 else len(data)].rstrip(b"\r")
    ncol_title = None
    if not _NUM_ROW.match(title_line):
        ncol_title = len(title_line.split()) if title_line.strip() else None
        pos = end + 1 if end >= 0 else len(data)
        nline += 1
    body = data[pos:]
    m = _NON_SPACE.search(body)
    if m is None:
        raise ReaderError(path, "no pixel rows after the header", f"line {nline + 1}")
    end = body.find(b"\n", m.start())
    first = body[m.start() : end if end >= 0 else len(body)].split()
    ncol = len(first)
    if ncol not in (3, 4):
        raise ReaderError(
            path,
            f"pixel rows must hold 'x y intensity' or 'x y z value', found {ncol} values",
            f"line {nline + 1}",
        )
    if ncol_title in (3, 4) and ncol_title != ncol:
        raise ReaderError(path, f"column titles name {ncol_title} columns, rows hold {ncol}")
    decimal = decimal_separator(f for r in first_rows(body) for f in r.split())
    idx, values = _parse_numbers(path, body, ncol, nline, decimal or ".")
    lk = {k.lower(): k for k in header}
    pixels = None
    if "pixels" in lk:
        nums = re.findall(r"\d+", header[lk["pixels"]])
        if len(nums) not in (2, 3):
            raise ReaderError(path, f"cannot read the pixel count {header[lk['pixels']]!r}")
        pixels = tuple(int(n) for n in nums)
    fov = None
    for low, orig in lk.items():
        if low.startswith("field of view"):
            fov = _parse_fov(orig, header[orig])
            if fov is None:
                raise ReaderError(path, f"cannot read the field of view {header[orig]!r}")
    return {
        "path": path,
        "header": header,
        "first_line": first_line,
        "idx": idx,
        "values": values,
        "ncol": ncol,
        "pixels": pixels,
        "fov": fov,
        "decimal": decimal,
        "ion": header.get(lk.get("ion", ""), None),
        "measurement": header.get(lk.get("measurement", ""), None),
        "polarity": header.get(lk.get("polarity", ""), None),
        "scans": header.get(lk.get("scans", ""), None),
    }


def _parse_numbers(
    path: Path, body: bytes, ncol: int, nline: int, decimal: str = "."
) -> tuple[list[np.ndarray], np.ndarray]:
    """Pixel index columns (x, y[, z]) as int32 and the values as float64 (``decimal``: the
    decimal separator of the values)."""
    names = [f"c{i}" for i in range(ncol)]
    types = {n: pa.int32() for n in names[:-1]} | {names[-1]: pa.float64()}
    try:
        t = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=len(body) > 1 << 18),
            parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[""], decimal_point=decimal
            ),
        )
        if not any(t.column(i).null_count for i in range(ncol)):
            cols = [t.column(i).to_numpy() for i in range(ncol)]
            return cols[:-1], cols[-1]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # Irregular whitespace or fractional indices: split on any whitespace, row by row, so the
    # error can name the line.
    rows = body.split(b"\n")
    out = np.empty((len(rows), ncol), dtype=np.float64)
    n = 0
    for i, row in enumerate(rows):
        f = row.split()
        if not f:
            continue
        if len(f) != ncol:
            raise ReaderError(
                path, f"pixel row holds {len(f)} values, expected {ncol}", f"line {nline + i + 1}"
            )
        try:
            out[n] = [float(v.replace(b",", b".") if decimal == "," else v) for v in f]
        except ValueError:
            raise ReaderError(
                path, f"not a number in pixel row: {row[:80]!r}", f"line {nline + i + 1}"
            ) from None
        n += 1
    out = out[:n]
    ix = out[:, :-1]
    if not np.all(np.isfinite(ix)) or np.any(ix != np.round(ix)) or np.any(np.abs(ix) > 2**31 - 1):
        raise ReaderError(path, "pixel indices must be integers from 0")
    return [ix[:, k].astype(np.int32) for k in range(ncol - 1)], out[:, -1].copy()


def _grid(f: dict) -> tuple[int, ...]:
    """Shape (z, y, x) or (y, x) of a member; checks that every pixel occurs exactly once."""
    path, idx = f["path"], f["idx"]
    nd = len(idx)
    if any(len(c) and int(c.min()) < 0 for c in idx):
        raise ReaderError(path, "pixel indices must be integers from 0")
    if f["pixels"] is not None:
        if len(f["pixels"]) != nd:
            raise ReaderError(path, f"header says {len(f['pixels'])}D pixels but rows are {nd}D")
        dims = f["pixels"]
    else:
        dims = tuple(int(c.max()) + 1 for c in idx)
    total = int(np.prod(dims, dtype=np.float64))
    if len(idx[0]) != total:
        raise ReaderError(
            path,
            f"{len(idx[0])} pixel rows for a {' x '.join(map(str, dims))} grid ({total} pixels)",
        )
    for k, c in enumerate(idx):
        if int(c.max()) >= dims[k]:
            raise ReaderError(path, f"pixel index {'xyz'[k]} = {c.max()} outside the grid")
    flat = idx[0].astype(np.int64)
    stride = 1
    for k in range(1, nd):
        stride *= dims[k - 1]
        flat += idx[k].astype(np.int64) * stride
    # the usual order (x fastest) needs no counting
    if not np.array_equal(flat, np.arange(total)) and np.bincount(flat, minlength=total).max() != 1:
        raise ReaderError(path, "a pixel occurs more than once (and another is missing)")
    return tuple(reversed(dims))


def _finite_sum(v: np.ndarray) -> float | None:
    total = float(np.nansum(v))
    return total if np.isfinite(total) else None


@guarded
def read(paths) -> Measurement:
    ps = as_paths(paths)
    if not ps:
        raise ReaderError(None, "no image file given")
    files = [_parse_file(p) for p in ps]
    grids = [_grid(f) for f in files]
    for f in files:
        parts = member_parts(f["path"].name)
        if f["ion"] is None:
            f["ion"] = parts[2] if parts else f["path"].stem
        if f["measurement"] is None and parts:
            f["measurement"] = parts[0]
        f["number"] = parts[1] if parts else None
    names = {f["measurement"] for f in files}
    if len(names) > 1:
        raise ReaderError(
            ps[0], f"files of different measurements in one group: {sorted(map(str, names))}"
        )
    shape0 = grids[0]
    for f, shape in zip(files, grids, strict=True):
        if shape != shape0:
            raise ReaderError(
                f["path"], f"image grid {shape} differs from {shape0} of {files[0]['path'].name}"
            )
    fovs = {f["fov"] for f in files if f["fov"] is not None}
    if len(fovs) > 1:
        raise ReaderError(ps[0], f"members give different fields of view: {sorted(fovs)}")
    seen: dict[str, Path] = {}
    for f in files:
        if f["ion"] in seen:
            raise ReaderError(
                f["path"], f"ion {f['ion']!r} occurs twice (also {seen[f['ion']].name})"
            )
        seen[f["ion"]] = f["path"]
    order = sorted(
        range(len(files)), key=lambda i: (files[i]["number"] is None, files[i]["number"] or 0, i)
    )
    files = [files[i] for i in order]
    grids = [grids[i] for i in order]

    nd = len(shape0)
    ions = [f["ion"] for f in files]

    def chunks(get) -> pa.ChunkedArray:
        return pa.chunked_array([pa.array(get(f)) for f in files])

    table = pa.table(
        {
            "ion": pa.chunked_array(
                [pa.repeat(pa.scalar(f["ion"], pa.string()), len(f["values"])) for f in files]
            ),
            "x": chunks(lambda f: f["idx"][0]),
            "y": chunks(lambda f: f["idx"][1]),
            "z": chunks(lambda f: f["idx"][2])
            if nd == 3
            else pa.chunked_array([pa.nulls(len(f["values"]), pa.int32()) for f in files]),
            "intensity": chunks(lambda f: f["values"]),
        }
    )
    fov = next(iter(fovs)) if fovs else None
    nx, ny = shape0[-1], shape0[-2]
    meta: dict = {
        "measurement_name": files[0]["measurement"],
        "ions": ions,
        "image_numbers": [f["number"] for f in files],
        "has_total": any(i.strip().lower() == "total" for i in ions),
        "shape": list(shape0),
        "field_of_view_um": list(fov) if fov else None,
        "pixel_size_um": fov[0] / nx if fov else None,
        "total_counts": {f["ion"]: _finite_sum(f["values"]) for f in files},
        "headers": {f["path"].name: f["header"] for f in files},
        "decimal_separator": "," if any(f["decimal"] == "," for f in files) else ".",
    }
    if fov and abs(fov[0] / nx - fov[1] / ny) > 1e-9 * max(fov):
        meta["pixel_size_y_um"] = fov[1] / ny
    nums = [n for n in meta["image_numbers"] if n is not None]
    if nums:
        meta["missing_image_numbers"] = sorted(set(range(min(nums), max(nums) + 1)) - set(nums))
    for key in ("polarity", "scans"):
        vals = {f[key] for f in files if f[key]}
        if len(vals) == 1:
            v = next(iter(vals))
            meta[key] = (
                int(v) if key == "scans" and v.isdigit() else v.lower() if key == "polarity" else v
            )
    return Measurement(
        technique="tof-sims",
        format="iontof-image",
        reader="iontof_image",
        reader_version=READER_VERSION,
        instrument="IONTOF SurfaceLab",
        metadata=meta,
        tables={TABLE: table},
        paths=[str(f["path"]) for f in files],
    )
