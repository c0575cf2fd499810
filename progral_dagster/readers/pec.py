"""PEC (SBT tester, LifeTest) CSV export (format ``pec-csv``).

Layout (``Test25195.csv`` from cellpy's test data): ``key:,value`` lines describing the test
(``Test:``, ``TestRegime Name:``, ``Chemistry:``, ``Start Time:``, ``End Time:`` ...), then the
title line ``Test,Cell,Rack,Shelf,Position,Cell ID,Step,Instruction Name,Cycle,Total Time (Hours
in hh:mm:ss.xxx),...,Step Time (Seconds),...,Real Time,...,Voltage (V),Current (A),Charge Capacity
(mAh),Discharge Capacity (mAh),Charge Energy (mWh),Discharge Energy (mWh),...,Temp (°C),...`` and
comma-separated rows, every line ending in a comma. UTF-8 (``°``).

Older exports (cellpy's ``pec.csv``) differ: no ``Instruction Name``, ``Total Time (Seconds)``
as a number, ``Voltage (mV)``/``Current (mA)``, the energies titled ``Charge Capacity (mWh)`` /
``Discharge Capacity (mWh)`` (told from the capacities by their unit), a ``#RESULTS CHECK`` block
before the titles, and ``Ambient``/``Cell surface``/``Station temperature (°C)`` columns (the
cell's is taken).

Mapping: ``Total Time`` (hours:minutes:seconds, hours unbounded, or seconds) becomes ``time_s``; units are
taken from the titles (mAh, mWh -> Ah, Wh); ``Cycle`` numbered from 1 (PEC counts from 0);
``Step`` kept; ``Instruction Name`` gives the step type (charge, discharge, rest/idle/pause,
OCV), else the current's sign per step; capacity/energy counters re-based per cycle. PEC logs
discharge current as negative; where the file has named charge and discharge steps whose
currents say the opposite, the sign is flipped and ``metadata.current_sign_flipped`` is set.

Why not a library: cellpy reads PEC files but is a large dependency for a CSV; the body is
parsed with pyarrow's CSV parser after the ``key:,value`` header is read here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from ._cycler_text import (
    Columns,
    durations_seconds,
    header_lines,
    last_line_complete,
    map_file,
    read_body,
    string_codes,
)
from .base import Measurement, ReaderError, guarded
from .cycling_common import (
    CHARGE,
    DISCHARGE,
    STEP_TYPES,
    counter_per_cycle,
    cycles_from_one,
    cycling_table,
    segments,
    step_types_from_current,
    unit_factor,
)

FORMATS = ("pec-csv",)
READER_VERSION = "2"  # 2: older exports (seconds, mV/mA, energies by unit, cell temperature)
_MAX_HEADER = 200


def _title_index(lines: list[str]) -> int | None:
    for k, line in enumerate(lines):
        if line.startswith("Test,Cell,") and "Voltage" in line and "Current" in line:
            return k
    return None


def sniff(path: Path, head: bytes) -> str | None:
    text = head.decode("utf-8", "replace")
    lines = text.split("\n")[:_MAX_HEADER]
    if _title_index([ln.rstrip("\r") for ln in lines]) is not None:
        return "pec-csv"
    if text.startswith("Request Year:,") or (
        "TestRegime Name:," in text[:4096] and "Test:," in text[:4096]
    ):
        return "pec-csv"
    return None


def _find(titles: list[str], *prefixes: str) -> str | None:
    for p in prefixes:
        for t in titles:
            if t.lower().startswith(p.lower()):
                return t
    return None


def _unit(title: str) -> str | None:
    m = re.search(r"\(([^()]*)\)\s*$", title)
    return m.group(1).strip() if m else None


def _find_counter(titles: list[str], direction: str, kind: str) -> str | None:
    """The charge/discharge capacity (``kind`` "Ah") or energy ("Wh") column. Newer exports
    title them ``Charge Capacity (mAh)`` and ``Charge Energy (mWh)``; older ones title both
    ``Charge Capacity`` and tell them apart only by the unit (``(mAh)``, ``(mWh)``)."""
    for t in titles:
        low = t.lower()
        if not (
            low.startswith(f"{direction} capacity (") or low.startswith(f"{direction} energy (")
        ):
            continue
        if (_unit(t) or "").endswith(kind):
            return t
    return None


def _find_temperature(titles: list[str]) -> str | None:
    """The cell temperature: ``Temp (°C)``, else a ``... temperature (°C)`` column other than
    the station's or the ambient one (older exports: ``Cell surface temperature (°C)``)."""
    hit = _find(titles, "Temp (")
    if hit:
        return hit
    for t in titles:
        low = t.lower()
        if "temperature" in low and not low.startswith(("station", "ambient")):
            return t
    return None


