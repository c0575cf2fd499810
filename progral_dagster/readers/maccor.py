"""Maccor text exports (formats ``maccor-text``, ``maccor-impedance``).

Layouts (real files in shared/samples/cycler-other):

- Raw data export (``maccor_test_file_4267-66-6519.041``, CRLF): one header line
  ``Today's Date ... Date of Test:<TAB>... Filename:<TAB>... Procedure: ...<TAB>Comment/Barcode:``,
  then the titles ``Rec#<TAB>Cyc#<TAB>Step<TAB>TestTime<TAB>StepTime<TAB>Amp-hr<TAB>Watt-hr<TAB>
  Amps<TAB>Volts<TAB>State<TAB>ES<TAB>DPt Time...``; times as ``0d 00:00:10.0000``.
- MIMS "text" export (``maccor_two.txt``, from cellpy): ``key<TAB>value`` lines (``Name:``,
  ``Channel:``, ``Tester``, ``Procedure``, ``Started``, ...), a blank line, titles ``Rec<TAB>
  Cycle P<TAB>Cycle C<TAB>Step<TAB>TestTime<TAB>StepTime<TAB>Cap. [Ah]<TAB>Ener. [Wh]<TAB>
  Current [A]<TAB>Voltage [V]<TAB>Md<TAB>ES<TAB>DPT Time...``, a blank line, rows; decimal
  comma. Its ``TestTime`` unit is an export option the file does not state: it is inferred by
  comparing the ``TestTime`` span with the span of the wall-clock column (``DPT Time``):
  seconds, minutes or hours, whichever matches (``metadata.time_unit``). The sample's last
  line is cut mid-record; such a partial last record is dropped and noted.
- Variants met in public data (TRI's beep, Argonne via battery-data-toolkit, cellpy, PyProBE):
  the test time titled with its unit (``Test (Sec)``, ``Test (Min)``, ``Test (Hr)``: the title's
  unit is used, never inferred, since a paused test's wall clock runs ahead of its test time);
  MIMS Client text exports with a three-line ``key:<TAB>value`` header and durations such as
  ``0d 00:00:5.05000019073486`` (one-digit fields, long fractions); exports in mA/mAh/mWh
  (``mAmps``, ``mAmp-hr``, ``mWatt-hr``); and comma-separated CSV exports (``Rec,Cycle C,Step,
  Test Time (sec),...,Capacity,Energy,Current,Voltage,DPT Time,Temp 1``) without a state
  column, whose ``Current`` is taken as signed (positive charges) and whose step directions come
  from it (``metadata.source_columns`` says so).
- AC impedance export (``*.EDA0001.041``): ``MACCOR, INC. AC Impedance Test`` header block,
  then ``Freq(Hz)<TAB>Polar(V)<TAB>time(sec)<TAB>Z'(a)<TAB>Z''(b)<TAB>Phase_Angle...``. ``Z''``
  is Im(Z) as measured (the file's own phase angle is atan2(Z'', Z')), so it is stored as is.

Cycling mapping: Maccor logs an unsigned current with a state letter (``C`` charge, ``D``
discharge, ``R`` rest, ``FRA`` impedance, others such as ``O``/``S``/``P`` kept as ``other``);
the current gets the sign of the state. ``Amp-hr``/``Watt-hr`` are one running counter each
(restarting when Maccor resets it); their increments are booked to charge in ``C`` rows and to
discharge in ``D`` rows (rows of charge/discharge steps where there is no state column), and
summed per cycle. Cycle: ``Cyc#`` (raw export) or ``Cycle C``
(MIMS export; ``Cycle P`` is kept in the metadata), numbered from 1.

Why not a library: cellpy and beep read these exports but pull in large dependency trees for a
tab-separated body, which pyarrow's CSV parser reads at full speed after the header is parsed
here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from ._cycler_text import (
    Columns,
    column_numpy,
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
    booked_per_cycle,
    cycles_from_one,
    cycling_table,
    impedance_table,
    segments,
    step_types_from_current,
)

FORMATS = ("maccor-text", "maccor-impedance")
READER_VERSION = "2"  # 2: variants of public exports (test-time units, mA titles, comma CSV)
_MAX_HEADER = 80

# canonical -> accepted titles (lower case)
_TITLES: dict[str, tuple[str, ...]] = {
    "record": ("rec#", "rec"),
    "cycle": ("cyc#", "cycle c", "cycle"),
    "cycle_p": ("cycle p",),
    "step": ("step",),
    "test_time": ("testtime", "test time"),
    "capacity": (
        "amp-hr",
        "cap. [ah]",
        "capacity (ahr)",
        "ahr",
        "capacity",
        "mamp-hr",
        "cap. [mah]",
    ),
    "energy": ("watt-hr", "ener. [wh]", "energy (whr)", "whr", "energy", "mwatt-hr", "ener. [mwh]"),
    "current": ("amps", "current [a]", "current", "mamps", "current [ma]"),
    "voltage": ("volts", "voltage [v]", "voltage"),
    "state": ("state", "md"),
    "wallclock": ("dpt time", "dpt time "),
    "temperature": ("temp 1", "temperature", "temp"),
}
# titles whose values are in thousandths of the lake unit (mA, mAh, mWh exports)
_MILLI = {"mamps", "current [ma]", "mamp-hr", "cap. [mah]", "mwatt-hr", "ener. [mwh]"}
STATE_TYPES = {"C": "charge", "D": "discharge", "R": "rest", "FRA": "impedance"}
_DAYTIME = r"^\s*(\d+)d\s+(\d+):(\d+):([0-9.,]+)\s*$"
# "Test (Sec)", "Test (Min)", "Test Time (Hr)", ...: the test time with its unit in the title
_TIMED_TITLE = re.compile(r"^test\s*(?:time)?\s*\(\s*(sec|s|min|hr|h)\s*\)$")
_TIME_FACTORS = {"sec": (1.0, "s"), "s": (1.0, "s"), "min": (60.0, "min"), "hr": (3600.0, "h"),
                 "h": (3600.0, "h")}  # fmt: skip
_CLOCK_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M:%S",
    "%d-%b-%y %I:%M:%S %p",
    "%d-%b-%Y %I:%M:%S %p",
    "%d-%b-%y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def _title_cells(line: str) -> tuple[list[str], str]:
    """The cells of a (possible) title line and its delimiter: tab (MIMS text and raw exports)
    or comma (MIMS Client CSV export)."""
    cells = line.split("\t")
    if len(cells) == 1 and "," in line:
        return line.split(","), ","
    return cells, "\t"


def _find_titles(lines: list[str]) -> int | None:
    for k, line in enumerate(lines):
        cells = [c.strip().lower() for c in _title_cells(line)[0]]
        if cells and cells[0] in ("rec#", "rec") and "step" in cells:
            return k
    return None


def sniff(path: Path, head: bytes) -> str | None:
    text = head[:16384].decode("latin-1")
    if text.startswith("MACCOR, INC.") and "Impedance" in text.split("\n", 1)[0]:
        return "maccor-impedance"
    lines = text.split("\n")[:_MAX_HEADER]
    k = _find_titles(lines)
    if k is not None:
        cells = {c.strip().lower() for c in _title_cells(lines[k].rstrip("\r"))[0]}
        if cells & set(_TITLES["current"]) and cells & set(_TITLES["voltage"]):
            return "maccor-text"
    return None


def _column(titles: list[str], key: str) -> str | None:
    low = {t.strip().lower(): t for t in titles}
    for cand in _TITLES[key]:
        if cand in low:
            return low[cand]
    return None


def _header_metadata(lines: list[str], delimiter: str = "\t") -> dict:
    meta: dict = {}
    if (
        lines
        and lines[0].startswith("Today's Date")
        and "Date of Test:" in lines[0]
        and "Filename:" in lines[0]
    ):
        line = lines[0]
        for key, pat in (
            ("date_of_test", r"Date of Test:\s*([^\t]+)"),
            ("filename", r"Filename:\s*(.+?)\s*(?:Procedure:|\t|$)"),
            ("procedure", r"Procedure:\s*([^\t]+)"),
            ("comment", r"Comment/Barcode:\s*([^\t]*)"),
        ):
            m = re.search(pat, line)
            if m:
                meta[key] = m.group(1).strip()
        return meta
    for line in lines:
        if delimiter not in line:
            continue
        cells = line.split(delimiter)
        keys = cells[0::2]
        if len(cells) >= 4 and all(c.strip().endswith(":") for c in keys if c.strip()):
            # "Today's Date:<TAB>14 December 2020<TAB>Date of Test:<TAB>11 December 2020, ..."
            pairs = list(zip(keys, cells[1::2], strict=False))
        else:
            pairs = [(cells[0], delimiter.join(cells[1:]))]
        for key, value in pairs:
            key = key.strip().rstrip(":").strip()
            if key:
                meta[key] = value.strip()
    return meta


def _start_time(meta: dict) -> str | None:
    for key in ("Started", "date_of_test", "Date of Test"):
        v = meta.get(key)
        if not v:
            continue
        for fmt in ("%m/%d/%Y", *_CLOCK_FORMATS, "%d %B %Y, %I:%M:%S %p"):
            try:
                t = datetime.strptime(v.strip(), fmt)
                return t.date().isoformat() if fmt == "%m/%d/%Y" else t.isoformat()
            except ValueError:
                continue
    return None


def _iso(epoch_s: float) -> str:
    """Wall-clock (no time zone, as the cycler wrote it) from seconds since 1970-01-01."""
    return (datetime(1970, 1, 1) + timedelta(seconds=float(epoch_s))).isoformat()


def _clock(line: bytes, index: int, delimiter: bytes = b"\t") -> float | None:
    """Seconds since 1970 of the wall-clock cell of one data line (None if unparseable)."""
    cells = line.rstrip(b"\r\n").split(delimiter)
    if index >= len(cells):
        return None
    text = cells[index].decode("latin-1").strip().strip('"')
    for fmt in _CLOCK_FORMATS:
        try:
            return (datetime.strptime(text, fmt) - datetime(1970, 1, 1)).total_seconds()
        except ValueError:
            continue
    return None


def _time_unit(test_time: np.ndarray, clock: np.ndarray | None) -> tuple[float, str, str]:
    """(factor to seconds, unit name, how it was decided)."""
    if clock is None or test_time.size < 2:
        return 1.0, "s", "assumed (no wall-clock column to compare with)"
    span_t = float(test_time[-1] - test_time[0])
    span_c = float(clock[-1] - clock[0])
    if span_t <= 0 or span_c < 10:
        return 1.0, "s", "assumed (time span too short to compare)"
    best = min(
        (
            (abs(np.log(span_t * f / span_c)), f, u)
            for f, u in ((1.0, "s"), (60.0, "min"), (3600.0, "h"))
        )
    )
    return best[1], best[2], f"inferred: TestTime span {span_t:g} vs wall-clock span {span_c:g} s"


def _test_time_column(names: list[str]) -> tuple[str | None, tuple[float, str] | None]:
    """The test-time column and, where its title states one (``Test (Sec)``, ``Test (Min)``),
    its unit as (factor to seconds, unit name)."""
    for t in names:
        m = _TIMED_TITLE.match(t.strip().lower())
        if m:
            return t, _TIME_FACTORS[m.group(1)]
    return _column(names, "test_time"), None


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    buf = map_file(path)
    head = buf[: min(len(buf), 65536)].to_pybytes()
    fmt = sniff(path, head)
    if fmt == "maccor-impedance":
        return _read_impedance(path, buf)
    if fmt is None:
        raise ReaderError(
            path, "not a Maccor text export (no 'Rec#'/'Rec' title line with Amps and Volts)"
        )
    lines_all = head.decode("latin-1").split("\n")[:_MAX_HEADER]
    k = _find_titles([ln.rstrip("\r") for ln in lines_all])
    lines, start = header_lines(buf, k + 1, path)
    titles, delim = _title_cells(lines[k])
    bdelim = delim.encode()
    while titles and not titles[-1].strip():
        titles.pop()
    meta = _header_metadata(lines[:k], delim)
    # first data line (skip blank lines)
    probe = buf[start : min(len(buf), start + 65536)].to_pybytes()
    first = next((ln.rstrip(b"\r") for ln in probe.split(b"\n") if ln.strip()), b"")
    if not first:
        raise ReaderError(path, "no data rows after the column titles", f"line {k + 2}")
    n_fields = first.count(bdelim) + 1
    names = [t.strip() or f"_col{i}" for i, t in enumerate(titles)]
    if n_fields > len(names):
        names += [f"_extra{i}" for i in range(n_fields - len(names))]
    elif n_fields < len(names):
        names = names[:n_fields]
    end = last_line_complete(buf, start, bdelim, n_fields)
    col = {key: _column(names, key) for key in _TITLES}
    col["test_time"], titled_unit = _test_time_column(names)
    for key in ("test_time", "current", "voltage"):
        if col[key] is None:
            raise ReaderError(
                path, f"no {key.replace('_', ' ')} column among the titles", f"line {k + 1}"
            )
    if col["state"] is None and delim == "\t":
        raise ReaderError(path, "no state column among the titles", f"line {k + 1}")
    tt_cell = first.split(bdelim)[names.index(col["test_time"])]
    daytime = re.match(_DAYTIME.encode(), tt_cell) is not None
    decimal_comma = delim == "\t" and re.search(rb"\d,\d", first) is not None
    numeric = [
        col[c]
        for c in (
            "record",
            "cycle",
            "cycle_p",
            "step",
            "capacity",
            "energy",
            "current",
            "voltage",
            "temperature",
        )
        if col[c]
    ]
    types = {c: pa.float64() for c in numeric}
    if col["state"]:
        types[col["state"]] = pa.string()
    types[col["test_time"]] = pa.string() if daytime else pa.float64()
    table = read_body(
        path, buf, start, end, names, delimiter=delim, decimal_comma=decimal_comma,
        types=types, include=list(types), first_line=k + 2, null_values=["", "N/A"],
        quote_char='"' if delim == "," else False,
    )  # fmt: skip
    n = table.num_rows
    if n == 0:
        raise ReaderError(path, "no data rows after the column titles")
    for c in (col["test_time"], col["current"], col["voltage"], col["state"]):
        if c and table.column(c).null_count:
            raise ReaderError(path, f"empty value in column {c!r} (damaged file?)")
    data = Columns(table)
    del table

    def num(key: str) -> np.ndarray | None:
        c = col[key]
        if not c:
            return None
        a = data.get(c)
        return a * 1e-3 if c.strip().lower() in _MILLI else a

    if daytime:
        try:
            tt = durations_seconds(data.take(col["test_time"]))
        except ValueError as exc:
            raise ReaderError(path, f"test time: data {exc}") from None
    else:
        tt = num("test_time")
    clock = None
    c0 = None
    if col["wallclock"]:  # only the first and the last record's wall clock are needed
        ci = names.index(col["wallclock"])
        tail = buf[max(start, end - 65536) : end].to_pybytes().rstrip(b"\r\n")
        c0 = _clock(first, ci, bdelim)
        c1 = _clock(tail[tail.rfind(b"\n") + 1 :], ci, bdelim)
        clock = np.array([c0, c1], dtype=float) if c0 is not None and c1 is not None else None
    if daytime:
        factor, unit, unit_note = 1.0, "s", "d hh:mm:ss"
    elif titled_unit:
        # the title states the unit: no inference (a paused test's wall clock runs on while
        # the test time stands still, which would mislead the comparison below)
        factor, unit = titled_unit
        unit_note = f"column title {col['test_time']!r}"
    else:
        factor, unit, unit_note = _time_unit(tt, clock)
    time_s = tt * factor

    amps = num("current")
    cycle = cycles_from_one(num("cycle")) if col["cycle"] else np.ones(n, dtype=np.int32)
    step = np.rint(num("step")).astype(np.int64) if col["step"] else np.ones(n, dtype=np.int64)
    if col["state"]:
        step_type, states = string_codes(
            data.take(col["state"]), lambda s: STEP_TYPES.index(STATE_TYPES.get(s, "other"))
        )
        is_c = step_type == CHARGE
        is_d = step_type == DISCHARGE
        current = np.where(is_c, np.abs(amps), np.where(is_d, -np.abs(amps), amps))
    else:
        # CSV export without a state column: the current is signed (positive charges) and the
        # direction of each step comes from it
        states = []
        current = amps
        step_type = step_types_from_current(current, segments(step, cycle))
        is_c = step_type == CHARGE
        is_d = step_type == DISCHARGE

    def booked(key: str, mask: np.ndarray) -> np.ndarray:
        return booked_per_cycle(num(key), mask, cycle)

    table_out = cycling_table(
        record=num("record") if col["record"] else None,
        time_s=time_s,
        voltage_v=num("voltage"),
        current_a=current,
        cycle=cycle,
        step=step,
        step_type=step_type,
        charge_capacity_ah=booked("capacity", is_c),
        discharge_capacity_ah=booked("capacity", is_d),
        charge_energy_wh=booked("energy", is_c),
        discharge_energy_wh=booked("energy", is_d),
        temperature_c=num("temperature"),
        path=path,
    )

    def unit_of(key: str, base: str) -> str:
        return f"m{base}" if col[key] and col[key].strip().lower() in _MILLI else base

    sign_source = (
        f"{col['current']} signed by {col['state']}"
        if col["state"]
        else f"{col['current']} as written (no state column: taken as signed, positive charges)"
    )
    direction = col["state"] or f"sign of {col['current']} per step"
    metadata = {
        **{k2: v for k2, v in meta.items()},
        "start_time": _iso(c0) if c0 is not None else _start_time(meta),
        "export_variant": (
            "CSV (comma-separated)"
            if delim == ","
            else "raw data (Rec#)"
            if col["record"] == "Rec#"
            else "MIMS text (Rec)"
        ),
        "time_unit": unit,
        "time_unit_source": unit_note,
        "decimal_separator": "," if decimal_comma else ".",
        "n_records": n,
        "states": sorted(states),
        "dropped_incomplete_last_row": end < len(buf) and bool(buf[end:].to_pybytes().strip()),
        "columns": [t for t in titles if t],
        "source_columns": {
            "record": col["record"],
            "cycle": col["cycle"],
            "step": col["step"],
            "time_s": col["test_time"],
            "voltage_v": col["voltage"],
            "current_a": sign_source,
            "capacities": f"{col['capacity']} increments by {direction}",
            "energies": f"{col['energy']} increments by {direction}",
            "step_type": col["state"] or f"sign of {col['current']} per step",
        },
        "original_units": {
            "time_s": unit,
            "current_a": unit_of("current", "A"),
            "voltage_v": "V",
            "capacities": unit_of("capacity", "Ah"),
            "energies": unit_of("energy", "Wh"),
        },
    }
    if col["cycle_p"]:
        cp = num("cycle_p")
        metadata["cycle_p_range"] = [float(cp.min()), float(cp.max())]
    return Measurement(
        technique="cycling",
        format="maccor-text",
        reader="maccor",
        reader_version=READER_VERSION,
        instrument=meta.get("Tester") or "Maccor",
        metadata=metadata,
        tables={"cycling": table_out},
        paths=[str(path)],
    )


def _read_impedance(path: Path, buf: pa.Buffer) -> Measurement:
    head = buf[: min(len(buf), 65536)].to_pybytes().decode("latin-1").split("\n")[:_MAX_HEADER]
    k = next((i for i, ln in enumerate(head) if ln.lower().startswith("freq(hz)")), None)
    if k is None:
        raise ReaderError(path, "Maccor impedance export without a 'Freq(Hz)' title line")
    lines, start = header_lines(buf, k + 1, path)
    titles = [t.strip() for t in lines[k].split("\t")]
    probe = buf[start : min(len(buf), start + 65536)].to_pybytes()
    first = next((ln.rstrip(b"\r") for ln in probe.split(b"\n") if ln.strip()), b"")
    if not first:
        raise ReaderError(path, "no impedance rows after the title line", f"line {k + 2}")
    n_fields = first.count(b"\t") + 1
    names = (titles + [f"_extra{i}" for i in range(max(0, n_fields - len(titles)))])[:n_fields]
    names = [t or f"_col{i}" for i, t in enumerate(names)]
    for need in ("Freq(Hz)", "Z'(a)", "Z''(b)"):
        if need not in names:
            raise ReaderError(path, f"no {need!r} column", f"line {k + 1}")
    include = [c for c in ("Freq(Hz)", "Z'(a)", "Z''(b)", "time(sec)") if c in names]
    end = last_line_complete(buf, start, b"\t", n_fields)
    table = read_body(
        path, buf, start, end, names, delimiter="\t",
        types={c: pa.float64() for c in include}, include=include, first_line=k + 2,
    )  # fmt: skip
    if table.num_rows == 0:
        raise ReaderError(path, "no impedance rows after the title line")
    for c in include:
        if table.column(c).null_count:
            raise ReaderError(path, f"empty value in column {c!r} (damaged file?)")

    def a(c):
        return column_numpy(table.column(c))

    out = impedance_table(
        frequency_hz=a("Freq(Hz)"),
        z_real_ohm=a("Z'(a)"),
        z_imag_ohm=a("Z''(b)"),
        time_s=a("time(sec)") if "time(sec)" in include else None,
        path=path,
    )
    meta = {
        "header": [ln.strip() for ln in lines[:k] if ln.strip()],
        "n_points": table.num_rows,
        "dropped_incomplete_last_row": end < len(buf) and bool(buf[end:].to_pybytes().strip()),
    }
    m = re.search(r"Start Date:\s*(.+?)\s+Start Time:\s*(\d+:\d+(?::\d+)?)", "\n".join(lines[:k]))
    if m:
        for fmt in ("%A, %B %d, %Y %H:%M", "%A, %B %d, %Y %H:%M:%S"):
            try:
                meta["start_time"] = datetime.strptime(
                    f"{m.group(1)} {m.group(2)}", fmt
                ).isoformat()
                break
            except ValueError:
                continue
    if len(lines) > 2:
        meta["procedure"] = lines[2].strip()
        meta["technique_name"] = lines[0].replace("MACCOR, INC.", "").strip()
    meta["technique"] = "EIS"
    meta["source_columns"] = {
        "frequency_hz": "Freq(Hz)",
        "z_real_ohm": "Z'(a)",
        "z_imag_ohm": "Z''(b)",
        "time_s": "time(sec)",
    }
    meta["original_units"] = {
        "frequency_hz": "Hz",
        "z_real_ohm": "Ohm",
        "z_imag_ohm": "Ohm",
        "time_s": "s",
    }
    return Measurement(
        technique="impedance",
        format="maccor-impedance",
        reader="maccor",
        reader_version=READER_VERSION,
        instrument="Maccor",
        metadata=meta,
        tables={"impedance": out},
        paths=[str(path)],
    )
