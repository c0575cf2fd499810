"""Runs left in progress by a hard stop are failed at service start; live ones are left alone.

The real crash (a daemon killed with SIGKILL mid-run, then the service started again) is
``test_fault_daemon.py::test_daemon_killed_hard_runs_failed_at_start_and_retried`` (slow).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._daemon.types import DaemonHeartbeat

from progral_dagster.cli.recovery import (
    HOST_TAG,
    PID_TAG,
    START_TAG,
    fail_orphaned_runs,
    live_daemon,
    process_tags,
    recover_at_service_start,
)
from progral_dagster.cli.serve import ServiceRunning, acquire_service_lock

ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="localhost", port=4266, location_name="progral"),
        "__repository__",
    ),
    "ingest",
)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has this id (until the kernel reuses it)


def _run(instance, status="STARTED", tags=None, origin=None) -> str:
    run = dg.DagsterRun(
        job_name="ingest",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus(status),
        tags=tags or {},
        remote_job_origin=origin,
    )
    instance.add_run(run)
    return run.run_id


def _status(instance, run_id) -> str:
    return instance.get_run_by_id(run_id).status.value


def test_only_runs_whose_process_is_gone_are_failed():
    inst = dg.DagsterInstance.ephemeral()
    me = _run(inst, tags=process_tags())
    dead = _run(inst, tags={**process_tags(), PID_TAG: str(_dead_pid())})
    # the same pid as a live process but another start time: the pid was reused
    reused = _run(inst, tags={**process_tags(), START_TAG: "1"})
    elsewhere = _run(inst, tags={PID_TAG: "1", HOST_TAG: socket.gethostname() + "-other"})
    launched = _run(inst, origin=ORIGIN)
    canceling = _run(inst, status="CANCELING", origin=ORIGIN)
    unknown = _run(inst)  # in-process, untagged: cannot be checked
    done = _run(inst, status="SUCCESS", origin=ORIGIN)
    queued = _run(inst, status="QUEUED", origin=ORIGIN)

    # while a service may run, only in-process runs of dead progral processes are orphans
    rec = fail_orphaned_runs(inst, service_stopped=False)
    assert sorted(rec.failed) == sorted([dead, reused]) and rec.canceled == []
    assert _status(inst, launched) == "STARTED"

    rec = fail_orphaned_runs(inst, service_stopped=True)
    assert rec.failed == [launched] and rec.canceled == [canceling]
    assert {r: _status(inst, r) for r in (me, dead, reused, elsewhere, launched, canceling,
                                          unknown, done, queued)} == {
        me: "STARTED", dead: "FAILURE", reused: "FAILURE", elsewhere: "STARTED",
        launched: "FAILURE", canceling: "CANCELED", unknown: "STARTED", done: "SUCCESS",
        queued: "QUEUED",
    }
    failure = inst.all_logs(launched, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "stopped without it reporting an end" in failure.dagster_event.message
    assert failure.dagster_event.event_specific_data.failure_reason.value == "UNEXPECTED_TERMINATION"
    assert "2 run(s) left in progress" in rec.summary()
    # nothing left to do: a second pass changes nothing
    again = fail_orphaned_runs(inst, service_stopped=True)
    assert again.failed == [] and "no run was left" in again.summary()


def test_service_start_waits_for_a_fresh_daemon_heartbeat_and_refuses_a_live_daemon():
    inst = dg.DagsterInstance.ephemeral()
    launched = _run(inst, origin=ORIGIN)
    inst.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "d1", None))
    assert "SENSOR" in live_daemon(inst)
    with pytest.raises(RuntimeError, match="started outside 'progral serve'"):
        recover_at_service_start(inst, wait_s=0.3, poll_s=0.1, log=lambda m: None)
    assert _status(inst, launched) == "STARTED"
    # the heartbeat of a daemon that died a minute ago: no wait, the run is failed
    inst.add_daemon_heartbeat(DaemonHeartbeat(time.time() - 61, "SENSOR", "d1", None))
    assert live_daemon(inst) is None
    rec = recover_at_service_start(inst, wait_s=0.3, poll_s=0.1)
    assert rec.failed == [launched]


def test_in_process_materialisation_names_its_process(tmp_path, monkeypatch):
    from progral_dagster.cli.instance import materialize

    from .helpers import make_settings

    s = make_settings(tmp_path, monkeypatch=monkeypatch)

    @dg.asset
    def one():
        return 1

    inst = dg.DagsterInstance.ephemeral()
    res = materialize(s, [one], instance=inst, tags={"x": "y"})
    tags = inst.get_run_by_id(res.run_id).tags
    assert tags[PID_TAG] == str(os.getpid()) and tags["x"] == "y"
    assert tags[START_TAG] == process_tags()[START_TAG]


def test_one_service_per_home_and_the_lock_outlives_serve_in_its_children(tmp_path):
    fd = acquire_service_lock(tmp_path)
    with pytest.raises(ServiceRunning, match=f"pid {os.getpid()}"):
        acquire_service_lock(tmp_path)
    child = subprocess.Popen(["sleep", "30"], pass_fds=(fd,))  # as serve hands it to dagster dev
    try:
        os.close(fd)  # serve itself is gone ...
        with pytest.raises(ServiceRunning):  # ... but what it started still runs
            acquire_service_lock(tmp_path)
    finally:
        child.kill()
        child.wait()
    os.close(acquire_service_lock(tmp_path))
