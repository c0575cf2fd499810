"""Atomic file writes: write to a temporary name in the target folder, fsync, rename.

Temporary names are ``.<name>.<pid>.<random>.tmp`` so that readers' ``*.parquet`` globs never
see them and a cleanup can tell whose they were (a file of a dead process is stale).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


def tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


@contextlib.contextmanager
def atomic_path(target: Path, *, overwrite: bool = True, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``target`` (on error remove it).

    ``fsync=False`` leaves durability to the caller (a batch syncs once before its commit)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(target)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        if not overwrite and target.exists():
            tmp.unlink()
            return
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_parquet(table: pa.Table, target: Path, *, fsync: bool = True, **kwargs) -> Path:
    """Write a Parquet file atomically (zstd, statistics on)."""
    kwargs.setdefault("compression", "zstd")
    with atomic_path(target, fsync=fsync) as tmp:
        pq.write_table(table, tmp, **kwargs)
    return target


def write_bytes(data: bytes, target: Path) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a writer's pid from a temporary file name)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(root: Path, *, max_age_s: float = 3600.0) -> int:
    """Delete temporary files left by killed writers: those of processes no longer alive on this
    host, and any older than ``max_age_s`` (writers on other hosts). Returns the count removed."""
    if not root.exists():
        return 0
    now = time.time()
    removed = 0
    for p in root.rglob(f".*{TMP_SUFFIX}"):
        parts = p.name.rsplit(".", 3)
        try:
            pid = int(parts[-3])
        except (ValueError, IndexError):
            pid = -1
        try:
            age = now - p.stat().st_mtime
        except FileNotFoundError:
            continue
        if (pid > 0 and not _pid_alive(pid)) or age > max_age_s:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed += 1
    return removed
