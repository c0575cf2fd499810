"""Normalisation of every cycler's records into the lake's ``cycling`` and ``impedance`` tables.

Each cycler counts differently: BioLogic numbers cycles from 0 and logs charge increments,
Neware restarts its capacity counters at every step, Arbin accumulates them over the cycle or
the test, Maccor logs unsigned currents with a charge/discharge state letter. The readers hand
their raw arrays to the functions here, which apply the one convention of the ``cycling`` table
(``warehouse/schemas.py``):

- cycles are numbered from 1 (:func:`cycles_from_one`);
- positive current charges the cell (each reader multiplies by its cycler's sign);
- capacities (Ah) and energies (Wh) count from zero at the start of each cycle
  (:func:`counter_per_cycle` for counters the cycler keeps, :func:`accumulate_per_cycle` for
  charge increments);
- ``step_type`` is one of :data:`STEP_TYPES` (:func:`step_types_from_current` where the cycler
  does not say).

Pure numpy/pyarrow; no cycler library is needed for these few vectorised array operations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..warehouse.schemas import reader_schema
from .base import ReaderError

STEP_TYPES: tuple[str, ...] = ("rest", "charge", "discharge", "cv", "ocv", "impedance", "other")
# Step types travel as int8 codes (index into STEP_TYPES) until the table is built: an object
# array of strings per row costs more memory than the whole decoded table.
REST, CHARGE, DISCHARGE, CV, OCV, IMPEDANCE, OTHER = (np.int8(i) for i in range(len(STEP_TYPES)))

# Multiply a value in the key unit to get the lake unit (A, Ah, Wh, V, s).
UNIT_FACTORS: dict[str, float] = {
    "A": 1.0,
    "mA": 1e-3,
    "uA": 1e-6,
    "µA": 1e-6,
    "nA": 1e-9,
    "Ah": 1.0,
    "A.h": 1.0,
    "mAh": 1e-3,
    "mA.h": 1e-3,
    "uAh": 1e-6,
    "µA.h": 1e-6,
    "µAh": 1e-6,
    "Wh": 1.0,
    "W.h": 1.0,
    "mWh": 1e-3,
    "mW.h": 1e-3,
    "C": 1.0 / 3600.0,  # coulomb -> Ah
    "mC": 1e-3 / 3600.0,
    "V": 1.0,
    "mV": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
}


def unit_factor(unit: str) -> float:
    """Factor that converts a value in ``unit`` to the lake unit of its quantity."""
    try:
        return UNIT_FACTORS[unit]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}") from None


def _starts(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Boolean mask: True where any key array changes value (and at row 0)."""
    n = len(keys[0])
    mask = np.zeros(n, dtype=bool)
    if n:
        mask[0] = True
    for k in keys:
        k = np.asarray(k)
        if n > 1:
            mask[1:] |= k[1:] != k[:-1]
    return mask


def segments(*keys: np.ndarray) -> np.ndarray:
    """Running segment number (from 1) that grows whenever any of ``keys`` changes.

    >>> segments(np.array([1, 1, 2, 2, 1])).tolist()
    [1, 1, 2, 2, 3]
    """
    return np.cumsum(_starts(keys)).astype(np.int64)


def cycles_from_one(raw: np.ndarray) -> np.ndarray:
    """Cycle numbers from 1, whatever the cycler's own first index.

    A file that starts at cycle 0 (BioLogic, Maccor, some Arbin exports) is shifted by one; a
    file that starts at 1 is kept; a file whose smallest cycle is above 1 (a test continued in a
    new file) keeps the cycler's numbers so that cycles stay comparable across its files.

    >>> cycles_from_one(np.array([0, 0, 1, 2])).tolist()
    [1, 1, 2, 3]
    >>> cycles_from_one(np.array([1, 2])).tolist()
    [1, 2]
    """
    raw = np.asarray(raw)
    if raw.size == 0:
        return raw.astype(np.int32)
    if raw.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:
            raise ValueError(
                f"cycle number missing or not finite in data row {int(bad[0]) + 1} "
                f"({bad.size} such rows)"
            )
        raw = np.rint(raw)
    low = int(raw.min())
    shift = 1 - low if low <= 1 else 0
    return (raw.astype(np.int64) + shift).astype(np.int32)


