"""Schedules: nightly reconciliation and compaction."""

import dagster as dg

from ..assets.maintenance import lake_compaction, share_reconciliation

reconcile_job = dg.define_asset_job("reconcile_share", selection=[share_reconciliation])
compaction_job = dg.define_asset_job("compact_lake", selection=[lake_compaction])

nightly_reconciliation = dg.ScheduleDefinition(
    name="nightly_reconciliation", job=reconcile_job, cron_schedule="30 1 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Reconcile the share with the lake every night (queues what the sensor missed).",
)
nightly_compaction = dg.ScheduleDefinition(
    name="nightly_compaction", job=compaction_job, cron_schedule="30 2 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Compact small Parquet files every night.",
)
