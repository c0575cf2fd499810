"""Printing results for people (tables) and machines (JSON, CSV)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat(sep=" ", timespec="seconds") if isinstance(v, dt.datetime) else v.isoformat()
    return str(v)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60, out=None) -> None:
    out = out or sys.stdout
    cells = [[_cell(v).replace("\n", " ") for v in r] for r in rows]
    widths = [len(c) for c in columns]
    for r in cells:
        for i, v in enumerate(r):
            widths[i] = min(max(widths[i], len(v)), max_width)

    def fmt(vals):
        return "  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(vals, widths, strict=False)).rstrip()

    print(fmt(list(columns)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print(fmt(r), file=out)


def safe_csv_value(v: Any) -> str:
    """A value for a CSV that may be opened in a spreadsheet: text that would start a formula
    (``=``, ``+``, ``-``, ``@``) is prefixed with an apostrophe (OWASP CSV injection advice);
    numbers are written as numbers."""
    if v is None:
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v) if isinstance(v, float) else str(v)
    s = _cell(v)
    if s.startswith(_FORMULA_START):
        return "'" + s
    return s


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], out=None) -> None:
    w = csv.writer(out or sys.stdout, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([safe_csv_value(v) for v in r])


def to_json(obj: Any, out=None) -> None:
    json.dump(obj, out or sys.stdout, indent=2, default=_cell, ensure_ascii=False)
    (out or sys.stdout).write("\n")


def records(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict]:
    return [dict(zip(columns, r, strict=False)) for r in rows]
