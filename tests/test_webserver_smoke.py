"""Start the Dagster webserver on a free port, read the asset keys over GraphQL, stop every process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from progral_dagster.cli.serve import stop_group

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _pids_in_group(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    out.append(int(d.name))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def test_webserver_serves_asset_graph(tmp_path):
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster"), PROGRAL_HOME=str(tmp_path / "home"))
    (tmp_path / "dagster").mkdir()
    p = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
         "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        keys = None
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                data = graphql(port, "{ assetNodes { assetKey { path } } }")
                nodes = data.get("data", {}).get("assetNodes")
                if nodes:
                    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
                    break
            except OSError:
                pass
            time.sleep(1)
        assert keys is not None, "webserver did not answer"
        assert {"raw_files", "measurements"} <= keys
    finally:
        stop_group(p, grace_s=10)
    assert _pids_in_group(p.pid) == []
