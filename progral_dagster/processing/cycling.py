"""Cycling features per cycle and per cell, from the lake's ``cycling`` table.

Input: the ``cycling`` table of ``warehouse/schemas.py`` (cycle numbered from 1, positive
current charges, ``charge_capacity_ah`` / ``discharge_capacity_ah`` counting from zero at each
cycle start, ``step_type`` charge / discharge / rest / ...), as a pandas DataFrame.

Per cycle (:func:`per_cycle`): charge and discharge capacity (the largest value the cycle
reaches), Coulombic efficiency Q_dis / Q_ch (charge first, as in a cathode half-cell), mean
charge and discharge voltages (capacity-weighted, integral of V dQ over Q, trapezoid rule), and
their gap (an overpotential measure).

Per cell (:func:`cell_features`), early-cycle features only (cycles <= ``early_cycles``, so they
can predict the later retention without seeing it): first-cycle efficiency and irreversible
fraction, mean efficiency of cycles 2..early, discharge capacity of the reference cycle relative
to cycle 1, voltage gap at the reference cycle and its growth to ``early_cycles``, and the early
fade slope (least-squares slope of 100 Q_dis(n) / Q_dis(ref) over ref..early, % per cycle).

Target (:func:`retention`): retention_N = Q_dis(N) / Q_dis(ref) x 100, N and ref parameters
(SCIENCE.md workflow 4).

Why not a library: cellpy / BEEP compute similar summaries but each needs its own cell object
and reader stack; on the lake's table these are a few grouped numpy reductions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PER_CYCLE_COLUMNS = (
    "cycle",
    "charge_capacity_ah",
    "discharge_capacity_ah",
    "coulombic_efficiency",
    "mean_charge_voltage_v",
    "mean_discharge_voltage_v",
    "voltage_gap_v",
)


def _cycle_integrals(cycle: np.ndarray, q: np.ndarray, v: np.ndarray, mask: np.ndarray):
    """Per cycle (sorted unique cycles): integral of V dQ and the Q span over the masked rows,
    trapezoid rule between consecutive points of the same cycle (ordered by Q)."""
    c, qq, vv = cycle[mask], q[mask], v[mask]
    ok = np.isfinite(qq) & np.isfinite(vv)
    c, qq, vv = c[ok], qq[ok], vv[ok]
    order = np.lexsort((qq, c))
    c, qq, vv = c[order], qq[order], vv[order]
    same = c[1:] == c[:-1]
    area = np.where(same, 0.5 * (vv[1:] + vv[:-1]) * np.diff(qq), 0.0)
    return c, area, qq, same


def per_cycle(cycling: pd.DataFrame) -> pd.DataFrame:
    """One row per cycle of one cell (columns :data:`PER_CYCLE_COLUMNS`).

    Mean voltages are capacity-weighted: the integral of V dQ over the charge (discharge)
    points of the cycle divided by the capacity span of those points.
    """
    cyc = cycling["cycle"].to_numpy()
    cycles = np.unique(cyc[~pd.isna(cyc)]).astype(int)
    idx = {c: i for i, c in enumerate(cycles)}
    n = cycles.size
    volts = cycling["voltage_v"].to_numpy(float)
    step = cycling["step_type"].astype(str).to_numpy()
    out = {"cycle": cycles}
    for kind, col in (("charge", "charge_capacity_ah"), ("discharge", "discharge_capacity_ah")):
        q = cycling[col].to_numpy(float)
        cap = pd.Series(q).groupby(cyc).max().reindex(cycles).to_numpy(float)
        out[col] = cap
        c, area, qq, same = _cycle_integrals(cyc, q, volts, step == kind)
        pos = np.array([idx[int(x)] for x in c[1:]], dtype=int) if c.size > 1 else np.zeros(0, int)
        num = np.bincount(pos, weights=area, minlength=n)
        lo = np.full(n, np.inf)
        hi = np.full(n, -np.inf)
        if c.size:
            ci = np.array([idx[int(x)] for x in c], dtype=int)
            np.minimum.at(lo, ci, qq)
            np.maximum.at(hi, ci, qq)
        span = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"mean_{kind}_voltage_v"] = np.where(span > 0, num / span, np.nan)
    frame = pd.DataFrame(out)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["coulombic_efficiency"] = np.where(
            frame["charge_capacity_ah"] > 0,
            frame["discharge_capacity_ah"] / frame["charge_capacity_ah"],
            np.nan,
        )
    frame["voltage_gap_v"] = frame["mean_charge_voltage_v"] - frame["mean_discharge_voltage_v"]
    return frame[list(PER_CYCLE_COLUMNS)]


def retention(cycles: pd.DataFrame, n_cycle: int, ref_cycle: int = 3) -> float:
    """Q_dis(n_cycle) / Q_dis(ref_cycle) x 100 from a :func:`per_cycle` table; NaN if either
    cycle is missing (a cell still running)."""
    q = cycles.set_index("cycle")["discharge_capacity_ah"]
    if n_cycle not in q.index or ref_cycle not in q.index or not q[ref_cycle] > 0:
        return float("nan")
    return float(100.0 * q[n_cycle] / q[ref_cycle])


def cell_features(
    cycles: pd.DataFrame, *, ref_cycle: int = 3, early_cycles: int = 10
) -> dict[str, float]:
    """Early-cycle features of one cell from its :func:`per_cycle` table (see module doc)."""
    c = cycles.set_index("cycle").sort_index()
    c = c[c.index <= early_cycles]
    nan = float("nan")

    def at(cyc: int, col: str) -> float:
        return float(c.at[cyc, col]) if cyc in c.index else nan

    q_ref = at(ref_cycle, "discharge_capacity_ah")
    feats = {
        "ce_first": at(1, "coulombic_efficiency"),
        "irreversible_first": 1.0 - at(1, "coulombic_efficiency"),
        "ce_early_mean": float(c.loc[c.index >= 2, "coulombic_efficiency"].mean()),
        "q_ref_over_first": q_ref / at(1, "discharge_capacity_ah"),
        "voltage_gap_ref_v": at(ref_cycle, "voltage_gap_v"),
        "mean_discharge_voltage_ref_v": at(ref_cycle, "mean_discharge_voltage_v"),
        "voltage_gap_growth_v": at(early_cycles, "voltage_gap_v") - at(ref_cycle, "voltage_gap_v"),
    }
    span = c[c.index >= ref_cycle]
    if len(span) >= 3 and q_ref > 0:
        n = span.index.to_numpy(float)
        r = 100.0 * span["discharge_capacity_ah"].to_numpy(float) / q_ref
        feats["early_fade_slope_pct_per_cycle"] = float(np.polyfit(n, r, 1)[0])
    else:
        feats["early_fade_slope_pct_per_cycle"] = nan
    return feats


def cycling_feature_table(
    cycling: pd.DataFrame,
    *,
    ref_cycle: int = 3,
    target_cycle: int = 50,
    early_cycles: int = 10,
    id_column: str = "measurement_id",
) -> pd.DataFrame:
    """Per-cell features and target for every measurement of a ``cycling`` table.

    Returns
    -------
    one row per ``id_column``: the :func:`cell_features`, ``n_cycles`` (cycles recorded),
    ``retention_pct`` (retention_N with N = ``target_cycle``; NaN if not reached),
    ``ref_cycle`` and ``target_cycle``.
    """
    rows = []
    for mid, g in cycling.groupby(id_column, sort=True):
        cyc = per_cycle(g)
        rows.append(
            {
                id_column: mid,
                **cell_features(cyc, ref_cycle=ref_cycle, early_cycles=early_cycles),
                "n_cycles": int(cyc["cycle"].max()) if len(cyc) else 0,
                "retention_pct": retention(cyc, target_cycle, ref_cycle),
                "ref_cycle": ref_cycle,
                "target_cycle": target_cycle,
            }
        )
    return pd.DataFrame(rows)
