"""Stored-cathode campaign simulator: files in the instruments' formats, truth consistent with
what the files say, determinism, and the documented storage / retention model."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from progral_dagster.simulate import cathode_campaign as cc
from progral_dagster.simulate.sheet import SHEET_COLUMNS
from progral_dagster.simulate.xps_physics import simulate_xps
from tests.conftest import SAMPLES
from tests.test_cycling_features import parse_mpt_minimal

N_CELL_SHEETS, CELLS, N_PENDING, N_CYCLES, _PTS = cc.SIZES["small"]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("cathodes")
    rows = cc.simulate_cathode_campaign(root / "share", root / "truth", seed=3, size="small")
    return root, rows


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sheet_rows_and_files(campaign):
    root, rows = campaign
    share = root / "share"
    for r in rows:
        assert set(r) <= set(SHEET_COLUMNS)
        assert (share / r["file"]).is_file()
        assert r["project"] == "cathode-storage" and r["material"] == "LiNiO2"
        assert {"storage_atmosphere", "dew_point_c", "storage_time_h"} <= set(r)
    df = pd.DataFrame(rows)
    sheets = df["sample_id"].unique()
    assert len(sheets) == N_CELL_SHEETS + N_PENDING
    tof = df[df["file"].str.endswith(".txt")]
    assert sorted(tof.groupby("sample_id")["polarity"].apply(sorted).map(tuple).unique()) == [
        ("negative", "positive")
    ]
    assert (df["file"].str.endswith(".vms")).sum() == len(sheets)
    cells = df[df["file"].str.endswith(".mpt")]
    assert len(cells) == N_CELL_SHEETS * CELLS
    assert all(c.startswith(s) for c, s in zip(cells["cell_id"], cells["sample_id"], strict=True))
    assert cells["sample_id"].nunique() == N_CELL_SHEETS  # the rest have surface data only
    truth = pd.read_csv(root / "truth" / "cells.csv")
    assert {"sample_id", "cell_id", "n_cycles", "ref_cycle", "retention_pct", "noise_sd"} <= set(
        truth.columns
    )
    xps = pd.read_csv(root / "truth" / "xps.csv")
    at = [c for c in xps.columns if c.endswith("_at_pct")]
    assert len(at) == 6 and np.allclose(xps[at].sum(axis=1), 100.0)
    assert xps["carbonate_fraction"].between(0, 1).all()


def test_truth_retention_equals_the_written_mpt(campaign):
    root, _ = campaign
    truth = pd.read_csv(root / "truth" / "cells.csv")
    for _, t in truth.iterrows():
        raw = parse_mpt_minimal(root / "share" / t["file"])
        q = raw.groupby("cycle number")["Q discharge/mA.h"].max()  # cycle number from 0
        measured = 100 * q[t["n_cycles"] - 1] / q[t["ref_cycle"] - 1]
        assert measured == pytest.approx(t["retention_pct"], rel=1e-9)
        assert len(q) == t["n_cycles"] == N_CYCLES


def test_mpt_layout_matches_the_real_export(campaign):
    root, rows = campaign
    path = root / "share" / next(r["file"] for r in rows if r["file"].endswith(".mpt"))
    ours = path.read_text(encoding="latin-1").splitlines()
    real = (
        (SAMPLES / "cycler-biologic" / "gcpl.issue_149.mpt")
        .read_text(encoding="latin-1")
        .splitlines()
    )
    assert ours[0] == real[0] == "EC-Lab ASCII FILE"
    n = int(ours[1].split(":")[1])
    assert len(ours[1]) == len(real[1])  # padded like the real header line
    assert ours[3] == real[3] == "Galvanostatic Cycling with Potential Limitation"
    real_titles = real[int(real[1].split(":")[1]) - 1].rstrip("\t").split("\t")
    our_titles = ours[n - 1].rstrip("\t").split("\t")
    assert set(our_titles) <= set(real_titles)
    assert [t for t in real_titles if t in our_titles] == our_titles  # same order
    first = ours[n].split("\t")
    assert "," in first[our_titles.index("time/s")]  # decimal comma, like the real file
    assert first[our_titles.index("time/s")].split("E")[1][1:].isdigit()
    assert len(first[our_titles.index("time/s")].split("E")[1]) == 4  # E+001


def test_files_parse_with_the_project_readers(campaign):
    root, rows = campaign
    registry = pytest.importorskip("progral_dagster.readers.registry")
    truth = pd.read_csv(root / "truth" / "cells.csv").set_index("file")
    for r in rows:
        m = registry.read(root / "share" / r["file"])
        if r["file"].endswith(".mpt"):
            t = m.tables["cycling"].to_pandas()
            q = t.groupby("cycle")["discharge_capacity_ah"].max()
            tr = truth.loc[r["file"]]
            assert 100 * q[tr["n_cycles"]] / q[tr["ref_cycle"]] == pytest.approx(
                tr["retention_pct"], rel=1e-9
            )
            assert (t.loc[t["step_type"] == "charge", "current_a"] > 0).all()
        elif r["file"].endswith(".vms"):
            regions = set(m.tables["xps_spectra"].to_pandas()["region"])
            assert {"Survey", "C 1s", "O 1s", "F 1s", "Li 1s", "Ni 2p"} <= regions
        else:
            assert m.technique == "tof-sims"
            assert m.metadata.get("polarity") == r["polarity"]


def test_vamas_parses_with_the_vamas_package(campaign):
    vamas = pytest.importorskip("vamas")
    root, rows = campaign
    path = root / "share" / next(r["file"] for r in rows if r["file"].endswith(".vms"))
    blocks = vamas.Vamas(str(path)).blocks
    assert [b.block_identifier for b in blocks][:2] == ["Survey", "C 1s"]
    for b in blocks:
        y = np.asarray(b.corresponding_variables[0].y_values, float)
        assert (y >= 0).all() and np.array_equal(y, np.round(y))  # Poisson counts
        assert b.analysis_source_characteristic_energy == pytest.approx(1486.6)


def test_tof_sims_carbonate_fragments_follow_the_surface(campaign):
    root, rows = campaign
    sheets = pd.read_csv(root / "truth" / "cathode_sheets.csv").set_index("sample_id")
    from progral_dagster.processing.ion_masses import ion_mass

    ratio = {}
    for r in rows:
        if r.get("polarity") != "negative":
            continue
        d = np.loadtxt(root / "share" / r["file"], skiprows=3)
        mz, y = d[:, 1], d[:, 2]
        m = ion_mass("CO3-")
        ratio[r["sample_id"]] = y[np.abs(mz - m) < 0.02].sum() / y.sum()
    s = pd.Series(ratio)
    rho = s.rank().corr(sheets.loc[s.index, "li2co3"].rank())
    assert rho > 0.8


def test_determinism(campaign, tmp_path):
    root, _ = campaign
    cc.simulate_cathode_campaign(tmp_path / "a" / "share", tmp_path / "a" / "truth", 3, "small")
    assert _digest(tmp_path / "a") == _digest(root)
    cc.simulate_cathode_campaign(
        tmp_path / "b" / "share", tmp_path / "b" / "truth", 4, "small", ref_cycle=2
    )
    assert _digest(tmp_path / "b" / "share") != _digest(root / "share")
    # the reference cycle is a parameter: truth and files agree on it
    t = pd.read_csv(tmp_path / "b" / "truth" / "cells.csv").iloc[0]
    assert t["ref_cycle"] == 2
    q = (
        parse_mpt_minimal(tmp_path / "b" / "share" / t["file"])
        .groupby("cycle number")["Q discharge/mA.h"]
        .max()
    )
    assert 100 * q[t["n_cycles"] - 1] / q[1] == pytest.approx(t["retention_pct"], rel=1e-9)


def test_noise_of_known_size():
    """retention_pct - expected has the stated standard deviation (many simulated cells)."""
    rng = np.random.default_rng(0)
    surf = cc.storage_surface(cc.ATMOSPHERES[3], 5.0, 100.0, rng)
    dev, sds = [], []
    for _ in range(400):
        _, truth, _ = cc.simulate_cell(surf, rng, n_cycles=30, points=4)
        realised = 100 * truth.q_dis_mah[29] / truth.q_dis_mah[cc.REF_CYCLE - 1]
        dev.append(realised - truth.expected_pct)
        sds.append(truth.noise_sd)
    dev = np.asarray(dev)
    assert abs(dev.mean()) < 0.2
    assert np.std(dev) == pytest.approx(np.mean(sds), rel=0.1)


def test_storage_chemistry_is_physical():
    rng = np.random.default_rng(1)
    argon, dry, free, amb, humid = cc.ATMOSPHERES
    # -40 degC dew point for 1 h is harmless (Fenske et al. 2024): exchange below 1 %
    assert cc.storage_surface(dry, -40.0, 1.0, rng).exchange < 0.01
    # humid air for days converts most of the surface; CO2 carbonates it, CO2-free air not
    wet = cc.storage_surface(humid, 20.0, 200.0, rng)
    wet_free = cc.storage_surface(free, 18.0, 200.0, rng)
    assert wet.exchange > 0.8 and wet_free.exchange > 0.8
    assert wet.li2co3 > 0.2 > wet_free.li2co3
    assert wet_free.lioh > 0.2
    # retention falls with exposure
    assert (
        cc.expected_retention(wet)
        < cc.expected_retention(cc.storage_surface(argon, -60.0, 200.0, rng)) - 5
    )
    assert cc.water_pressure_hpa(0.0) == pytest.approx(6.112)
    assert cc.water_pressure_hpa(20.0) == pytest.approx(23.37, abs=0.05)  # steam tables: 23.39


def test_xps_truth_is_the_rsf_weighted_composition():
    """Noise-free areas / RSF give the truth atomic % (the definition the simulator uses)."""
    from progral_dagster.simulate.xps_physics import RSF

    amounts = {"adventitious": 0.2, "Li2CO3": 0.1, "LiNiO2": 0.3, "NiO": 0.1, "LiF": 0.02}
    sim = simulate_xps(amounts, np.random.default_rng(0), survey=False)
    # atoms: C 0.2 + 0.1; O 0.084 + 0.3 + 0.6 + 0.1; Li 0.2 + 0.3 + 0.02; Ni 0.4; F 0.02
    atoms = {"C": 0.3, "O": 0.084 + 0.3 + 0.6 + 0.1, "Li": 0.52, "Ni": 0.4, "F": 0.02, "P": 0.0}
    total = sum(atoms.values())
    for el, n in atoms.items():
        assert sim.truth[f"{el}_at_pct"] == pytest.approx(100 * n / total)
    assert sim.truth["carbonate_fraction"] == pytest.approx(0.1 / 0.3)
    assert sim.truth["ni2_fraction"] == pytest.approx(0.25)
    assert math.isfinite(RSF["Li 1s"])
