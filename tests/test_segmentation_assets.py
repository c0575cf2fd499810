"""Segmentation served from the registry: ingest simulated image exports (with a user label
image), train + promote `tof-sims-phase-segmentation`, segment every image measurement, and
`progral segment` a folder of exports; judged against the simulator's truth."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from progral_dagster.cli import main
from progral_dagster.mlflow import registry, tracking
from progral_dagster.warehouse import connect

MODEL = "tof-sims-phase-segmentation"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_template_db):
    from progral_dagster.cli.simulate import simulate_campaign

    from .helpers import make_settings

    saved = dict(os.environ)
    root = tmp_path_factory.mktemp("seg")
    s = make_settings(root)
    (s.home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template_db, s.home / "mlflow" / "mlflow.db")
    simulate_campaign(s.share, root / "truth", seed=4, size="small", kinds=("images",), verbose=False)
    assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
    assert main(["train", "tof_sims_phase_segmentation", "tof_sims_phase_segmentation_champion",
                 "segmented_images", "particles", "phase_fractions", "--home", str(s.home)]) == 0
    yield s, root / "truth"
    os.environ.clear()
    os.environ.update(saved)


def test_champion_and_segmented_images_match_truth(trained):
    s, truth = trained
    tracking.configure(s.mlflow_tracking_uri)
    assert registry.champion(MODEL) is not None
    con = connect(s.home)
    seg = con.execute("select measurement_id, name, model_version from segmented_images").df()
    assert len(seg) == 2 and set(seg["model_version"]) == {str(registry.champion(MODEL).version)}
    parts = con.execute("select s.name, p.phase, count(*) n, median(p.equivalent_diameter_um) med "
                        "from particles p join segmented_images s using (measurement_id) group by all").df()
    t = pd.read_csv(truth / "images" / "particles.csv")
    tt = t.groupby(["measurement", "phase"]).equivalent_diameter_um.agg(["count", "median"]).reset_index()
    for _, r in tt.iterrows():
        got = parts[(parts["name"] == r["measurement"]) & (parts["phase"] == r["phase"])].iloc[0]
        assert abs(got["n"] - r["count"]) <= 0.1 * r["count"], (r["measurement"], r["phase"])
        assert abs(got["med"] - r["median"]) <= 0.1 * r["median"], (r["measurement"], r["phase"])
    # the label image in the lake against the truth label image: mean IoU over phases
    phases = json.loads((truth / "images" / "phases.json").read_text())
    for _, r in seg.iterrows():
        from progral_dagster.warehouse.lake import Lake

        pred = Lake(s.lake).read_array(r["measurement_id"], f"segmentation-v{r['model_version']}")
        true = tifffile.imread(truth / "images" / f"{r['name']}.tif")
        pred_ph = json.loads(con.execute("select phases from segmented_images where measurement_id = $m",
                                         {"m": r["measurement_id"]}).fetchone()[0])
        ious = []
        for v, name in phases.items():
            tmask = true == int(v)
            if not tmask.any():
                continue
            pv = [int(k) for k, n in pred_ph.items() if n == name]
            pmask = np.isin(pred, pv)
            ious.append((tmask & pmask).sum() / (tmask | pmask).sum())
        assert np.mean(ious) >= 0.85, (r["name"], ious)


def test_progral_segment_writes_outputs(trained, tmp_path, capsys):
    s, truth = trained
    folder = next(p for p in (s.share / "images").iterdir() if p.is_dir() and p.name.startswith("cathode"))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["segment", str(folder), "--out", str(out), "--home", str(s.home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    name = res[0]["measurement"]
    for suffix in (".tif", ".phases.json", ".particles.csv", ".overlay.png"):
        assert (out / f"{name}{suffix}").is_file()
    lab = tifffile.imread(out / f"{name}.tif")
    assert lab.shape == tifffile.imread(truth / "images" / f"{name}.tif").shape
    assert set(json.loads((out / f"{name}.phases.json").read_text()).values()) == {"NMC", "carbon-binder", "pore"}
    assert res[0]["pixel_size_um"] > 0
