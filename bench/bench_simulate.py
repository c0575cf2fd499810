"""Time the simulator's ToF-SIMS spectra part (small / full campaign).

Prints wall time, spectra per second and MB written per second for each size, and the
spectrum writer against ``numpy.savetxt`` writing the same three columns (the reference, measured
in the same run). Budget: small under ~15 s, full under ~2 min on the 2-core machine.

    .venv/bin/python bench/bench_simulate.py [--size small|full|both] [--binning 20]
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_spectra(size: str, binning: int, seed: int = 1) -> dict:
    from progral_dagster.simulate.spectra_campaign import simulate_spectra_campaign

    tmp = Path(tempfile.mkdtemp(prefix="bench_spectra_"))
    try:
        t0 = time.perf_counter()
        rows = simulate_spectra_campaign(tmp / "share", tmp / "truth", seed, size, binning=binning)
        dt = time.perf_counter() - t0
        n = sum("/peak-lists/" not in r["file"] for r in rows)
        mb = _dir_size(tmp) / 1e6
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "size": size,
        "binning": binning,
        "seconds": dt,
        "spectra": n,
        "files": len(rows),
        "mb": mb,
    }


def bench_writer(binning: int, repeat: int = 5) -> dict:
    from progral_dagster.simulate.iontof_writer import format_spectrum_export
    from progral_dagster.simulate.li_compounds import compound_ion_yields
    from progral_dagster.simulate.tof_spectra import simulate_spectrum

    rng = np.random.default_rng(0)
    spec = simulate_spectrum(
        compound_ion_yields({"LiOH": 1.0}, "positive"), "positive", rng, binning=binning
    )
    t_sim = time.perf_counter()
    for _ in range(repeat):
        simulate_spectrum(
            compound_ion_yields({"LiOH": 1.0}, "positive"), "positive", rng, binning=binning
        )
    t_sim = (time.perf_counter() - t_sim) / repeat
    format_spectrum_export(spec)
    t0 = time.perf_counter()
    for _ in range(repeat):
        ours = format_spectrum_export(spec)
    t_ours = (time.perf_counter() - t0) / repeat
    data = np.column_stack([spec.channel, spec.mz, np.rint(spec.corrected_counts())])
    t0 = time.perf_counter()
    for _ in range(repeat):
        buf = io.BytesIO()
        np.savetxt(buf, data, fmt=("%d", "%.6f", "%d"), delimiter="\t", newline="\r\n")
    t_ref = (time.perf_counter() - t0) / repeat
    return {"simulate_s": t_sim, "format_s": t_ours, "savetxt_s": t_ref, "bytes": len(ours)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("small", "full", "both"), default="both")
    ap.add_argument("--binning", type=int, default=20)
    args = ap.parse_args(argv)
    w = bench_writer(args.binning)
    print(
        f"one spectrum (binning {args.binning}, {w['bytes'] / 1e6:.2f} MB): simulate "
        f"{w['simulate_s'] * 1e3:.0f} ms, format {w['format_s'] * 1e3:.0f} ms, numpy.savetxt "
        f"{w['savetxt_s'] * 1e3:.0f} ms (ratio savetxt/ours {w['savetxt_s'] / w['format_s']:.2f})"
    )
    sizes = ("small", "full") if args.size == "both" else (args.size,)
    for size in sizes:
        r = bench_spectra(size, args.binning)
        budget = 15.0 if size == "small" else 120.0
        print(
            f"spectra part {size:5s}: {r['seconds']:6.1f} s for {r['spectra']} spectra "
            f"({r['files']} files, {r['mb']:.0f} MB): {r['spectra'] / r['seconds']:.1f} spectra/s, "
            f"{r['mb'] / r['seconds']:.1f} MB/s; budget {budget:.0f} s "
            f"({'ok' if r['seconds'] <= budget else 'OVER'})"
        )


if __name__ == "__main__":
    main()
