"""Cycling features: per-cycle capacities, efficiency and mean voltages against values read
off the real EC-Lab export by an independent parse, and against the simulator's truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from progral_dagster.processing.cycling import (
    cell_features,
    cycling_feature_table,
    per_cycle,
    retention,
)
from progral_dagster.simulate.biologic_writer import GcplSettings, write_gcpl_mpt
from progral_dagster.simulate.cathode_campaign import (
    ATMOSPHERES,
    simulate_cell,
    storage_surface,
)
from tests.conftest import SAMPLES

GCPL = SAMPLES / "cycler-biologic" / "gcpl.issue_149.mpt"


def parse_mpt_minimal(path) -> pd.DataFrame:
    """Independent minimal EC-Lab .mpt parse: header count, tab columns, decimal comma."""
    with open(path, encoding="latin-1") as fh:
        lines = fh.read().splitlines()
    n_header = int(lines[1].split(":")[1])
    titles = lines[n_header - 1].rstrip("\t").split("\t")
    rows = [ln.rstrip("\t").split("\t") for ln in lines[n_header:] if ln.strip()]
    df = pd.DataFrame(rows, columns=titles)
    return df.apply(lambda c: pd.to_numeric(c.str.replace(",", "."), errors="coerce"))


def _as_cycling_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The lake's ``cycling`` columns from a minimal parse (mAh -> Ah, cycle from 1)."""
    step = np.where(raw["mode"] == 3, "rest", np.where(raw["ox/red"] == 1, "charge", "discharge"))
    return pd.DataFrame(
        {
            "cycle": raw["cycle number"].astype(int) + 1,
            "step_type": step,
            "time_s": raw["time/s"],
            "voltage_v": raw["Ewe/V"],
            "current_a": raw["<I>/mA"] / 1000.0,
            "charge_capacity_ah": raw["Q charge/mA.h"] / 1000.0,
            "discharge_capacity_ah": raw["Q discharge/mA.h"] / 1000.0,
        }
    )


def _reader_table(path) -> pd.DataFrame:
    mpt = pytest.importorskip("progral_dagster.readers.biologic_mpt")
    return mpt.read(path).tables["cycling"].to_pandas()


def test_per_cycle_on_the_real_gcpl_export():
    raw = parse_mpt_minimal(GCPL)
    assert len(raw) == 132  # rows of gcpl.issue_149.mpt
    # truth read off the file: largest Q charge / Q discharge of each cycle number
    q_ch = raw.groupby("cycle number")["Q charge/mA.h"].max().to_numpy() / 1000
    q_dis = raw.groupby("cycle number")["Q discharge/mA.h"].max().to_numpy() / 1000
    for table in (_as_cycling_table(raw), _reader_table(GCPL)):
        pc = per_cycle(table)
        assert pc["cycle"].tolist() == [1, 2, 3, 4]
        np.testing.assert_allclose(pc["charge_capacity_ah"], q_ch, rtol=1e-9)
        np.testing.assert_allclose(pc["discharge_capacity_ah"], q_dis, rtol=1e-9)
        np.testing.assert_allclose(pc["coulombic_efficiency"], q_dis / q_ch, rtol=1e-9)
    # EC-Lab's own Efficiency/% column (written after each discharge) agrees
    eff = raw.loc[raw["Efficiency/%"] > 0, "Efficiency/%"].to_numpy() / 100
    np.testing.assert_allclose(pc["coulombic_efficiency"].to_numpy()[: eff.size], eff, rtol=1e-6)
    # mean discharge voltage of cycle 1: energy / charge from EC-Lab's own columns
    c1 = raw[(raw["cycle number"] == 0) & (raw["ox/red"] == 0) & (raw["mode"] == 1)]
    energy = c1["Energy discharge/W.h"].max()
    charge = c1["Q discharge/mA.h"].max() / 1000
    assert pc.loc[0, "mean_discharge_voltage_v"] == pytest.approx(energy / charge, abs=2e-3)
    assert (pc["voltage_gap_v"] > 0).all()


