"""SliceGAN assets: a generator per material trained from the lake's segmented images and label
images (Kench & Cooper 2021), registered as `slicegan-<material>` with a champion chosen by the
distance between generated and training statistics, and generated volumes with their metrics.

Training images of a material: user label images (`tiff-labels`) that are not segmentation
annotations (no `labels_for`), and the champion segmentation's label images of image
measurements; the material comes from the sample sheet. Science lives in ``ml/slicegan`` and
``ml/microstructure``; this module reads the lake and logs to MLflow.
"""

import os
import re

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ..mlflow import registry, tracking
from ..mlflow.resource import MlflowTracking
from .automation import train_condition
from .metadata import png_markdown
from .resources import LakeResource

LABEL_IMAGES_SQL = """
SELECT m.measurement_id, m.source_path, s.material, s.labels_for, mi.ndim, mi.voxel_size_um
FROM measurements m JOIN microstructures mi USING (measurement_id)
LEFT JOIN (SELECT DISTINCT ON (measurement_id) * FROM measurement_samples
           ORDER BY measurement_id, sheet_mtime DESC, row) s USING (measurement_id)
WHERE m.is_current AND m.format = 'tiff-labels'
"""


class SliceGANTraining(dg.Config):
    """Which materials and how long (``config``: ``cpu`` for 2-core machines, ``reference`` for
    a GPU server)."""

    config: str = "cpu"
    time_budget_s: float | None = None  # default: PROGRAL_SLICEGAN_BUDGET_S, else 180 s per material
    iterations: int | None = None  # default: PROGRAL_SLICEGAN_ITERATIONS, else as many as the budget allows
    materials: list[str] = []
    compare_size: int = 64
    seed: int = 0


def model_name(material: str) -> str:
    return "slicegan-" + (re.sub(r"[^a-z0-9]+", "-", material.lower()).strip("-") or "material")


def training_sets(lake: LakeResource) -> dict[str, list[tuple[str, np.ndarray, float | None]]]:
    """material -> [(source, label image or volume, voxel size um)]."""
    con = lake.connect()
    out: dict[str, list] = {}
    for _, r in con.execute(LABEL_IMAGES_SQL).df().iterrows():
        if isinstance(r["labels_for"], str) or not isinstance(r["material"], str):
            continue
        arr = lake.lake.read_array(r["measurement_id"], "labels")
        vox = r["voxel_size_um"] if r["voxel_size_um"] == r["voxel_size_um"] else None
        out.setdefault(r["material"], []).append((r["source_path"], arr, vox))
    seg = lake.lake.read_feature("segmented_images")
    if seg is not None:
        for _, r in seg.to_pandas().iterrows():
            if not isinstance(r["material"], str):
                continue
            try:
                arr = lake.lake.read_array(r["measurement_id"], f"segmentation-v{r['model_version']}")
            except FileNotFoundError:
                continue
            out.setdefault(r["material"], []).append((f"segmented:{r['name']}", arr, r["pixel_size_um"]))
    return out


def _images_for_training(items: list) -> list[np.ndarray]:
    """One 2D image (isotropic) or one 3D volume: the largest item of a material."""
    src, arr, _ = max(items, key=lambda t: t[1].size)
    return [np.asarray(arr)]


