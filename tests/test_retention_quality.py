"""Model quality on a ``full`` simulated stored-cathode campaign: files -> readers -> features
-> grouped nested CV, judged against the simulator's truth (cells.csv, xps.csv,
cathode_sheets.csv)."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

from progral_dagster.ml.retention import (
    build_feature_table,
    feature_columns,
    predict_with_interval,
    tof_fragment_table,
    train_retention,
)
from progral_dagster.processing.cycling import cycling_feature_table
from progral_dagster.processing.xps import xps_feature_table
from progral_dagster.simulate.cathode_campaign import REF_CYCLE, SIZES, simulate_cathode_campaign

pytestmark = pytest.mark.quality

# another simulator seed: PROGRAL_QUALITY_SEED=N (acceptance runs seeds not used here)
SEED = int(os.environ.get("PROGRAL_QUALITY_SEED", "21"))

READERS = {
    "tof_sims_spectra": "progral_dagster.readers.iontof_spectrum",
    "xps_spectra": "progral_dagster.readers.vamas",
    "cycling": "progral_dagster.readers.biologic_mpt",
}
N_CYCLES = SIZES["full"][3]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    for mod in READERS.values():
        pytest.importorskip(mod)
    from progral_dagster.readers import registry

    root = tmp_path_factory.mktemp("cathode_full")
    t0 = time.perf_counter()
    rows = simulate_cathode_campaign(root / "share", root / "truth", seed=SEED, size="full")
    t1 = time.perf_counter()
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in READERS}
    polarity = {}
    for r in rows:
        m = registry.read(root / "share" / r["file"])
        for name, table in m.tables.items():
            if name in parts:
                parts[name].append(table.to_pandas().assign(measurement_id=r["file"]))
        if m.technique == "tof-sims":
            polarity[r["file"]] = m.metadata.get("polarity") or r["polarity"]
    data = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    samples = pd.DataFrame(rows).assign(measurement_id=lambda d: d["file"])
    tof = tof_fragment_table(data["tof_sims_spectra"], polarity)
    xps = xps_feature_table(data["xps_spectra"])
    cyc = cycling_feature_table(data["cycling"], ref_cycle=REF_CYCLE, target_cycle=N_CYCLES)
    table = build_feature_table(samples, tof=tof, xps=xps, cycling=cyc)
    t2 = time.perf_counter()
    print(f"\nsimulate {t1 - t0:.0f} s, read + features {t2 - t1:.0f} s")
    truth = {
        "cells": pd.read_csv(root / "truth" / "cells.csv"),
        "xps": pd.read_csv(root / "truth" / "xps.csv"),
        "sheets": pd.read_csv(root / "truth" / "cathode_sheets.csv"),
    }
    return {"table": table, "xps": xps, "cyc": cyc, "truth": truth}


@pytest.fixture(scope="module")
def reports(lake):
    out = {}
    for variant in ("capacity-retention-regressor", "capacity-retention-surface-only"):
        t0 = time.perf_counter()
        out[variant] = train_retention(lake["table"], variant=variant, seed=0)
        print(f"{variant}: {time.perf_counter() - t0:.0f} s")
    return out


def test_campaign_size_and_target_from_files(lake):
    t, cells = lake["table"], lake["truth"]["cells"]
    assert t["sample_id"].nunique() >= 40 + 1
    assert len(cells) >= 40 * 3 and cells.groupby("sample_id").size().min() == 3
    merged = t.dropna(subset=["cell_id"]).merge(cells, on=["sample_id", "cell_id"])
    assert len(merged) == len(cells)
    # retention_N computed by processing/cycling from the read files = the simulator's truth
    np.testing.assert_allclose(merged["retention_pct_x"], merged["retention_pct_y"], rtol=1e-9)


def test_xps_quantification_on_the_campaign(lake):
    x = lake["xps"].merge(
        lake["truth"]["xps"], left_on="measurement_id", right_on="file", suffixes=("", "_true")
    )
    assert len(x) == len(lake["truth"]["xps"])
    # Stated tolerance, per element: bias (mean error) within 0.6 at%, every sample within
    # 1.5 at% (Li: 2.5 at%: its cross-section is 1/18 of C 1s, so its area is the noisiest;
    # over 56 samples of seeds 7 and 13 its error had mean +0.3/+0.4 and sd 0.45-0.48 at%).
    tolerance = {"C": 1.5, "O": 1.5, "F": 1.5, "Li": 2.5, "Ni": 1.5}
    for el, tol in tolerance.items():
        err = x[f"{el}_at_pct"] - x[f"{el}_at_pct_true"]
        print(f"{el}: mean error {err.mean():+.3f}, sd {err.std():.3f}, max |{err.abs().max():.3f}| at%")
        assert abs(err.mean()) < 0.6, el
        assert err.abs().max() < tol, el
    err = (x["carbonate_fraction"] - x["carbonate_fraction_true"]).abs()
    assert err.max() < 0.05


@pytest.mark.parametrize(
    "variant", ["capacity-retention-regressor", "capacity-retention-surface-only"]
)
def test_grouped_cv_quality(reports, lake, variant):
    rep = reports[variant]
    noise = lake["truth"]["cells"]["noise_sd"].mean()
    m = rep.champion_metrics
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(
            f"\n{variant}: champion {rep.champion}, noise sd {noise:.2f} %, "
            f"beats linear baseline: {rep.beats_linear_baseline} "
            f"(bootstrap p = {rep.p_beats_linear:.2f})"
        )
        print(
            rep.comparison_table()[
                [
                    "candidate",
                    "r2",
                    "r2_lo",
                    "r2_hi",
                    "rmse",
                    "rmse_lo",
                    "rmse_hi",
                    "mae",
                    "rmse_minus_linear_best_feature",
                ]
            ]
            .round(3)
            .to_string()
        )
        print(rep.importances.head(8).round(3).to_string())
    assert m["r2"] >= 0.8
    assert m["rmse"] <= 1.5 * noise
    assert isinstance(rep.beats_linear_baseline, bool)
    rmse = rep.metrics.set_index("candidate")["rmse"]
    assert rep.beats_linear_baseline == bool(rmse[rep.champion] < rmse["linear_best_feature"])
    if variant.endswith("surface-only"):
        assert not any(f.startswith("cyc_") for f in rep.feature_names)
    else:
        assert any(f.startswith("cyc_") for f in rep.feature_names)


def test_no_sheet_in_training_and_test(reports):
    for rep in reports.values():
        for tr, te in rep.folds:
            assert not set(rep.groups[tr]) & set(rep.groups[te])


def test_surface_only_predictions_for_sheets_without_cells(reports, lake):
    rep = reports["capacity-retention-surface-only"]
    t = lake["table"]
    pending = t[t["cell_id"].isna()]
    assert len(pending) == SIZES["full"][2]
    assert pending[feature_columns(t, "surface-only")].notna().mean().mean() > 0.95
    pred = predict_with_interval(rep, pending, alpha=0.1).merge(
        lake["truth"]["sheets"], on="sample_id"
    )
    err = pred["prediction"] - pred["expected_retention_pct"]
    noise = lake["truth"]["cells"]["noise_sd"].mean()
    print(
        "\npending sheets:\n",
        pred[["sample_id", "prediction", "lower", "upper", "expected_retention_pct"]]
        .round(2)
        .to_string(),
    )
    assert np.sqrt(np.mean(err**2)) <= 1.5 * noise
    inside = (pred["expected_retention_pct"] >= pred["lower"]) & (
        pred["expected_retention_pct"] <= pred["upper"]
    )
    assert inside.mean() >= 0.75
