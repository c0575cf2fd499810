"""``progral segment IMAGE_DIR... --out DIR``: segment IONTOF image exports with the champion.

Each folder may hold several measurements (files grouped by measurement name). Per measurement
it writes ``<name>.tif`` (phase labels on the export's pixel grid), ``<name>.phases.json``,
``<name>.particles.csv`` and ``<name>.overlay.png``. The pixel size comes from the export header,
else from ``field_of_view_um`` in a sample sheet (``samples.csv``/``.xlsx``) or sidecar in the
folder; the material (which phases to look for) from that sheet or ``--material``.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

from .. import settings as settings_mod
from . import output

MODEL = "tof-sims-phase-segmentation"


MAX_LEVELS = 4


def _sheet_rows(folder: Path) -> list[tuple[Path, object]]:
    """(sheet folder, row) of the sample sheets and sidecars in the folder and its parents."""
    from ..readers import ReaderError
    from ..readers.sample_sheet import SHEET_NAMES, SIDECAR_SUFFIX, read_sheet

    rows = []
    d = folder.resolve()
    for _ in range(MAX_LEVELS + 1):
        try:
            entries = sorted(d.iterdir())
        except OSError:
            break
        for p in entries:
            if p.is_file() and (p.name.lower() in SHEET_NAMES or p.name.endswith(SIDECAR_SUFFIX)):
                try:
                    rows += [(d, r) for r in read_sheet(p)]
                except ReaderError as exc:
                    print(f"warning: {exc}", file=sys.stderr)
        if d.parent == d:
            break
        d = d.parent
    return rows


def _lookup(rows: list, files: list[Path], key: str):
    """A sheet value for the first row whose ``file`` (relative to its sheet) matches a file."""
    for base, r in rows:
        pat = r.values.get("file")
        if not pat or r.values.get(key) is None:
            continue
        for f in files:
            try:
                rel = f.resolve().relative_to(base).as_posix()
            except ValueError:
                continue
            if fnmatch.fnmatch(rel, pat):
                return r.values[key]
    return None


def run(args) -> int:
    from ..readers import ReaderError, read
    from ..readers.grouping import group_members

    s = settings_mod.load(args.home)
    out = Path(args.out)
    model = None
    uri = args.model or f"models:/{MODEL}@champion"
    try:
        from ..mlflow import tracking
        from ..mlflow.pyfunc_models import load_bundle

        tracking.configure(s.mlflow_tracking_uri)
        model = load_bundle(uri)
    except Exception as exc:  # noqa: BLE001 - no registry / no champion yet
        if args.model:
            raise SystemExit(f"progral segment: cannot load {uri}: {exc}") from None
        print(f"no model at {uri} ({type(exc).__name__}); fitting the unsupervised recipe per image "
              "(marker ions of the material)", file=sys.stderr)
    results = []
    for d in args.dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise SystemExit(f"progral segment: not a folder: {d}")
        rows = _sheet_rows(folder)
        groups = group_members(sorted(p.name for p in folder.iterdir() if p.is_file()))
        if not groups:
            print(f"warning: no IONTOF image exports (`<name> (<n>) - <ion>.txt`) in {folder}", file=sys.stderr)
        for _g, names in sorted(groups.items()):
            try:
                m = read([folder / n for n in names])
            except ReaderError as exc:
                print(f"skipped {names[0]}: {exc.reason}", file=sys.stderr)
                continue
            results.append(_segment_one(m, [folder / n for n in names], rows, model, args, out))
    if args.json:
        output.to_json(results)
    else:
        output.table(["measurement", "material", "pixel (um)", "phases", "particles", "written to"],
                     [[r["measurement"], r["material"], r["pixel_size_um"], r["phase_fractions"], r["n_particles"], r["labels"]]
                      for r in results], max_width=70)
    return 0 if results else 1


def _segment_one(m, names, rows, model, args, out: Path) -> dict:
    from ..ml.segmentation import (
        fit_unsupervised,
        ion_images_from_table,
        write_segmentation_outputs,
    )

    name = m.metadata.get("measurement_name") or names[0].stem
    images = ion_images_from_table(m.tables["tof_sims_images"])
    px = m.metadata.get("pixel_size_um")
    if px is None:
        fov = _lookup(rows, names, "field_of_view_um")
        px = float(fov) / next(iter(images.values())).shape[1] if fov else None
    material = args.material or _lookup(rows, names, "material")
    if model is not None:
        try:
            seg = model.segmenter_for(material)
        except KeyError as exc:
            raise SystemExit(f"progral segment: {name}: {exc.args[0]} (give --material)") from None
    else:
        if not material:
            raise SystemExit(f"progral segment: {name}: no model and no material: give --material (e.g. NMC811, Si-graphite)")
        seg = fit_unsupervised([images], material)
    res = seg.segment(images, px)
    paths = write_segmentation_outputs(res, out, name)
    return {"measurement": name, "material": material, "pixel_size_um": px, "n_particles": len(res.particles),
            "phase_fractions": {k: round(v, 3) for k, v in res.phase_fractions.items()},
            **{k: str(v) for k, v in paths.items()}}
