"""Sample sheets written by the simulator (the columns the readers' sample-sheet parser knows)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

SHEET_COLUMNS = (
    "file",
    "sample_id",
    "project",
    "material",
    "label",
    "composition",
    "polarity",
    "spot",
    "field_of_view_um",
    "labels_for",
    "storage_atmosphere",
    "dew_point_c",
    "storage_time_h",
    "cell_id",
)


def format_composition(fractions: dict[str, float]) -> str:
    """``{"Li2CO3": 0.5, "LiOH": 0.5}`` -> ``"Li2CO3:0.5,LiOH:0.5"`` (zero fractions dropped)."""
    return ",".join(f"{k}:{v:.4g}" for k, v in fractions.items() if v > 0)


def write_sample_sheet(path: Path, rows: Iterable[dict]) -> Path:
    """Write ``samples.csv`` (``file`` relative to the sheet's folder). Extra keys become free
    columns after the standard ones; missing keys are left empty."""
    rows = list(rows)
    extra: list[str] = []
    for r in rows:
        for k in r:
            if k not in SHEET_COLUMNS and k not in extra:
                extra.append(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*SHEET_COLUMNS, *extra], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return path
