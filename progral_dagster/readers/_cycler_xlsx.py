"""Reading cycler ``.xlsx`` exports (Arbin MITS Pro, LAND) with openpyxl's streaming mode.

openpyxl (MIT) is the maintained pure-Python reader of Office Open XML workbooks; its
``read_only`` mode streams rows without building the whole workbook. Sheet names are read
from ``xl/workbook.xml`` directly (a few kB) so that format sniffing does not parse sheets.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from .base import ReaderError

_EPOCH = datetime(1970, 1, 1)
_SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\bname="([^"]*)"')


def is_xlsx(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") and (b"[Content_Types].xml" in head or b"xl/" in head)


def sheet_names(path: Path) -> list[str] | None:
    """Sheet names of a workbook in order, or None if it is not a readable xlsx."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("xl/workbook.xml")
            if info.file_size > 1 << 22:
                return None
            xml = zf.read(info)
    except (
        zipfile.BadZipFile,
        KeyError,
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        NotImplementedError,
    ):
        return None
    import html

    return [html.unescape(m.decode("utf-8", "replace")) for m in _SHEET.findall(xml)]


def open_workbook(path: Path):
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - declared dependency
        raise ReaderError(path, "reading .xlsx needs the package openpyxl") from None
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        raise ReaderError(
            path, f"damaged or truncated workbook: {type(exc).__name__}: {exc}"
        ) from None


def sheet_rows(wb, name: str, max_rows: int | None = None) -> list[tuple]:
    """The rows of a sheet as tuples of cell values (trailing empty rows dropped)."""
    ws = wb[name]
    rows = []
    for k, row in enumerate(ws.iter_rows(values_only=True)):
        if max_rows is not None and k >= max_rows:
            break
        rows.append(row)
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    return rows


def _epoch(v: datetime) -> float:
    """Seconds since 1970-01-01, taking a naive datetime as written (no time zone applied)."""
    if v.tzinfo is not None:
        return v.timestamp()
    return (v - _EPOCH).total_seconds()


def columns_from_rows(
    titles: list[str], rows, path: Path, sheet: str, first_row: int
) -> dict[str, np.ndarray]:
    """Column arrays from data rows: numbers as float64, datetimes as epoch seconds, the rest
    as object arrays. A row shorter than the titles is padded with None."""
    n = len(rows)
    width = len(titles)
    out: dict[str, np.ndarray] = {}
    grid = [tuple(r[:width]) + (None,) * (width - len(r[:width])) for r in rows]
    for j, title in enumerate(titles):
        if not title:
            continue
        vals = [g[j] for g in grid]
        sample = next((v for v in vals if v is not None), None)
        if isinstance(sample, datetime):
            arr = np.array(
                [_epoch(v) if isinstance(v, datetime) else np.nan for v in vals], dtype=np.float64
            )
        elif isinstance(sample, (int, float, bool)) or sample is None:
            try:
                arr = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
            except (TypeError, ValueError):
                bad = next(
                    i
                    for i, v in enumerate(vals)
                    if v is not None and not isinstance(v, (int, float))
                )
                raise ReaderError(
                    path, f"sheet {sheet!r}: non-numeric value {vals[bad]!r} in column {title!r}",
                    f"row {first_row + bad}",
                ) from None  # fmt: skip
        else:
            arr = np.array(vals, dtype=object)
        if arr.shape != (n,):
            arr = np.asarray(arr).reshape(n)
        out[title] = arr
    return out
