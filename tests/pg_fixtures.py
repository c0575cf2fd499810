"""A throw-away PostgreSQL cluster on 127.0.0.1 for the slow tests.

The server comes from the OS package (``apt-get install postgresql``, done by ``make
install-system``). PostgreSQL refuses to run as root: as root, the cluster is created with
``initdb -A trust`` in a temporary folder owned by the ``postgres`` user and run by it
(``runuser -u postgres``); as any other user, by that user. It listens on 127.0.0.1 only, on a
free port, with its socket in the same folder; it is stopped and removed at the end, also when
the test fails. Durability is off (``fsync=off``): nothing here outlives the test.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "postgres"


def pg_bindir() -> Path | None:
    """The folder of the newest installed PostgreSQL server binaries (None: not installed)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parents[1].name) if Path(p).parents[1].name.isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def can_install() -> bool:
    """Whether ``make install-system`` could have installed PostgreSQL here (root and apt)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgCluster:
    bindir: Path
    base: Path
    port: int
    as_user: list[str]

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def url(self, db: str, scheme: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL (psycopg2: SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3)."""
        return f"{scheme}://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [*self.as_user, str(self.bindir / tool), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def createdb(self, name: str) -> str:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return self.url(name)

    def query(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=db)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()

    def log(self) -> str:
        p = self.base / "server.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""


def _start(bindir: Path) -> PgCluster:
    # /tmp itself, not pytest's tmp_path: the postgres user must be able to reach the folder
    base = Path(tempfile.mkdtemp(prefix="progral-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, SUPERUSER, SUPERUSER)
        as_user = ["runuser", "-u", SUPERUSER, "--"]
    c = PgCluster(bindir, base, free_port(), as_user)
    r = c.run(
        "initdb", "-D", str(c.datadir), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync"
    )
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {r.stderr[-2000:]}")
    opts = (
        f"-p {c.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    )
    for _attempt in range(3):
        r = c.run(
            "pg_ctl",
            "-D",
            str(c.datadir),
            "-o",
            opts,
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        if r.returncode == 0:
            return c
        # the port was taken between choosing and binding it: another one
        c.port = free_port()
        opts = f"-p {c.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    log = c.log()
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed: {r.stderr[-1000:]}\n{log}")


def _stop(c: PgCluster) -> None:
    try:
        c.run(
            "pg_ctl", "-D", str(c.datadir), "-m", "immediate", "-w", "-t", "30", "stop", timeout=60
        )
    finally:
        shutil.rmtree(c.base, ignore_errors=True)


@contextlib.contextmanager
def pg_cluster(*databases: str) -> Iterator[PgCluster]:
    """A running throw-away cluster with ``databases`` created; skips when PostgreSQL is missing
    and cannot be installed here (no root or no apt), fails when it should have been."""
    bindir = pg_bindir()
    if bindir is None:
        if can_install():
            pytest.fail(
                "PostgreSQL server binaries not found although root and apt are available: "
                "run `make install-system` (installs the postgresql OS package)"
            )
        pytest.skip(
            "PostgreSQL is not installed and cannot be (needs root and apt-get): "
            "`make install-system` installs the postgresql OS package"
        )
    c = _start(bindir)
    try:
        for db in databases:
            c.createdb(db)
        yield c
    finally:
        _stop(c)
