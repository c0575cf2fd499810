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
    return {"composition": run_composition}[args.what](args)
