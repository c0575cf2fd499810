"""What one sensor tick decides, as a pure function of the listing and the known-file state.

A file is *settled* when the same (size, mtime) has been observed for at least the settle time
(so a file still being copied, even with its original mtime preserved, is not taken). The files
of one acquisition group settle together: a group is taken when every member has settled and
at least one member is new or changed, and it is taken with all its current members.
At most ``max_new`` items are taken per tick; the rest wait for the next tick.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..warehouse.file_versions import FileVersion, Item, file_key, group_key
from ..warehouse.share_index import FileState
from .scan import Listing


@dataclass
class TickPlan:
    items: list[Item] = field(default_factory=list)
    upserts: list[tuple[str, FileState]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    taken: list[tuple[str, str]] = field(default_factory=list)  # (path, partition key)
    settling: int = 0
    deferred: int = 0


def plan_tick(listing: Listing, known: dict[str, FileState], now: float, settle_s: float, max_new: int,
              group_of: Callable[[str], str | None]) -> TickPlan:
    plan = TickPlan()
    files = listing.files
    state: dict[str, FileState] = {}
    for path, (size, mtime) in files.items():
        rec = known.get(path)
        if rec is None or rec.size != size or rec.mtime_ns != mtime:
            rec = FileState(size, mtime, now, None)
            plan.upserts.append((path, rec))
        state[path] = rec
    plan.deletes = [p for p in known if p not in files]

    def settled(rec: FileState) -> bool:
        return now - rec.first_seen >= settle_s

    from ..readers.grouping import companion_of

    # files that are members of a group named after themselves (Arbin data CSV + _Metadata.csv)
    companions = {c for p in state if p[-13:].lower() == "_metadata.csv"
                  if (g := group_of(p)) and (c := companion_of(g)) and c in state}
    singles: list[str] = []
    groups: dict[str, list[str]] = {}
    for path, rec in state.items():
        if rec.key is not None:
            continue
        g = path if path in companions else group_of(path)
        if g is None:
            if settled(rec):
                singles.append(path)
            else:
                plan.settling += 1
        else:
            groups.setdefault(g, [])
    if groups:
        by_dir: dict[str, list[str]] = {}
        wanted = {os.path.dirname(g) for g in groups}
        for path in state:
            d = os.path.dirname(path)
            if d in wanted:
                by_dir.setdefault(d, []).append(path)
        for g in groups:
            members = [p for p in by_dir.get(os.path.dirname(g), ()) if group_of(p) == g or p == g]
            groups[g] = sorted(members)

    candidates: list[Item] = []
    for path in singles:
        rec = state[path]
        candidates.append(Item(file_key(FileVersion(path, rec.size, rec.mtime_ns)), (FileVersion(path, rec.size, rec.mtime_ns),)))
    for g, members in groups.items():
        if not all(settled(state[p]) for p in members):
            plan.settling += sum(1 for p in members if state[p].key is None)
            continue
        fvs = tuple(FileVersion(p, state[p].size, state[p].mtime_ns) for p in members)
        candidates.append(Item(group_key(g, fvs), fvs, g))
    candidates.sort(key=lambda it: it.partition_key)
    take, rest = candidates[:max_new], candidates[max_new:]
    plan.deferred = sum(len(it.members) for it in rest)
    plan.items = take
    for it in take:
        for m in it.members:
            plan.taken.append((m.source_path, it.partition_key))
    return plan