def instruction_type(name: str | None) -> str | None:
    """Step type a PEC instruction name states (None where the name does not say)."""
    low = (name or "").lower()
    if "discharge" in low:
        return "discharge"
    if "charge" in low:
        return "charge"
    if "ocv" in low or "open circuit" in low:
        return "ocv"
    if any(w in low for w in ("idle", "rest", "pause", "wait")):
        return "rest"
    if "eis" in low or "impedance" in low:
        return "impedance"
    return None


def _instruction_code(name: str | None) -> int:
    kind = instruction_type(name)
    return STEP_TYPES.index(kind) if kind else -1


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    buf = map_file(path)
    head = buf[: min(len(buf), 1 << 18)].to_pybytes().decode("utf-8", "replace")
    k = _title_index([ln.rstrip("\r") for ln in head.split("\n")[:_MAX_HEADER]])
    if k is None:
        raise ReaderError(
            path,
            "no PEC title line ('Test,Cell,...,Voltage (V),Current (A),...') in the first 200 lines",
        )
    lines, start = header_lines(buf, k + 1, path)
    meta: dict = {}
    for line in lines[:k]:
        key, _, value = line.partition(",")
        key = key.strip().rstrip(":")
        if key:
            meta[key] = value.strip().rstrip(",") if value else ""
    titles = [t.strip() for t in lines[k].encode("latin-1").decode("utf-8", "replace").split(",")]
    while titles and not titles[-1]:
        titles.pop()
    names = [t or f"_col{i}" for i, t in enumerate(titles)]
    probe = buf[start : min(len(buf), start + 65536)].to_pybytes().split(b"\n", 1)[0]
    n_fields = probe.count(b",") + 1
    if n_fields > len(names):
        names += [f"_extra{i}" for i in range(n_fields - len(names))]
    col = {
        "step": "Step" if "Step" in titles else None,
        "instruction": _find(titles, "Instruction Name"),
        "cycle": "Cycle" if "Cycle" in titles else None,
        "total_time": _find(titles, "Total Time"),
        "voltage": _find(titles, "Voltage"),
        "current": _find(titles, "Current"),
        "charge_capacity": _find_counter(titles, "charge", "Ah"),
        "discharge_capacity": _find_counter(titles, "discharge", "Ah"),
        "charge_energy": _find_counter(titles, "charge", "Wh"),
        "discharge_energy": _find_counter(titles, "discharge", "Wh"),
        "temperature": _find_temperature(titles),
    }
    for need in ("total_time", "voltage", "current"):
        if col[need] is None:
            raise ReaderError(
                path, f"no {need.replace('_', ' ')} column in the title line", f"line {k + 1}"
            )
    # "Total Time (Hours in hh:mm:ss.xxx)" (newer exports) or "Total Time (Seconds)" (older)
    time_unit = (_unit(col["total_time"]) or "").lower()
    time_in_seconds = time_unit in ("seconds", "s", "sec")
    types = {col[c]: pa.float64() for c in col if col[c] and c not in ("instruction", "total_time")}
    types[col["total_time"]] = pa.float64() if time_in_seconds else pa.string()
    if col["instruction"]:
        types[col["instruction"]] = pa.string()
    end = last_line_complete(buf, start, b",", len(titles))
    table = read_body(
        path,
        buf,
        start,
        end,
        names,
        delimiter=",",
        types=types,
        include=list(types),
        first_line=k + 2,
        quote_char='"',
    )
    n = table.num_rows
    if n == 0:
        raise ReaderError(path, "no data rows after the title line")
    for c in (col["total_time"], col["voltage"], col["current"]):
        if table.column(c).null_count:
            raise ReaderError(path, f"empty value in column {c!r} (damaged file?)")

    data = Columns(table)
    del table

    def num(key: str) -> np.ndarray | None:
        c = col[key]
        return data.get(c) if c else None

    def factor(key: str, default: str) -> float:
        u = _unit(col[key]) if col[key] else None
        try:
            return unit_factor(u or default)
        except ValueError:
            raise ReaderError(path, f"unknown unit {u!r} in column {col[key]!r}") from None

    if time_in_seconds:
        time_s = num("total_time")
    else:
        try:
            time_s = durations_seconds(data.take(col["total_time"]))
        except ValueError as exc:
            raise ReaderError(path, f"Total Time: data {exc}") from None
    current = num("current") * factor("current", "A")
    voltage = num("voltage") * factor("voltage", "V")
    cycle = cycles_from_one(num("cycle")) if col["cycle"] else np.ones(n, dtype=np.int32)
    step = np.rint(num("step")).astype(np.int32) if col["step"] else np.ones(n, dtype=np.int32)
    seg = segments(step, cycle)
    instructions: list[str] = []
    if col["instruction"]:
        named, instructions = string_codes(data.take(col["instruction"]), _instruction_code)
    else:
        named = np.full(n, -1, dtype=np.int8)
    flipped = False
    chg = named == CHARGE
    dis = named == DISCHARGE
    if chg.any() and dis.any() and current[chg].mean() < 0 < current[dis].mean():
        current = -current
        flipped = True
    step_type = step_types_from_current(current, seg)
    has_name = named >= 0
    step_type[has_name] = named[has_name]

    def counter(key: str, default: str) -> np.ndarray:
        raw = num(key)
        if raw is None:
            return np.zeros(n)
        return counter_per_cycle(np.nan_to_num(raw) * factor(key, default), cycle)

    out = cycling_table(
        time_s=time_s,
        voltage_v=voltage,
        current_a=current,
        cycle=cycle,
        step=step,
        step_type=step_type,
        charge_capacity_ah=counter("charge_capacity", "mAh"),
        discharge_capacity_ah=counter("discharge_capacity", "mAh"),
        charge_energy_wh=counter("charge_energy", "mWh"),
        discharge_energy_wh=counter("discharge_energy", "mWh"),
        temperature_c=num("temperature"),
        path=path,
    )
    start_time = None
    for fmt in ("%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            start_time = datetime.strptime(meta.get("Start Time", ""), fmt).isoformat()
            break
        except ValueError:
            continue
    metadata = {
        "header": meta,
        "test": meta.get("Test"),
        "test_regime": meta.get("TestRegime Name"),
        "chemistry": meta.get("Chemistry"),
        "start_time": start_time,
        "n_records": n,
        "instructions": sorted(instructions) if col["instruction"] else [],
        "current_sign_flipped": flipped,
        "dropped_incomplete_last_row": end < len(buf) and bool(buf[end:].to_pybytes().strip()),
        "source_columns": {k2: v for k2, v in col.items() if v},
        "original_units": {k2: _unit(v) for k2, v in col.items() if v and _unit(v)},
    }
    return Measurement(
        technique="cycling",
        format="pec-csv",
        reader="pec",
        reader_version=READER_VERSION,
        instrument="PEC",
        metadata=metadata,
        tables={"cycling": out},
        paths=[str(path)],
    )
