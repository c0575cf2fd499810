"""``progral train [ASSET...]``: materialise feature, model and promotion assets in this process."""

from __future__ import annotations

import sys

from .. import settings as settings_mod

NOT_TRAINING_GROUPS = ("ingestion", "maintenance")


def trainable_keys(defs) -> list[str]:
    out = []
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        node = defs.resolve_asset_graph().get(key)
        if node.group_name not in NOT_TRAINING_GROUPS:
            out.append(key.to_user_string())
    return sorted(out)


def run(args) -> int:
    import dagster as dg

    from ..definitions import defs
    from .instance import materialize

    s = settings_mod.load(args.home)
    available = trainable_keys(defs)
    if args.list:
        print("\n".join(available))
        return 0
    wanted = args.assets or available
    unknown = [a for a in wanted if a not in available]
    if unknown:
        raise SystemExit(f"progral train: unknown asset(s) {unknown}; `progral train --list` shows them")
    from ..definitions import assets_and_checks

    all_assets = assets_and_checks()
    sel = dg.AssetSelection.assets(*wanted)
    if args.with_upstream:
        sel = sel.upstream() - dg.AssetSelection.groups(*NOT_TRAINING_GROUPS)
    print(f"materialising {len(wanted)} asset(s) in {s.home} ...", file=sys.stderr)
    res = materialize(s, all_assets, selection=sel, raise_on_error=False, quiet=not args.verbose)
    failed = [ev.step_key for ev in res.all_events if ev.is_step_failure]
    skipped = sorted({ev.step_key for ev in res.all_events if ev.event_type_value == "STEP_SKIPPED"})
    checks = [e.event_specific_data for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    for mat in res.get_asset_materialization_events():
        m = mat.event_specific_data.materialization
        md = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
        brief = {k: md[k] for k in ("accuracy", "macro_f1", "log_loss", "r2", "rmse", "promoted", "reason",
                                    "model_version", "champion_version", "predictions") if k in md}
        print(f"  {m.asset_key.to_user_string()}: {brief}")
    for c in checks:
        print(f"  check {c.asset_key.to_user_string()}:{c.check_name}: {'passed' if c.passed else 'FAILED'}")
    if skipped:
        print(f"  skipped (no data for them yet): {', '.join(skipped)}")
    for f in failed:
        print(f"  FAILED: {f}", file=sys.stderr)
    return 1 if failed or not res.success else 0
