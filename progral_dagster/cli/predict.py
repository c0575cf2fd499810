"""``progral predict composition FILE...`` (and later ``predict retention``)."""

from __future__ import annotations

from pathlib import Path

from .. import settings as settings_mod
from . import output

CLASSIFIER = "tof-sims-li-compound-classifier"


def run_composition(args) -> int:
    from ..ml.composition import predict_files
    from ..mlflow import tracking
    from ..mlflow.pyfunc_models import load_bundle

    s = settings_mod.load(args.home)
    tracking.configure(s.mlflow_tracking_uri)
    uri = args.model or f"models:/{CLASSIFIER}@champion"
    try:
        model = load_bundle(uri)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds for a missing model
        raise SystemExit(f"progral predict composition: cannot load {uri}: {exc}\n"
                         "(train first: progral train, or give --model)") from None
    missing = [p for p in args.files if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"progral predict composition: no such file: {', '.join(missing)}")
    try:
        res = predict_files(model, [Path(p) for p in args.files])
    except Exception as exc:  # noqa: BLE001 - a reader error or an unusable file: say which
        raise SystemExit(f"progral predict composition: {exc}") from None
    if args.json:
        output.to_json({"model": uri, "files": res})
        return 0
    print(f"model {uri}")
    comps = model.classes
    rows = []
    for f, r in res.items():
        rows.append([Path(f).name, r["polarity"] + (" (paired)" if r["paired"] else ""),
                     *(f"{r['probabilities'][c]:.2f}" for c in comps),
                     *(("-" if r["fractions"].get(c) is None else f"{r['fractions'][c]:.2f}") for c in comps)])
    output.table(["file", "polarity", *(f"p({c})" for c in comps), *(f"x({c})" for c in comps)], rows)
    print("p = class probability; x = molar fraction from matrix-corrected unmixing")
    return 0


def run(args) -> int:
    return {"composition": run_composition, "retention": run_retention}[args.what](args)


def run_retention(args) -> int:
    import numpy as np

    from ..assets.retention import FULL, SAMPLES_SQL, SURFACE, retention_feature_table
    from ..mlflow import registry, tracking
    from ..mlflow.pyfunc_models import load_bundle
    from ..warehouse.views import connect

    s = settings_mod.load(args.home)
    con = connect(s.lake)
    rows = con.execute(f"SELECT * FROM ({SAMPLES_SQL}) WHERE sample_id = $sid", {"sid": args.sample}).df()
    if rows.empty:
        known = [r[0] for r in con.execute(f"SELECT DISTINCT sample_id FROM ({SAMPLES_SQL}) ORDER BY 1 LIMIT 20").fetchall()]
        raise SystemExit(f"progral predict retention: no measurement of sample {args.sample!r} with storage "
                         f"conditions in {s.home}; samples: {', '.join(known) or 'none'}")
    import dagster as dg

    try:
        table, _info = retention_feature_table(con, rows)
    except dg.Failure as exc:
        raise SystemExit(f"progral predict retention: {exc.description}") from None
    cells = table[table["cell_id"].notna()]
    has_cycling = len(cells) > 0 and cells.filter(like="cyc_").notna().any(axis=None)
    name = FULL if has_cycling else SURFACE
    tracking.configure(s.mlflow_tracking_uri)
    uri = args.model or f"models:/{name}@champion"
    try:
        model = load_bundle(uri)
    except Exception as exc:  # noqa: BLE001
        raise SystemExit(f"progral predict retention: cannot load {uri}: {exc} (train first: progral train)") from None
    mv = registry.champion(name) if not args.model else None
    X = cells if has_cycling else table[table["cell_id"].isna()].head(1)
    pred = model.predict(X, alpha=args.alpha)
    out = {
        "sample_id": args.sample,
        "model_name": name,
        "model_version": str(mv.version) if mv is not None else uri,
        "uses_cycling": bool(has_cycling),
        "retention_pct": float(np.mean(pred["retention_pct"])),
        "interval": [float(np.mean(pred["lower"])), float(np.mean(pred["upper"]))],
        "confidence": 1 - args.alpha,
    }
    if has_cycling:
        out["cells"] = [{"cell_id": c, "retention_pct": float(p)} for c, p in zip(cells["cell_id"], pred["retention_pct"], strict=True)]
    if args.json:
        output.to_json(out)
        return 0
    why = "cells of this sample have cycling data" if has_cycling else "no cycling data yet: surface analysis only"
    print(f"sample {args.sample}: retention {out['retention_pct']:.1f} % "
          f"({100 * out['confidence']:.0f} % interval {out['interval'][0]:.1f} to {out['interval'][1]:.1f} %)")
    print(f"model {name} version {out['model_version']} ({why})")
    return 0
