"""What the BioLogic ``.mpr`` and ``.mpt`` readers share: EC-Lab's technique and device codes,
and the one mapping of EC-Lab columns into the ``cycling`` / ``impedance`` tables.

Both readers first produce the same thing, a dict of EC-Lab column titles (as the ``.mpt``
export writes them, e.g. ``"time/s"``, ``"Ewe/V"``, ``"dq/mA.h"``) to float64 arrays, and then
call :func:`tables_from_columns`. The export adds columns that EC-Lab derives on export
(``<I>/mA`` from ``dq``, ``cycle number`` from ``half cycle``, energies); where the binary file
lacks them they are derived here the same way, so that an ``.mpr`` and its ``.mpt`` give the same
rows (tested on every pair in the samples).

Codes below were read off the sample files, each ``.mpr`` checked against its ``.mpt`` header:
technique ids (first byte of the settings module, third byte of the log module) and device
codes (log module). Unknown codes are reported as such, never guessed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import cycling_common as cc
from .base import ReaderError
from .cycling_common import (
    cycles_from_one,
    cycling_table,
    impedance_table,
    segments,
    split_increments,
    step_types_from_current,
)

# technique id (binary files) -> short name; verified on samples/cycler-biologic.
TECHNIQUE_IDS: dict[int, str] = {4: "GCPL", 11: "OCV", 25: "CP", 29: "PEIS", 50: "ZIR", 108: "LSV"}

# technique title line of the .mpt header -> short name.
TECHNIQUE_NAMES: dict[str, str] = {
    "Galvanostatic Cycling with Potential Limitation": "GCPL",
    "Open Circuit Voltage": "OCV",
    "Chronopotentiometry": "CP",
    "Chronoamperometry / Chronocoulometry": "CA",
    "Potentio Electrochemical Impedance Spectroscopy": "PEIS",
    "Galvano Electrochemical Impedance Spectroscopy": "GEIS",
    "IR compensation (PEIS)": "ZIR",
    "Linear Sweep Voltammetry": "LSV",
    "Cyclic Voltammetry": "CV",
    "Cyclic Voltammetry Advanced": "CVA",
    "Modulo Bat": "MB",
}

IMPEDANCE_TECHNIQUES = frozenset({"PEIS", "GEIS", "ZIR"})
# Potential sweeps: their potentiostatic rows are not a constant-voltage charge step.
SWEEP_TECHNIQUES = frozenset({"LSV", "CV", "CVA", "CA"})

# device code in the log module -> model; verified on the samples (the .mpt "Device :" line).
DEVICE_CODES: dict[int, str] = {5: "VMP3", 16: "SP-300", 27: "SP-240"}

# working-electrode potential: instantaneous, averaged (EC-Lab writes ``<Ewe>/V`` and, in some
# 11.50 exports, ``<Ewe/V>``), and BT-Lab's cell voltage on battery cyclers (BCS: ``Ecell/V``)
_VOLTAGE = ("Ewe/V", "<Ewe>/V", "<Ewe/V>", "Ecell/V")
_CURRENT = ("I/mA", "<I>/mA")
_CHARGE = ("dq/mA.h", "(Q-Qo)/mA.h", "(Q-Qo)/C")
_CYCLE = ("cycle number", "half cycle")
_SMALL_INTS = ("mode", "ox/red", "Ns", "half cycle", "cycle number")
_IMPEDANCE = ("freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm")


def needed_columns(titles: list[str]) -> dict[str, str]:
    """The EC-Lab columns the mapping uses, among ``titles``, with the numpy type to read
    them as (small integer flags as float32: exact, and half the memory)."""
    have = set(titles)
    names = ["time/s", "mode", "ox/red", "Ns", "Temperature/°C"]
    for group in (_VOLTAGE, _CURRENT, _CHARGE, _CYCLE):
        first = next((c for c in group if c in have), None)
        if first:
            names.append(first)
    if "freq/Hz" in have:  # impedance, or a file that mixes impedance and other rows (MB)
        names += [*_IMPEDANCE, "cycle number"]
    names = list(dict.fromkeys(names))
    return {c: ("float32" if c in _SMALL_INTS else "float64") for c in names if c in have}


def _diff0(x: np.ndarray) -> np.ndarray:
    d = np.empty_like(x)
    if x.size:
        d[0] = 0.0
        d[1:] = np.diff(x)
    return d


def charge_increments(cols: dict[str, np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    """Charge passed since the previous row, in mA.h, and the column it came from."""
    if "dq/mA.h" in cols:
        return cols["dq/mA.h"], "dq/mA.h"
    if "(Q-Qo)/mA.h" in cols:
        return _diff0(cols["(Q-Qo)/mA.h"]), "(Q-Qo)/mA.h"
    if "(Q-Qo)/C" in cols:
        return _diff0(cols["(Q-Qo)/C"]) / 3.6, "(Q-Qo)/C"
    return None, None


def tables_from_columns(
    cols: dict[str, np.ndarray], technique: str | None, path: Path
) -> tuple[str, dict[str, pa.Table], dict]:
    """(measurements.technique, tables, mapping metadata) from EC-Lab columns.

    A file with ``freq/Hz`` whose rows are all impedance points (PEIS, GEIS, ZIR) gives the
    ``impedance`` table alone. Rows with ``freq/Hz`` 0 are not impedance points: the recorded
    potential/current hold of GEIS/PEIS, or the rest and CC sequences of a Modulo Bat run that
    also has PEIS/GEIS sequences. A file with such rows gives the ``cycling`` table of all rows
    (impedance rows with ``step_type`` ``impedance``) and the ``impedance`` table of the rows with
    a frequency, whose ``record`` is the row number in the file.
    """
    if not cols:
        raise ReaderError(path, "no data columns")
    n = len(next(iter(cols.values())))
    if n == 0:
        raise ReaderError(path, "no data points")
    is_impedance = technique in IMPEDANCE_TECHNIQUES
    if "freq/Hz" not in cols and not is_impedance:
        table, mapping = _cycling(cols, technique, path)
        return "cycling", {"cycling": table}, mapping
    if "freq/Hz" not in cols:
        _impedance(cols, path)  # raises: names the missing column
    f = cols["freq/Hz"]
    eis = np.isfinite(f) & (f > 0)
    if eis.all():
        return "impedance", {"impedance": _impedance(cols, path)}, _impedance_mapping(cols)
    try:
        table, mapping = _cycling(cols, technique, path, impedance_rows=eis)
    except ReaderError:
        if not (is_impedance and eis.any()):
            raise
        # the hold rows cannot make a cycling table (no potential column): impedance points only
        mapping = _impedance_mapping(cols)
        mapping["impedance_rows"] = _rows_note(eis)
        return "impedance", {"impedance": _impedance(cols, path, rows=eis)}, mapping
    tables = {"cycling": table}
    if eis.any():
        imp = _impedance(cols, path, rows=eis)
        tables = (
            {"impedance": imp, "cycling": table} if is_impedance else {**tables, "impedance": imp}
        )
        imp_map = _impedance_mapping(cols)
        mapping["source_columns"].update(
            {k: v for k, v in imp_map["source_columns"].items() if k != "cycle"}
        )
        mapping["original_units"].update(imp_map["original_units"])
        mapping["impedance_rows"] = _rows_note(eis)
    return ("impedance" if is_impedance and eis.any() else "cycling"), tables, mapping


def _rows_note(eis: np.ndarray) -> str:
    return (
        f"{int(eis.sum())} of {eis.size} rows have freq/Hz > 0 and are impedance points "
        "(impedance.record = row number in the file); the others are not"
    )


def _impedance_mapping(cols: dict[str, np.ndarray]) -> dict:
    return {
        "source_columns": {
            "frequency_hz": "freq/Hz",
            "z_real_ohm": "Re(Z)/Ohm",
            "z_imag_ohm": "-Im(Z)/Ohm (sign flipped)",
            "cycle": "cycle number" if "cycle number" in cols else None,
        },
        "original_units": {"frequency_hz": "Hz", "z_real_ohm": "Ohm", "z_imag_ohm": "Ohm"},
    }


def _impedance(cols: dict[str, np.ndarray], path: Path, rows: np.ndarray | None = None) -> pa.Table:
    """The impedance table of all rows, or of the rows selected by the mask ``rows``."""
    for c in ("freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"):
        if c not in cols:
            raise ReaderError(path, f"impedance data without the column {c!r}")
    # cycles numbered over the whole file, so that they match the cycling table's
    cycle = cycles_from_one(cols["cycle number"]) if "cycle number" in cols else None
    time_s = cols.get("time/s")
    record = None
    if rows is not None:
        pick = np.flatnonzero(rows)
        record = pick + 1
        cycle = cycle[pick] if cycle is not None else None
        time_s = time_s[pick] if time_s is not None else None
    sel = (lambda a: a) if rows is None else (lambda a: a[rows])
    return impedance_table(
        frequency_hz=sel(cols["freq/Hz"]),
        z_real_ohm=sel(cols["Re(Z)/Ohm"]),
        z_imag_ohm=-sel(cols["-Im(Z)/Ohm"]),
        cycle=cycle,
        time_s=time_s,
        record=record,
        path=path,
    )


def _cycling(
    cols: dict[str, np.ndarray],
    technique: str | None,
    path: Path,
    impedance_rows: np.ndarray | None = None,
) -> tuple[pa.Table, dict]:
    if "time/s" not in cols:
        raise ReaderError(
            path,
            "no time/s column (absolute-time exports are not supported: export with elapsed time)",
        )
    t = cols["time/s"]
    vname = next((c for c in _VOLTAGE if c in cols), None)
    if vname is None:
        raise ReaderError(path, f"no working-electrode potential column ({' or '.join(_VOLTAGE)})")
    v = cols[vname]
    mode = cols.get("mode")
    dq, dq_source = charge_increments(cols)
    dt = np.empty_like(t)
    if t.size:
        dt[0] = 0.0
        np.subtract(t[1:], t[:-1], out=dt[1:])
    iname = next((c for c in _CURRENT if c in cols), None)
    open_circuit = False
    if iname is not None:
        i_ma = cols[iname]
        current_source = iname
    elif dq is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            i_ma = np.where(dt > 0, dq * 3600.0 / dt, 0.0)
        current_source = f"{dq_source} / dt (as EC-Lab derives <I>)"
    elif mode is None or np.all(mode == 3):
        i_ma = np.zeros_like(t)
        open_circuit = True
        current_source = "none (open circuit)"
    else:
        raise ReaderError(
            path, "no current and no charge column in a file with current-controlled rows"
        )
    if dq is None and not open_circuit:
        dq = i_ma * dt / 3600.0
        dq_source = f"{iname or 'current'} * dt"
    del dt

    if "cycle number" in cols:
        cycle = cycles_from_one(cols["cycle number"])
        cycle_source = "cycle number"
    elif "half cycle" in cols:
        cycle = cycles_from_one(np.floor_divide(cols["half cycle"], 2))
        cycle_source = "half cycle // 2 (EC-Lab: charge/discharge alternance)"
    else:
        cycle = np.ones(t.size, dtype=np.int32)
        cycle_source = "none (one cycle)"
    step = (
        (np.rint(cols["Ns"]).astype(np.int32) + 1)
        if "Ns" in cols
        else np.ones(t.size, dtype=np.int32)
    )

    i_a = i_ma * 1e-3 if not open_circuit else i_ma
    if open_circuit:
        step_type = np.full(t.size, cc.OCV, dtype=np.int8)
    elif mode is not None:
        m = np.rint(mode).astype(np.int8)
        pot = cc.OTHER if technique in SWEEP_TECHNIQUES else cc.CV
        if "ox/red" in cols:  # EC-Lab's own direction flag: 1 oxidation (charge), 0 reduction
            galv = np.where(cols["ox/red"] == 1, cc.CHARGE, cc.DISCHARGE)
        else:
            galv = np.where(i_a > 0, cc.CHARGE, np.where(i_a < 0, cc.DISCHARGE, cc.REST))
        step_type = np.select([m == 3, m == 2, m == 1], [cc.REST, pot, galv], cc.OTHER).astype(
            np.int8
        )
        del m, galv
    else:
        step_type = step_types_from_current(i_a, segments(step, cycle))
    if impedance_rows is not None and impedance_rows.any():
        step_type = np.where(impedance_rows, cc.IMPEDANCE, step_type).astype(np.int8)

    if open_circuit:  # nothing flows: one shared zero column for all four counters
        qc = qd = ec = ed = i_a
        dq_source = "none (open circuit)"
    else:
        qc, qd, ec, ed = split_increments(np.multiply(dq, 1e-3), v, cycle)
    del dq
    temp = cols.get("Temperature/°C")
    table = cycling_table(
        time_s=t,
        voltage_v=v,
        current_a=i_a,
        cycle=cycle,
        step=step,
        step_type=step_type,
        charge_capacity_ah=qc,
        discharge_capacity_ah=qd,
        charge_energy_wh=ec,
        discharge_energy_wh=ed,
        temperature_c=temp,
        path=path,
    )
    mapping = {
        "source_columns": {
            "time_s": "time/s",
            "voltage_v": vname,
            "current_a": current_source,
            "capacities": dq_source,
            "energies": f"|{vname} x dq| summed per cycle",
            "cycle": cycle_source,
            "step": "Ns + 1" if "Ns" in cols else None,
            "step_type": ("mode (1 CC, 2 CV, 3 rest) and ox/red" if mode is not None else "current")
            + ("; impedance where freq/Hz > 0" if impedance_rows is not None else ""),
        },
        "original_units": {
            "time_s": "s",
            "voltage_v": "V",
            "current_a": "mA",
            "capacities": "C" if dq_source == "(Q-Qo)/C" else "mA.h",
        },
    }
    return table, mapping


def twin_key(kind: str, table: pa.Table) -> str:
    """Key shared by an .mpr and its .mpt export (and by nothing else).

    Derived from the acquisition's own data, not from names or headers (the minimal ``.mpt``
    header has neither start time nor technique): the table kind, the number of points and
    the elapsed time of the first, middle and last point, which the export writes with 16
    significant digits, rounded to the millisecond.
    """
    n = table.num_rows
    t = table.column("time_s").to_numpy(zero_copy_only=False) if n else np.zeros(0)
    picks = [t[0], t[n // 2], t[-1]] if n else []
    parts = [kind, str(n)] + [f"{x:.3f}" if np.isfinite(x) else "nan" for x in picks]
    return "biologic-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
