"""XPS backgrounds, cycling features and the retention training, timed.

    .venv/bin/python bench/bench_retention.py [--quick] [--json OUT]

References measured in the same run:

- backgrounds: lmfitxps (``shirley_calculate``, ``tougaard_calculate``, pure-Python loops) on
  the real Pt 4f spectrum of shared/samples (281 points) and on a 1,100-point survey; ratio =
  lmfitxps time / ours (same iteration count for Shirley; Tougaard: lmfitxps iterates its B to
  the end level, ours solves it in closed form);
- per-cycle features: a plain ``groupby(...).apply`` over the cycles (what the vectorised
  version replaces) on a 50-cycle simulated cell;
- training: both variants on the ``small`` simulated campaign (absolute seconds; the full
  campaign's time is reported by tests/test_retention_quality.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from progral_dagster.processing.cycling import per_cycle  # noqa: E402
from progral_dagster.processing.xps import shirley_background, tougaard_background  # noqa: E402
from progral_dagster.simulate import cathode_campaign as cc  # noqa: E402
from progral_dagster.simulate.xps_physics import SURVEY, simulate_xps  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "samples"


def _best(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            func()
        times.append(time.perf_counter() - t)
    return min(times)


def _spectra() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    try:
        from progral_dagster.readers import vamas

        t = vamas.read(SAMPLES / "xps-vamas" / "Pt4f.vms").tables["xps_spectra"].to_pandas()
        out["Pt4f.vms (281 pts)"] = (t["binding_energy_ev"].to_numpy(), t["intensity"].to_numpy())
    except Exception as exc:  # noqa: BLE001 - the bench runs without the reader too
        print(f"Pt4f.vms skipped: {exc}")
    sim = simulate_xps({"adventitious": 0.3, "LiNiO2": 0.3}, np.random.default_rng(0))
    b = next(b for b in sim.blocks if b.region == SURVEY)
    out["survey (1101 pts)"] = (b.binding_energy_ev[::-1], b.counts[::-1])
    return out


def bench_backgrounds(quick: bool) -> list[dict]:
    from lmfitxps.backgrounds import shirley_calculate, tougaard_calculate

    rows = []
    for name, (be, y) in _spectra().items():
        if quick and "survey" in name:
            continue
        o = np.argsort(be)[::-1]
        be, y = be[o], y[o]
        r = 1 if "survey" in name else 3
        t_ref = _best(lambda be=be, y=y: shirley_calculate(be, y, tol=0.0, maxit=10), r)
        t_our = _best(lambda be=be, y=y: shirley_background(be, y, tol=0.0, max_iter=10), r)
        rows.append({"what": f"Shirley, 10 iterations, {name}", "ours_s": t_our, "ref_s": t_ref})
        t_ref = _best(lambda be=be, y=y: tougaard_calculate(be, y, 2866, 1643, 1, 0, 200), 1)
        t_our = _best(lambda be=be, y=y: tougaard_background(be, y), r)
        rows.append({"what": f"Tougaard, universal, {name}", "ours_s": t_our, "ref_s": t_ref})
    return rows


def bench_cycling() -> list[dict]:
    from progral_dagster.simulate.biologic_writer import GcplSettings, write_gcpl_mpt
    from tests.test_cycling_features import _as_cycling_table, parse_mpt_minimal

    rng = np.random.default_rng(0)
    surf = cc.storage_surface(cc.ATMOSPHERES[3], 5.0, 50.0, rng)
    trace, _, cur = cc.simulate_cell(surf, rng, n_cycles=50, points=16)
    with tempfile.TemporaryDirectory() as d:
        table = _as_cycling_table(
            parse_mpt_minimal(write_gcpl_mpt(Path(d) / "c.mpt", trace, GcplSettings(cur)))
        )

    def naive() -> pd.DataFrame:
        return table.groupby("cycle").apply(
            lambda g: pd.Series(
                {
                    "q_ch": g["charge_capacity_ah"].max(),
                    "q_dis": g["discharge_capacity_ah"].max(),
                    "v_ch": np.trapezoid(
                        g.loc[g.step_type == "charge", "voltage_v"],
                        g.loc[g.step_type == "charge", "charge_capacity_ah"],
                    ),
                }
            ),
            include_groups=False,
        )

    return [
        {
            "what": f"per-cycle features, 50 cycles ({len(table)} rows)",
            "ours_s": _best(lambda: per_cycle(table), 5),
            "ref_s": _best(naive, 5),
        }
    ]


def bench_training() -> list[dict]:
    from progral_dagster.ml.retention import build_feature_table, train_retention
    from progral_dagster.processing.cycling import cycling_feature_table
    from progral_dagster.processing.xps import xps_feature_table
    from progral_dagster.readers import registry

    with tempfile.TemporaryDirectory() as d:
        rows = cc.simulate_cathode_campaign(Path(d), None, 1, "small")
        xps, cyc = [], []
        for r in rows:
            if r["file"].endswith((".vms", ".mpt")):
                m = registry.read(Path(d) / r["file"])
                for name, t in m.tables.items():
                    (xps if name == "xps_spectra" else cyc).append(
                        t.to_pandas().assign(measurement_id=r["file"])
                    )
    samples = pd.DataFrame(rows).assign(measurement_id=lambda x: x["file"])
    table = build_feature_table(
        samples,
        xps=xps_feature_table(pd.concat(xps)),
        cycling=cycling_feature_table(pd.concat(cyc), target_cycle=cc.SIZES["small"][3]),
    )
    out = []
    for variant in ("capacity-retention-regressor", "capacity-retention-surface-only"):
        t = time.perf_counter()
        train_retention(table, variant=variant, n_outer=3, n_inner=2)
        out.append({"what": f"train {variant}, small campaign", "ours_s": time.perf_counter() - t})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = bench_backgrounds(a.quick) + bench_cycling()
    if not a.quick:
        rows += bench_training()
    for r in rows:
        ratio = (
            f"  x{r['ref_s'] / r['ours_s']:.1f} faster than the reference" if "ref_s" in r else ""
        )
        ref = f"  ref {r['ref_s'] * 1e3:9.2f} ms" if "ref_s" in r else ""
        print(f"{r['what']:<60} ours {r['ours_s'] * 1e3:9.2f} ms{ref}{ratio}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
