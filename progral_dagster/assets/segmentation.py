"""Mass-image segmentation assets: the registered model `tof-sims-phase-segmentation` (trained
from the lake's image measurements and user label images) with promotion, and the segmentation
of every image measurement by the champion (label images, particles, phase fractions).

Science lives in ``ml/segmentation``; this module reads the lake and logs to MLflow.
"""

import json
import os
import pickle
import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ..mlflow import registry, tracking
from ..mlflow.resource import MlflowTracking
from .automation import train_condition
from .checks import metric_threshold_check
from .ingestion import measurements
from .metadata import mlflow_links, png_markdown
from .promotion import build_promotion_asset
from .resources import LakeResource

MODEL = "tof-sims-phase-segmentation"

IMAGES_SQL = """
SELECT m.measurement_id, m.source_path,
       json_extract_string(m.metadata, '$.measurement_name') AS name,
       TRY_CAST(json_extract(m.metadata, '$.pixel_size_um') AS DOUBLE) AS pixel_size_um,
       json_extract(m.metadata, '$.shape') AS shape,
       s.material, s.field_of_view_um, s.sample_id
FROM measurements m
LEFT JOIN (SELECT DISTINCT ON (measurement_id) * FROM measurement_samples
           ORDER BY measurement_id, sheet_mtime DESC, row) s USING (measurement_id)
WHERE m.is_current AND m.format = 'iontof-image'
ORDER BY m.measurement_id
"""

LABELS_SQL = """
SELECT m.measurement_id, m.source_path, s.labels_for
FROM measurements m
LEFT JOIN (SELECT DISTINCT ON (measurement_id) * FROM measurement_samples
           ORDER BY measurement_id, sheet_mtime DESC, row) s USING (measurement_id)
WHERE m.is_current AND m.format = 'tiff-labels'
"""


def image_rows(con) -> pd.DataFrame:
    return con.execute(IMAGES_SQL).df()


def ion_images(con, mid: str) -> dict:
    from ..ml.segmentation import ion_images_from_table

    t = con.execute("SELECT ion, x, y, intensity FROM tof_sims_images WHERE measurement_id = $m AND z IS NULL",
                    {"m": mid}).df()
    return ion_images_from_table(t)


def pixel_size(row, images: dict) -> float | None:
    """From the export header, else the sample sheet's field of view over the image width."""
    if row["pixel_size_um"] == row["pixel_size_um"] and row["pixel_size_um"] is not None:
        return float(row["pixel_size_um"])
    fov = row.get("field_of_view_um")
    if fov is not None and fov == fov and images:
        return float(fov) / next(iter(images.values())).shape[1]
    return None


def label_links(con, rows: pd.DataFrame) -> dict[str, str]:
    """Image measurement id -> label-image measurement id (sheet `labels_for`, or the name
    `<measurement name>.labels.tif` in the same folder)."""
    labels = con.execute(LABELS_SQL).df()
    out = {}
    for _, r in rows.iterrows():
        folder = r["source_path"].rsplit("/", 1)[0] if "/" in r["source_path"] else ""
        for _, lab in labels.iterrows():
            lf = lab["source_path"].rsplit("/", 1)
            named = lf[-1] == f"{r['name']}.labels.tif" and (lf[0] if len(lf) > 1 else "") == folder
            if lab["labels_for"] == r["name"] or named:
                out[r["measurement_id"]] = lab["measurement_id"]
    return out


def training_images(lake: LakeResource):
    from ..ml.segmentation.model import TrainingImage
    from ..ml.segmentation.phases import USER_LABEL_PHASES

    con = lake.connect()
    rows = image_rows(con)
    links = label_links(con, rows)
    out, skipped = [], []
    for _, r in rows.iterrows():
        if not isinstance(r["material"], str):
            skipped.append(f"{r['source_path']}: no material in the sample sheet")
            continue
        imgs = ion_images(con, r["measurement_id"])
        lab = None
        if r["measurement_id"] in links:
            lab = lake.lake.read_array(links[r["measurement_id"]], "labels")
            lab = lab if lab.shape == next(iter(imgs.values())).shape else None
        out.append(TrainingImage(r["measurement_id"], r["name"], r["material"], imgs, pixel_size(r, imgs),
                                 None if lab is None else lab.astype(np.int32), USER_LABEL_PHASES))
    return out, skipped