def _simulated_cell(tmp_path, seed=3, residue=False, n_cycles=20):
    rng = np.random.default_rng(seed)
    atm = ATMOSPHERES[4] if residue else ATMOSPHERES[0]
    surf = storage_surface(atm, 20.0 if residue else -60.0, 300.0 if residue else 2.0, rng)
    trace, truth, current = simulate_cell(surf, rng, n_cycles=n_cycles, points=12)
    path = write_gcpl_mpt(
        tmp_path / f"cell{seed}{residue}.mpt", trace, GcplSettings(current_ma=current)
    )
    return path, truth, surf


def test_features_recover_the_simulated_cell(tmp_path):
    path, truth, _ = _simulated_cell(tmp_path)
    tables = [_as_cycling_table(parse_mpt_minimal(path))]
    try:
        tables.append(_reader_table(path))
    except pytest.skip.Exception:
        pass
    for table in tables:
        pc = per_cycle(table)
        np.testing.assert_allclose(pc["discharge_capacity_ah"], truth.q_dis_mah / 1000, rtol=1e-12)
        np.testing.assert_allclose(pc["charge_capacity_ah"], truth.q_ch_mah / 1000, rtol=1e-12)
        expect = 100 * truth.q_dis_mah[19] / truth.q_dis_mah[2]
        assert retention(pc, 20, 3) == pytest.approx(expect, rel=1e-12)
        assert retention(pc, 10, 2) == pytest.approx(
            100 * truth.q_dis_mah[9] / truth.q_dis_mah[1], rel=1e-12
        )
        assert np.isnan(retention(pc, 25, 3))  # not reached yet
        f = cell_features(pc, ref_cycle=3, early_cycles=10)
        assert f["ce_first"] == pytest.approx(truth.q_dis_mah[0] / truth.q_ch_mah[0], rel=1e-12)
        n = np.arange(3, 11)
        slope = np.polyfit(n, 100 * truth.q_dis_mah[2:10] / truth.q_dis_mah[2], 1)[0]
        assert f["early_fade_slope_pct_per_cycle"] == pytest.approx(slope, rel=1e-9)


def test_early_features_do_not_see_later_cycles(tmp_path):
    path, _, _ = _simulated_cell(tmp_path)
    pc = per_cycle(_as_cycling_table(parse_mpt_minimal(path)))
    f_all = cell_features(pc, early_cycles=10)
    late = pc.copy()
    late.loc[late["cycle"] > 10, "discharge_capacity_ah"] *= 0.5  # change only late cycles
    assert cell_features(late, early_cycles=10) == pytest.approx(f_all, nan_ok=True)


def test_surface_residues_raise_first_cycle_loss_and_overpotential(tmp_path):
    clean, _, s_clean = _simulated_cell(tmp_path, seed=4, residue=False)
    dirty, _, s_dirty = _simulated_cell(tmp_path, seed=4, residue=True)
    assert s_dirty.li2co3 + s_dirty.lioh > s_clean.li2co3 + s_clean.lioh + 0.1
    fc = cell_features(per_cycle(_as_cycling_table(parse_mpt_minimal(clean))))
    fd = cell_features(per_cycle(_as_cycling_table(parse_mpt_minimal(dirty))))
    assert fd["irreversible_first"] > fc["irreversible_first"] + 0.02
    assert fd["voltage_gap_ref_v"] > fc["voltage_gap_ref_v"]


def test_feature_table_per_measurement(tmp_path):
    a, ta, _ = _simulated_cell(tmp_path, seed=5)
    b, tb, _ = _simulated_cell(tmp_path, seed=6, n_cycles=12)
    long = pd.concat(
        [
            _as_cycling_table(parse_mpt_minimal(a)).assign(measurement_id="a"),
            _as_cycling_table(parse_mpt_minimal(b)).assign(measurement_id="b"),
        ]
    )
    t = cycling_feature_table(long, ref_cycle=3, target_cycle=20).set_index("measurement_id")
    assert t.loc["a", "retention_pct"] == pytest.approx(100 * ta.q_dis_mah[19] / ta.q_dis_mah[2])
    assert np.isnan(t.loc["b", "retention_pct"])  # 12 cycles only
    assert t.loc["b", "n_cycles"] == 12
