"""Ingestion assets: ``raw_files`` (content-addressed copy) and ``measurements`` (parse -> lake).

Both are partitioned by file version and run as ranged single runs: one run covers all the
partitions a sensor tick added (bounded), so a burst of files does not become a run per file.
The work is in ``warehouse.ingest``; these functions only connect it to Dagster.
"""


import dagster as dg

from ..warehouse import ingest
from ..warehouse.share_index import ShareIndex
from .partitions import share_files
from .resources import LakeResource

_MAX_LISTED = 50


def _progress(context: dg.AssetExecutionContext, verb: str):
    step = 0

    def report(i: int, n: int, outcome: ingest.Outcome) -> None:
        nonlocal step
        if outcome.status == "rejected":
            context.log.warning(f"rejected {', '.join(outcome.source_paths)}: {outcome.reason}")
        if i == n or i - step >= max(1, n // 10):
            step = i
            context.log.info(f"{verb} {i}/{n}")

    return report


def _metadata(outcomes: list[ingest.Outcome]) -> dict:
    s = ingest.Summary.of(outcomes)
    md: dict = {f"n_{k}": dg.MetadataValue.int(v) for k, v in sorted(s.counts.items())}
    md["partitions"] = dg.MetadataValue.int(len(outcomes))
    if s.by_format:
        md["by_format"] = dg.MetadataValue.json(s.by_format)
    if s.rejected:
        md["rejected"] = dg.MetadataValue.md(
            "| file | reason |\n|---|---|\n"
            + "\n".join(
                f"| {', '.join(r['source_paths'])[:200]} | {str(r['reason'])[:300].replace('|', '/')} |"
                for r in s.rejected[:_MAX_LISTED]
            )
        )
    return md


@dg.asset(
    partitions_def=share_files,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
    kinds={"filesystem"},
    description="Content-addressed copy of every file version on the share into the lake's raw "
    "store (sha256), with a path record; the share itself is only read.",
)
def raw_files(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    keys = list(context.partition_keys)
    outcomes = ingest.copy_items(
        lake.lake, lake.settings.share, keys, run_id=context.run_id, progress=_progress(context, "copied")
    )
    gone = ingest.vanished(outcomes, lake.settings.share)
    if gone:
        # the sensor marked these taken; hand them back so that they are taken again if they return
        with ShareIndex(lake.lake.layout.share_index) as idx:
            idx.release(gone)
        context.log.warning(f"{len(gone)} partitions not on the share (share unavailable?); handed back to the sensor")
    return dg.MaterializeResult(metadata=_metadata(outcomes))


@dg.asset(
    partitions_def=share_files,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_files],
    group_name="ingestion",
    kinds={"parquet", "duckdb"},
    description="Each file parsed by its reader into typed Parquet tables with catalog rows; "
    "files that cannot be parsed are recorded in `rejected_files` with the reason.",
)
def measurements(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    keys = list(context.partition_keys)
    outcomes = ingest.parse_items(lake.lake, keys, run_id=context.run_id, progress=_progress(context, "parsed"))
    try:
        lake.refresh_warehouse_file()
    except Exception as exc:  # noqa: BLE001 - the file for outside tools must never fail ingestion
        context.log.warning(f"warehouse.duckdb not refreshed: {exc}")
    return dg.MaterializeResult(metadata=_metadata(outcomes))