def _min_iou() -> float:
    return float(os.environ.get("PROGRAL_SEGMENTATION_MIN_IOU", "0.7"))


@dg.asset(
    deps=[measurements],
    group_name="segmentation",
    kinds={"sklearn", "mlflow"},
    automation_condition=train_condition("0 5 * * *"),
    output_required=False,
    description="Phase segmentation of ToF-SIMS mass images (Lombardo et al. 2023): per material, the "
    "unsupervised (marker ions) and supervised (user label images) recipes scored on annotated pixels; "
    f"registered as `{MODEL}`.",
)
def tof_sims_phase_segmentation(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    import mlflow as mlf

    from ..ml.segmentation import plots
    from ..ml.segmentation.model import train_segmentation
    from ..mlflow.pyfunc_models import ModelBundle

    images, skipped = training_images(lake)
    for s in skipped:
        context.log.warning(f"not used: {s}")
    if not images:
        context.log.info("no image measurement with a material in the sample sheet: nothing to train")
        return
    model, table = train_segmentation(images)
    miou = model.metrics["mean_iou"]
    scored = bool(np.isfinite(miou))
    passed = (not scored) or miou >= _min_iou()
    figs = {}
    for t in images[:4]:
        res = model.segment(t.ion_images, t.pixel_size_um, t.material)
        figs[f"overlay_{t.name}"] = plots.overlay_figure(res, title=t.name)
        if len(res.particles):
            figs[f"particles_{t.name}"] = plots.particle_histograms(res.particles)
    with mlflow.run(context, MODEL, run_name=f"{MODEL}") as run:
        mlf.log_params({"images": len(images), "labelled_images": sum(t.labels is not None for t in images),
                        "recipes": json.dumps(model.recipes)})
        tracking.log_metrics(model.metrics)
        tracking.log_table(table, "recipes")
        for k, f in figs.items():
            tracking.log_figure(f, k)
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "evaluation.pkl"
            p.write_bytes(pickle.dumps([t for t in images if t.labels is not None]))
            mlf.log_artifact(str(p), artifact_path="evaluation")
        t0 = images[0]
        crop = {k: v[:16, :16] for k, v in t0.ion_images.items()}
        ny, nx = 16, 16
        example = pd.DataFrame([{"ion": ion, "x": x, "y": y, "intensity": float(img[y, x]), "material": t0.material}
                                for ion, img in crop.items() for y in range(ny) for x in range(nx)])
        reg = registry.log_pyfunc(ModelBundle(model), MODEL, example)
    md = {"mean_iou": float(miou) if scored else dg.MetadataValue.text("unscored (no label images)"),
          "checks_passed": passed, "recipes": dg.MetadataValue.json(model.recipes),
          "scores": dg.MetadataValue.md(table.round(3).to_markdown(index=False)),
          **mlflow_links(mlflow.settings, run.info.run_id, run.info.experiment_id, reg)}
    if scored:
        md["mean_iou"] = float(miou)
    first = next((k for k in figs if k.startswith("overlay_")), None)
    if first:
        md["overlay"] = png_markdown(figs[first], title=first[len("overlay_"):])
    yield dg.MaterializeResult(metadata=md)


segmentation_iou_check = metric_threshold_check(
    "tof_sims_phase_segmentation", "iou_at_least_threshold", "mean_iou", "PROGRAL_SEGMENTATION_MIN_IOU", 0.7,
    "mean IoU on the annotated pixels of user label images >= PROGRAL_SEGMENTATION_MIN_IOU (default 0.7); "
    "passes unscored when no label image exists; blocks promotion", allow_unscored=True)


def _rescore(champion_uri: str, candidate_run_id: str) -> float:
    import mlflow as mlf

    from ..ml.segmentation.model import rescore_model
    from ..mlflow.pyfunc_models import load_bundle

    path = mlf.artifacts.download_artifacts(run_id=candidate_run_id, artifact_path="evaluation/evaluation.pkl")
    images = pickle.loads(Path(path).read_bytes())
    return rescore_model(load_bundle(champion_uri), images) if images else float("nan")


tof_sims_phase_segmentation_champion = build_promotion_asset(
    "tof_sims_phase_segmentation_champion", tof_sims_phase_segmentation, metric="mean_iou",
    higher_is_better=True, reevaluate=_rescore, group_name="segmentation",
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec("segmented_images", deps=[measurements, "tof_sims_phase_segmentation_champion"],
                     group_name="segmentation", kinds={"parquet"}, automation_condition=dg.AutomationCondition.eager(),
                     description="Every image measurement segmented by the champion: phase label image (lake "
                     "arrays), phases, model version."),
        dg.AssetSpec("particles", deps=[measurements, "tof_sims_phase_segmentation_champion"],
                     group_name="segmentation", kinds={"parquet"}, automation_condition=dg.AutomationCondition.eager(),
                     description="Per particle: phase, equivalent diameter (um), aspect ratio, area, solidity, "
                     "CEI rim enrichment."),
        dg.AssetSpec("phase_fractions", deps=[measurements, "tof_sims_phase_segmentation_champion"],
                     group_name="segmentation", kinds={"parquet"}, automation_condition=dg.AutomationCondition.eager(),
                     description="Per image: area fraction of each phase and interface lengths between phases."),
    ],
    can_subset=False,
)
def segmented_images(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    from ..ml.segmentation import plots
    from ..mlflow.pyfunc_models import load_bundle

    mlflow.setup()
    champ = registry.champion(MODEL)
    if champ is None:
        raise dg.Failure(f"no champion of {MODEL} yet")
    version = str(champ.version)
    model = load_bundle(f"models:/{MODEL}/{version}")
    L = lake.lake
    con = lake.connect()
    rows = image_rows(con)
    done = L.read_feature("segmented_images", columns=["measurement_id", "model_version"])
    have = set()
    if done is not None:
        d = done.to_pandas()
        have = set(d.loc[d["model_version"] == version, "measurement_id"])
    seg_rows, part_rows, frac_rows, fig = [], [], [], None
    for _, r in rows.iterrows():
        if r["measurement_id"] in have:
            continue
        try:
            seg = model.segmenter_for(r["material"] if isinstance(r["material"], str) else None)
        except KeyError as exc:
            context.log.warning(f"{r['source_path']}: {exc}")
            continue
        imgs = ion_images(con, r["measurement_id"])
        res = seg.segment(imgs, pixel_size(r, imgs))
        L.write_array(r["measurement_id"], f"segmentation-v{version}", res.labels)
        seg_rows.append({"measurement_id": r["measurement_id"], "name": r["name"], "material": r["material"],
                         "model_version": version, "ny": res.labels.shape[0], "nx": res.labels.shape[1],
                         "pixel_size_um": res.pixel_size_um, "phases": json.dumps(res.phases),
                         "particles": len(res.particles), "interface_lengths": json.dumps(res.interface_lengths),
                         "rim_enrichment": json.dumps(res.rim_enrichment, default=float)})
        part_rows.append(res.particles.assign(measurement_id=r["measurement_id"], model_version=version))
        for ph, f in res.phase_fractions.items():
            frac_rows.append({"measurement_id": r["measurement_id"], "phase": ph, "fraction": f, "model_version": version})
        if fig is None:
            fig = plots.overlay_figure(res, title=str(r["name"]))
    for name, new in (("segmented_images", pd.DataFrame(seg_rows)),
                      ("particles", pd.concat(part_rows, ignore_index=True) if part_rows else pd.DataFrame()),
                      ("phase_fractions", pd.DataFrame(frac_rows))):
        t = L.read_feature(name)
        old = t.to_pandas() if t is not None else pd.DataFrame()
        if len(old):  # rows of other model versions are dropped: the champion's view only
            old = old[old["model_version"] == version]
        parts = [x for x in (old, new) if len(x)]
        if parts:
            L.replace_feature(name, pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False))
    md = {"new_images": len(seg_rows), "model_version": version}
    if fig is not None:
        md["overlay"] = png_markdown(fig, title="first new image")
    yield dg.MaterializeResult(asset_key="segmented_images", metadata=md)
    yield dg.MaterializeResult(asset_key="particles", metadata={"new_particles": int(sum(len(p) for p in part_rows))})
    yield dg.MaterializeResult(asset_key="phase_fractions", metadata={"new_rows": len(frac_rows)})


SEGMENTATION_ASSETS = [tof_sims_phase_segmentation, tof_sims_phase_segmentation_champion, segmented_images]
SEGMENTATION_CHECKS = [segmentation_iou_check]
