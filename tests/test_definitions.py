"""The code location loads, and holds what the UI and the sensor rely on."""

from __future__ import annotations

import subprocess
import sys


def test_definitions_load():
    from progral_dagster.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_files", "measurements"} <= keys
    sensor = defs.resolve_sensor_def("instrument_share")
    assert sensor.default_status.value == "RUNNING" and sensor.minimum_interval_seconds == 30
    defs.resolve_all_job_defs()


def test_pure_packages_do_not_import_dagster_or_mlflow():
    code = (
        "import sys, importlib, pkgutil, progral_dagster\n"
        "for pkg in ('readers', 'processing', 'ml', 'simulate'):\n"
        "    m = importlib.import_module('progral_dagster.' + pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, m.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "bad = [k for k in sys.modules if k.split('.')[0] in ('dagster', 'mlflow')]\n"
        "print(','.join(sorted(set(b.split('.')[0] for b in bad))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"pure code imported {out.stdout.strip()}"
