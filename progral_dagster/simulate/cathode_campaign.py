"""Stored LiNiO2 cathode sheets: storage conditions -> surface chemistry -> ToF-SIMS spectra,
XPS, half-cells and their GCPL cycling, with the ground truth kept apart.

Workflow 4 of ../shared/SCIENCE.md (capacity retention of LiNiO2 half-cells after defined
storage). Every sheet is stored under an atmosphere, a dew point and a time; its surface is then
measured by ToF-SIMS (both polarities, IONTOF spectrum exports) and XPS (VAMAS), and half-cells
built from it (three per sheet in ``full``, two in ``small``) are cycled (BioLogic EC-Lab
``.mpt``). A few sheets are measured but
have no cells yet (for the surface-only prediction).

Storage chemistry (documented model; numbers are assumptions shaped after the cited findings)
---------------------------------------------------------------------------------------------
- Water partial pressure from the dew point (Magnus formula, hPa):
  ``p_w = 6.112 exp(17.62 Td / (243.12 + Td))``; exposure dose ``D = p_w x t`` (hPa h).
- Li+/H+ exchange and hydroxide growth (the main mechanism, Faenza et al. 2017; Huang et al.
  2019): extent ``s = 1 - exp(-(D / 200 hPa h)^0.75)`` (sub-linear in dose: the reacted layer
  slows further exchange). A -40 degC dew point for 1 h gives s < 0.01 (harmless, in line with
  Fenske et al. 2024); humid air for days gives s near 1.
- Residue formed: ``0.35 s`` (apparent formula units); with CO2 in the atmosphere a share
  ``c = 1 - exp(-t / tau_c)``, ``tau_c = 100 h / (1 + p_w / 5 hPa)``, is carbonated
  (LiOH + CO2 -> Li2CO3, faster when humid); without CO2 it stays LiOH.
- Every sheet also carries synthesis residues (Li2CO3 0.02-0.06, LiOH 0.01-0.04), LiF
  0.004-0.03 (+0.015 s from HF of moisture-attacked fluorinated residues) and adventitious
  carbon growing with air exposure; 30 % of sheets carry a LiPO2F2-type fluorophosphate
  treatment (0.01-0.04). These per-sheet batch effects are not visible in the storage
  conditions, only in the surface measurements.
- Ni2+ rock-salt share of surface Ni: ``0.06 + 0.45 s`` plus batch variation (-0.03..0.06).
- The substrate (LiNiO2 + NiO) is attenuated by the overlayer: apparent amount
  ``0.6 exp(-(residues + adventitious) / 0.5)``.

Retention model (the documented function the models must learn)
---------------------------------------------------------------
With x_co3, x_oh, x_lif, x_pof the apparent amounts of Li2CO3, LiOH, LiF, LiPO2F2 and
x_rs the Ni2+ rock-salt share::

    R_exp = 96 - 22 x_co3 - 12 x_oh - 10 (x_co3 + x_oh)^2 - 18 x_rs - 80 x_lif + 60 x_pof

(carbonate and hydroxide raise impedance and are oxidised in the first charges; the rock-salt
layer blocks Li transport; LiF is resistive; a fluorophosphate film protects; Schuer et al. 2022,
Faenza et al. 2017). Each cell adds Normal(0, ``cell_sd``) (assembly), so
``R_cell = R_exp + e``. Its discharge capacity fades from the reference cycle to cycle N along
``Q(n) = Q_ref (1 - (1 - R_cell/100) ((n - ref)/(N - ref))^p)``, p per cell in [0.85, 1.15],
and every measured capacity carries a relative jitter Normal(0, ``jitter_sd``). The truth
``retention_pct`` is the realised Q_dis(N) / Q_dis(ref) x 100 of the written file;
``noise_sd = sqrt(cell_sd^2 + 2 (R_exp jitter_sd)^2)`` is the standard deviation of
``retention_pct - R_exp``.

Electrochemistry of a cell: first-cycle Coulombic efficiency falls with residues and rock salt
(extra charge for residue oxidation), later efficiencies fall with the fade rate; the cell
resistance grows with residues and rock salt and with cycling, so the charge/discharge mean
voltage gap (overpotential) tracks the surface; voltage profiles are smooth LiNiO2-like curves
between 3.0 and 4.3 V at C/5.

Why no library: nothing simulates stored cathode surfaces with instrument outputs; the
ToF-SIMS physics is the project's ``tof_spectra``, XPS is ``xps_physics``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .biologic_writer import GcplSettings, GcplTrace, write_gcpl_mpt
from .iontof_writer import write_spectrum_export
from .tof_spectra import simulate_spectrum
from .vamas_writer import blocks_from_simulation, write_vamas
from .xps_physics import ELEMENTS, simulate_xps

PROJECT = "cathode-storage"
MATERIAL = "LiNiO2"


@dataclass(frozen=True)
class Atmosphere:
    name: str
    co2: bool
    dew_point_c: tuple[float, float]


ATMOSPHERES = (
    Atmosphere("argon", False, (-70.0, -50.0)),
    Atmosphere("dry room air", True, (-50.0, -30.0)),
    Atmosphere("CO2-free air", False, (-10.0, 18.0)),
    Atmosphere("ambient air", True, (-5.0, 12.0)),
    Atmosphere("humid air", True, (12.0, 22.0)),
)

SIZES = {
    # sheets with cells, cells per sheet, sheets without cells, cycles N, points per half cycle
    "small": (6, 2, 2, 20, 12),
    "full": (48, 3, 8, 50, 16),
}
REF_CYCLE = 3
CELL_SD = 1.2
JITTER_SD = 0.0012


def water_pressure_hpa(dew_point_c: float) -> float:
    """Saturation water-vapour pressure at the dew point (Magnus formula over water), hPa."""
    return 6.112 * math.exp(17.62 * dew_point_c / (243.12 + dew_point_c))


@dataclass
class Surface:
    """Hidden surface state of a sheet (apparent amounts, see the module docstring)."""

    li2co3: float
    lioh: float
    lif: float
    lipo2f2: float
    rock_salt: float
    adventitious: float
    substrate: float
    exchange: float

    def xps_amounts(self) -> dict[str, float]:
        return {
            "adventitious": self.adventitious,
            "Li2CO3": self.li2co3,
            "LiOH": self.lioh,
            "LiF": self.lif,
            "LiPO2F2": self.lipo2f2,
            "LiNiO2": self.substrate * (1 - self.rock_salt),
            "NiO": self.substrate * self.rock_salt,
        }


def storage_surface(
    atmosphere: Atmosphere, dew_point_c: float, time_h: float, rng: np.random.Generator
) -> Surface:
    """Surface state after storage (module docstring, "Storage chemistry")."""
    pw = water_pressure_hpa(dew_point_c)
    dose = pw * time_h
    s = 1.0 - math.exp(-((dose / 200.0) ** 0.75))
    formed = 0.35 * s
    if atmosphere.co2:
        c = 1.0 - math.exp(-time_h / (100.0 / (1.0 + pw / 5.0)))
    else:
        c = 0.0
    li2co3 = rng.uniform(0.02, 0.06) + formed * c
    lioh = rng.uniform(0.01, 0.04) + formed * (1 - c)
    lif = rng.uniform(0.004, 0.03) + 0.015 * s
    lipo2f2 = rng.uniform(0.01, 0.04) if rng.random() < 0.3 else 0.0
    rock = float(np.clip(0.06 + 0.45 * s + rng.uniform(-0.03, 0.06), 0.0, 0.95))
    air = 0.3 if atmosphere.name == "argon" else 1.0
    adv = 0.12 + 0.1 * air * math.log10(1 + time_h) / math.log10(500) + rng.uniform(-0.02, 0.02)
    over = li2co3 + lioh + lif + lipo2f2 + adv
    substrate = 0.6 * math.exp(-over / 0.5)
    return Surface(li2co3, lioh, lif, lipo2f2, rock, adv, substrate, s)


def expected_retention(surface: Surface) -> float:
    """Noise-free retention Q_dis(N)/Q_dis(ref) x 100 of a cell from this surface."""
    r = surface.li2co3 + surface.lioh
    return (
        96.0
        - 22.0 * surface.li2co3
        - 12.0 * surface.lioh
        - 10.0 * r * r
        - 18.0 * surface.rock_salt
        - 80.0 * surface.lif
        + 60.0 * surface.lipo2f2
    )


def tof_yields(surface: Surface, polarity: str) -> dict[str, float]:
    """Relative secondary-ion yields of the surface (fragments of each species)."""
    x = surface
    sub = x.substrate
    if polarity == "negative":
        return {
            "CO3-": 40 * x.li2co3 + 0.3,
            "LiCO3-": 15 * x.li2co3,
            "OH-": 30 * x.lioh + 4 * x.li2co3 + 1.0,
            "LiO-": 8 * x.lioh + 5 * sub,
            "O-": 10 * sub + 3 * x.lioh + 3 * x.li2co3,
            "F-": 50 * (x.lif + 2 * x.lipo2f2) + 0.5,
            "LiF2-": 20 * x.lif,
            "PO2F2-": 25 * x.lipo2f2,
            "PO3-": 10 * x.lipo2f2 + 0.02,
            "NiO-": 6 * sub * x.rock_salt + 0.5 * sub,
            "NiO2-": 4 * sub * (1 - x.rock_salt),
        }
    return {
        "Li+": 60.0,
        "Ni+": 10 * sub,
        "Li2OH+": 6 * x.lioh + 0.05,
        "Li3CO3+": 3 * x.li2co3,
        "Li2F+": 5 * x.lif,
        "NiOH+": 2 * sub * x.rock_salt,
    }


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------
def _ocv_shape(z: np.ndarray) -> np.ndarray:
    """Monotonic 0..1 shape of a LiNiO2 voltage profile over state of charge z (0..1)."""
    return 0.62 * z + 0.18 * (1 - np.exp(-8 * z)) / (1 - math.exp(-8)) + 0.2 * z**10


@dataclass
class CellTruth:
    retention_pct: float
    expected_pct: float
    noise_sd: float
    q_dis_mah: np.ndarray
    q_ch_mah: np.ndarray


def simulate_cell(
    surface: Surface,
    rng: np.random.Generator,
    *,
    n_cycles: int,
    ref_cycle: int = REF_CYCLE,
    points: int = 16,
    cell_sd: float = CELL_SD,
    jitter_sd: float = JITTER_SD,
) -> tuple[GcplTrace, CellTruth, float]:
    """GCPL trace of one half-cell; returns (trace, truth, current in mA)."""
    if not 1 <= ref_cycle < n_cycles:
        raise ValueError("need 1 <= ref_cycle < n_cycles")
    r_exp = expected_retention(surface)
    r_cell = r_exp + rng.normal(0.0, cell_sd)
    p = rng.uniform(0.85, 1.15)
    mass_mg = rng.uniform(8.0, 12.0)
    resid = surface.li2co3 + surface.lioh
    spec = 218.0 * (1 - 0.15 * surface.rock_salt - 0.25 * resid) * (1 + rng.normal(0, 0.01))
    q_ref = spec * mass_mg / 1000.0  # mAh
    current = 0.2 * 200.0 * mass_mg / 1000.0  # C/5 of 200 mAh/g, mA
    n = np.arange(1, n_cycles + 1)
    frac = np.clip((n - ref_cycle) / (n_cycles - ref_cycle), 0.0, None)
    q = q_ref * (1 - (1 - r_cell / 100.0) * frac**p)
    q[n < ref_cycle] = q_ref * (1 - 0.006 * (ref_cycle - n[n < ref_cycle]))
    q_dis = q * (1 + rng.normal(0.0, jitter_sd, n.size))
    fade = (1 - r_cell / 100.0) / (n_cycles - ref_cycle)
    ce = 1 - (0.002 + 0.25 * max(fade, 0.0)) + rng.normal(0, 0.0003, n.size)
    ce[0] = 0.90 - 0.25 * resid - 0.10 * surface.rock_salt + rng.normal(0, 0.004)
    if ref_cycle > 2:
        ce[1] = 0.985
    q_ch = q_dis / ce
    r_ohm = 40.0 * (1 + 3 * resid + 2 * surface.rock_salt)
    truth = CellTruth(
        retention_pct=float("nan"),
        expected_pct=r_exp,
        noise_sd=math.sqrt(cell_sd**2 + 2 * (r_exp * jitter_sd) ** 2),
        q_dis_mah=q_dis,
        q_ch_mah=q_ch,
    )
    rows: dict[str, list] = {k: [] for k in GcplTrace.__dataclass_fields__}
    t = 0.0

    def add(ns, dt, v, i, qh, eh, cyc, half, loop, st):
        nonlocal t
        t += dt
        for k, val in zip(
            ("ns", "time_s", "voltage_v", "current_ma", "q_half_mah", "energy_half_wh"),
            (ns, t, v, i, qh, eh),
            strict=True,
        ):
            rows[k].append(val)
        rows["cycle"].append(cyc)
        rows["half_cycle"].append(half)
        rows["loop"].append(loop)
        rows["step_time_s"].append(st)

    v_rest = 3.45
    q_prev_dis = 0.0
    for k in range(n_cycles):
        ir = current * r_ohm * (1 + 0.6 * k / n_cycles) / 1000.0  # V
        # rest (Ns 0) opening loop k: as in EC-Lab, it still belongs to the previous discharge
        # (half cycle 2k-1, cycle k-1); the cycle number increments at the next charge
        half_rest = max(2 * k - 1, 0)
        cyc_rest = max(k - 1, 0)
        for j in range(3 if k == 0 else 2):
            v_rest = v_rest + (3.45 - v_rest) * 0.5 if k else 3.40 + 0.01 * j
            dt = 300.0 if k or j else 10.0
            add(0, dt, v_rest, 0.0, q_prev_dis, 0.0, cyc_rest, half_rest, k, 0.0)
        # charge (Ns 1)
        dur = q_ch[k] / current * 3600.0
        ts = np.linspace(dur / points, dur, points)
        z = ts / dur
        v = 3.45 + ir + (4.3 - 3.45 - ir) * _ocv_shape(z) + rng.normal(0, 5e-4, points)
        v[-1] = 4.3
        qh = current * ts / 3600.0
        qh[-1] = q_ch[k]
        eh = np.cumsum(np.diff(np.concatenate([[0.0], qh])) * v) / 1000.0
        for j in range(points):
            add(1, dur / points, v[j], current, qh[j], eh[j], k, 2 * k, k, ts[j])
        # discharge (Ns 2)
        dur = q_dis[k] / current * 3600.0
        ts = np.linspace(dur / points, dur, points)
        z = 1 - ts / dur
        top = 4.3 - 0.12 - ir
        v = 3.0 + (top - 3.0) * _ocv_shape(z) ** 0.6 + rng.normal(0, 5e-4, points)
        v[-1] = 3.0
        qh = current * ts / 3600.0
        qh[-1] = q_dis[k]
        eh = np.cumsum(np.diff(np.concatenate([[0.0], qh])) * v) / 1000.0
        for j in range(points):
            add(2, dur / points, v[j], -current, qh[j], eh[j], k, 2 * k + 1, k, ts[j])
        q_prev_dis = q_dis[k]
        v_rest = 3.0
    trace = GcplTrace(**{k: np.asarray(v) for k, v in rows.items()})
    return trace, truth, current


def _mpt_roundtrip(x: float) -> float:
    """The value as the .mpt writes it (``%.15E``)."""
    return float(f"{x:.15E}")


# ---------------------------------------------------------------------------------------------
# the campaign
# ---------------------------------------------------------------------------------------------
def simulate_cathode_campaign(
    share: Path,
    truth: Path | None,
    seed: int,
    size: str = "small",
    *,
    binning: int = 20,
    ref_cycle: int = REF_CYCLE,
) -> list[dict]:
    """Simulate the stored-cathode campaign into ``share/cathodes``.

    Parameters
    ----------
    share : the instrument share (files go under ``cathodes/<sheet>/``)
    truth : folder for the ground truth (``xps.csv``, ``cells.csv``, ``cathode_sheets.csv``),
        or None
    seed : same seed, same bytes
    size : ``small`` (6 sheets x 2 cells + 2 sheets without cells, 20 cycles) or ``full``
        (48 x 3 + 8, 50 cycles)
    binning : ToF-SIMS export binning (raw channels per row)
    ref_cycle : reference cycle of the retention (fade starts there; truth ``ref_cycle``)

    Returns
    -------
    sample-sheet rows (``simulate.sheet.SHEET_COLUMNS``; ``file`` relative to ``share``)
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}")
    n_cell_sheets, cells_per_sheet, n_pending, n_cycles, points = SIZES[size]
    share = Path(share)
    seq = np.random.SeedSequence([seed, 4])
    rows: list[dict] = []
    xps_truth: list[dict] = []
    cell_truth: list[dict] = []
    sheet_truth: list[dict] = []
    n_sheets = n_cell_sheets + n_pending
    children = seq.spawn(n_sheets)
    for i in range(n_sheets):
        rng = np.random.default_rng(children[i])
        sheet = f"LNO-S{i + 1:03d}"
        atm = ATMOSPHERES[i % len(ATMOSPHERES)]
        dew = round(float(rng.uniform(*atm.dew_point_c)), 1)
        hours = round(float(np.exp(rng.uniform(np.log(1.0), np.log(500.0)))), 1)
        surf = storage_surface(atm, dew, hours, rng)
        base = {
            "sample_id": sheet,
            "project": PROJECT,
            "material": MATERIAL,
            "storage_atmosphere": atm.name,
            "dew_point_c": dew,
            "storage_time_h": hours,
        }
        day = 1 + i % 28
        # ToF-SIMS, both polarities
        for pol, tag in (("positive", "pos"), ("negative", "neg")):
            spec = simulate_spectrum(tof_yields(surf, pol), pol, rng, binning=binning)
            rel = f"cathodes/{sheet}/tof-sims/{sheet}_{tag}.txt"
            write_spectrum_export(share / rel, spec)
            rows.append({**base, "file": rel, "polarity": pol})
        # XPS
        shift = float(rng.uniform(0.2, 2.5))
        sim = simulate_xps(surf.xps_amounts(), rng, charge_shift_ev=shift)
        rel = f"cathodes/{sheet}/xps/{sheet}.vms"
        write_vamas(
            share / rel,
            blocks_from_simulation(sim),
            sample_id=sheet,
            created=(2024, 3, day, 9 + i % 8, 15, 0),
            source_file=f"{sheet}.spe",
        )
        rows.append({**base, "file": rel})
        xps_truth.append(
            {
                "file": rel,
                "sample_id": sheet,
                **{f"{el}_at_pct": sim.truth[f"{el}_at_pct"] for el in ELEMENTS},
                "carbonate_fraction": sim.truth["carbonate_fraction"],
                "lif_share": sim.truth["lif_share"],
                "ni2_fraction": sim.truth["ni2_fraction"],
                "charge_shift_ev": shift,
            }
        )
        has_cells = i < n_cell_sheets
        sheet_truth.append(
            {
                **{k: base[k] for k in ("sample_id", "storage_atmosphere")},
                "dew_point_c": dew,
                "storage_time_h": hours,
                "has_cells": has_cells,
                "exchange_extent": surf.exchange,
                "li2co3": surf.li2co3,
                "lioh": surf.lioh,
                "lif": surf.lif,
                "lipo2f2": surf.lipo2f2,
                "rock_salt_fraction": surf.rock_salt,
                "adventitious": surf.adventitious,
                "expected_retention_pct": expected_retention(surf),
            }
        )
        if not has_cells:
            continue
        for c in range(cells_per_sheet):
            cell = f"{sheet}-C{c + 1}"
            trace, ct, current = simulate_cell(
                surf, rng, n_cycles=n_cycles, ref_cycle=ref_cycle, points=points
            )
            rel = f"cathodes/{sheet}/cycling/{cell}.mpt"
            settings = GcplSettings(
                current_ma=current,
                electrode_material=MATERIAL,
                initial_state=f"sheet {sheet} after storage",
                electrolyte="1 M LiPF6 in EC:EMC 3:7",
                comments=f"cell {cell}",
                channel=c + 1,
                acquisition_start=f"04/{day:02d}/2024 10:0{c}:00.000",
                file_stem=cell,
            )
            write_gcpl_mpt(share / rel, trace, settings)
            q_n = _mpt_roundtrip(ct.q_dis_mah[n_cycles - 1])
            q_r = _mpt_roundtrip(ct.q_dis_mah[ref_cycle - 1])
            rows.append({**base, "file": rel, "cell_id": cell})
            cell_truth.append(
                {
                    "sample_id": sheet,
                    "cell_id": cell,
                    "file": rel,
                    "n_cycles": n_cycles,
                    "ref_cycle": ref_cycle,
                    "retention_pct": 100.0 * q_n / q_r,
                    "expected_retention_pct": ct.expected_pct,
                    "noise_sd": ct.noise_sd,
                }
            )
    if truth is not None:
        truth = Path(truth)
        truth.mkdir(parents=True, exist_ok=True)
        _write_csv(truth / "xps.csv", xps_truth)
        _write_csv(truth / "cells.csv", cell_truth)
        _write_csv(truth / "cathode_sheets.csv", sheet_truth)
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in r.items()})
