"""Shared pieces of the fault, load and security tests.

- :class:`GuardedShare`: a share folder that tests write only through it, so that it knows the
  exact sha256, size and mtime of every file (and the target of every link) the test put there.
  ``verify()`` proves that the service never wrote, touched, added or removed anything there.
- ``share_guard``: a session fixture (import it into every fault test module) that hashes
  ``../shared/samples`` when the first fault test starts and, when the session ends, checks it
  and every share any fault test used against what was recorded. ``share``: a guarded share
  for one test. Import ``share_guard_fixture`` / ``share_fixture`` into a test module to use them.
- :func:`exactly_once`: the lake invariants every fault test ends with, asserted on the views
  (``warehouse.connect``) against row counts the test computed itself from the bytes it wrote.
- :func:`dagster_daemon`: the Dagster daemon in its own process group, stopped with
  ``cli.serve.stop_group``, with a check that no process of the group survives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from progral_dagster.cli.serve import start_group, stop_group

from .conftest import ROOT, SAMPLES

WORKSPACE = ROOT / "workspace.yaml"


# ------------------------------------------------------------------------------ share guard
def _sha256(path: Path | str, dir_fd: int | None = None) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    with open(fd, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` without following links: files (sha256, size, mtime_ns),
    links (their target), folders (nothing: their mtime changes with every file we add).
    Walks with directory descriptors, so paths longer than PATH_MAX are covered too."""
    out: dict[str, tuple] = {}
    root_b = os.fsencode(root)
    for dirpath, dirnames, filenames, dfd in os.fwalk(root_b, follow_symlinks=False):
        for name in dirnames + filenames:
            rel = os.fsdecode(os.path.relpath(os.path.join(dirpath, name), root_b))
            st = os.lstat(name, dir_fd=dfd)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.fsdecode(os.readlink(name, dir_fd=dfd)))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", _sha256(name, dfd), st.st_size, st.st_mtime_ns)
    return out