def _group_index(cycle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(_starts([cycle]))
    group = np.cumsum(_starts([cycle])) - 1
    return starts, group


def _cycle_bounds(cycle: np.ndarray) -> np.ndarray:
    """Row offsets where cycles start, with the row count appended."""
    c = np.asarray(cycle)
    if c.size == 0:
        return np.zeros(1, dtype=np.int64)
    return np.r_[0, np.flatnonzero(c[1:] != c[:-1]) + 1, c.size]


def counter_increments(raw: np.ndarray, resets: np.ndarray | None = None) -> np.ndarray:
    """Per-row increments of a cycler's running counter (capacity or energy).

    A counter grows while it counts and restarts from zero when the cycler resets it (at a
    step, a cycle, a change of direction: cyclers differ). A drop marks a restart: there the
    increment is the new value itself, elsewhere the difference from the previous row.
    ``resets`` (segment ids, e.g. :func:`segments` of the step) forces a restart at each
    segment start, for cyclers known to restart there. The counter is taken to start from zero
    at the first row of the file.
    """
    x = np.asarray(raw, dtype=np.float64)
    inc = np.empty_like(x)
    if x.size == 0:
        return inc
    inc[0] = x[0]
    inc[1:] = np.diff(x)
    restart = np.zeros(x.size, dtype=bool)
    restart[1:] = x[1:] < x[:-1] - 1e-9 * np.abs(x[:-1])
    if resets is not None:
        restart |= _starts([resets])
    inc[restart] = x[restart]
    return inc


def counter_per_cycle(
    raw: np.ndarray, cycle: np.ndarray, *, resets: np.ndarray | None = None
) -> np.ndarray:
    """A cycler's capacity or energy counter, re-based to count from zero in each cycle.

    Whether the cycler's counter runs over the whole test, restarts every cycle or every step,
    the result is the amount counted since the start of the row's cycle
    (:func:`counter_increments` summed per cycle).
    """
    x = np.asarray(raw, dtype=np.float64)
    if resets is None and x.size > 1:
        # Fast path: a counter that only restarts (if at all) at cycle starts is re-based by
        # subtracting one value per cycle, without forming increments.
        drop = np.flatnonzero(x[1:] < x[:-1] * (1.0 - 1e-9)) + 1
        bounds = _cycle_bounds(cycle)
        if np.isin(drop, bounds[1:-1]).all() and bounds.size <= 2002:
            out = x.copy()
            starts = bounds[1:-1]
            restarted = np.isin(starts, drop)
            for k, s in enumerate(starts):
                if not restarted[k]:
                    out[s : bounds[k + 2]] -= x[s - 1]
            return out
    return accumulate_per_cycle(counter_increments(x, resets), cycle)


def accumulate_per_cycle(
    increment: np.ndarray, cycle: np.ndarray, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Running sum of ``increment`` that restarts from zero at each cycle start.

    ``out`` may be ``increment`` itself (a float64 array) to sum in place.
    """
    inc = np.asarray(increment, dtype=np.float64)
    total = np.cumsum(inc, out=out)
    bounds = _cycle_bounds(cycle)
    if 2 < bounds.size <= 2000:
        # the running total at the end of each previous cycle, removed cycle by cycle in place
        ends = total[bounds[1:-1] - 1].copy()
        for k in range(1, bounds.size - 1):
            total[bounds[k] : bounds[k + 1]] -= ends[k - 1]
    elif bounds.size > 2:
        base = np.r_[0.0, total[bounds[1:-1] - 1]]
        total -= np.repeat(base, np.diff(bounds))
    return total


def booked_per_cycle(raw: np.ndarray | None, mask: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """One running counter for both directions (Maccor's and LAND's single ``Capacity`` or
    ``Energy`` column), booked to one direction: the increments of the rows in ``mask`` (e.g.
    the charge steps), summed per cycle. Zeros where the file has no such counter (``None``).
    """
    if raw is None:
        return np.zeros(np.shape(cycle)[0])
    return accumulate_per_cycle(np.where(mask, counter_increments(raw), 0.0), cycle)


def split_increments(
    dq_ah: np.ndarray, voltage_v: np.ndarray, cycle: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Charge/discharge capacities and energies per cycle from signed charge increments.

    ``dq_ah[i]`` is the charge passed between row i-1 and row i (positive = charging). The
    energy of an increment is ``|voltage[i] * dq[i]|`` (the potential at the end of the
    interval), which is how EC-Lab accumulates its ``Energy charge/discharge`` columns.

    Returns
    -------
    charge_ah, discharge_ah, charge_wh, discharge_wh : each counting from zero in each cycle
    """
    dq = np.asarray(dq_ah, dtype=np.float64)
    av = np.abs(np.asarray(voltage_v, dtype=np.float64))
    qc = np.maximum(dq, 0.0)
    ec = np.multiply(qc, av)
    qd = np.minimum(dq, 0.0)
    np.negative(qd, out=qd)
    qd += 0.0  # -0.0 (negated zeros) becomes 0.0
    ed = np.multiply(qd, av, out=av)
    for a in (qc, qd, ec, ed):
        accumulate_per_cycle(a, cycle, out=a)
    return qc, qd, ec, ed


def step_codes(names) -> np.ndarray:
    """int8 codes of step-type names (see :data:`STEP_TYPES`)."""
    arr = np.asarray(names)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int8)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int8)
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    unknown = [u for u in uniq.tolist() if u not in STEP_TYPES]
    if unknown:
        raise ValueError(f"unknown step types {unknown}")
    lut = np.array([STEP_TYPES.index(u) for u in uniq.tolist()], dtype=np.int8)
    return lut[inv.reshape(-1)]


