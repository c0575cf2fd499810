"""The ``instrument_share`` sensor: new file versions on the share become partitions and
ranged ingestion runs. See ``scan.py`` (listing) and ``tick.py`` (settling, grouping, caps);
the known-file state lives in the lake (``warehouse.share_index``), not in the cursor.
"""


import hashlib
import os
import time

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from .. import settings as settings_mod
from ..assets.ingestion import measurements, raw_files
from ..assets.partitions import share_files
from ..warehouse.catalog import finished_keys
from ..warehouse.lake import Lake
from ..warehouse.layout import LakeLayout
from ..warehouse.share_index import ShareIndex
from .scan import ShareUnavailable, scan
from .tick import plan_tick

# Tick interval (s); tests of the daemon shorten it with PROGRAL_SENSOR_INTERVAL_SECONDS.
SENSOR_INTERVAL_S = int(os.environ.get("PROGRAL_SENSOR_INTERVAL_SECONDS", "30"))


def _group_of():
    from ..readers.grouping import acquisition_group

    return acquisition_group


def ranged_run_requests(keys: list[str], per_run: int) -> list[dg.RunRequest]:
    """Run requests over consecutive partition keys, at most ``per_run`` partitions each."""
    out = []
    for i in range(0, len(keys), per_run):
        chunk = keys[i : i + per_run]
        rk = hashlib.sha1(f"{chunk[0]}\n{chunk[-1]}\n{len(chunk)}".encode()).hexdigest()[:16]
        out.append(
            dg.RunRequest(
                run_key=f"ingest-{rk}",
                asset_selection=[raw_files.key, measurements.key],
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: chunk[0],
                    ASSET_PARTITION_RANGE_END_TAG: chunk[-1],
                    "progral/partitions": str(len(chunk)),
                },
            )
        )
    return out


def evaluate(context: dg.SensorEvaluationContext, s: settings_mod.Settings,
             now: float | None = None) -> dg.SensorResult | dg.SkipReason:
    """One tick (``now`` is injectable for tests)."""
    t0 = time.perf_counter()
    layout = LakeLayout(s.lake)
    with ShareIndex(layout.share_index) as idx:
        known = idx.load()
        now = time.time() if now is None else now
        full = True
        prev_dirs = prev_files = None
        if s.share_kind == "network":
            last_full = float(idx.get_meta("last_full_listing", "0") or 0)
            if now - last_full < s.full_listing_seconds:
                full = False
                prev_dirs = idx.dirs()
                prev_files = {p: (r.size, r.mtime_ns) for p, r in known.items()}
        try:
            listing = scan(s.share, previous_dirs=prev_dirs, previous_files=prev_files)
        except ShareUnavailable as exc:
            idx.set_meta("share_problem", str(exc))
            context.log.warning(f"{exc}; nothing changed, retrying next tick")
            return dg.SkipReason(f"{exc}; retrying next tick")
        if not listing.files and known:
            # an empty share that held files is most often a network share that is not mounted
            # (an empty mount point): forgetting every file now would queue them all again later
            problem = (f"share {s.share} lists no files but {len(known)} were known: not mounted? "
                       "nothing is forgotten; retrying next tick")
            idx.set_meta("share_problem", problem)
            context.log.warning(problem)
            return dg.SkipReason(problem)
        if idx.get_meta("share_problem"):
            context.log.info("share reachable again")
            idx.set_meta("share_problem", "")
        if s.share_kind == "network":
            idx.set_dirs(listing.dirs)
            if full:
                idx.set_meta("last_full_listing", str(now))
        max_new = s.max_partitions_per_run * s.max_runs_per_tick
        plan = plan_tick(listing, known, now, s.settle_seconds, max_new, _group_of())
        idx.apply(plan.upserts, plan.deletes)
        keys = [it.partition_key for it in plan.items]
        if keys:
            existing = set(context.instance.get_dynamic_partitions(share_files.name))
            new_keys = [k for k in keys if k not in existing]
            # partitions that exist already (a file handed back by the reconciliation, or restored
            # with its old size and mtime) are not contiguous: one run each
            again = [k for k in keys if k in existing]
            if again:
                # a version already ingested that reappears (a folder moved away and back, a share
                # remounted) needs no run; only unfinished ones (handed back by the reconciliation) do
                done = finished_keys(Lake(s.lake), again)
                again = [k for k in again if k not in done]
        else:
            new_keys, again = [], []
        idx.mark_taken(plan.taken)
    msg = (
        f"{len(listing.files)} files listed ({'full' if full else 'changed folders'}), "
        f"{len(new_keys)} new partitions, {plan.settling} settling, {plan.deferred} deferred to next tick, "
        f"{listing.skipped_links} links out of the share skipped, tick {time.perf_counter() - t0:.2f} s"
    )
    if listing.unreadable:
        shown = [u if len(u) <= 120 else u[:119] + "…" for u in listing.unreadable[:5]]
        msg += f"; unreadable (folders, or paths too long): {', '.join(shown)}"
    if listing.bad_names:
        msg += (f"; {len(listing.bad_names)} names not in UTF-8 skipped (rename them): "
                f"{', '.join(listing.bad_names[:5])}")
    if not new_keys and not again:
        return dg.SkipReason(msg)
    context.log.info(msg + (f", {len(again)} known partitions requeued" if again else ""))
    reruns = [
        dg.RunRequest(partition_key=k, asset_selection=[raw_files.key, measurements.key],
                      run_key=f"requeue-{hashlib.sha1(k.encode()).hexdigest()[:16]}-{int(now)}")
        for k in again
    ]
    return dg.SensorResult(
        run_requests=ranged_run_requests(new_keys, s.max_partitions_per_run) + reruns,
        dynamic_partitions_requests=[share_files.build_add_request(new_keys)] if new_keys else [],
    )


@dg.sensor(
    name="instrument_share",
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=[raw_files, measurements],
    description="Watches the instrument share (PROGRAL_SHARE): each settled new or changed file "
    "(or acquisition group) becomes a partition; ranged runs ingest them.",
)
def instrument_share(context: dg.SensorEvaluationContext):
    return evaluate(context, settings_mod.load())
