"""Capacity-retention assets: the joined feature table, two registered regressors (all features,
surface only) with promotion, and predictions for sheets not yet cycled.

Science lives in ``processing/xps``, ``processing/cycling`` and ``ml/retention``; this module
reads the lake, calls them and logs to MLflow.
"""

import os
import pickle
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..mlflow import registry, tracking
from ..mlflow.resource import MlflowTracking
from .automation import train_condition
from .ingestion import measurements
from .metadata import mlflow_links, numbers, png_markdown
from .promotion import build_promotion_asset
from .resources import LakeResource

FEATURES = "retention_features"
FULL, SURFACE = "capacity-retention-regressor", "capacity-retention-surface-only"

SAMPLES_SQL = """
SELECT ms.measurement_id, ms.sample_id, ms.cell_id, ms.storage_atmosphere, ms.dew_point_c, ms.storage_time_h,
       ms.project, ms.polarity, m.technique, m.format,
       json_extract_string(m.metadata, '$.polarity') AS name_polarity
FROM measurement_samples ms JOIN measurements m USING (measurement_id)
WHERE m.is_current AND ms.sample_id IN (
    SELECT sample_id FROM samples
    WHERE storage_atmosphere IS NOT NULL OR dew_point_c IS NOT NULL OR storage_time_h IS NOT NULL)
"""


def cycle_settings() -> tuple[int, int | None]:
    """(reference cycle, target cycle N) from PROGRAL_RETENTION_REF_CYCLE (3) and
    PROGRAL_RETENTION_TARGET_CYCLE (default: the cycle reached by 80 % of the cells)."""
    ref = int(os.environ.get("PROGRAL_RETENTION_REF_CYCLE", "3"))
    n = os.environ.get("PROGRAL_RETENTION_TARGET_CYCLE")
    return ref, (int(n) if n else None)


def _frame(con, table: str, ids: list[str]) -> pd.DataFrame:
    if not ids:
        return pd.DataFrame()
    return con.sql(f"SELECT * FROM {table} WHERE measurement_id IN (SELECT unnest($ids))",
                   params={"ids": ids}).df()


