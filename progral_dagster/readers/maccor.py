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
- AC impedance export (``*.EDA0001.041``): ``MACCOR, INC. AC Impedance Test`` header block,
  then ``Freq(Hz)<TAB>Polar(V)<TAB>time(sec)<TAB>Z'(a)<TAB>Z''(b)<TAB>Phase_Angle...``. ``Z''``
  is Im(Z) as measured (the file's own phase angle is atan2(Z'', Z')), so it is stored as is.

Cycling mapping: Maccor logs an unsigned current with a state letter (``C`` charge, ``D``
discharge, ``R`` rest, ``FRA`` impedance, others such as ``O``/``S``/``P`` kept as ``other``);
the current gets the sign of the state. ``Amp-hr``/``Watt-hr`` are one running counter each
(restarting when Maccor resets it); their increments are booked to charge in ``C`` rows and to
discharge in ``D`` rows, and summed per cycle. Cycle: ``Cyc#`` (raw export) or ``Cycle C``
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
)

FORMATS = ("maccor-text", "maccor-impedance")
READER_VERSION = "1"
_MAX_HEADER = 80

# canonical -> accepted titles (lower case)
_TITLES: dict[str, tuple[str, ...]] = {
    "record": ("rec#", "rec"),
    "cycle": ("cyc#", "cycle c", "cycle"),
    "cycle_p": ("cycle p",),
    "step": ("step",),
    "test_time": ("testtime", "test time", "test (sec)", "test time (sec)"),
    "capacity": ("amp-hr", "cap. [ah]", "capacity (ahr)", "ahr"),
    "energy": ("watt-hr", "ener. [wh]", "energy (whr)", "whr"),
    "current": ("amps", "current [a]", "current"),
    "voltage": ("volts", "voltage [v]", "voltage"),
    "state": ("state", "md"),
    "wallclock": ("dpt time", "dpt time "),
    "temperature": ("temp 1", "temperature", "temp"),
}
STATE_TYPES = {"C": "charge", "D": "discharge", "R": "rest", "FRA": "impedance"}
_DAYTIME = r"^\s*(\d+)d\s+(\d+):(\d+):([0-9.,]+)\s*$"


def _find_titles(lines: list[str]) -> int | None:
    for k, line in enumerate(lines):
        cells = [c.strip().lower() for c in line.split("\t")]
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
        cells = {c.strip().lower() for c in lines[k].split("\t")}
        if cells & set(_TITLES["current"]) and cells & set(_TITLES["voltage"]):
            return "maccor-text"
    return None


def _column(titles: list[str], key: str) -> str | None:
    low = {t.strip().lower(): t for t in titles}
    for cand in _TITLES[key]:
        if cand in low:
            return low[cand]
    return None


def _header_metadata(lines: list[str]) -> dict:
    meta: dict = {}
    if lines and lines[0].startswith("Today's Date"):
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
        if "\t" in line:
            key, _, value = line.partition("\t")
            key = key.strip().rstrip(":")
            if key:
                meta[key] = value.strip()
    return meta


def _start_time(meta: dict) -> str | None:
    for key in ("Started", "date_of_test"):
        v = meta.get(key)
        if not v:
            continue
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%d.%m.%Y %H:%M:%S"):
            try:
                t = datetime.strptime(v.strip(), fmt)
                return t.date().isoformat() if fmt == "%m/%d/%Y" else t.isoformat()
            except ValueError:
                continue
    return None


def _iso(epoch_s: float) -> str:
    """Wall-clock (no time zone, as the cycler wrote it) from seconds since 1970-01-01."""
    return (datetime(1970, 1, 1) + timedelta(seconds=float(epoch_s))).isoformat()


def _clock(line: bytes, index: int) -> float | None:
    """Seconds since 1970 of the wall-clock cell of one data line (None if unparseable)."""
    cells = line.rstrip(b"\r\n").split(b"\t")
    if index >= len(cells):
        return None
    text = cells[index].decode("latin-1").strip()
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M:%S"):
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
    titles = lines[k].split("\t")
    while titles and not titles[-1].strip():
        titles.pop()
    meta = _header_metadata(lines[:k])
    # first data line (skip blank lines)
    probe = buf[start : min(len(buf), start + 65536)].to_pybytes()
    first = next((ln.rstrip(b"\r") for ln in probe.split(b"\n") if ln.strip()), b"")
    if not first:
        raise ReaderError(path, "no data rows after the column titles", f"line {k + 2}")
    n_fields = first.count(b"\t") + 1
    names = [t.strip() or f"_col{i}" for i, t in enumerate(titles)]
    if n_fields > len(names):
        names += [f"_extra{i}" for i in range(n_fields - len(names))]
    elif n_fields < len(names):
        names = names[:n_fields]
    end = last_line_complete(buf, start, b"\t", n_fields)
    col = {key: _column(names, key) for key in _TITLES}
    for key in ("test_time", "current", "voltage", "state"):
        if col[key] is None:
            raise ReaderError(
                path, f"no {key.replace('_', ' ')} column among the titles", f"line {k + 1}"
            )
    tt_cell = first.split(b"\t")[names.index(col["test_time"])]
    daytime = re.match(_DAYTIME.encode(), tt_cell) is not None
    decimal_comma = re.search(rb"\d,\d", first) is not None
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
    types[col["state"]] = pa.string()
    types[col["test_time"]] = pa.string() if daytime else pa.float64()
    table = read_body(
        path, buf, start, end, names, delimiter="\t", decimal_comma=decimal_comma,
        types=types, include=list(types), first_line=k + 2, null_values=["", "N/A"],
    )  # fmt: skip
    n = table.num_rows
    if n == 0:
        raise ReaderError(path, "no data rows after the column titles")
    for c in (col["test_time"], col["current"], col["voltage"], col["state"]):
        if table.column(c).null_count:
            raise ReaderError(path, f"empty value in column {c!r} (damaged file?)")
    data = Columns(table)
    del table

    def num(key: str) -> np.ndarray | None:
        c = col[key]
        return data.get(c) if c else None

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
        c0, c1 = _clock(first, ci), _clock(tail[tail.rfind(b"\n") + 1 :], ci)
        clock = np.array([c0, c1], dtype=float) if c0 is not None and c1 is not None else None
    factor, unit, unit_note = (1.0, "s", "d hh:mm:ss") if daytime else _time_unit(tt, clock)
    time_s = tt * factor

    step_type, states = string_codes(
        data.take(col["state"]), lambda s: STEP_TYPES.index(STATE_TYPES.get(s, "other"))
    )
    is_c = step_type == CHARGE
    is_d = step_type == DISCHARGE
    amps = num("current")
    current = np.where(is_c, np.abs(amps), np.where(is_d, -np.abs(amps), amps))
    cycle = cycles_from_one(num("cycle")) if col["cycle"] else np.ones(n, dtype=np.int32)
    step = np.rint(num("step")).astype(np.int64) if col["step"] else np.ones(n, dtype=np.int64)

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
    metadata = {
        **{k2: v for k2, v in meta.items()},
        "start_time": _iso(c0) if c0 is not None else _start_time(meta),
        "export_variant": "raw data (Rec#)" if col["record"] == "Rec#" else "MIMS text (Rec)",
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
            "current_a": f"{col['current']} signed by {col['state']}",
            "capacities": f"{col['capacity']} increments by {col['state']}",
            "energies": f"{col['energy']} increments by {col['state']}",
            "step_type": col["state"],
        },
        "original_units": {
            "time_s": unit,
            "current_a": "A",
            "voltage_v": "V",
            "capacities": "Ah",
            "energies": "Wh",
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
