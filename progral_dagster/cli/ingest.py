"""``progral ingest PATH...``: one-shot ingestion through the same Dagster assets as the sensor."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import settings as settings_mod
from ..warehouse import catalog, ingest
from ..warehouse.lake import Lake
from . import output


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def ingest_paths(paths: list[Path], s: settings_mod.Settings, *, quiet: bool = False,
                 per_run: int | None = None) -> list[ingest.Outcome]:
    """Ingest files/folders into the lake of ``s`` through the ingestion assets, in-process."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from ..assets.ingestion import measurements, raw_files
    from ..assets.partitions import share_files
    from ..sensors.scan import iter_input_files
    from .instance import get_instance, materialize

    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise SystemExit(f"progral ingest: no such file or folder: {', '.join(missing)}")
    files, skipped = iter_input_files([Path(p) for p in paths])
    outcomes: list[ingest.Outcome] = [
        ingest.Outcome("", [name], "skipped", reason=why) for name, why in skipped.items()
    ]
    if not quiet:
        for name, why in skipped.items():
            print(f"skipped   {name}: {why}", file=sys.stderr)
    items = ingest.items_for_paths(files, s.share)
    keys = sorted({it.partition_key for it in items})
    if not quiet:
        print(f"{len(files)} files -> {len(keys)} measurements to check", file=sys.stderr)
    if not keys:
        return outcomes
    lake = Lake(s.lake)
    done = catalog.raw_copies_for(lake, keys)
    known = catalog.known_measurements(lake)
    todo = []
    for k in keys:
        rows = done.get(k)
        if rows and rows[0]["measurement_id"] in known:
            prev = known[rows[0]["measurement_id"]]
            outcomes.append(ingest.Outcome(k, [r["source_path"] for r in rows], "present",
                                           measurement_id=rows[0]["measurement_id"], sha256=rows[0]["sha256"],
                                           technique=prev["technique"], format=prev["format"]))
        else:
            todo.append(k)
    if not todo:
        return outcomes
    instance = get_instance(s)
    all_keys = instance.get_dynamic_partitions(share_files.name)
    existing = set(all_keys)
    new = [k for k in todo if k not in existing]
    again = [k for k in todo if k in existing]
    if new:
        instance.add_dynamic_partitions(share_files.name, new)
    t0 = time.perf_counter()
    total = len(todo)
    state = {"done": 0}

    collected: list[ingest.Outcome] = []

    def hook(step: str, i: int, n: int, out: ingest.Outcome) -> None:
        if step != "parse":
            return
        collected.append(out)
        state["done"] += 1
        if quiet:
            return
        name = ", ".join(out.source_paths)[:80] if out.source_paths else out.partition_key[:80]
        extra = f": {out.reason}" if out.status == "rejected" else ""
        print(f"[{state['done']}/{total}] {out.status:<9} {name}{extra}", file=sys.stderr)

    ingest.add_progress_hook(hook)
    try:
        per_run = per_run or s.max_partitions_per_run
        batches = [c for c in _chunks(new, per_run)] + _ranges(again, all_keys, per_run)
        for chunk in batches:
            tags = {ASSET_PARTITION_RANGE_START_TAG: chunk[0], ASSET_PARTITION_RANGE_END_TAG: chunk[-1],
                    "progral/source": "cli"}
            res = materialize(s, [raw_files, measurements], instance=instance, tags=tags, raise_on_error=False,
                              quiet=True)
            if not res.success:
                err = _failure_text(res)
                got = {o.partition_key for o in collected}
                for k in chunk:
                    if k not in got:
                        collected.append(ingest.Outcome(k, [], "failed", reason=err))
    finally:
        ingest.remove_progress_hook(hook)
    if not quiet:
        print(f"ingestion took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return outcomes + collected


def _ranges(keys: list[str], all_keys: list[str], per_run: int) -> list[list[str]]:
    """Known partitions to run again, as runs over consecutive partitions (a range run covers
    every partition between its ends), so that keys another process added together (a second
    `progral ingest` of the same folder) do not become one run each."""
    pos = {k: i for i, k in enumerate(all_keys)}
    out: list[list[int]] = []
    for i in sorted(pos[k] for k in keys):
        if out and i == out[-1][-1] + 1 and len(out[-1]) < per_run:
            out[-1].append(i)
        else:
            out.append([i])
    return [[all_keys[i] for i in r] for r in out]


def _failure_text(res) -> str:
    for ev in res.all_events:
        if ev.is_step_failure and ev.step_failure_data and ev.step_failure_data.error:
            return ev.step_failure_data.error.message.strip()[:500]
    return "run failed"


def print_summary(outcomes: list[ingest.Outcome]) -> None:
    s = ingest.Summary.of(outcomes)
    labels = {"ingested": "ingested", "present": "already present", "rejected": "rejected",
              "metadata": "sample sheets", "changed": "changed while read (retry later)",
              "missing": "vanished", "failed": "failed", "skipped": "skipped (not read)"}
    print("summary: " + ", ".join(f"{labels.get(k, k)} {v}" for k, v in sorted(s.counts.items())))
    if s.by_format:
        rows = [[fmt, *(c.get(k, 0) for k in ("ingested", "present", "rejected", "metadata"))]
                for fmt, c in sorted(s.by_format.items())]
        output.table(["format", "ingested", "present", "rejected", "sheets"], rows)
    if s.rejected:
        print("rejected files:")
        for r in s.rejected:
            print(f"  {', '.join(r['source_paths'])}: {r['reason']}")
    skipped = [o for o in outcomes if o.status == "skipped"]
    if skipped:
        print("skipped (nothing recorded in the lake):")
        for o in skipped:
            print(f"  {o.source_paths[0]}: {o.reason}")


def run(args) -> int:
    s = settings_mod.load(args.home)
    outcomes = ingest_paths([Path(p) for p in args.paths], s, quiet=args.json)
    if args.json:
        output.to_json({"summary": ingest.Summary.of(outcomes).__dict__, "files": [o.to_dict() for o in outcomes]})
    else:
        print_summary(outcomes)
    return 1 if any(o.status == "failed" for o in outcomes) else 0
