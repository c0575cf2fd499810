"""Runs left "in progress" by a service that stopped hard (power cut, OOM kill, ``kill -9``).

Dagster marks a run failed when its worker reports the failure. A worker killed outright reports
nothing, and Dagster's ``DefaultRunLauncher`` (the embedded service's) cannot check worker
health, so its run-monitoring daemon cannot see the run died either. Such a run stays STARTED
for good: it holds one of the queue's ``max_concurrent_runs`` slots (and its ``progral/training``
slot), so after a few crashes the queue stops launching anything, and its partitions are never
retried.

``progral serve`` calls :func:`recover_at_service_start` once, while it holds the home's service
lock (no other ``progral serve`` runs on this home) and before it starts Dagster. A run is
orphaned when

- it was launched by a daemon or webserver (it has a remote job origin), and no service of this
  home is running: its worker was a child of the service that stopped (if a daemon heartbeat is
  under a minute old, serve first waits for it to age, and refuses to start if it keeps coming:
  a daemon outside ``progral serve`` runs on the home), or
- it was executed in-process by a ``progral`` command (tags :data:`PID_TAG`,
  :data:`HOST_TAG`, :data:`START_TAG`), on this host, and that process is gone (the start time
  guards against a reused process id).

Orphans are reported failed with reason ``UNEXPECTED_TERMINATION`` (CANCELING ones canceled),
which frees their queue slots and lets Dagster's run retries (``run_retries`` in the instance's
``dagster.yaml``) re-execute them, as for any run whose worker crashed. Nothing is guessed about
runs of other hosts: they are left alone.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

PID_TAG = "progral/pid"
HOST_TAG = "progral/host"
START_TAG = "progral/process-start"
DAEMON_FRESH_S = 60.0  # the daemon writes a heartbeat every 30 s


def _process_start(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot (Linux); '' where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return ""
    # field 22, counted after the command name, which is in parentheses and may hold spaces
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else ""


def process_tags() -> dict[str, str]:
    """Tags naming this process, for runs it executes in-process."""
    pid = os.getpid()
    return {PID_TAG: str(pid), HOST_TAG: socket.gethostname(), START_TAG: _process_start(pid)}


def _process_alive(tags) -> bool:
    if tags.get(HOST_TAG) != socket.gethostname():
        return True  # another machine's process: cannot tell, so never declared dead
    try:
        pid = int(tags.get(PID_TAG, ""))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = tags.get(START_TAG, "")
    return not started or _process_start(pid) in ("", started)


@dataclass
class Recovery:
    failed: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        n = len(self.failed) + len(self.canceled)
        if not n:
            return "no run was left in progress by an earlier stop"
        return (
            f"{n} run(s) left in progress by an earlier hard stop: {len(self.failed)} marked "
            f"failed (Dagster retries them), {len(self.canceled)} canceled: "
            + ", ".join(r[:8] for r in self.failed + self.canceled)
        )


def live_daemon(instance, now: float | None = None) -> str | None:
    """Why a Dagster daemon of this instance may still run (a heartbeat under a minute old)."""
    now = time.time() if now is None else now
    try:
        beats = instance.get_daemon_heartbeats()
    except Exception:  # noqa: BLE001 - storage without heartbeats: treat as none
        return None
    for kind, beat in beats.items():
        if now - beat.timestamp < DAEMON_FRESH_S:
            return f"the Dagster daemon '{kind}' reported {now - beat.timestamp:.0f} s ago"
    return None


IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


def _in_progress(instance) -> list:
    import dagster as dg

    statuses = [dg.DagsterRunStatus(v) for v in IN_PROGRESS]
    return [r.dagster_run for r in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses))]


def recover_at_service_start(instance, *, wait_s: float = DAEMON_FRESH_S + 15, poll_s: float = 2.0,
                             log=print) -> Recovery:
    """Fail the runs a stopped service left in progress; call with the service lock held.

    Raises RuntimeError when a daemon of this home keeps reporting (one not started by serve).
    """
    launched = [r for r in _in_progress(instance)
                if PID_TAG not in r.tags and r.remote_job_origin is not None]
    if launched:
        reason = live_daemon(instance)
        if reason:
            log(f"{len(launched)} run(s) in progress from an earlier start and {reason}: "
                f"waiting up to {wait_s:.0f} s for its heartbeat to age ...")
        deadline = time.time() + wait_s
        while reason and time.time() < deadline:
            time.sleep(poll_s)
            reason = live_daemon(instance)
        if reason:
            raise RuntimeError(
                f"{reason} and keeps reporting: a Dagster daemon started outside 'progral serve' "
                "runs on this home; stop it (or point it at another DAGSTER_HOME) first"
            )
    return fail_orphaned_runs(instance, service_stopped=True)


def fail_orphaned_runs(instance, *, service_stopped: bool) -> Recovery:
    """Report runs whose process is gone as failed (see the module docstring).

    ``service_stopped``: the caller knows no service of this home runs (it holds the service
    lock and no daemon heartbeat is fresh), so runs launched by a daemon or webserver are
    orphans. Without it only in-process runs of dead ``progral`` processes are.
    """
    import dagster as dg
    from dagster._core.events import JobFailureData, RunFailureReason

    out = Recovery()
    for run in _in_progress(instance):
        if PID_TAG in run.tags:
            orphan = not _process_alive(run.tags)
            why = f"the progral process {run.tags[PID_TAG]} that executed it is gone"
        elif run.remote_job_origin is not None:
            orphan = service_stopped
            why = "the service that launched it stopped without it reporting an end"
        else:
            continue  # executed in-process by something we cannot check
        if not orphan:
            continue
        message = f"Marked by progral at service start: {why} (hard stop, crash or kill -9)."
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
            out.canceled.append(run.run_id)
        else:
            instance.report_run_failed(
                run,
                message=message,
                job_failure_data=JobFailureData(
                    error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION
                ),
            )
            out.failed.append(run.run_id)
    return out
