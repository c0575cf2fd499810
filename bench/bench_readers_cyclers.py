"""Throughput and memory of the cycler readers, next to reference parsers on the same bytes.

For each text format the real sample and a copy grown to about ``--mb`` MB (its data rows
repeated) are read by the reader, by ``pyarrow.csv.read_csv`` (all columns, same delimiter and
decimal mark) and by ``pandas.read_csv`` on the same body; MB/s and the ratios are printed.
Binary formats: Neware next to NewareNDA itself; BioLogic .mpr (no maintained MIT-compatible
reader to compare with: galvani, GPL-3, is timed only if installed); Arbin .xlsx next to
``pandas.read_excel``. Memory: peak allocations while reading (Python/numpy via tracemalloc plus
the pyarrow pool), measured in a fresh process, divided by the size of the decoded tables.

    .venv/bin/python bench/bench_readers_cyclers.py [--mb 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import SAMPLES  # noqa: E402

BIO = SAMPLES / "cycler-biologic"
OTHER = SAMPLES / "cycler-other"

# name, file, reader module, delimiter, decimal comma, title line index (0-based) or None
TEXT = [
    ("biologic-mpt", BIO / "gcpl.issue_149.mpt", "biologic_mpt", "\t", True),
    ("biologic-mpt", BIO / "ocv.mpt", "biologic_mpt", "\t", False),
    ("biologic-mpt", BIO / "cp.mpt", "biologic_mpt", "\t", False),
    ("maccor-text", OTHER / "maccor_test_file_4267-66-6519.041", "maccor", "\t", False),
    ("maccor-text", OTHER / "maccor_two.txt", "maccor", "\t", True),
    ("arbin-csv", OTHER / "FastCharge_000025_CH8.csv", "arbin", ",", False),
    ("pec-csv", OTHER / "Test25195.csv", "pec", ",", False),
]
BINARY = [
    ("neware-nda", OTHER / "new_nda_file.nda", "neware"),
    ("neware-ndax", OTHER / "test.ndax", "neware"),
    ("biologic-mpr", BIO / "lsv.mpr", "biologic_mpr"),
    ("arbin-xlsx", OTHER / "bs542_004_gr_li_50ua_50mv_1v_191020_Channel_11.xlsx", "arbin"),
]


def reader(mod: str):
    import importlib

    return importlib.import_module(f"progral_dagster.readers.{mod}")


def split_header(path: Path, mod: str) -> tuple[bytes, bytes, int]:
    """(header incl. title line, body rows, number of fields per row) as the format defines."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if mod == "biologic_mpt":
        nb = int(lines[1].split(b":")[1])
        k = nb - 1
    elif mod == "maccor":
        k = next(i for i, ln in enumerate(lines) if ln.startswith((b"Rec#\t", b"Rec\t")))
    elif mod == "pec":
        k = next(i for i, ln in enumerate(lines) if ln.startswith(b"Test,Cell,"))
    else:
        k = 0
    head = b"\n".join(lines[: k + 1]) + b"\n"
    rows = [ln for ln in lines[k + 1 :] if ln.strip()]
    sep = b"\t" if b"\t" in rows[0] else b","
    n = rows[0].count(sep) + 1
    rows = [r for r in rows if r.count(sep) + 1 >= n]  # drop a partial last record
    return head, b"\n".join(rows) + b"\n", n


def grow(path: Path, mod: str, mb: float, out: Path) -> Path:
    head, body, _ = split_header(path, mod)
    reps = max(1, int(mb * 1e6 / max(len(body), 1)))
    target = out / f"grown_{path.name}"
    with open(target, "wb") as fh:
        fh.write(head)
        for _ in range(reps):
            fh.write(body)
    return target


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_interleaved(fns, repeat: int) -> list[float]:
    """Fastest of ``repeat`` runs of each function, taking turns so that a busy moment of a
    shared machine falls on all of them alike."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [min(t) for t in times]


def pyarrow_parse(body: bytes, sep: str, comma: bool, n: int):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        pa.BufferReader(body),
        read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(n)]),
        parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=False),
        convert_options=pacsv.ConvertOptions(decimal_point="," if comma else "."),
    )


def pandas_parse(body: bytes, sep: str, comma: bool, n: int):
    import pandas as pd

    return pd.read_csv(
        io.BytesIO(body),
        sep=sep,
        header=None,
        names=list(range(n)),
        decimal="," if comma else ".",
        engine="c",
    )


def memory_child(path: str, mod: str, warm: str) -> None:
    """Run in a fresh process: peak allocations of one read, and the decoded size. A first
    read of the small sample ``warm`` loads modules and caches, which are not the reader's
    working memory; the pyarrow pool's peak is taken relative to what it held before."""
    import tracemalloc

    import pyarrow as pa

    r = reader(mod)
    r.read(warm)
    pool = pa.default_memory_pool()
    before = pool.bytes_allocated()
    tracemalloc.start()
    m = r.read(path)
    _, peak_py = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_arrow = pool.max_memory() - before
    decoded = sum(t.nbytes for t in m.tables.values())
    print(json.dumps({"peak": peak_py + peak_arrow, "decoded": decoded}))


