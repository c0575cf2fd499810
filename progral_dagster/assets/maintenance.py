"""Lake maintenance assets: nightly reconciliation of the share with the lake, and compaction."""

import dataclasses

import dagster as dg

from ..sensors.reconcile import reconcile
from ..warehouse.compaction import compact
from .resources import LakeResource


@dg.asset(
    group_name="maintenance",
    description="Every settled file on the share is in the lake exactly once; missing files are "
    "handed back to the sensor (queued at its next tick), odd ones reported.",
)
def share_reconciliation(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    rep = reconcile(lake.settings)
    if rep.requeued:
        context.log.warning(f"{len(rep.requeued)} settled files were not in the lake; queued: {rep.requeued[:20]}")
    d = dataclasses.asdict(rep)
    md = {k: dg.MetadataValue.int(v) for k, v in d.items() if isinstance(v, int)}
    md["requeued"] = dg.MetadataValue.int(len(rep.requeued))
    md["requeued_files"] = dg.MetadataValue.json(rep.requeued[:200])
    md["odd"] = dg.MetadataValue.json({
        "path_versions_with_two_contents": rep.path_versions_with_two_contents[:200],
        "measurements_recorded_twice": rep.measurements_recorded_twice,
    })
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    group_name="maintenance",
    description="Merges small Parquet files per table and ingest date, drops rows of batches no "
    "catalog row references (runs killed before their commit), rebuilds warehouse.duckdb.",
)
def lake_compaction(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    rep = compact(lake.lake)
    lake.refresh_warehouse_file()
    context.log.info(f"compacted {rep.files_before} files into {rep.files_after}")
    return dg.MaterializeResult(metadata={
        "files_before": rep.files_before, "files_after": rep.files_after, "rows": rep.rows,
        "orphan_rows_dropped": rep.orphan_rows_dropped, "tables": dg.MetadataValue.json(rep.tables),
    })
