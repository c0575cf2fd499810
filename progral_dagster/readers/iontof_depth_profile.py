"""IONTOF SurfaceLab ASCII depth-profile export (technique ``tof-sims``, format
``iontof-depth-profile``).

Layout (SurfaceLab 7.3 exports in shared/samples/sims-iontof, e.g.
``I241213h_M_PCBM-ref_2D_neg-B1 - NF.txt``), tab-separated, CRLF or LF::

    # Profile Smoothing is Disabled
    #<TAB><TAB><TAB><TAB>total<TAB>^118SnI_3-SnI_3-<TAB>Au_7-<TAB>...        peak names
    #<TAB><TAB><TAB><TAB>N/A<TAB>N/A<TAB>1378.6757<TAB>...                    masses (u)
    #Data Point #<TAB>Sputter Time (s)<TAB>Dose (ions)<TAB>Fluence (ions/cm^2)<TAB>Intensity...
    1<TAB>1.6384<TAB>2.68217e+06<TAB>1.07286e+11<TAB>182528<TAB>0<TAB>...

Every line may end with a tab (an empty last column). Peak names use SurfaceLab markup (see
:mod:`.iontof_markup`): species with isotopes, subscripts and charge, groups (members then the
group's own name) and ratios ``A / ( B )``; the mass line says ``N/A`` for total, ratio and
group columns. Values include ``inf`` (ratios with a zero denominator) and ``nan``.

Table ``tof_sims_depth_profiles``, long form, one row per (column, data point), columns in file
order and points in file order within a column: column_index (0-based among the intensity
columns), name (as written), kind (species | total | ratio | group), species (formula without
isotope marks and charge, e.g. ``SnI3``; for a group the group's own formula; null for total
and ratio), isotope (marked isotopes, comma-separated, e.g. ``118Sn``), charge (+1/-1, null for
total and ratio), mass (u, null where the export says N/A), point (the export's data point
number), sputter_time_s (s), dose (primary ions), fluence_ions_cm2 (ions/cm^2), intensity
(counts per data point; ratio columns are dimensionless; ``inf``/``nan`` kept as IEEE values).

Metadata: ``profile_smoothing`` (the first header line), ``columns`` (every intensity column
parsed: kind, species, isotopes, charge, members of groups, numerator/denominator of ratios,
mass), ``n_points``, ``n_columns``, ``sputter_time_max_s``, ``fluence_max_ions_cm2``,
``polarity`` (from the charges of the species, else from the file name) and ``polarity_source``,
``decimal_separator``: ``,`` for exports written with decimal commas (SurfaceLab on a
German-locale Windows), else ``.``. It is decided from the numeric fields of the first data rows
only (peak names in the header hold commas too; see :func:`decimal_separator`) and applies to
the mass line as well; a file whose rows have no fractional number is read with ``.``.

Why not a library: no maintained library reads these exports (pySPM reads the binary .ita/.itm
files; the authors of the sample files parse them with ad-hoc pandas code). The body is a plain
TSV, so this reader parses the three header lines itself and gives the body to ``pyarrow.csv``.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .base import Measurement, ReaderError, guarded
from .iontof_markup import parse_peak_name
from .iontof_spectrum import polarity_from_name

FORMATS = ("iontof-depth-profile",)
READER_VERSION = "1"
TABLE = "tof_sims_depth_profiles"
_MAX_HEADER_LINES = 20
# Leading (non-intensity) columns, recognised by the start of their title.
_LEADING = {
    "data point": "point",
    "sputter time": "sputter_time_s",
    "dose": "dose",
    "fluence": "fluence_ions_cm2",
}
# A number with a fraction, written with a decimal point / a decimal comma.
_DOT_NUMBER = re.compile(rb"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$|^[-+]?\d+\.(?:[eE][-+]?\d+)?$")
_COMMA_NUMBER = re.compile(rb"^[-+]?\d*,\d+(?:[eE][-+]?\d+)?$")
_SNIFF_ROWS = 50
_SNIFF_BYTES = 1 << 16


def decimal_separator(fields: Iterable[bytes]) -> str | None:
    """``"."`` or ``","``: the decimal separator the numeric ``fields`` are written with
    (SurfaceLab on a German-locale Windows writes ``0,000197``); None when no field has a
    fraction or they disagree (the caller then reads with ``.``, as before)."""
    dot = comma = False
    for f in fields:
        f = f.strip()
        if _DOT_NUMBER.match(f):
            dot = True
        elif _COMMA_NUMBER.match(f):
            comma = True
    return None if dot == comma else "," if comma else "."


def first_rows(body: bytes) -> list[bytes]:
    """The first data rows of ``body`` (at most 50 lines from its first 64 KiB), CR stripped."""
    return [r.rstrip(b"\r") for r in body[:_SNIFF_BYTES].split(b"\n")[:_SNIFF_ROWS]]


def sniff(path: Path, head: bytes) -> str | None:
    if not head.startswith(b"#"):
        return None
    if b"\n#Data Point" in head or (head.startswith(b"# Profile Smoothing") and b"\n#\t" in head):
        return "iontof-depth-profile"
    return None


def _split_header(path: Path, data: bytes) -> tuple[list[str], int]:
    """The ``#`` header lines (decoded, CR stripped) and the byte offset of the first data row."""
    lines: list[str] = []
    pos = 0
    for _ in range(_MAX_HEADER_LINES):
        if pos >= len(data) or data[pos : pos + 1] != b"#":
            break
        end = data.find(b"\n", pos)
        if end < 0:
            raise ReaderError(path, "header ends before the data rows", f"line {len(lines) + 1}")
        lines.append(data[pos:end].rstrip(b"\r").decode("utf-8", errors="replace"))
        pos = end + 1
    return lines, pos