@dg.asset(
    group_name="slicegan",
    kinds={"pytorch", "mlflow"},
    deps=["measurements", "segmented_images"],
    automation_condition=train_condition("0 6 * * 0"),
    output_required=False,
    description="SliceGAN generator per material (WGAN-GP, 3D generator / 2D critics) trained on the "
    "material's segmented 2D images; logs losses, slices, metric comparison; registers `slicegan-<material>`.",
)
def slicegan_generator(context: dg.AssetExecutionContext, config: SliceGANTraining, lake: LakeResource,
                       mlflow: MlflowTracking):
    import mlflow as mlf
    import mlflow.pytorch as mlflow_pytorch

    from ..ml.slicegan import cpu_config, distance_to_training, reference_config, train_slicegan
    from ..ml.slicegan_plots import loss_figure, slices_figure

    sets = training_sets(lake)
    if config.materials:
        sets = {k: v for k, v in sets.items() if k in config.materials}
    if not sets:
        context.log.info("no segmented or label image with a material: nothing to train")
        return
    cfg = cpu_config() if config.config == "cpu" else reference_config(config.config.removeprefix("reference-") if
                                                                         config.config.startswith("reference-") else "current")
    candidates, md = {}, {}
    for material, items in sorted(sets.items()):
        images = _images_for_training(items)
        vox = items[0][2]
        name = model_name(material)

        def progress(rec, _m=material):
            if int(rec["iteration"]) % 50 == 0:
                context.log.info(f"{_m}: iteration {int(rec['iteration'])}, Wasserstein {rec['wasserstein']:.3f}")

        budget = config.time_budget_s or float(os.environ.get("PROGRAL_SLICEGAN_BUDGET_S", "180"))
        iters = config.iterations or (int(os.environ["PROGRAL_SLICEGAN_ITERATIONS"])
                                      if os.environ.get("PROGRAL_SLICEGAN_ITERATIONS") else None)
        res = train_slicegan(images, cfg, iterations=iters, time_budget_s=budget, seed=config.seed, callback=progress)
        real = images[0]
        gen, cmp = distance_to_training(res.generator, real, vox, size=config.compare_size, seed=config.seed)
        hist = pd.DataFrame(res.history)
        figs = {"losses": loss_figure(hist), "slices": slices_figure(gen, real)}
        with mlflow.run(context, name, run_name=f"{name} ({cfg.name})") as run:
            mlf.log_params({"material": material, "config": cfg.name, "iterations": res.iterations,
                            "training_images": "; ".join(s for s, _, _ in items)[:500],
                            "device": res.device, "mode": res.mode, "elapsed_s": round(res.elapsed_s, 1)})
            for i in range(0, len(hist), max(1, len(hist) // 200)):
                row = hist.iloc[i]
                mlf.log_metrics({k: float(row[k]) for k in ("critic_loss", "generator_loss", "wasserstein",
                                                              "gradient_penalty") if k in row}, step=int(row["iteration"]))
            tracking.log_metrics({"distance": cmp["distance"]})
            tracking.log_json(cmp, "metric_comparison")
            for k, f in figs.items():
                tracking.log_figure(f, k)
            res.generator.cpu().eval()
            import torch

            example = torch.zeros((1, cfg.latent_channels, cfg.training_latent, cfg.training_latent,
                                   cfg.training_latent))
            info = mlflow_pytorch.log_model(res.generator, name="model", serialization_format="pickle",
                                            input_example=example.numpy(),
                                            pip_requirements=registry.requirements("torch", "numpy"))
            mv = mlf.register_model(info.model_uri, name, await_registration_for=0)
        candidates[material] = {"model_name": name, "model_version": str(mv.version), "run_id": run.info.run_id,
                                "distance": float(cmp["distance"]), "voxel_size_um": vox,
                                "compare_size": config.compare_size, "seed": config.seed}
        md[f"{name}_distance"] = float(cmp["distance"])
        md[f"{name}_slices"] = png_markdown(figs["slices"], title=f"{material}: generated vs real")
    yield dg.MaterializeResult(metadata={**md, "candidates": dg.MetadataValue.json(candidates),
                                         "materials": len(candidates)})


def _training_image_for(lake: LakeResource, material: str) -> np.ndarray | None:
    items = training_sets(lake).get(material)
    return _images_for_training(items)[0] if items else None


@dg.asset(
    deps=[slicegan_generator],
    group_name="slicegan",
    kinds={"mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Per material, moves the `champion` alias of `slicegan-<material>` when the candidate's "
    "generated volumes are closer to the training statistics than the champion's (same image, same seed).",
)
def slicegan_champions(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    import mlflow.pytorch as mlflow_pytorch

    from ..ml.slicegan import distance_to_training
    from ..mlflow import promotion

    mlflow.setup()
    ev = context.instance.get_latest_materialization_event(slicegan_generator.key)
    cands = ev.asset_materialization.metadata["candidates"].value if ev else {}
    decisions = {}
    for material, c in cands.items():
        real = _training_image_for(lake, material)

        def distance(uri: str, _real=real, _c=c) -> float:
            # the champion is scored exactly as the candidate was: same image, size and seed
            _, cmp = distance_to_training(mlflow_pytorch.load_model(uri), _real, _c["voxel_size_um"],
                                          size=_c.get("compare_size", 64), seed=_c.get("seed", 0))
            return cmp["distance"]

        d = promotion.promote(c["model_name"], c["model_version"], c["distance"], metric="distance",
                              higher_is_better=False, evaluate_champion=(distance if real is not None else None))
        decisions[material] = d.as_metadata()
        context.log.info(f"{c['model_name']}: {d.reason}")
    return dg.MaterializeResult(metadata={"decisions": dg.MetadataValue.json(decisions),
                                          "promoted": sum(d["promoted"] for d in decisions.values())})


@dg.asset(
    deps=[slicegan_champions],
    group_name="slicegan",
    kinds={"parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="A volume from each material's champion generator (lake arrays) with its metrics: volume "
    "fraction, specific surface area, tortuosity factor and relative diffusivity per phase.",
)
def generated_microstructures(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowTracking):
    import json

    import mlflow.pytorch as mlflow_pytorch

    from ..ml.microstructure import metrics_report
    from ..ml.slicegan import generate_volume

    mlflow.setup()
    size = int(os.environ.get("PROGRAL_GENERATED_SIZE", "64"))
    rows = []
    for material, items in sorted(training_sets(lake).items()):
        name = model_name(material)
        champ = registry.champion(name)
        if champ is None:
            continue
        net = mlflow_pytorch.load_model(f"models:/{name}/{champ.version}")
        vol = generate_volume(net, size, seed=0)
        lake.lake.write_array("generated", f"{name}-v{champ.version}-{size}", vol)
        rep = metrics_report(vol, items[0][2], tortuosity=True)
        for label, m in rep["phases"].items():
            rows.append({"material": material, "model_name": name, "model_version": str(champ.version),
                         "size": size, "phase": int(label), "volume_fraction": m.get("volume_fraction"),
                         "specific_surface_area": m.get("specific_surface_area"),
                         "tortuosity_factor": m.get("tortuosity_factor"),
                         "relative_diffusivity": m.get("relative_diffusivity"),
                         "array": f"generated/{name}-v{champ.version}-{size}", "report": json.dumps(rep, default=float)[:20000]})
    if rows:
        lake.lake.replace_feature("generated_microstructures", pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False))
    return dg.MaterializeResult(metadata={"volumes": len({r["model_name"] for r in rows}), "size": size,
                                          "table": dg.MetadataValue.md(pd.DataFrame(rows).drop(columns=["report"], errors="ignore")
                                                                       .round(4).to_markdown(index=False)) if rows else ""})


SLICEGAN_ASSETS = [slicegan_generator, slicegan_champions, generated_microstructures]