class GuardedShare:
    """A share the test writes through, with the state of every entry it wrote."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.expected: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _record(self, p: Path) -> None:
        rel = os.fsdecode(os.path.relpath(os.fsencode(p), os.fsencode(self.root)))
        st = os.lstat(p)
        with self._lock:
            parent = os.path.dirname(rel)
            while parent:
                self.expected[parent] = ("dir",)
                parent = os.path.dirname(parent)
            if stat.S_ISLNK(st.st_mode):
                self.expected[rel] = ("link", os.readlink(p))
            else:
                self.expected[rel] = ("file", _sha256(p), st.st_size, st.st_mtime_ns)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, data: bytes | str, *, mtime: float | None = None) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        self._record(p)
        return p

    def write_deep(self, folders: list[str], name: str, data: bytes) -> str:
        """Write a file below ``folders`` with directory descriptors (its path may be longer
        than PATH_MAX); returns its path relative to the share."""
        fd = os.open(self.root, os.O_RDONLY)
        rel: list[str] = []
        try:
            for d in folders:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(d, dir_fd=fd)
                nfd = os.open(d, os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nfd
                rel.append(d)
                with self._lock:
                    self.expected["/".join(rel)] = ("dir",)
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
            with open(f, "wb") as fh:
                fh.write(data)
            st = os.lstat(name, dir_fd=fd)
            path = "/".join([*rel, name])
            with self._lock:
                self.expected[path] = (
                    "file",
                    hashlib.sha256(data).hexdigest(),
                    st.st_size,
                    st.st_mtime_ns,
                )
            return path
        finally:
            os.close(fd)

    def append(self, rel: str, data: bytes | str, *, mtime: float | None = None) -> Path:
        p = self.root / rel
        with open(p, "ab") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        self._record(p)
        return p

    def symlink(self, rel: str, target: str | Path) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
        self._record(p)
        return p

    def adopt(self, p: Path) -> None:
        """Record a file or folder the test created by other means (e.g. a simulator)."""
        p = Path(p)
        if p.is_dir() and not p.is_symlink():
            for sub in tree_state(p):
                self._record(p / sub)
            with self._lock:
                rel = os.path.relpath(p, self.root)
                if rel != ".":
                    self.expected[rel] = ("dir",)
        else:
            self._record(p)

    def remove(self, rel: str) -> None:
        p = self.root / rel
        os.unlink(p)
        with self._lock:
            self.expected.pop(rel, None)

    def verify(self) -> None:
        """The share holds exactly what the test wrote, byte for byte, with the same mtimes."""
        if not self.root.exists():
            raise AssertionError(f"share {self.root} is gone")
        now = tree_state(self.root)
        with self._lock:
            exp = dict(self.expected)
        added = sorted(set(now) - set(exp))
        missing = sorted(set(exp) - set(now))
        changed = sorted(k for k in set(now) & set(exp) if now[k] != exp[k])
        assert not added and not missing and not changed, (
            f"share {self.root} was modified: added {added[:5]}, missing {missing[:5]}, changed {changed[:5]}"
        )


class _Guard:
    """Process-wide registry behind the ``share_guard`` fixture (one per test session)."""

    def __init__(self) -> None:
        self.samples_before: dict[str, tuple] | None = None
        self.shares: list[GuardedShare] = []

    def start(self) -> None:
        if self.samples_before is None and SAMPLES.is_dir():
            self.samples_before = tree_state(SAMPLES)

    def share(self, root: Path) -> GuardedShare:
        g = GuardedShare(root)
        self.shares.append(g)
        return g

    def verify_all(self) -> None:
        if self.samples_before is not None:
            assert tree_state(SAMPLES) == self.samples_before, (
                f"{SAMPLES} changed during the fault suite"
            )
        for g in self.shares:
            g.verify()


GUARD = _Guard()


@pytest.fixture(scope="session", name="share_guard")
def share_guard_fixture() -> Iterator[_Guard]:
    """Hashes and mtimes of ../shared/samples and of every share the fault tests use, checked
    when the session ends."""
    GUARD.start()
    yield GUARD
    GUARD.verify_all()


@pytest.fixture(name="share")
def share_fixture(tmp_path, share_guard) -> Iterator[GuardedShare]:
    """A fresh guarded share for one test, verified again right after the test."""
    g = share_guard.share(tmp_path / "share")
    yield g
    g.verify()


# ------------------------------------------------------------------------------ invariants
def spectrum_rows(data: bytes) -> int:
    """Data rows of an IONTOF spectrum export, counted from its bytes: non-empty lines that do
    not start with '#' and are not the column-title line."""
    n = 0
    for line in data.splitlines():
        s = line.strip()
        if s and not s.startswith(b"#") and not s.lower().startswith(b"channel"):
            n += 1
    return n


def lake_tmp_files(lake_root: Path) -> list[Path]:
    return [p for p in Path(lake_root).rglob("*.tmp")] if Path(lake_root).exists() else []


def exactly_once(
    lake_root: Path,
    expected: dict[str, int | tuple[str, int]],
    table: str = "tof_sims_spectra",
    *,
    rejected: set[str] | frozenset[str] = frozenset(),
    superseded_ok: bool = False,
) -> dict:
    """Assert that each file of ``expected`` (share path -> data rows the test counted in the
    bytes it wrote, in ``table`` or in the table given as ``(table, rows)``) is in the views
    exactly once, with exactly its rows, and nothing else is.

    ``rejected``: paths that must be (exactly) the ``rejected_files`` view. ``superseded_ok``:
    older versions of a path may exist (growing files); they must not be current. Returns the
    numbers seen, including the raw catalog's row count (two rows for one measurement are
    allowed there only when two runs raced)."""
    from progral_dagster.warehouse import connect

    con = connect(lake_root)
    q = con.execute
    n_meas, n_ids = q(
        "select count(*), count(distinct measurement_id) from measurements"
    ).fetchone()
    assert n_meas == n_ids, "a measurement_id appears twice in `measurements`"
    rows = q("select source_path, measurement_id, is_current from measurement_files").fetchall()
    pairs = [(p, m) for p, m, _ in rows]
    assert len(pairs) == len(set(pairs)), (
        "a (path, measurement) pair appears twice in measurement_files"
    )
    if not superseded_ok:
        assert all(c for _, _, c in rows), (
            "a path version is marked superseded although no file changed"
        )
        assert q("select count(*) from measurements where not is_current").fetchone()[0] == 0
    current: dict[str, list[str]] = {}
    for p, m, c in rows:
        if c:
            current.setdefault(p, []).append(m)
    twice = [p for p, ms in current.items() if len(ms) > 1]
    assert not twice, f"paths recorded twice as current in measurement_files: {twice[:5]}"
    assert set(current) == set(expected), (
        f"measurement_files != files on the share: missing {sorted(set(expected) - set(current))[:5]}, "
        f"extra {sorted(set(current) - set(expected))[:5]}"
    )
    exp = {p: ((table, v) if isinstance(v, int) else tuple(v)) for p, v in expected.items()}
    per_table = {
        t: dict(q(f"select measurement_id, count(*) from {t} group by 1").fetchall())
        for t in {t for t, _ in exp.values()}
    }
    wrong = {}
    for p, (t, n) in exp.items():
        got = per_table[t].get(current[p][0], 0)
        if got != n:
            wrong[p] = (got, n)
    assert not wrong, (
        f"data rows per file differ from the files (got, expected): {dict(list(wrong.items())[:5])}"
    )
    current_ids = {ms[0] for ms in current.values()}
    for t, per_mid in per_table.items():
        assert set(per_mid) <= current_ids, f"`{t}` shows rows of a measurement no current path has"
    total = sum(sum(per_mid.values()) for per_mid in per_table.values())
    by_content = {ms[0]: p for p, ms in current.items()}
    assert total == sum(exp[p][1] for p in by_content.values()), (
        "data rows != sum of the files' rows"
    )
    got_rejected = {r[0] for r in q("select source_path from rejected_files").fetchall()}
    assert got_rejected == set(rejected), (
        f"rejected files {sorted(got_rejected)[:5]} != {sorted(rejected)[:5]}"
    )
    raw = q("select count(*), count(distinct measurement_id) from _cat_measurements").fetchone()
    return {"measurements": n_meas, "rows": total, "catalog_rows": raw[0], "catalog_ids": raw[1]}


# ------------------------------------------------------------------------------ in-process sensor
def sensor_tick(s, instance, now: float):
    """One evaluation of the real sensor at time ``now``, applying its partition requests."""
    import dagster as dg

    from progral_dagster.sensors.share_sensor import evaluate

    res = evaluate(dg.build_sensor_context(instance=instance), s, now=now)
    if isinstance(res, dg.SensorResult):
        for req in res.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return res


def execute_requests(s, instance, res) -> int:
    """Execute a tick's run requests in this process, as the daemon would; returns their count."""
    import dagster as dg

    from progral_dagster.assets.ingestion import measurements, raw_files
    from progral_dagster.cli.instance import materialize

    if not isinstance(res, dg.SensorResult):
        return 0
    for rr in res.run_requests:
        r = materialize(
            s,
            [raw_files, measurements],
            instance=instance,
            tags=dict(rr.tags),
            partition_key=rr.partition_key,
            quiet=True,
        )
        assert r.success
    return len(res.run_requests)


