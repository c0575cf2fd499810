"""Ingestion without Dagster: resolve a partition, copy into the raw store, parse, write.

The Dagster assets ``raw_files`` and ``measurements`` are thin wrappers around
:func:`copy_items` and :func:`parse_items`; ``bench/`` calls them directly to measure the
ingestion cost without the orchestrator.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..readers import ReaderError, UnsupportedFormat
from ..readers import registry as reader_registry
from . import catalog, sheets
from .file_versions import (
    FileVersion,
    Item,
    file_key,
    group_digest,
    group_key,
    parse_key,
    stat_version,
)
from .lake import BatchWriter, Lake, utcnow

Progress = Callable[[int, int, "Outcome"], None]

# Process-wide observer of per-item progress (the CLI prints it while Dagster runs in-process).
_HOOKS: list[Callable[[str, int, int, Outcome], None]] = []


def add_progress_hook(fn: Callable[[str, int, int, Outcome], None]) -> None:
    _HOOKS.append(fn)


def remove_progress_hook(fn) -> None:
    if fn in _HOOKS:
        _HOOKS.remove(fn)


def _notify(step: str, progress: Progress | None, i: int, n: int, out: Outcome) -> None:
    if progress:
        progress(i, n, out)
    for h in list(_HOOKS):
        h(step, i, n, out)


@dataclass
class Outcome:
    """What happened to one partition (file or group)."""

    partition_key: str
    source_paths: list[str]
    status: str  # copied | ingested | present | rejected | metadata | changed | missing | skipped
    measurement_id: str | None = None
    sha256: str | None = None
    technique: str | None = None
    format: str | None = None
    reason: str | None = None
    rows: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------- identity
def measurement_id_for(member_shas: Sequence[str]) -> tuple[str, str]:
    """(measurement_id, sha256) of a file (its sha) or of a group (sha over sorted members)."""
    if len(member_shas) == 1:
        sha = member_shas[0]
    else:
        sha = hashlib.sha256("\n".join(sorted(member_shas)).encode()).hexdigest()
    return sha[:20], sha


# --------------------------------------------------------------------------------- resolving
def resolve(key: str, share: Path) -> Item | Outcome:
    """The item a partition key names, as it is on disk now; an Outcome if it is gone/changed."""
    kind, path, info = parse_key(key)
    if kind == "file":
        fv = FileVersion(path, info["size"], info["mtime_ns"])
        p = fv.absolute(share)
        try:
            now = stat_version(p, path)
        except OSError:
            return Outcome(key, [path], "missing", reason="file no longer on the share")
        if (now.size, now.mtime_ns) != (fv.size, fv.mtime_ns):
            return Outcome(key, [path], "changed", reason="file changed since it was listed; the newer version is taken separately")
        return Item(key, (fv,), None)
    members = list_group(path, share)
    if not members:
        return Outcome(key, [path], "missing", reason="no member of this acquisition group is on the share")
    if group_digest(members) != info["digest"]:
        return Outcome(key, [m.source_path for m in members], "changed", reason="group changed since it was listed")
    return Item(key, tuple(members), path)


def list_group(group: str, share: Path) -> list[FileVersion]:
    """Current members of an acquisition group (same folder, same group key)."""
    from ..readers.grouping import acquisition_group

    gp = Path(group)
    folder = gp.parent if gp.is_absolute() else share / gp.parent
    out = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for e in entries:
        if not e.is_file(follow_symlinks=False):
            continue
        rel = (Path(group).parent / e.name).as_posix() if not gp.is_absolute() else str(folder / e.name)
        if acquisition_group(rel) == group or rel == group:
            st = e.stat(follow_symlinks=False)
            out.append(FileVersion(rel, st.st_size, st.st_mtime_ns))
    return sorted(out, key=lambda m: m.source_path)


def items_for_paths(paths: Iterable[Path], share: Path) -> list[Item]:
    """Items (with partition keys) for files given directly, grouping acquisition members."""
    from ..readers.grouping import acquisition_group, companion_of
    from .file_versions import source_path_for

    singles: list[Item] = []
    groups: dict[str, list[FileVersion]] = {}
    paths = list(paths)
    sps = {source_path_for(p, share) for p in paths}
    companions = {c for sp in sps if sp[-13:].lower() == "_metadata.csv"
                  if (g := acquisition_group(sp)) and (c := companion_of(g)) and c in sps}
    for p in paths:
        sp = source_path_for(p, share)
        try:
            fv = stat_version(p, sp)
        except OSError:
            continue
        g = sp if sp in companions else acquisition_group(sp)
        if g:
            groups.setdefault(g, []).append(fv)
        else:
            singles.append(Item(file_key(fv), (fv,), None))
    for g, ms in groups.items():
        ms.sort(key=lambda m: m.source_path)
        singles.append(Item(group_key(g, ms), tuple(ms), g))
    return singles


# --------------------------------------------------------------------------------- raw step
def copy_items(lake: Lake, share: Path, keys: Sequence[str], *, run_id: str | None = None,
               progress: Progress | None = None) -> list[Outcome]:
    """Copy every member of every partition into the raw store and record the paths."""
    batch = lake.batch(run_id)
    outcomes = []
    seen_at = utcnow()
    for i, key in enumerate(keys):
        out = _copy_one(lake, share, key, batch, seen_at)
        outcomes.append(out)
        _notify("copy", progress, i + 1, len(keys), out)
    batch.commit()
    return outcomes


def vanished(outcomes: Iterable[Outcome], share: Path) -> list[str]:
    """Partition keys whose files were missing at copy time and are still absent (a share that
    went away, a file deleted): not a file that exists but cannot be read, which would loop."""
    out = []
    for o in outcomes:
        if o.status == "missing" and not any(os.path.lexists(share / p) for p in o.source_paths):
            out.append(o.partition_key)
    return out


def _copy_one(lake: Lake, share: Path, key: str, batch: BatchWriter, seen_at) -> Outcome:
    item = resolve(key, share)
    if isinstance(item, Outcome):
        return item
    copies = []
    for m in item.members:
        try:
            rc = lake.store_raw(m.absolute(share), Path(m.source_path).name)
        except OSError as exc:
            return Outcome(key, [m.source_path], "missing", reason=f"cannot read: {exc.strerror or exc}")
        if rc.changed or (rc.size, rc.mtime_ns) != (m.size, m.mtime_ns):
            return Outcome(key, [m.source_path], "changed", reason="file changed while being copied")
        copies.append((m, rc))
    mid, sha = measurement_id_for([rc.sha256 for _, rc in copies])
    for m, rc in copies:
        batch.add_row(
            "catalog_files",
            {
                "measurement_id": mid,
                "source_path": m.source_path,
                "member_sha256": rc.sha256,
                "sha256": sha,
                "size_bytes": m.size,
                "mtime": _ts(m.mtime_ns),
                "seen_at": seen_at,
                "raw_path": lake.relative(rc.raw_path),
                "partition_key": key,
            },
        )
    return Outcome(key, [m.source_path for m in item.members], "copied", measurement_id=mid, sha256=sha)


def _ts(ns: int):
    """mtime in ns -> UTC datetime with exact microseconds (no float rounding)."""
    import datetime as dt

    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)


# --------------------------------------------------------------------------------- parse step
def parse_items(lake: Lake, keys: Sequence[str], *, run_id: str | None = None, force: bool = False,
                progress: Progress | None = None) -> list[Outcome]:
    """Parse the raw copies of the given partitions and write tables and catalog rows."""
    lake.cleanup()
    copied = catalog.raw_copies_for(lake, keys)
    known = catalog.known_measurements(lake)
    batch = lake.batch(run_id)
    outcomes: list[Outcome] = []
    done_in_batch: dict[str, dict] = {}
    for i, key in enumerate(keys):
        rows = copied.get(key)
        if not rows:
            out = Outcome(key, [], "changed", reason="no raw copy: the file changed or vanished before it was copied")
        else:
            out = _parse_one(lake, key, rows, batch, known, done_in_batch, force)
        outcomes.append(out)
        _notify("parse", progress, i + 1, len(keys), out)
    batch.commit()
    return outcomes


def _parse_one(lake: Lake, key: str, rows: list[dict], batch: BatchWriter, known: dict,
               done: dict[str, dict], force: bool) -> Outcome:
    mid, sha = rows[0]["measurement_id"], rows[0]["sha256"]
    sources = [r["source_path"] for r in rows]
    raw_paths = [lake.raw_file(r["raw_path"]) for r in rows]
    if sheets.is_metadata_file(sources[0]):
        return sheets.ingest_sheet(lake, key, rows, batch)
    prev = done.get(mid) or known.get(mid)
    if mid in done or (prev is not None and not force and _reader_current(prev)):
        prev = prev or {}
        return Outcome(key, sources, "present", measurement_id=mid, sha256=sha,
                       technique=prev.get("technique"), format=prev.get("format"))
    t0 = time.perf_counter()
    try:
        m = reader_registry.read(raw_paths if len(raw_paths) > 1 else raw_paths[0])
    except ReaderError as exc:
        reason = _reason(exc, raw_paths, sources)
        for r in rows:
            batch.add_row(
                "catalog_rejected",
                {
                    "source_path": r["source_path"],
                    "sha256": sha,
                    "size_bytes": r["size_bytes"],
                    "mtime": r["mtime"],
                    "reason": reason,
                    "error_type": "unsupported" if isinstance(exc, UnsupportedFormat) else "unreadable",
                    "rejected_at": utcnow(),
                    "partition_key": key,
                },
            )
        return Outcome(key, sources, "rejected", sha256=sha, reason=reason)
    counts = {}
    for tname, data in m.tables.items():
        counts[tname] = batch.add_table(tname, mid, data)
    for aname, arr in m.arrays.items():
        lake.write_array(mid, aname, arr)
    meta = dict(m.metadata)
    meta["parse_seconds"] = round(time.perf_counter() - t0, 4)
    batch.add_row(
        "catalog_measurements",
        {
            "measurement_id": mid,
            "sha256": sha,
            "technique": m.technique,
            "format": m.format,
            "reader": m.reader,
            "reader_version": m.reader_version,
            "instrument": m.instrument,
            "n_files": len(rows),
            "size_bytes": sum(r["size_bytes"] for r in rows),
            "metadata": json.dumps(meta, default=_json_default, sort_keys=True),
            "tables": sorted(counts),
            "row_counts": json.dumps(counts, sort_keys=True),
            "twin_key": meta.get("twin_key"),
            "batch": batch.batch_id,
            "ingested_at": utcnow(),
            "partition_key": key,
            "run_id": None,
        },
    )
    done[mid] = {"technique": m.technique, "format": m.format}
    return Outcome(key, sources, "ingested", measurement_id=mid, sha256=sha, technique=m.technique,
                   format=m.format, rows=sum(counts.values()))


def _reader_current(prev: dict) -> bool:
    """Whether the stored parse was made by the reader version installed now."""
    mod = {m.__name__.rsplit(".", 1)[-1]: m for m in reader_registry.reader_modules()}.get(prev.get("reader"))
    if mod is None:
        return True
    return str(getattr(mod, "READER_VERSION", prev.get("reader_version"))) == str(prev.get("reader_version"))


def _reason(exc: ReaderError, raw_paths: list[Path], sources: list[str]) -> str:
    """The reader's message with lake paths replaced by the share paths a person knows."""
    msg = exc.reason + (f" ({exc.position})" if exc.position else "")
    for rp, sp in zip(raw_paths, sources, strict=False):
        msg = msg.replace(str(rp), sp)
    return msg


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    by_format: dict[str, dict[str, int]] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Summary:
        s = cls()
        for o in outcomes:
            s.counts[o.status] = s.counts.get(o.status, 0) + 1
            if o.status == "skipped":  # never read (cli: a name that is not UTF-8)
                continue
            fmt = o.format or ("(rejected)" if o.status == "rejected" else "(other)")
            s.by_format.setdefault(fmt, {}).setdefault(o.status, 0)
            s.by_format[fmt][o.status] += 1
            if o.status == "rejected":
                s.rejected.append({"source_paths": o.source_paths, "reason": o.reason})
        return s