def step_type_names(codes: np.ndarray) -> np.ndarray:
    """Names of int8 step-type codes (object array)."""
    return np.array(STEP_TYPES, dtype=object)[np.asarray(codes, dtype=np.int64)]


def step_types_from_current(
    current_a: np.ndarray, segment: np.ndarray | None = None, *, rest_fraction: float = 1e-4
) -> np.ndarray:
    """``rest`` / ``charge`` / ``discharge`` codes from the current, decided per segment.

    A segment (a step, when ``segment`` is given; else each row) whose largest |current| is
    below ``rest_fraction`` of the file's largest |current| (or exactly zero) is a rest; else
    the sign of its mean current decides. Cyclers that record the step kind (constant voltage,
    OCV, impedance) should map it themselves; this is the fallback. Returns int8 codes
    (:func:`step_type_names` gives the names).
    """
    i = np.asarray(current_a, dtype=np.float64)
    n = i.size
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    seg = np.arange(n) if segment is None else np.asarray(segment)
    starts, group = _group_index(seg)
    imax = float(np.nanmax(np.abs(i))) if np.any(np.isfinite(i)) else 0.0
    eps = max(imax * rest_fraction, 1e-15)
    absmax = np.maximum.reduceat(np.nan_to_num(np.abs(i)), starts)
    means = np.add.reduceat(np.nan_to_num(i), starts) / np.diff(np.r_[starts, n])
    kinds = np.where(absmax <= eps, REST, np.where(means > 0, CHARGE, DISCHARGE)).astype(np.int8)
    return kinds[group]


def record_numbers(n: int, raw: np.ndarray | None = None) -> np.ndarray:
    """The cycler's record (data point) numbers, or 1..n where it has none."""
    if raw is None:
        return np.arange(1, n + 1, dtype=np.int64)
    r = np.asarray(raw)
    if r.dtype.kind == "f":
        r = np.rint(r)
    return r.astype(np.int64)


def _f64(name: str, a, n: int, path) -> pa.Array:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (n,):
        raise ReaderError(path, f"internal: column {name} has {arr.size} values for {n} rows")
    return pa.array(arr, type=pa.float64())


