"""Blocking asset checks on model quality: a metric of the model's latest materialisation must
reach a threshold, else the promotion asset downstream does not run in that run."""

import math
import os

import dagster as dg


def metric_threshold_check(asset_key: str, name: str, metric: str, env: str, default: float,
                           description: str, *, allow_unscored: bool = False) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset_key, name=name, blocking=True, description=description)
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        threshold = float(os.environ.get(env, str(default)))
        ev = context.instance.get_latest_materialization_event(dg.AssetKey(asset_key))
        md = {} if ev is None or ev.asset_materialization is None else ev.asset_materialization.metadata
        value = md.get(metric)
        value = getattr(value, "value", value)
        if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
            return dg.AssetCheckResult(passed=allow_unscored, metadata={"threshold": threshold,
                                       "note": f"{metric} not measured"})
        return dg.AssetCheckResult(passed=bool(value >= threshold),
                                   metadata={metric: float(value), "threshold": threshold})

    return _check
