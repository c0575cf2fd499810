"""``progral simulate ...``: write simulated instrument files (real formats) and ground truth.

The files go to ``--out`` (the share, or any folder), the ground truth to ``--truth`` (never
read by the pipeline; tests and scripts judge model outputs with it). A ``samples.csv`` sample
sheet linking files to samples is written at the top of ``--out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..simulate.sheet import write_sample_sheet

KINDS = ("spectra", "images", "cathodes")


def _spectra(out: Path, truth: Path | None, seed: int, size: str, **kw) -> list[dict]:
    from ..simulate.spectra_campaign import simulate_spectra_campaign

    return simulate_spectra_campaign(out, truth, seed, size, **kw)


def _images(out: Path, truth: Path | None, seed: int, size: str, **kw) -> list[dict]:
    from ..simulate.images_campaign import simulate_images_campaign

    return simulate_images_campaign(out, truth, seed, size)


def _cathodes(out: Path, truth: Path | None, seed: int, size: str, **kw) -> list[dict]:
    from ..simulate.cathode_campaign import simulate_cathode_campaign

    kw2 = {k: v for k, v in kw.items() if k == "binning"}
    return simulate_cathode_campaign(out, truth, seed, size, **kw2)


_PARTS = {"spectra": _spectra, "images": _images, "cathodes": _cathodes}


def simulate_campaign(share: Path, truth: Path | None, *, seed: int = 0, size: str = "small",
                      kinds: tuple[str, ...] = KINDS, mixtures: list[dict] | None = None,
                      binning: int | None = None, matrix_strength: float | None = None,
                      verbose: bool = True) -> list[dict]:
    """Write a campaign: every kind of data with its truth and one sample sheet. Each part gets
    its own seed stream (seed*100 + part index), so adding a part never changes another's files."""
    share = Path(share)
    share.mkdir(parents=True, exist_ok=True)
    if truth is not None:
        Path(truth).mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for i, kind in enumerate(KINDS):
        if kind not in kinds:
            continue
        kw = {}
        if kind == "spectra":
            if mixtures:
                kw["mixtures"] = mixtures
            if matrix_strength is not None:
                kw["matrix_strength"] = matrix_strength
        if binning is not None and kind in ("spectra", "cathodes"):
            kw["binning"] = binning
        t0 = time.perf_counter()
        part = _PARTS[kind](share, Path(truth) if truth else None, seed * 100 + i, size, **kw)
        rows.extend(part)
        if verbose:
            print(f"  {kind}: {len(part)} sheet rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    write_sample_sheet(share / "samples.csv", rows)
    return rows


def run(args) -> int:
    from ..simulate.spectra_campaign import parse_mixtures

    kinds = KINDS if args.kind == "campaign" else (
        {"xps": "cathodes", "cycling": "cathodes"}.get(args.kind, args.kind),)
    mixtures = None
    if getattr(args, "mixtures", None):
        try:
            mixtures = parse_mixtures(args.mixtures)
        except ValueError as exc:
            raise SystemExit(f"progral simulate: --mixtures: {exc}") from None
    t0 = time.perf_counter()
    rows = simulate_campaign(Path(args.out), Path(args.truth) if args.truth else None, seed=args.seed,
                             size=args.size, kinds=kinds, mixtures=mixtures, binning=args.binning,
                             matrix_strength=args.matrix_strength)
    n_files = sum(1 for _ in Path(args.out).rglob("*") if _.is_file())
    print(f"wrote {n_files} files ({len(rows)} sample-sheet rows) to {args.out} in {time.perf_counter() - t0:.1f} s"
          + (f"; truth in {args.truth}" if args.truth else ""))
    return 0
