"""The Dagster code location: assets, checks, sensors, schedules and resources. Nothing else."""

import warnings

import dagster as dg

from . import sqlite_tuning
from .assets.ingestion import measurements, raw_files
from .assets.maintenance import lake_compaction, share_reconciliation
from .assets.resources import LakeResource
from .assets.retention import RETENTION_ASSETS
from .assets.segmentation import SEGMENTATION_ASSETS, SEGMENTATION_CHECKS
from .assets.slicegan import SLICEGAN_ASSETS
from .assets.spectral import SPECTRAL_ASSETS, SPECTRAL_CHECKS
from .mlflow.resource import MlflowTracking
from .sensors.schedules import (
    compaction_job,
    nightly_compaction,
    nightly_reconciliation,
    reconcile_job,
)
from .sensors.share_sensor import instrument_share

warnings.filterwarnings("ignore", category=dg.BetaWarning)
sqlite_tuning.install()


def resources_for(s=None) -> dict:
    """Resources for a home (``None``: from the environment)."""
    home = str(s.home) if s is not None else None
    return {"lake": LakeResource(home=home), "mlflow": MlflowTracking(home=home)}


defs = dg.Definitions(
    assets=[raw_files, measurements, share_reconciliation, lake_compaction, *SPECTRAL_ASSETS,
            *RETENTION_ASSETS, *SEGMENTATION_ASSETS, *SLICEGAN_ASSETS],
    asset_checks=[*SPECTRAL_CHECKS, *SEGMENTATION_CHECKS],
    jobs=[reconcile_job, compaction_job],
    sensors=[
        instrument_share,
        dg.AutomationConditionSensorDefinition(
            "progral_automation", target=dg.AssetSelection.all(), minimum_interval_seconds=30,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Declarative automation: features follow new measurements, models train when "
            "missing and nightly, promotion and predictions follow the models.",
        ),
    ],
    schedules=[nightly_reconciliation, nightly_compaction],
    resources=resources_for(),
)


def assets_and_checks() -> list:
    """Every asset and asset check of the code location (for in-process materialisation)."""
    return [*defs.assets, *(defs.asset_checks or [])]
