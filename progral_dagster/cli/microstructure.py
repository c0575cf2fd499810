"""``progral generate-3d`` and ``progral microstructure-metrics``: SliceGAN volumes and the
metrics of label volumes (volume fraction, specific surface area, tortuosity factor, relative
diffusivity per phase)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import settings as settings_mod
from . import output


def _read_volume(path: Path):
    import numpy as np
    import tifffile

    from ..readers import ReaderError
    from ..readers.tiff_labels import read as read_tiff

    try:
        m = read_tiff(path)
        return np.asarray(m.arrays["labels"]), m.tables["microstructures"].column("voxel_size_um")[0].as_py()
    except ReaderError as exc:
        raise SystemExit(f"progral microstructure-metrics: {exc}") from None
    except KeyError:
        return tifffile.imread(path), None


def run_metrics(args) -> int:
    from ..ml.microstructure import metrics_report

    vol, vox = _read_volume(Path(args.volume))
    vox = args.voxel_size if args.voxel_size is not None else vox
    phases = [int(p) for p in args.phase] if args.phase else None
    if phases:
        present = set(int(v) for v in __import__("numpy").unique(vol))
        missing = [p for p in phases if p not in present]
        if missing:
            raise SystemExit(f"progral microstructure-metrics: label(s) {missing} not in the volume "
                             f"(labels present: {sorted(present)})")
    rep = metrics_report(vol, vox, phases, axis=args.axis, tortuosity=not args.no_tortuosity, two_point=args.json)
    if args.json:
        output.to_json(rep)
        return 0
    unit = rep.get("units", {}).get("specific_surface_area", "")
    print(f"{args.volume}: shape {tuple(rep['shape'])}, voxel {vox if vox else 'unknown (per-voxel units)'}"
          f"{' um' if vox else ''}, tortuosity along axis {args.axis}")
    rows = [[lab, m["volume_fraction"], m["specific_surface_area"], m.get("tortuosity_factor"),
             m.get("relative_diffusivity")] for lab, m in rep["phases"].items()]
    output.table(["label", "volume_fraction", f"specific_surface_area ({unit})", "tortuosity_factor",
                  "relative_diffusivity"], rows)
    if rep.get("triple_phase_boundary_density") is not None:
        print(f"triple-phase-boundary density: {rep['triple_phase_boundary_density']:.6g} "
              f"{rep.get('units', {}).get('triple_phase_boundary_density', '')}")
    return 0


def run_generate(args) -> int:
    import numpy as np
    import tifffile

    from ..ml.slicegan import generate_volume
    from ..mlflow import tracking

    s = settings_mod.load(args.home)
    tracking.configure(s.mlflow_tracking_uri)
    try:
        import mlflow.pytorch

        net = mlflow.pytorch.load_model(args.model, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - a missing model, a wrong URI
        raise SystemExit(f"progral generate-3d: cannot load {args.model}: {exc}") from None
    size = tuple(args.size) if len(args.size) == 3 else args.size[0]
    vol = generate_volume(net, size, seed=args.seed, periodic=args.periodic, device=args.device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out, vol.astype(np.uint8 if vol.max() < 256 else np.uint16), compression="zlib")
    labels, counts = np.unique(vol, return_counts=True)
    fr = {int(k): round(float(v) / vol.size, 4) for k, v in zip(labels, counts, strict=True)}
    print(f"wrote {out}: shape {vol.shape}, label fractions {fr}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        output.to_json({"out": str(out), "shape": list(vol.shape), "fractions": fr})
    return 0
