"""Scale-out configuration: ingestion and training with Dagster's storage and MLflow's backend in
PostgreSQL, and the deploy/ files checked against the code.

The slow test starts a throw-away PostgreSQL server on 127.0.0.1 (OS package, see
``pg_fixtures.py``), installs ``deploy/dagster.yaml`` as the Dagster instance and points
``MLFLOW_TRACKING_URI`` at a second database, then runs `progral ingest` on a simulated spectra
campaign and `progral train` of the lithium-compound classifier with its promotion. What is in
the two databases is then read with plain SQL and compared with the campaign on disk and with
what the run reported; last, ``deploy/mlflow/mlflow-server.sh`` serves that MLflow database and
its REST API must name the same champion.

The fast tests parse every deploy/ file and check it names what the code defines (asset groups,
environment variables, the tag concurrency limit of the embedded instance).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from progral_dagster.cli import main

from .helpers import make_settings
from .pg_fixtures import pg_cluster

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CLASSIFIER = "tof-sims-li-compound-classifier"


# ----------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def pg():
    with pg_cluster("dagster", "mlflow") as c:
        yield c


def _share_files(share: Path) -> list[str]:
    return sorted(str(p.relative_to(share)) for p in share.rglob("*") if p.is_file())


@pytest.mark.slow
def test_ingest_and_training_with_postgres_storage(pg, tmp_path, monkeypatch, capsys):
    from progral_dagster.cli.simulate import simulate_campaign

    s = make_settings(tmp_path, monkeypatch=monkeypatch)
    s.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(
        DEPLOY / "dagster.yaml", s.dagster_home / "dagster.yaml"
    )  # before anything opens it
    for k, v in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_DB": "dagster",
        "MLFLOW_TRACKING_URI": pg.url("mlflow"),
    }.items():
        monkeypatch.setenv(k, v)
    simulate_campaign(
        s.share, tmp_path / "truth", seed=11, size="small", kinds=("spectra",), verbose=False
    )
    files = _share_files(s.share)

    assert main(["ingest", str(s.share), "--home", str(s.home), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["summary"]["counts"].get("failed", 0) == 0
    assert (
        main(
            [
                "train",
                "li_compound_classifier",
                "li_compound_classifier_champion",
                "--with-upstream",
                "--home",
                str(s.home),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    accuracy = float(
        re.search(r"li_compound_classifier: \{[^}]*'accuracy': ([0-9.]+)", out).group(1)
    )

    # ---- Dagster: runs, partitions and materialisations are rows in PostgreSQL, no SQLite file
    from progral_dagster.cli.instance import get_instance

    instance = get_instance(s)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert list(s.dagster_home.rglob("*.db")) == []
    statuses = dict(pg.query("dagster", "select status, count(*) from runs group by status"))
    assert set(statuses) == {"SUCCESS"} and statuses["SUCCESS"] >= 2
    partitions = pg.query(
        "dagster",
        "select partition from dynamic_partitions where partitions_def_name = %s",
        ("share_files",),
    )
    assert len(partitions) == len(
        files
    )  # one per file of the campaign (no acquisition groups in it)
    mats = pg.query(
        "dagster",
        "select asset_key, count(distinct partition), count(*) from event_logs "
        "where dagster_event_type = 'ASSET_MATERIALIZATION' group by asset_key",
    )
    by_key = {"/".join(json.loads(k)): (parts, n) for k, parts, n in mats}
    assert by_key["raw_files"][0] == len(files) and by_key["measurements"][0] == len(files)
    for key in (
        "tof_sims_peak_areas",
        "tof_sims_summary",
        "li_compound_classifier",
        "li_compound_classifier_champion",
    ):
        assert by_key[key][1] == 1, key
    checks = pg.query(
        "dagster",
        "select count(*) from event_logs where dagster_event_type = 'ASSET_CHECK_EVALUATION'",
    )
    assert checks[0][0] >= 1
    # the instance API reads the same rows
    rec = instance.get_latest_materialization_event(
        __import__("dagster").AssetKey("li_compound_classifier")
    )
    assert rec is not None and rec.asset_materialization.metadata[
        "accuracy"
    ].value == pytest.approx(accuracy, abs=1e-3)

    # ---- MLflow: the registered model, its champion alias and the run are in the PostgreSQL backend
    assert not (s.home / "mlflow" / "mlflow.db").exists()
    assert pg.query("mlflow", "select name from registered_models") == [(CLASSIFIER,)]
    assert pg.query(
        "mlflow",
        "select alias, version from registered_model_aliases where name = %s",
        (CLASSIFIER,),
    ) == [("champion", 1)]
    (run_id,) = pg.query(
        "mlflow", "select run_id from model_versions where name = %s and version = 1", (CLASSIFIER,)
    )[0]
    assert pg.query("mlflow", "select status from runs where run_uuid = %s", (run_id,)) == [
        ("FINISHED",)
    ]
    logged = dict(
        pg.query("mlflow", "select key, value from latest_metrics where run_uuid = %s", (run_id,))
    )
    assert logged["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    import mlflow

    mv = mlflow.MlflowClient(tracking_uri=pg.url("mlflow")).get_model_version_by_alias(
        CLASSIFIER, "champion"
    )
    assert str(mv.version) == "1" and mv.run_id == run_id

    # ---- the MLflow server of deploy/mlflow serves that registry from PostgreSQL
    got = _ask_mlflow_server(
        pg.url("mlflow"), tmp_path, f"registered-models/alias?name={CLASSIFIER}&alias=champion"
    )
    assert got["model_version"]["version"] == "1" and got["model_version"]["run_id"] == run_id


def _ask_mlflow_server(backend: str, tmp_path: Path, api: str) -> dict:
    """Start deploy/mlflow/mlflow-server.sh on 127.0.0.1, GET /api/2.0/mlflow/<api>, stop it."""
    import sys
    import time
    import urllib.request

    from progral_dagster.cli.serve import start_group, stop_group

    from .pg_fixtures import free_port

    port = free_port()
    env = dict(
        os.environ,
        MLFLOW_BACKEND_STORE_URI=backend,
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_ARTIFACTS_DESTINATION=(tmp_path / "served-artifacts").as_uri(),
        MLFLOW_WORKERS="1",
        MLFLOW_BIN=str(Path(sys.executable).with_name("mlflow")),
    )
    log = tmp_path / "mlflow-server.log"
    p = start_group([str(DEPLOY / "mlflow" / "mlflow-server.sh")], env, log)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/{api}", timeout=10
                ) as r:
                    return json.loads(r.read())
            except OSError:
                if time.time() > deadline or p.poll() is not None:
                    raise AssertionError(
                        f"MLflow server did not answer: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(1)
    finally:
        stop_group(p, grace_s=10)


# ----------------------------------------------------------------------------------- deploy/ files
def _yaml(rel: str):
    return yaml.safe_load((DEPLOY / rel).read_text())


def _defs():
    from progral_dagster.definitions import defs

    return defs


def test_deploy_dagster_yaml_is_a_valid_postgres_instance_config():
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    cfg = _yaml("dagster.yaml")
    env = {
        "DAGSTER_PG_HOST": "db",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": "x",
        "DAGSTER_PG_DB": "dagster",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = process_config(dagster_instance_config_schema(), cfg)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert res.success, res.errors
    assert set(cfg["storage"]) == {"postgres"}
    from progral_dagster.cli.instance import DAGSTER_YAML

    embedded = yaml.safe_load(DAGSTER_YAML)["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert cfg["run_coordinator"]["config"]["tag_concurrency_limits"] == embedded


def test_deploy_workspace_is_a_grpc_workspace():
    from dagster._config import process_config
    from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA

    cfg = _yaml("workspace.yaml")
    os.environ.setdefault("PROGRAL_CODE_SERVER_HOST", "code")
    os.environ.setdefault("PROGRAL_CODE_SERVER_PORT", "4266")
    assert process_config(WORKSPACE_CONFIG_SCHEMA, cfg).success
    (loc,) = cfg["load_from"]
    assert loc["grpc_server"]["location_name"] == "progral_dagster"
    import tomllib

    assert (
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"][
            "code_location_name"
        ]
        == loc["grpc_server"]["location_name"]
    )


def test_helm_values_match_the_code():
    v = _yaml("helm/values.yaml")
    assert v["runLauncher"]["type"] == "K8sRunLauncher"
    rc = v["dagsterDaemon"]["runCoordinator"]
    assert rc["enabled"] and rc["type"] == "QueuedRunCoordinator"
    limits = rc["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert (
        yaml.safe_load(Path(DEPLOY / "dagster.yaml").read_text())["run_coordinator"]["config"][
            "tag_concurrency_limits"
        ]
        == limits
    )
    assert v["postgresql"]["enabled"] is False and v["postgresql"]["postgresqlHost"]
    (dep,) = v["dagster-user-deployments"]["deployments"]
    args = dep["dagsterApiGrpcArgs"]
    # the gRPC server loads the Kubernetes code location (deploy/k8s/code_location.py) from the image
    assert "--python-file" in args or "-f" in args
    target = args[args.index("--python-file" if "--python-file" in args else "-f") + 1]
    assert (
        target.endswith("deploy/k8s/code_location.py")
        and (DEPLOY / "k8s" / "code_location.py").exists()
    )
    env = {e["name"]: e for e in dep["env"]}
    from progral_dagster import settings as settings_mod

    documented = set(re.findall(r"``([A-Z][A-Z0-9_]+)``", settings_mod.__doc__))
    for name in (
        "PROGRAL_LAKE",
        "PROGRAL_S3_ENDPOINT",
        "MLFLOW_TRACKING_URI",
        "PROGRAL_SHARE",
        "PROGRAL_HOME",
    ):
        assert name in env and name in documented, name
    assert env["PROGRAL_LAKE"]["value"].startswith("s3://")
    assert env["MLFLOW_TRACKING_URI"]["value"].startswith("http")
    # secrets by reference only: no AWS key or password written into the values
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text) and not [
        k for k in env if "SECRET" in k or "KEY_ID" in k
    ]
    assert {"name": "progral-s3"} in dep["envSecrets"] and v["postgresql"][
        "postgresqlPassword"
    ] == ""
    assert v["global"]["postgresqlSecretName"] and v["generatePostgresqlPasswordSecret"] is False


def test_k8s_code_location_gives_slicegan_steps_a_gpu():
    import importlib.util

    import dagster as dg

    spec = importlib.util.spec_from_file_location(
        "progral_k8s_location", DEPLOY / "k8s" / "code_location.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # must import without dagster-k8s (only the executor needs it)

    @dg.asset(group_name="slicegan")
    def slicegan_generator():
        return 1

    @dg.asset(group_name="spectral_models")
    def other_model():
        return 1

    per_step = mod.per_step_k8s_config([slicegan_generator, other_model, *(_defs().assets or [])])
    assert set(per_step) >= {"slicegan_generator"} and "other_model" not in per_step
    cfg = per_step["slicegan_generator"]
    assert cfg["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert cfg["pod_spec_config"]["node_selector"] == mod.GPU_NODE_SELECTOR
    # no asset of today's code location is sent to a GPU unless it belongs to SliceGAN
    groups = {a.op.name: set(a.group_names_by_key.values()) for a in (_defs().assets or [])
              if isinstance(a, dg.AssetsDefinition) and a.is_executable}
    for step in per_step:
        assert "slicegan" in step or "slicegan" in groups.get(step, set())
    assert "slicegan_generator" in per_step and "li_compound_classifier" not in per_step
    # and the Helm values' GPU node pool is the one the code location selects
    v = _yaml("helm/values.yaml")
    env = {
        e["name"]: e.get("value") for e in v["dagster-user-deployments"]["deployments"][0]["env"]
    }
    assert json.loads(env["PROGRAL_K8S_GPU_NODE_SELECTOR"]) == mod.GPU_NODE_SELECTOR
