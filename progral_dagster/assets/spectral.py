"""ToF-SIMS spectral assets: peak-area features and summary, the lithium-compound classifier with
its blocking check and promotion, composition predictions, and the degradation PCA.

Science lives in ``processing/`` (peak areas, normalisation, data set) and ``ml/`` (classifier,
unmixing, PCA); this module reads the lake, calls them, and logs to MLflow.
"""

import pickle
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..mlflow import registry, tracking
from ..mlflow.resource import MlflowTracking
from .automation import train_condition
from .checks import metric_threshold_check
from .ingestion import measurements
from .metadata import mlflow_links, numbers, png_markdown
from .promotion import build_promotion_asset
from .resources import LakeResource

CLASSIFIER = "tof-sims-li-compound-classifier"
AREAS, SUMMARY = "tof_sims_peak_areas", "tof_sims_summary"
CHUNK = 200

SPECTRA_SQL = """
SELECT m.measurement_id, m.source_path,
       json_extract_string(m.metadata, '$.polarity') AS name_polarity,
       s.polarity AS sheet_polarity, s.sample_id, s.spot, s.label, s.composition, s.project, s.material
FROM measurements m
LEFT JOIN (SELECT DISTINCT ON (measurement_id) * FROM measurement_samples
           ORDER BY measurement_id, sheet_mtime DESC, row) s USING (measurement_id)
WHERE m.is_current AND m.format = 'iontof-spectrum'
ORDER BY m.measurement_id
"""


def spectra_info(con) -> pd.DataFrame:
    return con.execute(SPECTRA_SQL).df()


def read_spectra(con, ids: list[str]) -> pa.Table:
    return con.sql(
        "SELECT measurement_id, mz, intensity FROM tof_sims_spectra "
        "WHERE measurement_id IN (SELECT unnest($ids)) ORDER BY measurement_id, channel",
        params={"ids": ids},
    ).to_arrow_table()


@dg.multi_asset(
    specs=[
        dg.AssetSpec(AREAS, deps=[measurements], group_name="spectral_features", kinds={"parquet"}, skippable=True,
                     automation_condition=dg.AutomationCondition.eager(),
                     description="Peak areas (counts) of every current ToF-SIMS spectrum over the interval "
                     "list generated from the characteristic-ion table, long form."),
        dg.AssetSpec(SUMMARY, deps=[measurements], group_name="spectral_features", kinds={"parquet"}, skippable=True,
                     automation_condition=dg.AutomationCondition.eager(),
                     description="Per spectrum: polarity and its source, total counts, channels, m/z range, "
                     "main ions."),
    ],
    can_subset=False,
)
def tof_sims_features(context: dg.AssetExecutionContext, lake: LakeResource):
    from ..processing.peaks import default_intervals
    from ..processing.spectral_tables import interval_list_id, spectra_feature_rows

    L = lake.lake
    con = lake.connect()
    info = spectra_info(con)
    if info.empty and not L.feature_files(SUMMARY):
        context.log.info("no ToF-SIMS spectrum in the lake yet: nothing to compute")
        return
    intervals = default_intervals()
    ll = interval_list_id(intervals)
    done = L.read_feature(SUMMARY, columns=["measurement_id", "interval_list"])
    if done is not None and set(done.column("interval_list").to_pylist()) - {ll}:
        context.log.info("interval list changed: recomputing every spectrum")
        for name in (AREAS, SUMMARY):
            for f in L.feature_files(name):
                f.unlink()
        done = None
    have = set(done.column("measurement_id").to_pylist()) if done is not None else set()
    todo = info[~info["measurement_id"].isin(have)]
    pol = dict(zip(todo["measurement_id"], todo["sheet_polarity"].where(todo["sheet_polarity"].notna(),
                                                                        todo["name_polarity"]), strict=True))
    src = {m: ("sample sheet" if sp is not None and sp == sp else ("file name" if npol is not None and npol == npol else None))
           for m, sp, npol in zip(todo["measurement_id"], todo["sheet_polarity"], todo["name_polarity"], strict=True)}
    pol = {k: (v if isinstance(v, str) else None) for k, v in pol.items()}
    ids = list(todo["measurement_id"])
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        areas, summary = spectra_feature_rows(read_spectra(con, chunk), pol, src, intervals)
        L.append_feature_part(AREAS, pa.Table.from_pandas(areas, preserve_index=False))
        L.append_feature_part(SUMMARY, pa.Table.from_pandas(summary, preserve_index=False))
        context.log.info(f"peak areas of {min(i + CHUNK, len(ids))}/{len(ids)} new spectra")
    for name in (AREAS, SUMMARY):
        if len(L.feature_files(name)) > 32:  # keep the table in few files
            L.replace_feature(name, L.read_feature(name))
    md = {"new_spectra": len(ids), "spectra": len(have) + len(ids), "interval_list": ll,
          "intervals": len(intervals)}
    yield dg.MaterializeResult(asset_key=AREAS, metadata=md)
    yield dg.MaterializeResult(asset_key=SUMMARY, metadata=md)


