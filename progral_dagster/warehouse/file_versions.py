"""File versions on the share and the Dagster partition keys that name them.

A *file version* is (path, size, mtime): the sensor adds one dynamic partition per new version,
so an unchanged file never runs twice and a changed file is a new version. Files the instrument
writes for one acquisition (the per-ion image exports) form a *group*, one partition per group
version. Content identity (sha256) is established later, inside the run.

Partition keys are readable: ``<path>@<size>@<mtime_ns>`` for a file and
``<group>@g<members>@<max mtime_ns>@<digest>`` for a group, where the path is relative to the
share root (absolute for files ingested from elsewhere) and escaped so that the key is a valid
Dagster partition key (``%``, control characters and the third dot of ``...`` are
percent-encoded). The key alone is enough to find the file again: no lookup table is needed.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileVersion:
    source_path: str  # relative to the share (posix) or absolute
    size: int
    mtime_ns: int

    def absolute(self, share: Path) -> Path:
        p = Path(self.source_path)
        return p if p.is_absolute() else share / p


@dataclass(frozen=True)
class Item:
    """What one partition ingests: a single file or the members of a group."""

    partition_key: str
    members: tuple[FileVersion, ...]
    group: str | None = None


def escape(path: str) -> str:
    out: list[str] = []
    for ch in path:
        o = ord(ch)
        if ch == "%" or o < 0x20 or o == 0x7F:
            out.append(f"%{o:02X}")
        elif ch == "." and len(out) >= 2 and out[-1] == "." and out[-2] == ".":
            out.append("%2E")
        else:
            out.append(ch)
    return "".join(out)


def unescape(key_path: str) -> str:
    return urllib.parse.unquote(key_path)


def file_key(fv: FileVersion) -> str:
    return f"{escape(fv.source_path)}@{fv.size}@{fv.mtime_ns}"


def group_digest(members: Iterable[FileVersion]) -> str:
    h = hashlib.sha1()
    for m in sorted(members, key=lambda m: m.source_path):
        h.update(f"{m.source_path}\0{m.size}\0{m.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:10]


def group_key(group: str, members: Iterable[FileVersion]) -> str:
    ms = list(members)
    latest = max(m.mtime_ns for m in ms)
    return f"{escape(group)}@g{len(ms)}@{latest}@{group_digest(ms)}"


def parse_key(key: str) -> tuple[str, str, dict]:
    """Split a partition key: ``("file", path, {size, mtime_ns})`` or
    ``("group", group, {n, mtime_ns, digest})``."""
    head, _, last = key.rpartition("@")
    if last.isdigit():
        path, _, size = head.rpartition("@")
        if not size.isdigit() or not path:
            raise ValueError(f"not a file-version partition key: {key!r}")
        return "file", unescape(path), {"size": int(size), "mtime_ns": int(last)}
    parts = key.rsplit("@", 3)
    if len(parts) != 4 or not parts[1].startswith("g") or not parts[2].isdigit():
        raise ValueError(f"not a partition key of this service: {key!r}")
    return "group", unescape(parts[0]), {"n": int(parts[1][1:]), "mtime_ns": int(parts[2]), "digest": parts[3]}


def stat_version(path: Path, source_path: str) -> FileVersion:
    st = os.stat(path)
    return FileVersion(source_path, st.st_size, st.st_mtime_ns)


def source_path_for(path: Path, share: Path) -> str:
    """The path as recorded: relative to the share when inside it, else absolute."""
    p = Path(os.path.abspath(path))
    try:
        return p.relative_to(Path(os.path.abspath(share))).as_posix()
    except ValueError:
        return str(p)
