"""The share sensor's known-file state, kept in the lake (``_state/share_index.sqlite``), not in
the sensor cursor.

Table ``files``: every file currently on the share that the sensor has seen, with the
(size, mtime) last observed, when that observation was first made (for settling), and the
partition key it was taken under (NULL while settling). Table ``dirs`` holds directory mtimes
for network shares (only changed directories are listed between full listings); ``meta`` holds
the time of the last full listing and the last share problem reported.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class FileState:
    size: int
    mtime_ns: int
    first_seen: float
    key: str | None


class ShareIndex:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript(
            """
            CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                              first_seen REAL, key TEXT);
            CREATE TABLE IF NOT EXISTS dirs (path TEXT PRIMARY KEY, mtime_ns INTEGER);
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
            """
        )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ShareIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self) -> dict[str, FileState]:
        cur = self.con.execute("SELECT path, size, mtime_ns, first_seen, key FROM files")
        return {p: FileState(s, m, f, k) for p, s, m, f, k in cur}

    def apply(self, upserts: Iterable[tuple[str, FileState]], deletes: Iterable[str]) -> None:
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany(
                "INSERT INTO files(path, size, mtime_ns, first_seen, key) VALUES (?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
                "first_seen=excluded.first_seen, key=excluded.key",
                ((p, s.size, s.mtime_ns, s.first_seen, s.key) for p, s in upserts),
            )
            self.con.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in deletes))

    def mark_taken(self, taken: Iterable[tuple[str, str]]) -> None:
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany("UPDATE files SET key = ? WHERE path = ?", ((k, p) for p, k in taken))

    def release(self, keys: Iterable[str]) -> None:
        """Forget that the files of these partitions were taken (their run found them gone, e.g.
        the share was unmounted): the next tick takes them again if they are back."""
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.executemany("UPDATE files SET key = NULL WHERE key = ?", ((k,) for k in keys))

    def dirs(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT path, mtime_ns FROM dirs"))

    def set_dirs(self, dirs: dict[str, int]) -> None:
        with self.con:
            self.con.execute("BEGIN IMMEDIATE")
            self.con.execute("DELETE FROM dirs")
            self.con.executemany("INSERT INTO dirs VALUES (?, ?)", dirs.items())

    def get_meta(self, k: str, default: str | None = None) -> str | None:
        row = self.con.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return row[0] if row else default

    def set_meta(self, k: str, v: str) -> None:
        with self.con:
            self.con.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", (k, v))

    def count(self) -> tuple[int, int]:
        """(files known, files taken)."""
        return self.con.execute("SELECT count(*), count(key) FROM files").fetchone()


def now() -> float:
    return time.time()
