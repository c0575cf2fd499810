"""Dagster resources: where the lake and the share are (from settings)."""

from __future__ import annotations

from functools import cached_property

import dagster as dg

from .. import settings as settings_mod
from ..warehouse.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """The lake and the share of a PROGRAL_HOME (default: from the environment)."""

    home: str | None = None

    @cached_property
    def settings(self) -> settings_mod.Settings:
        return settings_mod.load(self.home)

    @property
    def lake(self) -> Lake:
        return Lake(self.settings.lake)

    def connect(self):
        from ..warehouse.views import connect

        return connect(self.settings.lake)

    def refresh_warehouse_file(self) -> None:
        """Rebuild ``warehouse.duckdb`` (views for outside tools) atomically."""
        from ..warehouse.views import build_warehouse_file

        build_warehouse_file(self.settings.lake, self.settings.warehouse_file)