# ------------------------------------------------------------------------------ processes
def pids_in_group(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError, FileNotFoundError):
                if os.getpgid(int(d.name)) == pgid:
                    out.append(int(d.name))
    return out


def service_env(home: Path, share: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PROGRAL_HOME=str(home),
        PROGRAL_SHARE=str(share),
        DAGSTER_HOME=str(home / "dagster"),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        PROGRAL_SETTLE_SECONDS="1",
        PROGRAL_SENSOR_INTERVAL_SECONDS="3",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# The service's instance configuration (cli/instance.py) with the asset daemon off: the fault
# tests measure ingestion, and declarative automation would start feature and training runs
# competing for the two CPU cores.
INGESTION_ONLY = """\
auto_materialize:
  enabled: false
  use_sensors: false
freshness:
  enabled: false
"""


@contextlib.contextmanager
def dagster_daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` (sensor, run queue, run retries) for the home in ``env``."""
    from progral_dagster.cli.instance import DAGSTER_YAML

    dh = Path(env["DAGSTER_HOME"])
    dh.mkdir(parents=True, exist_ok=True)
    if not (dh / "dagster.yaml").exists():
        (dh / "dagster.yaml").write_text(DAGSTER_YAML + INGESTION_ONLY)
    p = start_group(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(WORKSPACE)], env, log
    )
    try:
        yield p
    finally:
        stop_group(p, grace_s=20)
        deadline = time.time() + 10
        while pids_in_group(p.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert pids_in_group(p.pid) == [], (
            f"processes of the daemon group survived: {pids_in_group(p.pid)}"
        )


def wait_for(
    cond: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path | None = None,
    proc: subprocess.Popen | None = None,
    every: float = 1.0,
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(every)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def count_measurements(lake_root: Path) -> int:
    from progral_dagster.warehouse import connect

    try:
        return connect(lake_root).execute("select count(*) from measurements").fetchone()[0]
    except Exception:  # noqa: BLE001 - the lake may be mid-write; polled again
        return -1


def sensor_ticks(dagster_home: Path) -> list:
    """Every tick of the ``instrument_share`` sensor in the instance under ``dagster_home``."""
    import dagster as dg

    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with dg.DagsterInstance.get() as inst:
            ticks = []
            for stt in inst.all_instigator_state():
                if stt.instigator_name == "instrument_share":
                    ticks += inst.get_ticks(stt.instigator_origin_id, stt.selector_id)
            return sorted(ticks, key=lambda t: t.timestamp)
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


def ingestion_runs(dagster_home: Path) -> list:
    """Run records (status, start/end times, tags) of the instance under ``dagster_home``."""
    import dagster as dg

    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with dg.DagsterInstance.get() as inst:
            return list(inst.get_run_records())
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
