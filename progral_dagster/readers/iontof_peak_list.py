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
``polarity`` from the charges of the assignments (see :mod:`.iontof_markup`),
``decimal_separator``: ``,`` for exports written with decimal commas (SurfaceLab on a
German-locale Windows: ``28191324,00``), else ``.``; decided from the numeric columns of the first
rows only (assignments such as ``^206PbI_3-, ^207PbI_3-PbI_3-`` hold commas too), ``.`` when
no value there has a fraction.

Why not a library: no library reads this export; it is a TSV with a fixed title line, so the
body goes to ``pyarrow.csv`` with the lake types, after MSVC's special-value spellings
(``-NAN(IND)``, ``-1.#IND``, ``1.#INF``) are replaced by ``nan``/``inf`` in the raw bytes.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from .base import Measurement, ReaderError, guarded
from .iontof_depth_profile import decimal_separator, first_rows
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
_MSVC_SPECIALS = [
    (sign + word, b"nan")
    for word in (b"NAN(IND)", b"nan(ind)", b"NAN(SNAN)", b"nan(snan)", b"1.#IND", b"1.#QNAN")
    + (b"1,#IND", b"1,#QNAN")  # the old spellings on a decimal-comma locale
    for sign in (b"-", b"")
] + [(b"1.#INF", b"inf"), (b"1,#INF", b"inf")]


def _norm(title: str) -> str:
    return " ".join(title.strip().lower().split())


def sniff(path: Path, head: bytes) -> str | None:
    head = head.lstrip(b"\xef\xbb\xbf")
    if not head.startswith(b"No."):
        return None
    first = head[:4096].split(b"\n", 1)[0].rstrip(b"\r")
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
    # MSVC's "-NAN(IND)" and its older "-1.#IND"/"1.#INF" are no numbers to Arrow
    for token, repl in _MSVC_SPECIALS:
        if token in body:
            body = body.replace(token, repl)
    trailing = body.split(b"\n", 1)[0].rstrip(b"\r").endswith(b"\t")
    numeric = [i for i, n in enumerate(names) if n not in _STRING_COLS and not n.startswith("_")]
    decimal = (
        decimal_separator(
            f[i] for f in (r.split(b"\t") for r in first_rows(body)) for i in numeric if i < len(f)
        )
        or "."
    )
    types = {
        n: pa.string()
        if n in _STRING_COLS or n.startswith("_extra")
        else _INT_COLS.get(n, pa.float64())
        for n in names
    }
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names + (["_end"] if trailing else [])),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=["", "(null)"],
                strings_can_be_null=True,
                include_columns=[n for n in names if not n.startswith("_extra")],
                decimal_point=decimal,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = str(exc).split("\n")[0]
        m = re.search(r"[Rr]ow #?(\d+)", msg)
        col = re.search(r"column #?(\d+)", msg)
        what = (
            f" in column '{names[int(col.group(1))]}'"
            if col and int(col.group(1)) < len(names)
            else ""
        )
        raise ReaderError(
            path,
            f"malformed peak row{what}: {msg}",
            f"line {int(m.group(1)) + 1}" if m else None,
        ) from None
    cols = {n: table.column(n) for n in table.column_names}
    if cols["no"].null_count:
        raise ReaderError(path, "a peak row has no number in column 'No.' (truncated file?)")
    meta: dict = {"n_rows": table.num_rows, "decimal_separator": decimal}
    if extra:
        meta["extra_columns"] = extra
    desc = table.column("description").to_pylist() if "description" in cols else []
    area = table.column("area").to_pylist() if "area" in cols else []
    total_rows = [i for i, d in enumerate(desc) if d and d.strip().lower() == "total"]
    meta["n_peaks"] = table.num_rows - len(total_rows)
    if total_rows and area:
        a = area[total_rows[0]]
        meta["total_area"] = a if a is not None and math.isfinite(a) else None
    if "assignment" in cols:
        charges = {
            parse_peak_name(a).charge for a in table.column("assignment").unique().to_pylist() if a
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