def retention_feature_table(con, samples: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The joined retention features of every stored sheet (or of the given sample rows)."""
    from ..processing.cycling import cycling_feature_table
    from ..processing.retention_features import build_feature_table, tof_fragment_table
    from ..processing.xps import xps_feature_table

    s = con.execute(SAMPLES_SQL).df() if samples is None else samples
    if s.empty:
        raise dg.Failure("no measurement is linked to a sample with storage conditions "
                         "(sample sheet columns storage_atmosphere / dew_point_c / storage_time_h)")
    tof_ids = list(s.loc[s["format"] == "iontof-spectrum", "measurement_id"])
    xps_ids = list(s.loc[s["technique"] == "xps", "measurement_id"])
    cyc_ids = list(s.loc[s["technique"] == "cycling", "measurement_id"])
    pol = dict(zip(s["measurement_id"], s["polarity"].where(s["polarity"].notna(), s["name_polarity"]), strict=True))
    tof = tof_fragment_table(_frame(con, "tof_sims_spectra", tof_ids), pol) if tof_ids else None
    xps = xps_feature_table(_frame(con, "xps_spectra", xps_ids)) if xps_ids else None
    ref, target = cycle_settings()
    cyc = None
    if cyc_ids:
        raw = _frame(con, "cycling", cyc_ids)
        if target is None:
            reached = raw.groupby("measurement_id")["cycle"].max()
            target = int(reached.quantile(0.2, interpolation="lower"))
        cyc = cycling_feature_table(raw, ref_cycle=ref, target_cycle=target)
    table = build_feature_table(s, tof=tof, xps=xps, cycling=cyc)
    return table, {"ref_cycle": ref, "target_cycle": target, "n_tof": len(tof_ids), "n_xps": len(xps_ids),
                   "n_cycling": len(cyc_ids)}


@dg.asset(
    deps=[measurements],
    group_name="retention",
    kinds={"parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    output_required=False,
    description="One row per cell (and per stored sheet without cells): storage conditions, ToF-SIMS fragment "
    "ratios, XPS features (atomic %, carbonate and LiF shares), early-cycle features, retention_N target.",
)
def retention_features(context: dg.AssetExecutionContext, lake: LakeResource):
    con = lake.connect()
    if con.execute(f"SELECT count(*) FROM ({SAMPLES_SQL})").fetchone()[0] == 0:
        context.log.info("no measurement linked to a sample with storage conditions: nothing to compute")
        return
    table, info = retention_feature_table(con)
    lake.lake.replace_feature(FEATURES, pa.Table.from_pandas(table, preserve_index=False))
    yield dg.MaterializeResult(metadata={
        "rows": len(table), "cells": int(table["cell_id"].notna().sum()),
        "sheets": int(table["sample_id"].nunique()), "features": sum(c.startswith(("storage_", "tof_", "xps_", "cyc_"))
                                                                     for c in table.columns), **info,
    })


def _load_features(lake: LakeResource) -> pd.DataFrame:
    t = lake.lake.read_feature(FEATURES)
    if t is None:
        raise dg.Failure("retention_features has not been materialised")
    return t.to_pandas()


def _model_asset(name: str, variant: str):
    asset_name = variant.replace("-", "_")

    @dg.asset(
        name=asset_name,
        deps=[FEATURES],
        group_name="retention",
        kinds={"sklearn", "mlflow"},
        automation_condition=train_condition("0 4 * * *"),
        description=f"Capacity-retention regression ({'all features' if variant == FULL else 'surface analysis only'}): "
        "baselines, Ridge/Lasso/Elastic-Net (z-score and min-max), tuned random forest; nested CV grouped by "
        f"sheet; champion by grouped-CV RMSE; registered as `{variant}`.",
    )
    def _train(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
        import mlflow as mlf

        from ..ml import retention_plots as plots
        from ..ml.retention import train_retention
        from ..ml.retention_model import RetentionModel
        from ..mlflow.pyfunc_models import ModelBundle

        table = _load_features(lake)
        rep = train_retention(table, variant=variant, seed=0)
        model = RetentionModel.from_report(rep)
        cm = model.metrics
        comp = rep.comparison_table()
        figs = {"parity": plots.parity_plot(rep), "importances": plots.importance_plot(rep),
                "comparison": plots.comparison_plot(rep)}
        with mlflow.run(context, variant, run_name=f"{variant} ({rep.champion})") as run:
            mlf.log_params({"champion": rep.champion, "rows": len(rep.y), "sheets": len(set(rep.groups)),
                            "features": len(rep.feature_names), "dropped_correlated": len(rep.dropped_features)})
            tracking.log_metrics({"r2": cm.get("r2"), "rmse": cm.get("rmse"), "mae": cm.get("mae"),
                                  "p_beats_linear": rep.p_beats_linear})
            for _, r in comp.iterrows():
                tracking.log_metrics({f"{r['candidate']}.rmse": r["rmse"], f"{r['candidate']}.r2": r["r2"]})
            for k, f in figs.items():
                tracking.log_figure(f, k)
            tracking.log_table(comp, "comparison")
            tracking.log_table(rep.importances, "permutation_importances")
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "evaluation.pkl"
                x = table.loc[table["retention_pct"].notna()].reset_index(drop=True)
                p.write_bytes(pickle.dumps({"x": x, "y": rep.y, "folds": rep.folds}))
                mlf.log_artifact(str(p), artifact_path="evaluation")
            example = table.loc[table["retention_pct"].notna(), rep.feature_names].head(3)
            reg = registry.log_pyfunc(ModelBundle(model), variant, example.astype(float))
        md = {**numbers({k: cm[k] for k in ("r2", "rmse", "mae") if k in cm}),
              "champion_candidate": rep.champion, "beats_linear_baseline": bool(rep.beats_linear_baseline),
              "p_beats_linear": float(rep.p_beats_linear), "checks_passed": True,
              **mlflow_links(mlflow.settings, run.info.run_id, run.info.experiment_id, reg),
              "parity": png_markdown(figs["parity"], title="grouped-CV parity"),
              "comparison": dg.MetadataValue.md(comp.round(3).to_markdown(index=False))}
        return dg.MaterializeResult(metadata=md)

    return _train


def _rescore(champion_uri: str, candidate_run_id: str) -> float:
    """The champion's recipe re-fitted on the candidate's outer folds: grouped-CV RMSE."""
    import mlflow as mlf

    from ..ml.retention import evaluate_on_folds
    from ..mlflow.pyfunc_models import load_bundle

    ev = pickle.loads(Path(mlf.artifacts.download_artifacts(run_id=candidate_run_id,
                                                            artifact_path="evaluation/evaluation.pkl")).read_bytes())
    champ = load_bundle(champion_uri)
    x = ev["x"].reindex(columns=champ.feature_names).apply(pd.to_numeric, errors="coerce").astype(float)
    return float(evaluate_on_folds(champ.pipeline, x, ev["y"], ev["folds"])["rmse"])


capacity_retention_regressor = _model_asset("capacity_retention_regressor", FULL)
capacity_retention_surface_only = _model_asset("capacity_retention_surface_only", SURFACE)
promotions = [
    build_promotion_asset(f"{a.key.to_user_string()}_champion", a, metric="rmse", higher_is_better=False,
                          reevaluate=_rescore, group_name="retention")
    for a in (capacity_retention_regressor, capacity_retention_surface_only)
]


@dg.asset(
    deps=[FEATURES, "capacity_retention_surface_only_champion"],
    group_name="retention",
    kinds={"parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Every stored sheet with surface data but no cycling yet: retention predicted by the "
    f"surface-only champion (`{SURFACE}`) with a 90 % interval.",
)
def retention_predictions(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    from ..mlflow.pyfunc_models import load_bundle

    mlflow.setup()
    champ = registry.champion(SURFACE)
    if champ is None:
        raise dg.Failure(f"no champion of {SURFACE} yet")
    model = load_bundle(f"models:/{SURFACE}/{champ.version}")
    table = _load_features(lake)
    pending = table[table["cell_id"].isna()].reset_index(drop=True)
    pred = model.predict(pending).assign(sample_id=pending["sample_id"].to_numpy(), model_name=SURFACE,
                                         model_version=str(champ.version))
    pred = pred[["sample_id", "retention_pct", "lower", "upper", "alpha", "model_name", "model_version"]]
    lake.lake.replace_feature("retention_predictions", pa.Table.from_pandas(pred, preserve_index=False))
    return dg.MaterializeResult(metadata={
        "predictions": len(pred), "model_version": str(champ.version),
        "preview": dg.MetadataValue.md(pred.round(2).to_markdown(index=False)),
    })


RETENTION_ASSETS = [retention_features, capacity_retention_regressor, capacity_retention_surface_only,
                    *promotions, retention_predictions]
