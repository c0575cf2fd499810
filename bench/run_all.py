"""Run every benchmark and write one report: docs/benchmarks.md (Markdown tables of the printed
results) and docs/benchmarks/*.png (plots of how costs grow with size).

    make bench                      # everything (about an hour on 2 cores)
    .venv/bin/python bench/run_all.py --quick   # smaller sizes (about 15 minutes)

Each benchmark measures its reference in the same run and prints ratios; this script only runs
them one after the other (never in parallel: they would measure each other) and collects what
they print and their JSON results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# (name, script, full args, quick args, writes JSON via --json)
BENCHES = [
    ("Readers: IONTOF spectrum, sensor tick, ingestion", "bench_ingest.py", [], ["--quick"], True),
    ("Readers: depth profiles, peak lists, images, VAMAS, PHI, TIFF", "bench_readers_xps_sims.py", [], [], False),
    ("Readers: cyclers", "bench_readers_cyclers.py", [], ["--mb", "5", "--repeat", "2"], False),
    ("Query latency on a large lake, before and after compaction", "bench_query.py", [], ["--spectra", "10000"], True),
    ("Simulator: campaigns", "bench_campaign.py", [], ["--size", "small"], True),
    ("Classifier throughput", "bench_classifier.py", [], ["--quick"], True),
    ("Retention features and models", "bench_retention.py", [], ["--quick"], True),
    ("Segmentation throughput and memory", "bench_segmentation.py", [], ["--size", "1024"], True),
    ("SliceGAN generation", "bench_slicegan_generation.py", [], ["--sizes", "64,128"], True),
    ("Service memory at rest", "bench_service.py", [], ["--settle", "45"], True),
]


def run(script: str, args: list[str], want_json: bool, timeout: int) -> tuple[str, dict | list | None, float, int]:
    out_json = Path(tempfile.mkstemp(suffix=".json")[1]) if want_json else None
    cmd = [sys.executable, str(ROOT / "bench" / script), *args]
    if out_json:
        cmd += ["--json", str(out_json)]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        text, rc = p.stdout + (("\n" + p.stderr[-2000:]) if p.returncode else ""), p.returncode
    except subprocess.TimeoutExpired as exc:
        text, rc = (exc.stdout or "") if isinstance(exc.stdout, str) else "", -1
        text += f"\n(timed out after {timeout} s)"
    data = None
    if out_json and out_json.exists() and out_json.stat().st_size:
        try:
            data = json.loads(out_json.read_text())
        except json.JSONDecodeError:
            data = None
    return text.strip(), data, time.perf_counter() - t, rc


def plots(results: dict, folder: Path) -> list[str]:
    """Cost-versus-size plots from the JSON results that have a size axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    ing = results.get("bench_ingest.py")
    if isinstance(ing, dict) and ing.get("tick"):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        n = [r["files"] for r in ing["tick"]]
        ax.loglog(n, [r["first_tick_s"] for r in ing["tick"]], "o-", label="first tick (all new)")
        ax.loglog(n, [r["steady_tick_s"] for r in ing["tick"]], "s-", label="steady tick")
        ax.axhline(2.0, color="grey", ls=":", label="budget 2 s")
        ax.set_xlabel("files on the share")
        ax.set_ylabel("sensor tick (s)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "sensor_tick.png", dpi=90)
        made.append("sensor_tick.png")
    if isinstance(ing, dict) and ing.get("reader"):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        mb = [r["file_mb"] for r in ing["reader"]]
        for k, lab in (("ours_mb_s", "IONTOF reader"), ("pyarrow_mb_s", "pyarrow.csv"), ("pandas_mb_s", "pandas")):
            ax.semilogx(mb, [r[k] for r in ing["reader"]], "o-", label=lab)
        ax.set_xlabel("file size (MB)")
        ax.set_ylabel("MB/s")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "reader_throughput.png", dpi=90)
        made.append("reader_throughput.png")
    q = results.get("bench_query.py")
    if isinstance(q, dict) and q.get("before"):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        names = list(q["before"])
        y = range(len(names))
        ax.barh([i + 0.2 for i in y], [q["before"][k] for k in names], height=0.4, label="before compaction")
        ax.barh([i - 0.2 for i in y], [q["after"][k] for k in names], height=0.4, label="after compaction")
        ax.set_yticks(list(y), names, fontsize=7)
        ax.set_xlabel(f"seconds ({q['spectra']} spectra, {q['rows'] / 1e6:.0f} M rows)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "query_latency.png", dpi=90)
        made.append("query_latency.png")
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--only", default="", help="run only benchmarks whose script name contains this")
    ap.add_argument("--timeout", type=int, default=3600, help="per benchmark, seconds")
    ap.add_argument("--out", default=str(DOCS / "benchmarks.md"))
    a = ap.parse_args()
    sections, results = [], {}
    for title, script, full, quick, js in BENCHES:
        if a.only and a.only not in script:
            continue
        print(f"running {script} ...", flush=True)
        text, data, secs, rc = run(script, quick if a.quick else full, js, a.timeout)
        results[script] = data
        status = "" if rc == 0 else f" **(exit code {rc})**"
        sections.append(f"## {title}\n\n`{script} {' '.join(quick if a.quick else full)}`, {secs:.0f} s{status}\n\n"
                        f"```\n{text}\n```\n")
    made = plots(results, DOCS / "benchmarks")
    head = (f"# Benchmark report\n\nGenerated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by "
            f"`{'.venv/bin/python bench/run_all.py' + (' --quick' if a.quick else '')}` (`make bench`) on "
            f"{platform.node() or 'this machine'} ({platform.machine()}, Python {platform.python_version()}). "
            "Every number comes from this run; ratios compare against a reference measured in the same "
            "run (> 1: faster than the reference). The machine has 2 cores; other work on it shifts "
            "absolute numbers, ratios less.\n\n")
    figs = "".join(f"![{m}](benchmarks/{m})\n" for m in made)
    Path(a.out).write_text(head + (figs + "\n" if figs else "") + "\n".join(sections))
    (DOCS / "benchmarks").mkdir(parents=True, exist_ok=True)
    (DOCS / "benchmarks" / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
