"""Throughput of the XPS / ToF-SIMS / microstructure readers against independent readers.

For each sample file (repeated until a timing is stable) this prints the reader's rate in MB/s
next to a reference measured in the same run on the same bytes, and their ratio:

- IONTOF depth profile, peak list: pyarrow.csv (the DESIGN budget: at least its rate) and
  pandas.read_csv, both parsing the body only;
- IONTOF image exports (simulated 256 x 256 files written to a temporary folder, since no real
  sample exists): pyarrow.csv and pandas.read_csv on the space-separated pixel rows;
- VAMAS: the ``vamas`` package on the REGULAR files (it cannot read IRREGULAR ones), and
  pyarrow.csv reading the file as one text column;
- PHI .spe/.pro: no maintained MIT/BSD reader exists; numpy.frombuffer over the file is shown
  as the raw-copy bound;
- TIFF labels: tifffile.imread (the reader adds label statistics on top of it).

The readers are called directly (``module.read``), so format detection by the registry, which
runs every installed sniffer, is not part of these numbers.

Run: ``.venv/bin/python bench/bench_readers_xps_sims.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = Path(os.environ.get("PROGRAL_SAMPLES", ROOT.parent / "shared" / "samples")).resolve()

from progral_dagster.readers import (  # noqa: E402
    iontof_depth_profile,
    iontof_image,
    iontof_peak_list,
    phi,
    tiff_labels,
    vamas,
)


def rate(fn: Callable[[], object], nbytes: int, min_time: float = 0.25, repeats: int = 3) -> float:
    """Best-of-``repeats`` throughput in MB/s, each timing looping until ``min_time``."""
    fn()  # warm-up (imports, caches)
    best = 0.0
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = max(best, n * nbytes / dt / 1e6)
    return best


def header_lines(data: bytes, prefix: bytes = b"#", extra: int = 0) -> int:
    n = 0
    for line in data.split(b"\n", 64):
        if not line.startswith(prefix):
            break
        n += 1
    return n + extra


def pa_csv(data: bytes, skip: int, delim: str) -> Callable[[], object]:
    def f():
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter=delim),
        )

    return f


def pd_csv(data: bytes, skip: int, delim: str) -> Callable[[], object]:
    import pandas as pd

    def f():
        return pd.read_csv(io.BytesIO(data), sep=delim, skiprows=skip, header=None)

    return f


def pa_lines(data: bytes) -> Callable[[], object]:
    def f():
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types={"f0": pa.string()}),
        )

    return f


ROWS: list[tuple] = []


def report(fmt: str, name: str, nbytes: int, ours: float, refs: dict[str, float | None]) -> None:
    parts = []
    for ref, r in refs.items():
        parts.append(f"{ref} {r:8.1f} MB/s  ratio {ours / r:5.2f}" if r else f"{ref}: n/a")
    print(
        f"{fmt:22s} {name[:34]:34s} {nbytes / 1e3:8.1f} kB  ours {ours:8.1f} MB/s  "
        + " | ".join(parts)
    )
    ROWS.append((fmt, name, ours, refs))


def bench_depth_profiles() -> None:
    for p in sorted((SAMPLES / "sims-iontof").glob("I24*.txt")):
        data = p.read_bytes()
        skip = header_lines(data)
        ours = rate(lambda p=p: iontof_depth_profile.read(p), len(data))
        report(
            "iontof-depth-profile",
            p.name,
            len(data),
            ours,
            {
                "pyarrow.csv": rate(pa_csv(data, skip, "\t"), len(data)),
                "pandas": rate(pd_csv(data, skip, "\t"), len(data)),
            },
        )


def bench_peak_list() -> None:
    p = SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt"
    data = p.read_bytes()
    body = data.rstrip(b"\x00")
    ours = rate(lambda: iontof_peak_list.read(p), len(data))
    report(
        "iontof-peak-list",
        p.name,
        len(data),
        ours,
        {
            "pyarrow.csv": rate(pa_csv(body, 1, "\t"), len(data)),
            "pandas": rate(pd_csv(body, 1, "\t"), len(data)),
        },
    )


def bench_images(tmp: Path) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i, ion in enumerate(["total", "Li-", "NiO-", "C_2H-"], 1):
        img = rng.poisson(30, (256, 256))
        y, x = np.indices(img.shape).reshape(2, -1)
        body = "\n".join(f"{a} {b} {v}" for a, b, v in zip(x, y, img.reshape(-1), strict=True))
        p = tmp / f"bench ({i}) - {ion}.txt"
        p.write_text(
            "# IONTOF SurfaceLab image export\n# Measurement: bench\n# Ion: "
            + ion
            + "\n# Field of view: 100.0 x 100.0 um\n# Pixels: 256 x 256\nx y intensity\n"
            + body
            + "\n"
        )
        paths.append(p)
    total = sum(p.stat().st_size for p in paths)
    blobs = [p.read_bytes() for p in paths]
    skip = header_lines(blobs[0], extra=1)
    ours = rate(lambda: iontof_image.read(paths), total)

    def ref(fn_of):
        fns = [fn_of(b, skip, " ") for b in blobs]
        return rate(lambda: [f() for f in fns], total)

    report(
        "iontof-image (sim.)",
        "4 ions x 256x256",
        total,
        ours,
        {"pyarrow.csv": ref(pa_csv), "pandas": ref(pd_csv)},
    )


def bench_vamas() -> None:
    try:
        import vamas as vamas_pkg
    except ImportError:
        vamas_pkg = None
    for p in sorted((SAMPLES / "xps-vamas").glob("*.vms")):
        data = p.read_bytes()
        regular = b"\nREGULAR" in data[:2000]
        refs = {"pyarrow.csv(lines)": rate(pa_lines(data), len(data))}
        if vamas_pkg is not None and regular:
            refs["vamas pkg"] = rate(lambda p=p: vamas_pkg.Vamas(str(p)), len(data))
        else:
            refs["vamas pkg"] = None
        report("vamas", p.name, len(data), rate(lambda p=p: vamas.read(p), len(data)), refs)


def bench_phi() -> None:
    for p in sorted((SAMPLES / "xps-phi").iterdir()):
        data = p.read_bytes()
        raw = rate(lambda p=p: np.frombuffer(p.read_bytes(), np.uint8).copy(), len(data))
        report(
            "phi",
            p.name,
            len(data),
            rate(lambda p=p: phi.read(p), len(data)),
            {"raw read+copy": raw},
        )


def bench_tiff() -> None:
    import tifffile

    for p in sorted((SAMPLES / "microstructure").iterdir()):
        size = p.stat().st_size
        t_min = 0.5 if size > 1 << 20 else 0.25
        ours = rate(lambda p=p: tiff_labels.read(p), size, min_time=t_min, repeats=2)
        ref = rate(lambda p=p: tifffile.imread(p), size, min_time=t_min, repeats=2)
        report("tiff-labels", p.name, size, ours, {"tifffile.imread": ref})


def main() -> None:
    print(f"samples: {SAMPLES}   (rates: best of repeated timings, MB/s of file bytes)")
    bench_depth_profiles()
    bench_peak_list()
    with tempfile.TemporaryDirectory() as d:
        bench_images(Path(d))
    bench_vamas()
    bench_phi()
    bench_tiff()
    print("\nratio = our rate / reference rate (>= 1: the reader is at least as fast)")


if __name__ == "__main__":
    main()
