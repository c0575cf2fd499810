"""IONTOF SurfaceLab peak ("mass interval") list export (technique ``tof-sims``, format
``iontof-peak-list``).

Layout (shared/samples/sims-iontof/Example_mass_interval_list.txt): one title line and one row
per peak, 19 tab-separated columns, CRLF, sometimes a NUL byte after the last line::

    No.  Center Mass (u)  Lower Mass (u)  Upper Mass (u)  Assignment  Description
    Mass Deviation (ppm)  Explained (%)  Resolution  Area  Uncorrected Area
    Norm. By Reference Peak  Norm. By Total Ion Intensity  Norm. By Total Shots
    Norm. By Corrected Total Ion Intensity  Norm. By Primary Ion Dose  RSF
    Coverage (1/cm^2)  Color

The first row is the total-ion interval (empty centre mass, ``nan`` limits, assignment
``(null)``, description ``total``). Numbers include ``nan``, ``inf`` and MSVC's ``-NAN(IND)``.

Table ``tof_sims_peak_lists``: one row per line of the file, in file order, the 19 columns in
snake case (``no``, ``center_mass_u`` ... ``color``; see ``warehouse/schemas.py``). Masses in u,
areas in counts, ``explained_pct`` in %, ``coverage_per_cm2`` in 1/cm^2, ``color`` the Windows
RGB integer. Empty cells and ``(null)`` become nulls; ``nan`` and ``-NAN(IND)`` become NaN,
``inf`` infinity. Columns the file lacks are null; unknown extra columns are listed in the
metadata (``extra_columns``) and not stored.

Metadata: ``n_peaks`` (rows other than the total), ``total_area`` (area of the ``total`` row),
``polarity`` from the charges of the assignments (see :mod:`.iontof_markup`).

Why not a library: no library reads this export; it is a TSV with a fixed title line, so the
body goes to ``pyarrow.csv`` (as strings, since ``-NAN(IND)`` is no number to Arrow) and is
converted column by column with Arrow compute kernels.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .base import Measurement, ReaderError, guarded
from .iontof_markup import parse_peak_name

FORMATS = ("iontof-peak-list",)
READER_VERSION = "1"
TABLE = "tof_sims_peak_lists"

# Export column title (lower case, spaces collapsed) -> lake column.
COLUMNS: dict[str, str] = {
    "no.": "no",
    "center mass (u)": "center_mass_u",
    "lower mass (u)": "lower_mass_u",
    "upper mass (u)": "upper_mass_u",
    "assignment": "assignment",
    "description": "description",
    "mass deviation (ppm)": "mass_deviation_ppm",
    "explained (%)": "explained_pct",
    "resolution": "resolution",
    "area": "area",
    "uncorrected area": "uncorrected_area",
    "norm. by reference peak": "norm_by_reference_peak",
    "norm. by total ion intensity": "norm_by_total_ion_intensity",
    "norm. by total shots": "norm_by_total_shots",
    "norm. by corrected total ion intensity": "norm_by_corrected_total_ion_intensity",
    "norm. by primary ion dose": "norm_by_primary_ion_dose",
    "rsf": "rsf",
    "coverage (1/cm^2)": "coverage_per_cm2",
    "color": "color",
}
_STRING_COLS = {"assignment", "description"}
_INT_COLS = {"no": pa.int32(), "color": pa.int64()}
_REQUIRED = ("no", "center_mass_u", "lower_mass_u", "upper_mass_u")
_NAN_IND = r"(?i)^\s*[-+]?nan(\(ind\)|\(snan\)|\(q?nan\))?\s*$"


def _norm(title: str) -> str:
    return " ".join(title.strip().lower().split())


def sniff(path: Path, head: bytes) -> str | None:
    first = head.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf").rstrip(b"\r")
    cols = [_norm(c.decode("latin-1")) for c in first.split(b"\t")]
    if len(cols) >= 2 and cols[0] == "no." and cols[1] == "center mass (u)":
        return "iontof-peak-list"
    return None


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    data = path.read_bytes().lstrip(b"\xef\xbb\xbf").rstrip(b"\x00\r\n \t") + b"\n"
    end = data.find(b"\n")
    titles = [t.strip() for t in data[:end].rstrip(b"\r").decode("latin-1").split("\t")]
    if titles and titles[-1] == "":
        titles = titles[:-1]
    names: list[str] = []
    extra: list[str] = []
    for i, t in enumerate(titles):
        key = COLUMNS.get(_norm(t))
        if key is None or key in names:
            extra.append(t)
            names.append(f"_extra{i}")
        else:
            names.append(key)
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise ReaderError(path, f"title line lacks the column(s) {missing}", "line 1")
    body = data[end + 1 :]
    if not body.strip():
        raise ReaderError(path, "no peak rows after the title line", "line 2")
    trailing = body.split(b"\n", 1)[0].rstrip(b"\r").endswith(b"\t")
    try:
        raw = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names + (["_end"] if trailing else [])),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=["", "(null)"],
                strings_can_be_null=True,
                include_columns=names,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = str(exc).split("\n")[0]
        m = re.search(r"[Rr]ow #?(\d+)", msg)
        raise ReaderError(
            path, f"malformed peak row: {msg}", f"line {int(m.group(1)) + 1}" if m else None
        ) from None
    cols: dict[str, pa.ChunkedArray] = {}
    for name in names:
        if name.startswith("_extra"):
            continue
        col = raw.column(name)
        if name in _STRING_COLS:
            cols[name] = col
            continue
        # MSVC writes an indeterminate NaN as "-NAN(IND)": make every NaN spelling "nan".
        col = pc.replace_substring_regex(col, _NAN_IND, "nan")
        typ = _INT_COLS.get(name, pa.float64())
        try:
            if pa.types.is_integer(typ):
                col = pc.cast(pc.cast(col, pa.float64()), typ)
            else:
                col = pc.cast(col, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ReaderError(
                path, f"column {name!r} holds a value that is not a number: {str(exc)[:120]}"
            ) from None
        cols[name] = col
    if cols["no"].null_count:
        raise ReaderError(path, "a peak row has no number in column 'No.' (truncated file?)")
    table = pa.table(cols)
    meta: dict = {"n_rows": table.num_rows}
    if extra:
        meta["extra_columns"] = extra
    desc = table.column("description").to_pylist() if "description" in cols else []
    area = table.column("area").to_pylist() if "area" in cols else []
    total_rows = [i for i, d in enumerate(desc) if d and d.strip().lower() == "total"]
    meta["n_peaks"] = table.num_rows - len(total_rows)
    if total_rows and area:
        meta["total_area"] = area[total_rows[0]]
    if "assignment" in cols:
        charges = {
            parse_peak_name(a).charge for a in table.column("assignment").to_pylist() if a
        } - {None}
        if charges and all(c > 0 for c in charges):
            meta["polarity"] = "positive"
        elif charges and all(c < 0 for c in charges):
            meta["polarity"] = "negative"
        if "polarity" in meta:
            meta["polarity_source"] = "assignment charges"
    return Measurement(
        technique="tof-sims",
        format="iontof-peak-list",
        reader="iontof_peak_list",
        reader_version=READER_VERSION,
        instrument="IONTOF SurfaceLab",
        metadata=meta,
        tables={TABLE: table},
        paths=[str(path)],
    )
