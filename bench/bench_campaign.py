"""Time of a whole simulated campaign (`progral simulate campaign`): small (target < 60 s on
2 cores) and full, with the time of each part and the data written.

    .venv/bin/python bench/bench_campaign.py [--size small|full|both] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bench(size: str, seed: int = 1) -> dict:
    from progral_dagster.cli.simulate import _PARTS, KINDS
    from progral_dagster.simulate.sheet import write_sample_sheet

    tmp = Path(tempfile.mkdtemp(prefix="bench_campaign_"))
    parts, rows = {}, []
    try:
        t0 = time.perf_counter()
        for i, kind in enumerate(KINDS):
            t = time.perf_counter()
            rows += _PARTS[kind](tmp / "share", tmp / "truth", seed * 100 + i, size)
            parts[kind] = time.perf_counter() - t
        write_sample_sheet(tmp / "share" / "samples.csv", rows)
        total = time.perf_counter() - t0
        files = [p for p in (tmp / "share").rglob("*") if p.is_file()]
        mb = sum(p.stat().st_size for p in files) / 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"size": size, "seconds": total, "parts_s": parts, "files": len(files), "mb": mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=["small", "full", "both"], default="both")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    sizes = ["small", "full"] if a.size == "both" else [a.size]
    res = [bench(s) for s in sizes]
    for r in res:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in r["parts_s"].items())
        target = " (target < 60 s)" if r["size"] == "small" else ""
        print(f"campaign {r['size']}: {r['seconds']:.1f} s{target}; {r['files']} files, {r['mb']:.0f} MB; {parts}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
