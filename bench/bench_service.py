"""Resident memory of the service at rest: `progral serve` (dagster dev: webserver, daemon, code
server; plus the MLflow UI) on an empty home, summed over every process of the service, after
it has settled (DESIGN.md budget: < 2 GB for webserver, daemon and code server).

    .venv/bin/python bench/bench_service.py [--settle 90] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from progral_dagster.cli.serve import stop_group

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--settle", type=float, default=90.0, help="seconds to wait before measuring")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_service_"))
    env = dict(os.environ, PROGRAL_HOME=str(home))
    env.pop("PROGRAL_SHARE", None)
    dport, mport = free_port(), free_port()
    p = subprocess.Popen([sys.executable, "-m", "progral_dagster.cli", "serve", "--no-seed", "--dagster-port", str(dport),
                          "--mlflow-port", str(mport)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        time.sleep(a.settle)
        groups: dict[str, list] = {}
        for child in psutil.Process(p.pid).children():
            name = "mlflow" if "mlflow" in " ".join(child.cmdline()) else "dagster"
            for proc in [child, *child.children(recursive=True)]:
                try:
                    groups.setdefault(name, []).append({"pid": proc.pid, "rss_mb": proc.memory_info().rss / 1e6,
                                                        "cmd": " ".join(proc.cmdline())[:100]})
                except psutil.Error:
                    pass
    finally:
        stop_group(p)
    dag = sum(r["rss_mb"] for r in groups.get("dagster", []))
    ml = sum(r["rss_mb"] for r in groups.get("mlflow", []))
    for name, rows in groups.items():
        for r in sorted(rows, key=lambda r: -r["rss_mb"]):
            print(f"  {name:7s} {r['rss_mb']:7.0f} MB  {r['cmd']}")
    print(f"service at rest after {a.settle:.0f} s: dagster dev (webserver, daemon, code servers) "
          f"{dag:.0f} MB in {len(groups.get('dagster', []))} processes (budget 2000 MB); "
          f"MLflow UI {ml:.0f} MB in {len(groups.get('mlflow', []))} processes")
    if a.json:
        Path(a.json).write_text(json.dumps({"dagster_mb": dag, "mlflow_mb": ml, "processes": groups}, indent=1))


if __name__ == "__main__":
    main()