def load_dataset(lake: LakeResource):
    """The paired lithium-compound data set from the feature tables and the sample sheets."""
    from ..processing.li_dataset import build

    L = lake.lake
    areas, summary = L.read_feature(AREAS), L.read_feature(SUMMARY)
    if areas is None or summary is None:
        raise dg.Failure("no ToF-SIMS peak areas in the lake yet (materialise tof_sims_peak_areas)")
    info = spectra_info(lake.connect())
    current = set(info["measurement_id"])
    a = areas.to_pandas()
    s = summary.to_pandas()
    return build(a[a["measurement_id"].isin(current)], s[s["measurement_id"].isin(current)], info)


def _min_accuracy() -> float:
    import os

    return float(os.environ.get("PROGRAL_CLASSIFIER_MIN_ACCURACY", "0.9"))


@dg.asset(
    deps=[AREAS, SUMMARY],
    group_name="spectral_models",
    kinds={"sklearn", "mlflow"},
    automation_condition=train_condition("0 3 * * *"),
    output_required=False,
    description="Lithium-compound classifier (Zhao et al. 2023 recipe and stronger candidates), trained on "
    "every labelled reference spectrum, grouped CV by sample; registered as "
    f"`{CLASSIFIER}`.",
)
def li_compound_classifier(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    import mlflow as mlf

    from ..ml import spectral_plots as plots
    from ..ml.li_compound_training import train_li_model
    from ..mlflow.pyfunc_models import ModelBundle

    ds = load_dataset(lake)
    if ds.paired is None or not ds.role.eq("reference").any():
        context.log.info("no labelled reference spectra (sample-sheet `label`) in both polarities: nothing to train")
        return
    trained = train_li_model(ds, seed=0)
    rep, model = trained.report, trained.model
    metrics = rep.cv[rep.best].metrics()
    threshold = _min_accuracy()
    passed = metrics["accuracy"] >= threshold
    pair = ds.paired
    X, y, _ = pair.xy()
    ref = X.loc[pd.Series(y, index=X.index).isin(model.classes)]
    mix = pair.X.loc[ds.role.index[ds.role.ne("reference")]]
    figs = {
        "confusion": plots.confusion_matrix_figure(rep.confusion),
        "pca_scores": plots.pca_scores_figure(rep.pca_scores(ref), pair.meta.loc[ref.index, "label"],
                                              rep.pca_scores(mix) if len(mix) else None,
                                              explained=rep.pca.named_steps["pca"].explained_variance_ratio_),
        "characteristic_ions": plots.characteristic_ions_figure(rep.characteristic_ions),
    }
    comparison = pd.DataFrame([{"candidate": n, **r.metrics()} for n, r in rep.cv.items()])
    with mlflow.run(context, CLASSIFIER, run_name=f"{CLASSIFIER} ({rep.best})") as run:
        mlf.log_params({"selected": rep.best, "candidates": ",".join(rep.cv), "n_references": len(ref),
                        "n_calibration": int(ds.role.eq("calibration").sum()), "features": X.shape[1],
                        "polarities": "paired", "normalization": model.strategy, "folds": len(rep.folds),
                        "min_accuracy": threshold})
        tracking.log_metrics(rep.metrics())
        for name, fig in figs.items():
            tracking.log_figure(fig, name)
        tracking.log_table(comparison, "candidates")
        tracking.log_table(rep.characteristic_ions, "characteristic_ions")
        tracking.log_json(model.record, "feature_record")
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "evaluation.pkl"
            p.write_bytes(pickle.dumps(trained.evaluation))
            mlf.log_artifact(str(p), artifact_path="evaluation")
        example = pair.X.loc[X.index[:3], model.paired_columns]
        reg = registry.log_pyfunc(ModelBundle(model), CLASSIFIER, example)
        mlf.set_tag("checks_passed", str(passed))
    md = {**numbers(metrics), "selected_candidate": rep.best, "checks_passed": passed,
          "n_references": len(ref), "n_calibration_mixtures": int(ds.role.eq("calibration").sum()),
          **mlflow_links(mlflow.settings, run.info.run_id, run.info.experiment_id, reg),
          "confusion_matrix": png_markdown(figs["confusion"], title="grouped-CV confusion"),
          "pca_scores": png_markdown(figs["pca_scores"], title="PCA scores, mixtures as crosses"),
          "characteristic_ions": png_markdown(figs["characteristic_ions"], title="characteristic ions"),
          "candidates": dg.MetadataValue.md(comparison.round(4).to_markdown(index=False))}
    yield dg.MaterializeResult(metadata=md)


classifier_accuracy_check = metric_threshold_check(
    "li_compound_classifier", "accuracy_at_least_threshold", "accuracy", "PROGRAL_CLASSIFIER_MIN_ACCURACY", 0.9,
    "grouped-CV accuracy of the candidate >= PROGRAL_CLASSIFIER_MIN_ACCURACY (default 0.9); blocks promotion")


def _rescore_classifier(champion_uri: str, candidate_run_id: str) -> float:
    """The champion's recipe on the candidate's evaluation data (same folds): log-loss."""
    import mlflow as mlf

    from ..ml.li_compound_training import rescore
    from ..mlflow.pyfunc_models import load_bundle

    path = mlf.artifacts.download_artifacts(run_id=candidate_run_id, artifact_path="evaluation/evaluation.pkl")
    ev = pickle.loads(Path(path).read_bytes())
    return rescore(load_bundle(champion_uri), ev, "log_loss")


li_compound_classifier_champion = build_promotion_asset(
    "li_compound_classifier_champion", li_compound_classifier, metric="log_loss", higher_is_better=False,
    reevaluate=_rescore_classifier, group_name="spectral_models",
)


@dg.asset(
    deps=[AREAS, SUMMARY, "li_compound_classifier_champion"],
    group_name="spectral_models",
    kinds={"parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Class probabilities and unmixing composition of every unlabelled ToF-SIMS measurement, "
    f"from the champion of `{CLASSIFIER}`, with the model version.",
)
def composition_predictions(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    from ..ml.composition import predict_dataset
    from ..mlflow.pyfunc_models import load_bundle

    mlflow.setup()
    champ = registry.champion(CLASSIFIER)
    if champ is None:
        raise dg.Failure(f"no champion of {CLASSIFIER} yet")
    model = load_bundle(f"models:/{CLASSIFIER}/{champ.version}")
    ds = load_dataset(lake)
    pred = predict_dataset(model, ds)
    pred["model_name"] = CLASSIFIER
    pred["model_version"] = str(champ.version)
    lake.lake.replace_feature("composition_predictions", pa.Table.from_pandas(pred, preserve_index=False))
    return dg.MaterializeResult(metadata={
        "predictions": len(pred), "model_version": str(champ.version),
        "preview": dg.MetadataValue.md(pred.head(20).round(3).to_markdown(index=False)),
    })


@dg.asset(
    deps=[AREAS, SUMMARY],
    group_name="spectral_models",
    kinds={"sklearn", "mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    output_required=False,
    description="PCA of normalised ToF-SIMS fragment areas per project (Hertle et al. 2024): scree, "
    "score and loading plots, fragments with the largest loadings.",
)
def degradation_pca(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):

    from ..ml import spectral_plots as plots
    from ..ml.degradation_pca import degradation_pca_by_project
    from ..processing.degradation_data import project_unit_mass_areas

    con = lake.connect()
    info = spectra_info(con)
    areas, projects = project_unit_mass_areas(info, lambda ids: read_spectra(con, ids))
    if areas.empty:
        context.log.info("no ToF-SIMS spectrum with a project and a polarity: nothing to analyse")
        return
    reports = degradation_pca_by_project(areas, projects, strategy="poisson", n_components=3)
    tops, scores = [], []
    md: dict = {"projects": len(reports)}
    with mlflow.run(context, "degradation-pca", run_name="degradation PCA") as run:
        for proj, rep in reports.items():
            t = rep.top_fragments.assign(project=proj)
            tops.append(t)
            scores.append(rep.scores.assign(project=proj).reset_index())
            for name, fig in (("scree", plots.scree_figure(rep)), ("scores", plots.pca_score_plot(rep)),
                              ("loadings", plots.loadings_figure(rep))):
                tracking.log_figure(fig, tracking.metric_name(f"{proj}_{name}").replace(" ", "_"))
                if name == "loadings":
                    md[f"{proj}_loadings"] = png_markdown(fig, title=f"{proj}: loadings")
            tracking.log_metrics({f"{proj}.PC{i + 1}_explained": v for i, v in enumerate(rep.explained_variance_ratio)})
        md.update(mlflow_links(mlflow.settings, run.info.run_id, run.info.experiment_id))
    if tops:
        top = pd.concat(tops, ignore_index=True)
        lake.lake.replace_feature("degradation_pca_fragments", pa.Table.from_pandas(top, preserve_index=False))
        sc = pd.concat(scores, ignore_index=True)
        sc.columns = [str(c) for c in sc.columns]
        lake.lake.replace_feature("degradation_pca_scores", pa.Table.from_pandas(sc, preserve_index=False))
        md["top_fragments"] = dg.MetadataValue.md(top.groupby(["project", "component"]).head(5).to_markdown(index=False))
    yield dg.MaterializeResult(metadata=md)


SPECTRAL_ASSETS = [tof_sims_features, li_compound_classifier, li_compound_classifier_champion,
                   composition_predictions, degradation_pca]
SPECTRAL_CHECKS = [classifier_accuracy_check]
