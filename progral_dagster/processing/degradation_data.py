"""Fragment areas for the degradation PCA: unit-mass binned counts (m/z 1-200) of every ToF-SIMS
spectrum with a project, grouped as ``<project> (<polarity>)`` (positive and negative spectra are
never mixed in one PCA). Unit-mass bins need no interval list, so the PCA works for any
chemistry; the loadings name nominal masses (``m60`` = CO3- in negative spectra)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pyarrow as pa

from .peaks import unit_mass_table

CHUNK = 500


def project_unit_mass_areas(info: pd.DataFrame, read_spectra: Callable[[list[str]], pa.Table], *,
                            mz_range: tuple[int, int] = (1, 200)) -> tuple[pd.DataFrame, pd.Series]:
    pol = info["sheet_polarity"].where(info["sheet_polarity"].notna(), info["name_polarity"])
    sel = info[info["project"].notna() & pol.notna()]
    if sel.empty:
        return pd.DataFrame(), pd.Series(dtype=str)
    parts = []
    ids = list(sel["measurement_id"])
    for i in range(0, len(ids), CHUNK):
        parts.append(unit_mass_table(read_spectra(ids[i : i + CHUNK]), mz_min=mz_range[0], mz_max=mz_range[1]))
    areas = pd.concat(parts)
    groups = (sel["project"].astype(str) + " (" + pol.loc[sel.index].astype(str) + ")")
    groups.index = sel["measurement_id"]
    return areas, groups.reindex(areas.index)
