"""Sample sheets (``samples.csv`` / ``samples.xlsx`` anywhere on the share) and per-file
sidecars (``<file name>.meta.json``): which sample, project and labels a measurement belongs to.

Columns (all optional but ``file``; free columns are kept as they are):

| column | meaning |
|---|---|
| file | a file name or glob relative to the sheet's own folder (matched against every path a measurement was seen under) |
| sample_id, project, material, label | identity and class label |
| composition | molar fractions, ``Li2CO3:0.5,LiOH:0.5`` (components separated by commas) |
| polarity | ToF-SIMS ion polarity: positive / negative |
| spot | analysis spot |
| field_of_view_um | image field of view (um) |
| labels_for | on a label image: the image measurement it segments |
| storage_atmosphere, dew_point_c, storage_time_h | storage conditions |
| cell_id | the cell a cycling file belongs to |

Values are data, never code or paths: a ``file`` entry that is absolute or climbs out of the
sheet's folder (``..``) is refused; cells are read as text (an xlsx formula stays its text and is
never evaluated); values starting with ``=``, ``+``, ``-``, ``@`` are kept verbatim and are
neutralised only where the service writes CSV for spreadsheets.
A sheet that cannot be read raises ReaderError; row-level problems are returned with the rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .base import ReaderError

SHEET_NAMES = ("samples.csv", "samples.xlsx")
SIDECAR_SUFFIX = ".meta.json"
STANDARD = (
    "file", "sample_id", "project", "material", "label", "composition", "polarity", "spot",
    "field_of_view_um", "labels_for", "storage_atmosphere", "dew_point_c", "storage_time_h", "cell_id",
)
NUMERIC = ("field_of_view_um", "dew_point_c", "storage_time_h")
_POLARITY = {"positive": "positive", "pos": "positive", "+": "positive", "p": "positive",
             "negative": "negative", "neg": "negative", "-": "negative", "n": "negative"}
MAX_ROWS = 1_000_000


@dataclass
class SheetRow:
    row: int
    values: dict[str, object]
    extra: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def is_sheet(name: str) -> bool:
    n = PurePosixPath(name).name.lower()
    return n in SHEET_NAMES or n.endswith(SIDECAR_SUFFIX)


def read_sheet(path: Path, name: str | None = None) -> list[SheetRow]:
    """Parse a sheet or sidecar. ``name`` is the name on the share (the lake copy may differ)."""
    name = (name or path.name)
    low = name.lower()
    if low.endswith(SIDECAR_SUFFIX):
        records = _read_sidecar(path, name)
    elif low.endswith(".xlsx"):
        records = _read_xlsx(path)
    else:
        records = _read_csv(path)
    return [_validate(i + 1, r) for i, r in enumerate(records)]


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\0" in text:
        raise ReaderError(path, "sample sheet contains NUL bytes: not a text CSV file")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ReaderError(path, f"malformed CSV: {exc}", f"line {reader.line_num}") from None
    return _records(path, rows)


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on bad files
        raise ReaderError(path, f"not a readable .xlsx workbook: {type(exc).__name__}: {exc}") from None
    try:
        ws = wb.worksheets[0]
        rows = []
        for i, r in enumerate(ws.iter_rows(values_only=True)):
            if i > MAX_ROWS:
                raise ReaderError(path, f"more than {MAX_ROWS} rows")
            rows.append(["" if v is None else _cell_text(v) for v in r])
    finally:
        wb.close()
    return _records(path, rows)


def _cell_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _read_sidecar(path: Path, name: str) -> list[dict[str, str]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReaderError(path, f"sidecar is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReaderError(path, "sidecar must hold one JSON object of column: value pairs")
    target = PurePosixPath(name).name[: -len(SIDECAR_SUFFIX)]
    rec = {str(k): ("" if v is None else str(v)) for k, v in data.items() if not isinstance(v, (dict, list))}
    rec["file"] = target
    return [rec]


def _records(path: Path, rows: list[list[str]]) -> list[dict[str, str]]:
    rows = [r for r in rows if any(str(c).strip() for c in r)]
    if not rows:
        raise ReaderError(path, "sample sheet is empty")
    header = [str(c).strip().lower().replace(" ", "_") for c in rows[0]]
    if "file" not in header:
        raise ReaderError(path, f"sample sheet has no 'file' column (columns: {', '.join(h for h in header if h)})", "line 1")
    out = []
    for r in rows[1:]:
        rec = {}
        for h, v in zip(header, r, strict=False):
            if h:
                rec[h] = str(v).strip()
        out.append(rec)
    return out


def parse_composition(text: str) -> dict[str, float]:
    """``"Li2CO3:0.5,LiOH:0.5"`` -> {"Li2CO3": 0.5, "LiOH": 0.5}; ValueError with a reason."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, val = part.partition(":")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9()]*", name):
            raise ValueError(f"composition part {part!r} is not NAME:FRACTION")
        try:
            f = float(val)
        except ValueError:
            raise ValueError(f"composition fraction {val!r} of {name} is not a number") from None
        if not (0.0 <= f <= 1.0) or math.isnan(f):
            raise ValueError(f"composition fraction of {name} must be between 0 and 1, got {f}")
        out[name] = out.get(name, 0.0) + f
    if out and abs(sum(out.values()) - 1.0) > 0.02:
        raise ValueError(f"composition fractions sum to {sum(out.values()):.3f}, expected 1")
    return out


def _validate(row: int, rec: dict[str, str]) -> SheetRow:
    values: dict[str, object] = {}
    extra: dict[str, str] = {}
    problems: list[str] = []
    for k, v in rec.items():
        if k in STANDARD:
            values[k] = v if v != "" else None
        else:
            extra[k] = v
    f = values.get("file")
    if not f:
        problems.append("empty 'file'")
    else:
        f = str(f).replace("\\", "/")
        pp = PurePosixPath(f)
        if pp.is_absolute() or re.match(r"^[A-Za-z]:", f) or ".." in pp.parts:
            problems.append(f"'file' {f!r} must be a name or glob relative to the sheet's folder (no absolute paths, no '..')")
            values["file"] = None
        else:
            values["file"] = pp.as_posix().lstrip("./") if f.startswith("./") else pp.as_posix()
    for k in NUMERIC:
        v = values.get(k)
        if v is not None:
            try:
                values[k] = float(str(v).replace(",", "."))
            except ValueError:
                problems.append(f"{k} {v!r} is not a number")
                values[k] = None
    pol = values.get("polarity")
    if pol is not None:
        norm = _POLARITY.get(str(pol).strip().lower())
        if norm is None:
            problems.append(f"polarity {pol!r} is not positive or negative")
        values["polarity"] = norm
    comp = values.get("composition")
    if comp is not None:
        try:
            parse_composition(str(comp))
        except ValueError as exc:
            problems.append(str(exc))
    return SheetRow(row, values, extra, problems)
