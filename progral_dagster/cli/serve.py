"""``progral serve``: the embedded service (``dagster dev`` + MLflow UI) on 127.0.0.1.

Seeds the share with a small simulated campaign when it is empty (``--no-seed`` to skip), then
starts ``dagster dev`` (webserver, daemon, sensor on) and ``mlflow ui``, each in its own process
group, prints their URLs and waits. Ctrl-C (or SIGTERM) stops both groups: TERM, then KILL after
a grace period, so no code server or gRPC child is left behind.

One service per home: ``serve`` holds ``$PROGRAL_HOME/.serve.lock`` (and hands the open lock to
both groups, so it stays held while any of them lives). Holding it, it fails the runs an earlier
hard stop left in progress (``recovery.py``) before Dagster starts, so they are retried and do
not block the run queue.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import settings as settings_mod
from .instance import ensure_dagster_home, get_instance
from .recovery import recover_at_service_start

GRACE_S = 15.0


def service_env(s: settings_mod.Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PROGRAL_HOME=str(s.home),
        PROGRAL_SHARE=str(s.share),
        DAGSTER_HOME=str(ensure_dagster_home(s)),
        MLFLOW_TRACKING_URI=s.mlflow_tracking_uri,
        PROGRAL_MLFLOW_ARTIFACTS=str(s.mlflow_artifacts),
        PYTHONUNBUFFERED="1",
    )
    # MLflow's server-side job runner (huey consumers) serves GenAI evaluation jobs this service
    # does not use; off unless asked for
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def start_group(cmd: list[str], env: dict, log: Path, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                            pass_fds=pass_fds)


class ServiceRunning(RuntimeError):
    pass


def acquire_service_lock(home: Path) -> int:
    """Hold ``home/.serve.lock`` (exclusive, non-blocking); the open descriptor is returned."""
    path = home / ".serve.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ServiceRunning(
            f"the service already runs on {home} (progral serve, pid {holder}; a process it "
            "started may hold the lock after it). Stop it first, or use another PROGRAL_HOME."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def stop_group(p: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """TERM the process group, wait, then KILL whatever is left of it."""
    if p.poll() is not None and not _group_alive(p.pid):
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace_s
    while time.time() < deadline:
        if p.poll() is not None and not _group_alive(p.pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def seed_if_empty(s: settings_mod.Settings, size: str = "small", seed: int = 7) -> bool:
    s.share.mkdir(parents=True, exist_ok=True)
    if any(s.share.iterdir()):
        return False
    from .simulate import simulate_campaign

    print(f"seeding the empty share {s.share} with a '{size}' simulated campaign ...", flush=True)
    simulate_campaign(s.share, s.home / "truth", seed=seed, size=size)
    return True


def mlflow_ui_command(s: settings_mod.Settings, host: str, port: int) -> list[str]:
    s.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", s.mlflow_tracking_uri,
        "--default-artifact-root", s.mlflow_artifacts.as_uri(),
        "--host", host, "--port", str(port),
        # one worker is plenty for a lab; MLflow's default of 4 (plus its job consumers) holds
        # about 3 GB resident at rest
        "--workers", os.environ.get("PROGRAL_MLFLOW_WORKERS", "1"),
    ]


def dagster_dev_command(host: str, port: int) -> list[str]:
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    cmd = [sys.executable, "-m", "dagster", "dev", "-h", host, "-p", str(port)]
    if workspace.exists():
        cmd += ["-w", str(workspace)]
    else:
        cmd += ["-m", "progral_dagster.definitions"]
    return cmd


def run(args) -> int:
    s = settings_mod.load(args.home)
    for d in (s.home, s.share, s.lake, s.mlflow_artifacts.parent):
        d.mkdir(parents=True, exist_ok=True)
    try:
        lock = acquire_service_lock(s.home)
    except ServiceRunning as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = service_env(s)
    try:
        with get_instance(s) as instance:
            print(recover_at_service_start(instance).summary(), flush=True)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.no_seed:
        seed_if_empty(s, size=args.size)
    logs = s.home / "logs"
    procs = [
        ("dagster", start_group(dagster_dev_command(args.host, args.dagster_port), env,
                                logs / "dagster.log", pass_fds=(lock,))),
        ("mlflow", start_group(mlflow_ui_command(s, args.host, args.mlflow_port), env,
                               logs / "mlflow.log", pass_fds=(lock,))),
    ]
    print(
        f"\nProGrAL lake is starting (logs in {logs}):\n"
        f"  Dagster UI : http://{args.host}:{args.dagster_port}   (assets, sensor 'instrument_share', runs)\n"
        f"  MLflow UI  : http://{args.host}:{args.mlflow_port}   (runs, metrics, registered models)\n"
        f"  share      : {s.share}\n  home       : {s.home}\n"
        "Files dropped on the share are ingested after they settle "
        f"({s.settle_seconds} s) and the next sensor tick (30 s). Ctrl-C stops everything.",
        flush=True,
    )
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"{name} exited with code {p.returncode}; see {logs / (name + '.log')}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        for _, p in procs:
            stop_group(p)
    return 0
