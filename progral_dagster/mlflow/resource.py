"""The Dagster resource for MLflow tracking (URI and artifact root from the settings)."""

import contextlib
from functools import cached_property

import dagster as dg

from .. import settings as settings_mod
from . import tracking


class MlflowTracking(dg.ConfigurableResource):
    """MLflow tracking for a PROGRAL_HOME: runs tagged with the Dagster run id and asset key."""

    home: str | None = None

    @cached_property
    def settings(self) -> settings_mod.Settings:
        return settings_mod.load(self.home)

    def setup(self) -> None:
        tracking.configure(self.settings.mlflow_tracking_uri, self.settings.mlflow_artifacts)

    @contextlib.contextmanager
    def run(self, context, experiment: str, run_name: str | None = None, tags: dict | None = None):
        self.setup()
        t = {"dagster.run_id": context.run_id, "progral.home": str(self.settings.home)}
        if getattr(context, "has_assets_def", False) or hasattr(context, "asset_key"):
            try:
                t["dagster.asset_key"] = context.asset_key.to_user_string()
            except Exception:  # noqa: BLE001 - multi-asset steps have no single key
                pass
        t.update(tags or {})
        with tracking.start_run(experiment, run_name or experiment, artifact_root=self.settings.mlflow_artifacts,
                                tags=t) as r:
            yield r

    def ui_url(self, run) -> str:
        return f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