def memory(path: Path, mod: str, warm: Path) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(path), mod, str(warm)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    d = json.loads(out.strip().splitlines()[-1])
    return d["peak"] / max(d["decoded"], 1), d["decoded"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=20.0, help="size of the grown copies in MB")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="", help="run only formats containing this text")
    ap.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    print(
        f"{'format':14} {'file':44} {'MB':>7} {'reader':>8} {'pyarrow':>8} {'pandas':>8} {'r/pa':>6} {'r/pd':>6} {'mem/x':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, path, mod, sep, comma in TEXT:
            if args.only not in fmt:
                continue
            r = reader(mod)
            r.read(path)  # warm imports
            for p in (path, grow(path, mod, args.mb, Path(tmp))):
                size = p.stat().st_size / 1e6
                _, body, n = split_header(p, mod)
                t_r, t_pa, t_pd = best_interleaved(
                    [
                        lambda p=p, r=r: r.read(p),
                        lambda b=body, s=sep, c=comma, k=n: pyarrow_parse(b, s, c, k),
                        lambda b=body, s=sep, c=comma, k=n: pandas_parse(b, s, c, k),
                    ],
                    args.repeat,
                )
                mem, _ = memory(p, mod, path)
                reps = round(len(body) / max(len(split_header(path, mod)[1]), 1))
                label = p.name if p == path else f"{path.name} x{reps}"
                print(
                    f"{fmt:14} {label[:44]:44} {size:7.2f} {size / t_r:8.1f} {len(body) / 1e6 / t_pa:8.1f} "
                    f"{len(body) / 1e6 / t_pd:8.1f} {t_pa / t_r:6.2f} {t_pd / t_r:6.2f} {mem:6.2f}"
                )
        print()
        print(
            f"{'format':14} {'file':44} {'MB':>7} {'reader':>8} {'library':>8} {'r/lib':>6} {'mem/x':>6}  library"
        )
        for fmt, path, mod in BINARY:
            if args.only not in fmt:
                continue
            r = reader(mod)
            r.read(path)
            size = path.stat().st_size / 1e6
            t_r = best(lambda p=path, r=r: r.read(p), args.repeat)
            lib, t_l = None, None
            if mod == "neware":
                import NewareNDA

                lib = "NewareNDA.read"
                t_l = best(lambda p=path: NewareNDA.read(str(p), log_level="ERROR"), args.repeat)
            elif mod == "arbin":
                import pandas as pd

                lib = "pandas.read_excel"
                t_l = best(lambda p=path: pd.read_excel(p, sheet_name=None), args.repeat)
            elif mod == "biologic_mpr":
                try:
                    import galvani

                    lib = "galvani (GPL-3)"
                    t_l = best(lambda p=path: galvani.BioLogic.MPRfile(str(p)), args.repeat)
                except ImportError:
                    lib = "none (galvani absent)"
            mem, _ = memory(path, mod, path)
            lib_rate = f"{size / t_l:8.1f}" if t_l else f"{'-':>8}"
            ratio = f"{t_l / t_r:6.2f}" if t_l else f"{'-':>6}"
            print(
                f"{fmt:14} {path.name[:44]:44} {size:7.2f} {size / t_r:8.1f} {lib_rate} {ratio} {mem:6.2f}  {lib}"
            )
    print(
        "\nr/pa, r/pd, r/lib: reader speed over the reference's (>= 1 means the reader is at least as fast)."
    )
    print("mem/x: peak allocations while reading / decoded table bytes (target <= 3).")


if __name__ == "__main__":
    main()
