"""Ion images from the lake's long ``tof_sims_images`` table (ion, x, y, z, intensity), as the
``iontof_image`` reader produces it, into the ``dict ion -> 2D array`` the pipeline takes.

Plain numpy scatter by (y, x) index: a pivot in pandas would copy the table several times.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ion_images_from_table(
    table: Any, shape: tuple[int, int] | None = None, dtype: Any = np.float32
) -> dict[str, np.ndarray]:
    """``{ion: (ny, nx) image}`` from a pyarrow table or pandas DataFrame with columns ion, x,
    y, intensity (2D only: rows with a non-null z are refused). ``shape`` defaults to the
    largest indices + 1. Ions keep their order of first appearance; missing pixels are 0."""
    import pandas as pd

    df = table.to_pandas() if hasattr(table, "to_pandas") else pd.DataFrame(table)
    if "z" in df and df["z"].notna().any():
        raise ValueError("3D image table: select one z layer first")
    if df.empty:
        return {}
    x = df["x"].to_numpy(np.int64)
    y = df["y"].to_numpy(np.int64)
    if shape is None:
        shape = (int(y.max()) + 1, int(x.max()) + 1)
    ny, nx = shape
    codes, ions = pd.factorize(df["ion"], sort=False)
    vals = df["intensity"].to_numpy(np.float64)
    out: dict[str, np.ndarray] = {}
    for k, ion in enumerate(ions):
        sel = codes == k
        img = np.zeros((ny, nx), dtype)
        img[y[sel], x[sel]] = vals[sel]
        out[str(ion)] = img
    return out
