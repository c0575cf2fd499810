"""BioLogic EC-Lab ASCII export (``.mpt``) of a GCPL (galvanostatic cycling with potential
limitation) experiment, in the layout of the real export
../shared/samples/cycler-biologic/gcpl.issue_149.mpt (EC-Lab v11.50, SP-300).

Layout (what the real file shows and this writer reproduces): ``EC-Lab ASCII FILE``,
``Nb header lines : N`` padded to 46 characters, the technique name, channel / device / software
lines, the electrode and cell lines, ``Cycle Definition``, the per-sequence settings table
(``Ns`` columns 0 rest, 1 charge, 2 discharge; labels and values padded to 20 characters), the
loop table (one loop = rest, charge, discharge, as in the real file), the tab-separated column
titles and the data rows. Latin-1, LF line ends, tab separated, decimal mark from the locale
(comma, as in the real file, by default). Numbers follow the real file's formats: integers for
flags and counters, ``%.15E`` with a three-digit exponent for doubles (time, charges, energies,
currents, cycle number), ``%.7E`` for single-precision columns (control, Ewe, efficiency).

Columns written (EC-Lab lets the user choose the exported columns; these are the real file's
titles and units, in its order, without power and capacitance): mode, ox/red, error,
control changes, Ns changes, counter inc., Ns, time/s, dq/mA.h, (Q-Qo)/mA.h, control/V/mA,
Ewe/V, I Range, Q charge/discharge/mA.h, half cycle, Energy charge/W.h, Energy discharge/W.h,
step time/s, <I>/mA, Q discharge/mA.h, Q charge/mA.h, Capacity/mA.h, Efficiency/%,
cycle number. Conventions as in the real file: mode 1 galvanostatic, 3 rest; ox/red 1 during
charge and rest, 0 during discharge; cycle number from 0, incremented at each new charge;
half cycle counted from 0; ``Q charge``/``Q discharge`` count from zero in their half cycle and
hold their value through the rest that follows; Efficiency is written at the first point after
a discharge.

Why not a library: no maintained package writes EC-Lab files (galvani, yadg, eclabfiles read
them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = (
    "mode",
    "ox/red",
    "error",
    "control changes",
    "Ns changes",
    "counter inc.",
    "Ns",
    "time/s",
    "dq/mA.h",
    "(Q-Qo)/mA.h",
    "control/V/mA",
    "Ewe/V",
    "I Range",
    "Q charge/discharge/mA.h",
    "half cycle",
    "Energy charge/W.h",
    "Energy discharge/W.h",
    "step time/s",
    "<I>/mA",
    "Q discharge/mA.h",
    "Q charge/mA.h",
    "Capacity/mA.h",
    "Efficiency/%",
    "cycle number",
)
_INT = {"mode", "ox/red", "error", "control changes", "Ns changes", "counter inc.", "Ns"}
_INT |= {"I Range", "half cycle"}
_SINGLE = {"control/V/mA", "Ewe/V", "Efficiency/%"}


@dataclass
class GcplSettings:
    """Settings written into the header."""

    current_ma: float
    charge_limit_v: float = 4.3
    discharge_limit_v: float = 3.0
    rest_s: float = 600.0
    electrode_material: str = ""
    initial_state: str = ""
    electrolyte: str = ""
    comments: str = ""
    mass_mg: float = 10.0
    area_cm2: float = 1.13
    channel: int = 1
    acquisition_start: str = "01/10/2024 11:02:29.886"
    file_stem: str = "cell"


@dataclass
class GcplTrace:
    """Raw samples of a GCPL run, one entry per recorded point.

    ``ns``: sequence (0 rest, 1 charge, 2 discharge); ``time_s`` cumulative; ``voltage_v`` Ewe;
    ``current_ma`` (positive charges); ``q_half_mah``: charge passed since the start of the
    current half cycle (non-negative; held through rests); ``energy_half_wh`` likewise;
    ``cycle``: cycle number from 0; ``half_cycle``: from 0; ``loop``: technique loop index.
    """

    ns: np.ndarray
    time_s: np.ndarray
    voltage_v: np.ndarray
    current_ma: np.ndarray
    q_half_mah: np.ndarray
    energy_half_wh: np.ndarray
    cycle: np.ndarray
    half_cycle: np.ndarray
    loop: np.ndarray
    step_time_s: np.ndarray


def _sci(values: np.ndarray, digits: int, decimal: str) -> list[str]:
    """EC-Lab scientific notation: mantissa with ``digits`` decimals, 3-digit exponent."""
    out = []
    for s in np.char.mod(f"%.{digits}E", np.asarray(values, float)).tolist():
        mant, _, exp = s.partition("E")
        out.append(f"{mant}E{exp[0]}{int(exp[1:]):03d}")
    if decimal != ".":
        out = [s.replace(".", decimal) for s in out]
    return out


def _num(v: float, fmt: str, decimal: str) -> str:
    return format(v, fmt).replace(".", decimal)


def _settings_table(s: GcplSettings, decimal: str) -> list[str]:
    def row(label: str, *vals: str) -> str:
        return label.ljust(20) + "".join(v.ljust(20) for v in vals)

    cur = _num(abs(s.current_ma), ".3f", decimal)
    zero3 = _num(0, ".3f", decimal)
    lo, hi = _num(s.discharge_limit_v, ".3f", decimal), _num(s.charge_limit_v, ".3f", decimal)
    rest = int(round(s.rest_s))
    rest_hms = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60}{decimal}0000"
    zero_t = f"0:00:0{decimal}0000"
    return [
        row("Ns", "0", "1", "2"),
        row("Set I/C", "I", "I", "I"),
        row("Is", zero3, cur, "-" + cur),
        row("unit Is", "mA", "mA", "mA"),
        row("vs.", "<None>", "<None>", "<None>"),
        row("N", *[_num(1, ".2f", decimal)] * 3),
        row("I sign", "> 0", "> 0", "> 0"),
        row("t1 (h:m:s)", zero_t, zero_t, zero_t),
        row("I Range", "10 mA", "10 mA", "10 mA"),
        row("Bandwidth", "8", "8", "8"),
        row("dE1 (mV)", *[_num(0, ".2f", decimal)] * 3),
        row("dt1 (s)", *[_num(v, ".4f", decimal) for v in (0, 60, 60)]),
        row("EM (V)", zero3, hi, lo),
        row("tM (h:m:s)", zero_t, zero_t, zero_t),
        row("Im", zero3, zero3, zero3),
        row("unit Im", "mA", "mA", "mA"),
        row("E range min (V)", *[_num(0, ".3f", decimal)] * 3),
        row("E range max (V)", *[_num(5, ".3f", decimal)] * 3),
        row("tR (h:m:s)", rest_hms, zero_t, zero_t),
        row("dtR (s)", *[_num(v, ".4f", decimal) for v in (60, 0, 0)]),
        row("goto Ns'", "0", "0", "0"),
        row("nc cycles", "0", "0", "0"),
    ]


def _derived(t: GcplTrace) -> dict[str, np.ndarray]:
    n = t.ns.size
    rest = t.ns == 0
    charge = t.ns == 1
    discharge = t.ns == 2
    mode = np.where(rest, 3, 1)
    oxred = np.where(discharge, 0, 1)
    first = np.ones(n, bool)
    first[1:] = t.ns[1:] != t.ns[:-1]
    ns_changes = first.copy()
    ns_changes[0] = False
    control = np.where(rest, 0.0, t.current_ma)
    # charge bookkeeping: signed half-cycle charge, cumulative Q - Qo
    signed = np.where(discharge, -t.q_half_mah, t.q_half_mah)
    dq = np.zeros(n)
    active = ~rest
    prev = np.concatenate([[0.0], signed[:-1]])
    new_half = np.ones(n, bool)
    new_half[1:] = t.half_cycle[1:] != t.half_cycle[:-1]
    dq[active] = np.where(new_half[active], signed[active], (signed - prev)[active])
    q_qo = np.cumsum(dq)
    q_dis = np.where(t.half_cycle % 2 == 1, t.q_half_mah, 0.0)
    q_ch = np.where(t.half_cycle % 2 == 0, t.q_half_mah, 0.0)
    e_ch = np.where(t.half_cycle % 2 == 0, t.energy_half_wh, 0.0)
    e_dis = np.where(t.half_cycle % 2 == 1, t.energy_half_wh, 0.0)
    # efficiency at the first rest point after each discharge: Q dis / Q ch of that cycle
    eff = np.zeros(n)
    q_ch_end: dict[int, float] = {}
    for i in np.flatnonzero(charge):
        q_ch_end[int(t.cycle[i])] = float(t.q_half_mah[i])
    after_dis = np.flatnonzero(rest & np.concatenate([[False], discharge[:-1]]))
    for i in after_dis:
        c = int(t.cycle[i])
        if q_ch_end.get(c, 0) > 0:
            eff[i] = 100.0 * t.q_half_mah[i] / q_ch_end[c]
    return {
        "mode": mode,
        "ox/red": oxred,
        "error": np.zeros(n, int),
        "control changes": first.astype(int),
        "Ns changes": ns_changes.astype(int),
        "counter inc.": np.zeros(n, int),
        "Ns": t.ns,
        "time/s": t.time_s,
        "dq/mA.h": dq,
        "(Q-Qo)/mA.h": q_qo,
        "control/V/mA": control,
        "Ewe/V": t.voltage_v,
        "I Range": np.where(rest, 39, 41),
        "Q charge/discharge/mA.h": signed,
        "half cycle": t.half_cycle,
        "Energy charge/W.h": e_ch,
        "Energy discharge/W.h": e_dis,
        "step time/s": t.step_time_s,
        "<I>/mA": np.where(rest, 0.0, t.current_ma),
        "Q discharge/mA.h": q_dis,
        "Q charge/mA.h": q_ch,
        "Capacity/mA.h": t.q_half_mah,
        "Efficiency/%": eff,
        "cycle number": t.cycle.astype(float),
    }


def write_gcpl_mpt(
    path: str | os.PathLike, trace: GcplTrace, settings: GcplSettings, *, decimal: str = ","
) -> Path:
    """Write a GCPL run as an EC-Lab ``.mpt`` file; returns the path."""
    cols = _derived(trace)
    text_cols = []
    for name in COLUMNS:
        v = cols[name]
        if name in _INT:
            text_cols.append([str(int(x)) for x in v])
        else:
            text_cols.append(_sci(v, 7 if name in _SINGLE else 15, decimal))
    body = ["\t".join(r) + "\t" for r in zip(*text_cols, strict=True)]

    loops = np.asarray(trace.loop)
    loop_lines = []
    for k in np.unique(loops):
        idx = np.flatnonzero(loops == k)
        loop_lines.append(f"Loop {int(k)} from point number {idx[0]} to {idx[-1]}")
    d = decimal
    s = settings
    head = [
        "EC-Lab ASCII FILE",
        None,  # Nb header lines
        "",
        "Galvanostatic Cycling with Potential Limitation",
        "",
        f"Run on channel : {s.channel} (SN 15265)",
        "User : ",
        "Electrode connection : standard",
        "Potential control : Ewe",
        f"Ewe ctrl range : min = {_num(0, '.2f', d)} V, max = {_num(5, '.2f', d)} V",
        "Ewe,I filtering : 50 kHz",
        "Safety Limits :",
        "\tDo not start on E overload",
        "Channel : Floating",
        f"Acquisition started on : {s.acquisition_start}",
        f"Technique started on : {s.acquisition_start}",
        "Loaded Setting File :  NONE",
        "Saved on :",
        f"\tFile : {s.file_stem}.mpr",
        "\tDirectory : C:\\Users\\lab\\cycling\\",
        "\tHost : 169.254.189.50",
        "Device : SP-300 (SN 1854)",
        "Address : 169.254.189.65",
        "EC-Lab for windows v11.50 (software)",
        "Internet server v11.50 (firmware)",
        "Command interpretor v11.50 (firmware)",
        f"Electrode material : {s.electrode_material}",
        f"Initial state : {s.initial_state}",
        f"Electrolyte : {s.electrolyte}",
        f"Comments : {s.comments}",
        "Cable : standard",
        f"Electrode surface area : {_num(s.area_cm2, '.3f', d)} cm\u00b2",
        f"Characteristic mass : {_num(s.mass_mg, '.3f', d)} mg",
        f"Equivalent Weight : {_num(0, '.3f', d)} g/eq.",
        f"Density : {_num(0, '.3f', d)} g/cm3",
        f"Volume (V) : {_num(0.001, '.3f', d)} cm\u00b3",
        "Cycle Definition : Charge/Discharge alternance",
        *_settings_table(s, d),
        "",
        f"Number of loops : {len(loop_lines)}",
        *loop_lines,
        "",
        "\t".join(COLUMNS) + "\t",
    ]
    head[1] = f"Nb header lines : {len(head)}".ljust(46)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="latin-1", newline="\n") as fh:
        fh.write("\n".join(head) + "\n")
        fh.write("\n".join(body) + "\n")
    return p