def _fields(line: str) -> list[str]:
    """Tab fields of a ``#`` header line without the leading ``#`` and the trailing empty one."""
    f = line[1:].split("\t")
    if f and f[-1].strip() == "":
        f = f[:-1]
    return [x.strip() for x in f]


def _parse_mass(text: str, path: Path, col: int, decimal: str = ".") -> float | None:
    if text in ("", "N/A", "n/a"):
        return None
    try:
        value = float(text.replace(",", ".") if decimal == "," else text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    except ValueError:
        raise ReaderError(
            path, f"mass {text!r} of column {col + 1} is not a number", "line 3"
        ) from None


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    data = path.read_bytes()
    header, start = _split_header(path, data)
    title_idx = next(
        (i for i, ln in enumerate(header) if ln[1:].lstrip().lower().startswith("data point")),
        None,
    )
    if title_idx is None:
        raise ReaderError(path, "no '#Data Point #' column-title line in the header")
    tab_lines = [i for i in range(title_idx) if "\t" in header[i]]
    if len(tab_lines) < 2:
        raise ReaderError(
            path, "expected a peak-name line and a mass line before the column titles", "line 1"
        )
    names = _fields(header[tab_lines[0]])
    masses = _fields(header[tab_lines[1]])
    titles = _fields(header[title_idx])
    ncols = len(titles)
    if len(names) > ncols or len(masses) > ncols:
        raise ReaderError(
            path,
            f"{max(len(names), len(masses))} peak names/masses but {ncols} column titles",
            f"line {title_idx + 1}",
        )
    names += [""] * (ncols - len(names))
    masses += [""] * (ncols - len(masses))

    leading: dict[str, int] = {}
    value_cols: list[int] = []
    for j, (name, title) in enumerate(zip(names, titles, strict=True)):
        if name:
            value_cols.append(j)
            continue
        key = next((v for k, v in _LEADING.items() if title.lower().startswith(k)), None)
        if key is None:
            raise ReaderError(path, f"column {j + 1} ({title!r}) has no peak name", "line 2")
        leading[key] = j
    if "point" not in leading:
        raise ReaderError(path, "no 'Data Point #' column", f"line {title_idx + 1}")
    if not value_cols:
        raise ReaderError(path, "no intensity columns (empty peak-name line)", "line 2")

    body = data[start:]
    if not body.strip():
        raise ReaderError(path, "no data rows after the header", f"line {len(header) + 1}")
    colnames = [f"c{j}" for j in range(ncols)]
    # Every row ends with a tab: one empty extra column, read and dropped.
    trailing = body.split(b"\n", 1)[0].rstrip(b"\r").endswith(b"\t")
    decimal = decimal_separator(f for r in first_rows(body) for f in r.split(b"\t")) or "."
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(
                column_names=colnames + (["_end"] if trailing else []),
                use_threads=len(body) > 1 << 20,
            ),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.float64() for c in colnames},
                null_values=[""],
                strings_can_be_null=True,
                include_columns=colnames,
                decimal_point=decimal,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = str(exc).split("\n")[0]
        raise ReaderError(
            path, f"malformed data row: {msg}", _row_position(msg, len(header))
        ) from None
    npts = table.num_rows
    if npts == 0:
        raise ReaderError(path, "no data rows after the header")
    point_col = table.column(colnames[leading["point"]])
    if point_col.null_count:
        raise ReaderError(path, "a data row has no data point number (truncated file?)")
    point = point_col.to_numpy()
    if not np.all(np.isfinite(point)) or np.any(point != np.round(point)):
        raise ReaderError(path, "data point numbers are not integers")

    parsed = [parse_peak_name(names[j]) for j in value_cols]
    nval = len(value_cols)
    values = np.empty((nval, npts), dtype=np.float64)
    for k, j in enumerate(value_cols):
        values[k] = table.column(colnames[j]).to_numpy(zero_copy_only=False)

    col_meta = []
    mass_list: list[float | None] = []
    for k, (j, pn) in enumerate(zip(value_cols, parsed, strict=True)):
        m = _parse_mass(masses[j], path, j, decimal)
        mass_list.append(m)
        d = pn.to_dict()
        d["column_index"] = k
        d["mass"] = m
        d["title"] = titles[j]
        col_meta.append(d)

    def per_column(vals: list, typ: pa.DataType) -> pa.Array:
        return pa.array(vals, type=typ).take(pa.array(np.repeat(np.arange(nval), npts)))

    def tiled(key: str) -> pa.Array:
        if key not in leading:
            return pa.nulls(nval * npts, pa.float64())
        col = table.column(colnames[leading[key]]).combine_chunks()
        return pa.concat_arrays([col] * nval) if nval else col

    out = pa.table(
        {
            "column_index": pa.array(np.repeat(np.arange(nval, dtype=np.int32), npts)),
            "name": per_column([p.text for p in parsed], pa.string()),
            "species": per_column([p.species for p in parsed], pa.string()),
            "isotope": per_column([p.isotope for p in parsed], pa.string()),
            "charge": per_column(
                [p.charge if p.kind in ("species", "group") else None for p in parsed], pa.int8()
            ),
            "kind": per_column([p.kind for p in parsed], pa.string()),
            "mass": per_column(mass_list, pa.float64()),
            "point": pa.array(np.tile(point.astype(np.int64), nval)),
            "sputter_time_s": tiled("sputter_time_s"),
            "dose": tiled("dose"),
            "fluence_ions_cm2": tiled("fluence_ions_cm2"),
            "intensity": pa.array(values.reshape(-1)),
        }
    )

    meta: dict = {
        "profile_smoothing": header[0].lstrip("#").strip() if title_idx > 0 else None,
        "n_points": npts,
        "n_columns": nval,
        "columns": col_meta,
        "decimal_separator": decimal,
    }
    for key, label in (
        ("sputter_time_s", "sputter_time_max_s"),
        ("fluence_ions_cm2", "fluence_max_ions_cm2"),
    ):
        if key in leading:
            arr = table.column(colnames[leading[key]]).to_numpy(zero_copy_only=False)
            finite = arr[np.isfinite(arr)]
            meta[label] = float(finite.max()) if finite.size else None
    charges = {p.charge for p in parsed if p.kind in ("species", "group") and p.charge}
    if charges and (all(c > 0 for c in charges) or all(c < 0 for c in charges)):
        meta["polarity"] = "positive" if next(iter(charges)) > 0 else "negative"
        meta["polarity_source"] = "peak charges"
    elif pol := polarity_from_name(path.name):
        meta["polarity"] = pol
        meta["polarity_source"] = "file name"
    return Measurement(
        technique="tof-sims",
        format="iontof-depth-profile",
        reader="iontof_depth_profile",
        reader_version=READER_VERSION,
        instrument="IONTOF SurfaceLab",
        metadata=meta,
        tables={TABLE: out},
        paths=[str(path)],
    )


def _row_position(msg: str, header_lines: int) -> str | None:
    m = re.search(r"[Rr]ow #?(\d+)", msg)
    return f"line {int(m.group(1)) + header_lines}" if m else None
