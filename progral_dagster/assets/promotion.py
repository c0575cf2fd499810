"""Promotion assets: one per registered model, downstream of the model asset (and so of its
blocking checks). Each re-evaluates the current champion on the candidate's evaluation data
(the same folds, logged with the candidate run) and moves the ``champion`` alias only when the
candidate is better. Its metadata links the MLflow run and model version."""

from collections.abc import Callable

import dagster as dg

from ..mlflow import promotion, registry
from ..mlflow.resource import MlflowTracking

Reevaluate = Callable[[str, str], float]  # (champion model URI, candidate run id) -> score


def latest_candidate(instance: dg.DagsterInstance, model_key: dg.AssetKey) -> dict:
    """Model name, version, run id, score and check outcome from the model asset's latest
    materialisation metadata."""
    ev = instance.get_latest_materialization_event(model_key)
    if ev is None or ev.asset_materialization is None:
        raise dg.Failure(f"{model_key.to_user_string()} has not been materialised yet")
    md = {k: getattr(v, "value", v) for k, v in ev.asset_materialization.metadata.items()}
    missing = [k for k in ("model_name", "model_version", "mlflow_run_id") if k not in md]
    if missing:
        raise dg.Failure(f"{model_key.to_user_string()} materialisation lacks {missing}: no model was registered")
    return md


def build_promotion_asset(name: str, model_asset: dg.AssetsDefinition, *, metric: str,
                          higher_is_better: bool, reevaluate: Reevaluate, group_name: str,
                          model_key: dg.AssetKey | None = None, description: str | None = None):
    model_key = model_key or model_asset.key

    @dg.asset(
        name=name,
        deps=[model_key],
        group_name=group_name,
        kinds={"mlflow"},
        automation_condition=dg.AutomationCondition.eager(),
        description=description or f"Moves the `champion` alias of the model trained by "
        f"`{model_key.to_user_string()}` when it beats the current champion on the same evaluation data ({metric}).",
    )
    def _promotion(context: dg.AssetExecutionContext, mlflow: MlflowTracking) -> dg.MaterializeResult:
        mlflow.setup()
        cand = latest_candidate(context.instance, model_key)
        if cand.get("checks_passed") is False:
            cur = registry.champion(cand["model_name"])
            context.log.warning("candidate failed its blocking checks: champion left where it was")
            return dg.MaterializeResult(metadata={
                "promoted": False, "reason": "candidate failed its blocking checks",
                "champion_version": str(cur.version) if cur else "none", "candidate_version": cand["model_version"],
            })
        score = float(cand[metric])
        decision = promotion.promote(
            cand["model_name"], cand["model_version"], score, metric=metric, higher_is_better=higher_is_better,
            evaluate_champion=lambda uri: reevaluate(uri, cand["mlflow_run_id"]),
        )
        context.log.info(f"{cand['model_name']}: {decision.reason}")
        champ = registry.champion(cand["model_name"])
        md = {k: v for k, v in decision.as_metadata().items()}
        md["champion_version"] = str(champ.version) if champ else "none"
        md["champion_uri"] = registry.champion_uri(cand["model_name"])
        md["candidate_run_id"] = cand["mlflow_run_id"]
        return dg.MaterializeResult(metadata=md)

    return _promotion
