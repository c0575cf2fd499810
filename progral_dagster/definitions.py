"""The Dagster code location: assets, checks, sensors, schedules and resources. Nothing else."""

import warnings

import dagster as dg

from . import sqlite_tuning
from .assets.ingestion import measurements, raw_files
from .assets.maintenance import lake_compaction, share_reconciliation
from .assets.resources import LakeResource
from .mlflow.resource import MlflowTracking
from .sensors.schedules import compaction_job, nightly_compaction, nightly_reconciliation, reconcile_job
from .sensors.share_sensor import instrument_share

warnings.filterwarnings("ignore", category=dg.BetaWarning)
sqlite_tuning.install()


def resources_for(s=None) -> dict:
    """Resources for a home (``None``: from the environment)."""
    home = str(s.home) if s is not None else None
    return {"lake": LakeResource(home=home), "mlflow": MlflowTracking(home=home)}


defs = dg.Definitions(
    assets=[raw_files, measurements, share_reconciliation, lake_compaction],
    jobs=[reconcile_job, compaction_job],
    sensors=[instrument_share],
    schedules=[nightly_reconciliation, nightly_compaction],
    resources=resources_for(),
)
