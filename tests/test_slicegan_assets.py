"""SliceGAN served from the registry: a crop of the real segmented SEM image on the share trains
the CPU configuration for a few iterations through the asset; the run, its loss history and the
model appear in MLflow, the champion is set, a generated volume has the training phases, and
`progral generate-3d` / `progral microstructure-metrics` work on it."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tifffile

from progral_dagster.cli import main
from progral_dagster.mlflow import registry, tracking
from progral_dagster.warehouse import connect

from .helpers import make_settings, write

pytestmark = pytest.mark.quality


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_template_db, samples):
    saved = dict(os.environ)
    root = tmp_path_factory.mktemp("slicegan")
    s = make_settings(root)
    (s.home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template_db, s.home / "mlflow" / "mlflow.db")
    crop = tifffile.imread(samples / "microstructure" / "SEM_hr_input.tif")[:160, :160]
    (s.share / "sem").mkdir(parents=True)
    tifffile.imwrite(s.share / "sem" / "nmc_sem_crop.tif", crop)
    write(s.share / "sem" / "samples.csv", "file,sample_id,material\nnmc_sem_crop.tif,SEM1,NMC SEM\n")
    os.environ["PROGRAL_SLICEGAN_ITERATIONS"] = "20"
    os.environ["PROGRAL_GENERATED_SIZE"] = "32"
    assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
    assert main(["train", "slicegan_generator", "slicegan_champions", "generated_microstructures",
                 "--home", str(s.home)]) == 0
    yield s, crop
    os.environ.clear()
    os.environ.update(saved)


def test_run_model_and_champion_in_mlflow(trained):
    import mlflow

    s, crop = trained
    tracking.configure(s.mlflow_tracking_uri)
    mv = registry.champion("slicegan-nmc-sem")
    assert mv is not None
    client = mlflow.MlflowClient()
    hist = client.get_metric_history(mv.run_id, "wasserstein")
    assert len(hist) >= 10  # the loss history is logged per iteration
    crit = [m.value for m in client.get_metric_history(mv.run_id, "critic_loss")]
    assert np.isfinite(crit).all() and np.std(crit) > 0  # the critic loss moves
    run = client.get_run(mv.run_id)
    assert run.data.params["iterations"] == "20" and "distance" in run.data.metrics
    # the champion step re-scores a model exactly as its training run scored it (same image,
    # size and seed): the registered model reproduces the logged distance
    import mlflow.pytorch

    from progral_dagster.ml.slicegan import distance_to_training

    net = mlflow.pytorch.load_model(f"models:/slicegan-nmc-sem/{mv.version}")
    _, cmp = distance_to_training(net, crop, 1.0, size=64, seed=0)
    assert cmp["distance"] == pytest.approx(run.data.metrics["distance"], rel=1e-6)


def test_generated_volumes_have_the_training_phases(trained, tmp_path, capsys):
    s, crop = trained
    con = connect(s.home)
    rows = con.execute("select phase, volume_fraction from generated_microstructures").fetchall()
    assert {p for p, _ in rows} <= set(np.unique(crop).tolist())
    assert abs(sum(v for _, v in rows) - 1) < 1e-6
    out = tmp_path / "vol.tif"
    assert main(["generate-3d", "--model", "models:/slicegan-nmc-sem@champion", "--size", "40", "--out", str(out),
                 "--seed", "3", "--home", str(s.home)]) == 0
    vol = tifffile.imread(out)
    assert vol.shape == (40, 40, 40) and set(np.unique(vol).tolist()) <= set(np.unique(crop).tolist())
    capsys.readouterr()
    assert main(["microstructure-metrics", str(out), "--json", "--no-tortuosity"]) == 0
    rep = json.loads(capsys.readouterr().out)
    fr = {int(k): v["volume_fraction"] for k, v in rep["phases"].items()}
    labels, counts = np.unique(vol, return_counts=True)
    assert fr == pytest.approx({int(k): c / vol.size for k, c in zip(labels, counts, strict=True)})
