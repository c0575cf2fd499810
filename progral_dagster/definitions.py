"""The Dagster code location: assets, checks, sensors, schedules and resources. Nothing else."""

import warnings

import dagster as dg

from .assets.ingestion import measurements, raw_files
from .assets.resources import LakeResource
from .sensors.share_sensor import instrument_share

warnings.filterwarnings("ignore", category=dg.BetaWarning)


def resources_for(s=None) -> dict:
    """Resources for a home (``None``: from the environment)."""
    home = str(s.home) if s is not None else None
    return {"lake": LakeResource(home=home)}


defs = dg.Definitions(
    assets=[raw_files, measurements],
    sensors=[instrument_share],
    resources=resources_for(),
)
