"""LAND (Lanhe, Wuhan LAND) battery tester ``.xlsx`` export from LANDdt (format ``lanhe-xlsx``).

LANDdt exports a workbook with a record sheet (named ``Record``/``record``, or ``记录层`` in the
Chinese edition) beside cycle and step summary sheets. The record sheet has one title row:
``Record``/``Index``, ``TestTime/Sec`` (or ``TestTime`` as ``h:mm:ss``), ``StepTime``,
``Cycle-Index``/``Cycle``, ``Step-Index``/``Step``, ``Voltage/V``, ``Current/mA``,
``Capacity/mAh`` (one unsigned counter), ``Energy/mWh``, ``SpeCap/mAh/g``, ``State``..., units
after a slash or in parentheses. Titles are matched by name and unit, not by position.

Mapping: units from the titles (mA, mAh, mWh -> A, Ah, Wh); LAND's current is negative while
discharging (kept); the single capacity/energy counters are split into charge and discharge by
the step's direction (``State`` letter C/D/R where present, else the sign of the current) and
re-based per cycle; cycles numbered from 1.

No real LANDdt export is among the sample files (the workbook filed under "Lanhe" in
shared/samples is an Arbin MITS Pro export and is read by ``arbin``); this reader follows the
published column layout and is tested on workbooks written in the tests with known values.

Why not a library: navani and cellpy read LAND exports through pandas; openpyxl's streaming
reader is all that is needed for one sheet.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import numpy as np

from . import _cycler_xlsx as xl
from .base import Measurement, ReaderError, guarded
from .cycling_common import (
    CHARGE,
    DISCHARGE,
    REST,
    booked_per_cycle,
    cycles_from_one,
    cycling_table,
    segments,
    step_types_from_current,
    unit_factor,
)

FORMATS = ("lanhe-xlsx",)
READER_VERSION = "1"
_RECORD_SHEETS = ("record", "记录层", "记录")
_NAMES = {
    "record": ("record", "index", "recordindex", "record_index"),
    "time": ("testtime", "test_time", "totaltime", "time"),
    "cycle": ("cycle-index", "cycle", "cycleindex", "cycle_index"),
    "step": ("step-index", "step", "stepindex", "step_index"),
    "voltage": ("voltage",),
    "current": ("current",),
    "capacity": ("capacity",),
    "energy": ("energy",),
    "state": ("state", "status"),
    "temperature": ("temperature", "temp"),
}
_DEFAULT_UNITS = {"time": "s", "voltage": "V", "current": "mA", "capacity": "mAh", "energy": "mWh"}
_UNIT_ALIASES = {
    "sec": "s",
    "ma": "mA",
    "a": "A",
    "mah": "mAh",
    "ah": "Ah",
    "mwh": "mWh",
    "wh": "Wh",
    "v": "V",
    "mv": "mV",
    "ua": "uA",
    "uah": "uAh",
}


def split_title(title: str) -> tuple[str, str | None]:
    """(name, unit) of a LAND title: ``Current/mA`` -> ``current, mA``; ``Voltage(V)`` too."""
    t = str(title).strip()
    m = re.match(r"^(.*?)\s*(?:/\s*([^/()]+)|\(([^()]*)\))\s*$", t)
    if m:
        name, unit = m.group(1), (m.group(2) or m.group(3))
    else:
        name, unit = t, None
    name = re.sub(r"\s+", "", name.lower())
    if unit is not None:
        u = unit.strip()
        unit = _UNIT_ALIASES.get(u.lower(), u)
    return name, unit


def _match(titles: list[str]) -> tuple[dict[str, str], dict[str, str | None]]:
    found: dict[str, str] = {}
    units: dict[str, str | None] = {}
    for t in titles:
        name, unit = split_title(t)
        if "/" in (unit or "") or name.startswith(
            "spe"
        ):  # specific values (per gram) are not mapped
            continue
        for canon, accepted in _NAMES.items():
            if canon not in found and name in accepted:
                found[canon] = t
                units[canon] = unit
                break
    return found, units


def _record_sheet(names: list[str]) -> str | None:
    for n in names:
        low = n.strip().lower()
        if any(low.startswith(r) for r in _RECORD_SHEETS):
            return n
    return None


def sniff(path: Path, head: bytes) -> str | None:
    if not xl.is_xlsx(head):
        return None
    names = xl.sheet_names(path)
    if not names or "Global_Info" in names:
        return None
    return "lanhe-xlsx" if _record_sheet(names) else None


def _seconds(values: np.ndarray, path: Path) -> np.ndarray:
    if values.dtype.kind == "f":
        return values
    out = np.empty(values.size)
    for k, v in enumerate(values):
        if isinstance(v, (int, float)):
            out[k] = float(v)
        elif isinstance(v, timedelta):
            out[k] = v.total_seconds()
        elif isinstance(v, time):
            out[k] = v.hour * 3600 + v.minute * 60 + v.second + v.microsecond * 1e-6
        elif isinstance(v, str):
            m = re.fullmatch(r"\s*(?:(\d+)-)?(\d+):(\d+):(\d+(?:\.\d*)?)\s*", v)
            if not m:
                raise ReaderError(
                    path, f"test time {v!r} is neither seconds nor h:mm:ss", f"record row {k + 2}"
                )
            d = int(m.group(1) or 0)
            out[k] = d * 86400 + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        else:
            raise ReaderError(
                path, f"test time {v!r} is not a number or duration", f"record row {k + 2}"
            )
    return out


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    names = xl.sheet_names(path)
    if not names:
        raise ReaderError(path, "not a readable .xlsx workbook")
    sheet = _record_sheet(names)
    if sheet is None:
        raise ReaderError(path, f"no LAND record sheet (Record/记录层) among {names}")
    wb = xl.open_workbook(path)
    try:
        rows = xl.sheet_rows(wb, sheet)
    finally:
        wb.close()
    head_row = next(
        (
            k
            for k, r in enumerate(rows[:10])
            if r and {"voltage", "current"} <= {split_title(c)[0] for c in r if c is not None}
        ),
        None,
    )
    if head_row is None:
        raise ReaderError(
            path, f"sheet {sheet!r}: no title row with Voltage and Current in the first 10 rows"
        )
    titles = [str(c) if c is not None else "" for c in rows[head_row]]
    found, units = _match(titles)
    for need in ("time", "voltage", "current"):
        if need not in found:
            raise ReaderError(path, f"sheet {sheet!r}: no {need} column among {titles}")
    data = rows[head_row + 1 :]
    if not data:
        raise ReaderError(path, f"sheet {sheet!r}: no data rows")
    cols = xl.columns_from_rows(titles, data, path, sheet, head_row + 2)

    def factor(canon: str) -> float:
        u = units.get(canon) or _DEFAULT_UNITS[canon]
        try:
            return unit_factor(u)
        except ValueError:
            raise ReaderError(path, f"unknown unit {u!r} in column {found[canon]!r}") from None

    def num(canon: str) -> np.ndarray:
        a = cols[found[canon]]
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError):
            raise ReaderError(path, f"non-numeric values in column {found[canon]!r}") from None
        return a

    n = len(data)
    time_s = _seconds(cols[found["time"]], path) * factor("time")
    voltage = num("voltage") * factor("voltage")
    current = num("current") * factor("current")
    cycle = cycles_from_one(num("cycle")) if "cycle" in found else np.ones(n, dtype=np.int32)
    step = np.rint(num("step")).astype(np.int64) if "step" in found else np.ones(n, dtype=np.int64)
    seg = segments(step, cycle)
    step_type = step_types_from_current(current, seg)
    if "state" in found:
        state = np.asarray(
            [str(s).strip().upper()[:1] if s is not None else "" for s in cols[found["state"]]],
            dtype=object,
        )
        step_type = np.select(
            [state == "C", state == "D", state == "R"], [CHARGE, DISCHARGE, REST], step_type
        ).astype(np.int8)
    is_c = step_type == CHARGE
    is_d = step_type == DISCHARGE

    def booked(canon: str, mask: np.ndarray) -> np.ndarray:
        raw = np.abs(np.nan_to_num(num(canon)) * factor(canon)) if canon in found else None
        return booked_per_cycle(raw, mask, cycle)

    table = cycling_table(
        record=num("record") if "record" in found else None,
        time_s=time_s,
        voltage_v=voltage,
        current_a=current,
        cycle=cycle,
        step=step,
        step_type=step_type,
        charge_capacity_ah=booked("capacity", is_c),
        discharge_capacity_ah=booked("capacity", is_d),
        charge_energy_wh=booked("energy", is_c),
        discharge_energy_wh=booked("energy", is_d),
        temperature_c=num("temperature") if "temperature" in found else None,
        path=path,
    )
    metadata = {
        "sheets": names,
        "record_sheet": sheet,
        "n_records": n,
        "columns": titles,
        "source_columns": dict(found),
        "original_units": {
            k: (units.get(k) or f"{_DEFAULT_UNITS[k]} (assumed)")
            for k in _DEFAULT_UNITS
            if k in found
        },
        "start_time": None,
    }
    return Measurement(
        technique="cycling",
        format="lanhe-xlsx",
        reader="lanhe",
        reader_version=READER_VERSION,
        instrument="LAND",
        metadata=metadata,
        tables={"cycling": table},
        paths=[str(path)],
    )