def cycling_table(
    *,
    time_s: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    cycle: np.ndarray,
    step: np.ndarray,
    step_type: np.ndarray,
    charge_capacity_ah: np.ndarray,
    discharge_capacity_ah: np.ndarray,
    charge_energy_wh: np.ndarray,
    discharge_energy_wh: np.ndarray,
    temperature_c: np.ndarray | None = None,
    record: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
) -> pa.Table:
    """The ``cycling`` table (schema ``reader_schema("cycling")``) from normalised arrays.

    Checks what the schema promises: cycles from 1, known step types, equal lengths, no NaN
    in time and voltage. Temperature may be None (all null) or contain NaN (null).
    """
    n = len(time_s)
    cyc = np.asarray(cycle)
    if n and int(cyc.min()) < 1:
        raise ReaderError(path, "internal: cycle numbers below 1 after normalisation")
    try:
        codes = step_codes(step_type)
    except ValueError as exc:
        raise ReaderError(path, f"internal: {exc}") from None
    if codes.shape != (n,) or (n and (codes.min() < 0 or codes.max() >= len(STEP_TYPES))):
        raise ReaderError(path, "internal: step type codes out of range or of the wrong length")
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(voltage_v, dtype=np.float64)
    if n and (not np.all(np.isfinite(t)) or not np.all(np.isfinite(v))):
        bad = int(np.flatnonzero(~(np.isfinite(t) & np.isfinite(v)))[0]) + 1
        raise ReaderError(path, f"missing or non-numeric time or voltage in data record {bad}")
    if temperature_c is None:
        temp = pa.nulls(n, pa.float64())
    else:
        ta = np.asarray(temperature_c, dtype=np.float64)
        temp = pa.array(ta, type=pa.float64(), mask=~np.isfinite(ta))
    cols = {
        "record": pa.array(record_numbers(n, record), type=pa.int64()),
        "cycle": pa.array(np.asarray(cyc, dtype=np.int32), type=pa.int32()),
        "step": pa.array(np.asarray(step, dtype=np.int32), type=pa.int32()),
        "step_type": pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int8()), pa.array(STEP_TYPES)
        ).cast(pa.string()),
        "time_s": _f64("time_s", t, n, path),
        "voltage_v": _f64("voltage_v", v, n, path),
        "current_a": _f64("current_a", current_a, n, path),
        "charge_capacity_ah": _f64("charge_capacity_ah", charge_capacity_ah, n, path),
        "discharge_capacity_ah": _f64("discharge_capacity_ah", discharge_capacity_ah, n, path),
        "charge_energy_wh": _f64("charge_energy_wh", charge_energy_wh, n, path),
        "discharge_energy_wh": _f64("discharge_energy_wh", discharge_energy_wh, n, path),
        "temperature_c": temp,
    }
    schema = reader_schema("cycling")
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def impedance_table(
    *,
    frequency_hz: np.ndarray,
    z_real_ohm: np.ndarray,
    z_imag_ohm: np.ndarray,
    cycle: np.ndarray | None = None,
    time_s: np.ndarray | None = None,
    record: np.ndarray | None = None,
    path: str | os.PathLike | None = None,
) -> pa.Table:
    """The ``impedance`` table. ``z_imag_ohm`` is Im(Z) as measured (negative when capacitive)."""
    n = len(frequency_hz)
    f = np.asarray(frequency_hz, dtype=np.float64)
    if n and not np.all(np.isfinite(f)):
        raise ReaderError(path, "missing or non-numeric frequency in an impedance record")
    cols = {
        "record": pa.array(record_numbers(n, record), type=pa.int64()),
        "frequency_hz": pa.array(f, type=pa.float64()),
        "z_real_ohm": _f64("z_real_ohm", z_real_ohm, n, path),
        "z_imag_ohm": _f64("z_imag_ohm", z_imag_ohm, n, path),
        "cycle": pa.nulls(n, pa.int32())
        if cycle is None
        else pa.array(np.asarray(cycle).astype(np.int32), type=pa.int32()),
        "time_s": pa.nulls(n, pa.float64()) if time_s is None else _f64("time_s", time_s, n, path),
    }
    schema = reader_schema("impedance")
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
