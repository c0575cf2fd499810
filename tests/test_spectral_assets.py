"""ToF-SIMS spectral assets end to end: ingest a simulated campaign, train, promote, predict.

Checks the MLflow conventions of the spectral-models issue: the registry has the classifier with
alias `champion`; training again on unchanged data does not replace the champion; a failing
blocking check leaves the champion where it was; `progral predict composition` prints
probabilities from the champion, close to the simulator's truth for a hidden mixture.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from progral_dagster.cli import main
from progral_dagster.mlflow import registry, tracking

CLASSIFIER = "tof-sims-li-compound-classifier"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mlflow_template_db):
    import os
    import shutil

    from progral_dagster.cli.simulate import simulate_campaign

    from .helpers import make_settings

    root = tmp_path_factory.mktemp("spectral")
    saved = dict(os.environ)
    s = make_settings(root)
    (s.home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template_db, s.home / "mlflow" / "mlflow.db")
    simulate_campaign(s.share, root / "truth", seed=5, size="small", kinds=("spectra",), verbose=False)
    assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
    assert main(["train", "--home", str(s.home)]) == 0
    yield s, root / "truth"
    os.environ.clear()
    os.environ.update(saved)


def _champion(s):
    tracking.configure(s.mlflow_tracking_uri)
    mv = registry.champion(CLASSIFIER)
    return None if mv is None else str(mv.version)


def test_champion_registered_with_signature(trained):
    s, _ = trained
    assert _champion(s) == "1"
    import mlflow

    m = mlflow.models.get_model_info(f"models:/{CLASSIFIER}@champion")
    assert m.signature is not None and len(m.signature.inputs.input_names()) > 20


def test_retraining_unchanged_data_keeps_champion_and_failed_check_blocks(trained, monkeypatch, capsys):
    s, _ = trained
    before = _champion(s)
    assert main(["train", "li_compound_classifier", "li_compound_classifier_champion", "--home", str(s.home)]) == 0
    out = capsys.readouterr().out
    assert "promoted': False" in out and _champion(s) == before
    monkeypatch.setenv("PROGRAL_CLASSIFIER_MIN_ACCURACY", "1.01")  # no model can pass
    main(["train", "li_compound_classifier", "li_compound_classifier_champion", "--home", str(s.home)])
    out = capsys.readouterr().out
    assert "check li_compound_classifier:accuracy_at_least_threshold: FAILED" in out
    assert "li_compound_classifier_champion" not in out  # blocked: the promotion did not run
    assert _champion(s) == before
    tracking.configure(s.mlflow_tracking_uri)
    import mlflow

    assert len(mlflow.MlflowClient().search_model_versions(f"name='{CLASSIFIER}'")) == 3


def test_composition_predictions_and_cli_predict(trained, capsys):
    s, truth_dir = trained
    from progral_dagster.warehouse import connect

    con = connect(s.home)
    pred = con.execute("select * from composition_predictions").df()
    truth = pd.read_csv(truth_dir / "spectra.csv")
    hidden = truth[truth["kind"].isin(["mixture", "anode"])]
    # one prediction per hidden spot (positive and negative spectra paired)
    assert len(pred) == (hidden["polarity"] == "positive").sum()
    assert set(pred["model_version"]) == {_champion(s)}
    mix = hidden[hidden["kind"] == "mixture"].iloc[0]
    pair = truth[(truth["sample_id"] == mix["sample_id"])]
    files = [str(s.share / f) for f in pair["file"].head(2)] if len(pair) >= 2 else [str(s.share / mix["file"])]
    p_file = [f for f in files if "/P_" in f][:1] + [f for f in files if "/N_" in f][:1]
    capsys.readouterr()
    assert main(["predict", "composition", *p_file, "--home", str(s.home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    r = res["files"][p_file[0]]
    probs = r["probabilities"]
    assert abs(sum(probs.values()) - 1) < 1e-6
    true = {c: float(mix[c]) for c in ("Li2CO3", "Li2O", "Li3N", "LiH", "LiOH")}
    top2_true = sorted(true, key=true.get)[-2:]
    assert set(sorted(probs, key=probs.get)[-2:]) == set(top2_true)
    assert max(abs(r["fractions"][c] - true[c]) for c in true) < 0.2
    assert main(["predict", "composition", p_file[0], "--home", str(s.home)]) == 0
    assert "p(Li2CO3)" in capsys.readouterr().out
