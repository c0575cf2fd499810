"""Registry conventions and the promotion rule, with real MLflow on a SQLite backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from progral_dagster.mlflow import promotion, registry, tracking


def _train(seed, n=60):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.1 * rng.normal(size=n) > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def _log(s, model, X, name="test-model"):
    tracking.configure(s.mlflow_tracking_uri, s.mlflow_artifacts)
    with tracking.start_run("tests", "run", artifact_root=s.mlflow_artifacts, tags={"dagster.run_id": "x"}) as run:
        reg = registry.log_sklearn(model, name, X[:5])
    return reg, run


def test_log_register_and_artifacts_under_home(mlflow_home):
    s = mlflow_home
    model, X = _train(0)
    reg, run = _log(s, model, X)
    assert reg.version == "1" and reg.run_id == run.info.run_id
    import mlflow

    exp = mlflow.get_experiment_by_name("tests")
    assert exp.artifact_location.startswith(s.mlflow_artifacts.as_uri())
    loaded = mlflow.pyfunc.load_model(reg.model_uri)
    np.testing.assert_array_equal(loaded.predict(X[:5]), model.predict(X[:5]))
    assert loaded.metadata.signature is not None


def test_promotion_moves_alias_only_for_better_candidates(mlflow_home):
    s = mlflow_home
    model, X = _train(1)
    r1, _ = _log(s, model, X)
    d1 = promotion.promote("test-model", r1.version, 0.80, metric="accuracy", higher_is_better=True,
                           evaluate_champion=lambda uri: pytest.fail("no champion yet"))
    assert d1.promoted and str(registry.champion("test-model").version) == r1.version
    r2, _ = _log(s, model, X)
    # champion re-evaluated on the candidate's data scores 0.85: the 0.82 candidate is worse
    d2 = promotion.promote("test-model", r2.version, 0.82, metric="accuracy", higher_is_better=True,
                           evaluate_champion=lambda uri: 0.85)
    assert not d2.promoted and str(registry.champion("test-model").version) == r1.version
    # equal is not better
    d3 = promotion.promote("test-model", r2.version, 0.85, metric="accuracy", higher_is_better=True,
                           evaluate_champion=lambda uri: 0.85)
    assert not d3.promoted
    d4 = promotion.promote("test-model", r2.version, 1.1, metric="rmse", higher_is_better=False,
                           evaluate_champion=lambda uri: 1.5)
    assert d4.promoted and str(registry.champion("test-model").version) == r2.version
    assert not promotion.decide(float("nan"), 1.0, higher_is_better=True)
