"""Peak areas of ToF-SIMS spectra from a mass interval list, and unit-mass binning.

Follows SurfaceLab's notion of a peak ("mass interval"): the area of a peak is the signal inside
``[lower_mass_u, upper_mass_u]`` of the lab's exported mass interval list (table
``tof_sims_peak_lists``), or of a list generated here from the characteristic ions
(:func:`default_intervals`, SCIENCE.md "ToF-SIMS processing": integrate inside each window by the
trapezoid rule, or bin to unit mass for very large data).

Integration. The spectrum is taken as piecewise linear between its points; the area between two
masses is the exact integral of that interpolant (trapezoid rule, with the end points inside the
first and last channel interpolated). The integration variable is the channel (bin) index by
default, so an area is in counts and comparable with SurfaceLab's ``Area`` column (the export's
intensity is counts per bin); ``variable="mz"`` integrates over m/z instead, which weights every
peak by the local channel width (growing as sqrt(m)).

Speed. Everything is vectorised over spectra and peaks at once: one cumulative trapezoid sum over
all spectra, one ``np.searchsorted`` for every window edge of every spectrum (spectra of different
mass axes are located with a composite key spectrum_index * K + m/z), no Python loop per peak or
per spectrum; work is chunked so memory stays bounded for 100,000 spectra.

Why no library: ``scipy.integrate.cumulative_trapezoid`` gives the cumulative sum but not the
fractional window edges or ragged spectra; pySPM integrates peaks of IONTOF raw files one at a
time. The kernel here is ~40 lines of numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .ion_masses import CHARACTERISTIC_IONS, CONTAMINANT, ion_mass, ion_polarity

INTERVAL_COLUMNS = ("assignment", "polarity", "center_mass_u", "lower_mass_u", "upper_mass_u")

# Chunking: at most this many (spectrum x window-edge) or (spectrum x channel) values at a time.
_CHUNK_VALUES = 4_000_000


# ---------------------------------------------------------------------------------------------
# interval lists
# ---------------------------------------------------------------------------------------------
def interval_table(
    assignment: Sequence[str],
    lower_mass_u: Sequence[float],
    upper_mass_u: Sequence[float],
    center_mass_u: Sequence[float] | None = None,
    polarity: Sequence[str | None] | str | None = None,
) -> pd.DataFrame:
    """A mass interval list as a DataFrame with :data:`INTERVAL_COLUMNS`.

    Raises
    ------
    ValueError
        lower >= upper for some window, a NaN bound, or duplicate assignments.
    """
    lo = np.asarray(lower_mass_u, dtype=float)
    hi = np.asarray(upper_mass_u, dtype=float)
    ce = (lo + hi) / 2 if center_mass_u is None else np.asarray(center_mass_u, dtype=float)
    names = [str(a) for a in assignment]
    if not (len(names) == lo.size == hi.size == ce.size):
        raise ValueError("assignment, lower, upper and center must have the same length")
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("mass interval with a NaN bound")
    bad = np.flatnonzero(lo >= hi)
    if bad.size:
        raise ValueError(f"mass interval {names[bad[0]]!r}: lower bound not below upper bound")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate assignments in mass interval list: {dup[:5]}")
    pol = polarity if not isinstance(polarity, str) and polarity is not None else None
    pols = list(pol) if pol is not None else [polarity] * len(names)
    return pd.DataFrame(
        {
            "assignment": names,
            "polarity": pd.Series(pols, dtype="object"),
            "center_mass_u": ce,
            "lower_mass_u": lo,
            "upper_mass_u": hi,
        }
    )


def intervals_from_peak_list(peak_list: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Mass intervals from an IONTOF peak list (table ``tof_sims_peak_lists``).

    The ``total`` row and rows without finite bounds are dropped; unnamed peaks (assignment
    empty or ``(null)``) are named by their centre mass; duplicate names get a ``#2``... suffix.
    Polarity is taken from the assignment's charge sign where it parses.
    """
    df = peak_list.to_pandas() if isinstance(peak_list, pa.Table) else peak_list.copy()
    lo = pd.to_numeric(df["lower_mass_u"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(df["upper_mass_u"], errors="coerce").to_numpy(float)
    keep = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    if "description" in df:
        keep &= df["description"].astype(str).str.lower().ne("total").to_numpy()
    df = df.loc[keep]
    lo, hi = lo[keep], hi[keep]
    ce = pd.to_numeric(df["center_mass_u"], errors="coerce").to_numpy(float)
    ce = np.where(np.isfinite(ce), ce, (lo + hi) / 2)
    names: list[str] = []
    seen: dict[str, int] = {}
    pols: list[str | None] = []
    for a, c in zip(df["assignment"].tolist(), ce, strict=True):
        a = "" if a is None else str(a).strip()
        if a in ("", "(null)", "nan"):
            a = f"m{c:.4f}"
        try:
            pols.append(ion_polarity(a))
        except ValueError:
            pols.append(None)
        n = seen.get(a, 0) + 1
        seen[a] = n
        names.append(a if n == 1 else f"{a}#{n}")
    return interval_table(names, lo, hi, ce, pols)


def default_intervals(
    polarity: str | None = None,
    *,
    ions: Iterable[str] | None = None,
    resolving_power: float = 4000.0,
    below_fwhm: float = 1.0,
    above_fwhm: float = 1.5,
    min_half_width_u: float = 0.004,
    contaminants: bool = False,
) -> pd.DataFrame:
    """A mass interval list generated from the characteristic-ion table.

    Each window spans ``below_fwhm`` peak widths below and ``above_fwhm`` above the ion's exact
    mass (ToF peaks tail to high mass), where the width is ``m / resolving_power`` (at least
    ``min_half_width_u``); neighbouring windows that would overlap are cut at the midpoint
    between the two ions, so no count is assigned to two peaks.

    Parameters
    ----------
    polarity : ``"positive"``, ``"negative"`` or None for both (each polarity cut separately).
    ions : ion formulas; default the keys of
        :data:`~progral_dagster.processing.ion_masses.CHARACTERISTIC_IONS`.
    contaminants : keep the windows of the table's contamination ions (they always bound their
        neighbours' windows; as features they mostly add sample-to-sample noise).
    """
    names = list(CHARACTERISTIC_IONS) if ions is None else list(ions)
    drop = set()
    if ions is None and not contaminants:
        drop = {k for k, v in CHARACTERISTIC_IONS.items() if v == (CONTAMINANT,)}
    rows = []
    for pol in ("positive", "negative"):
        if polarity is not None and pol != polarity:
            continue
        sel = [(n, ion_mass(n)) for n in names if ion_polarity(n) == pol]
        sel.sort(key=lambda r: r[1])
        if not sel:
            continue
        m = np.array([r[1] for r in sel])
        fwhm = np.maximum(m / resolving_power, min_half_width_u)
        lo = m - below_fwhm * fwhm
        hi = m + above_fwhm * fwhm
        mid = (m[1:] + m[:-1]) / 2
        hi[:-1] = np.minimum(hi[:-1], mid)
        lo[1:] = np.maximum(lo[1:], mid)
        for (n, c), a, b in zip(sel, lo, hi, strict=True):
            if n not in drop:
                rows.append((n, pol, c, a, b))
    df = pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))
    return interval_table(
        df["assignment"],
        df["lower_mass_u"],
        df["upper_mass_u"],
        df["center_mass_u"],
        df["polarity"],
    )


# ---------------------------------------------------------------------------------------------
# integration kernel
# ---------------------------------------------------------------------------------------------
def _check_sorted(x: np.ndarray, offsets: np.ndarray) -> None:
    bad = np.flatnonzero(x[1:] < x[:-1])
    if bad.size:
        bad = np.setdiff1d(bad, offsets[1:-1] - 1)
        if bad.size:
            raise ValueError("m/z must be non-decreasing within each spectrum")


def integrate_windows(
    mz: np.ndarray,
    intensity: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    offsets: np.ndarray | None = None,
    variable: str = "channel",
) -> np.ndarray:
    """Trapezoid areas of many spectra inside many m/z windows.

    Parameters
    ----------
    mz : m/z of every point. 1-D with ``offsets`` (spectra concatenated, spectrum ``s`` is
        ``mz[offsets[s]:offsets[s+1]]``), 1-D shared by all rows of a 2-D ``intensity``, or 2-D
        of the same shape as ``intensity`` (one row per spectrum).
    intensity : counts per point, same layout as ``mz`` (or 2-D with a shared 1-D ``mz``).
    lower, upper : window bounds in u, shape (n_windows,).
    offsets : spectrum starts plus the total length, shape (n_spectra + 1,), for 1-D input.
    variable : ``"channel"`` (area in counts) or ``"mz"`` (area in counts x u).

    Returns
    -------
    ndarray, shape (n_spectra, n_windows)
    """
    if variable not in ("channel", "mz"):
        raise ValueError(f"variable must be 'channel' or 'mz', not {variable!r}")
    lower = np.asarray(lower, dtype=float).ravel()
    upper = np.asarray(upper, dtype=float).ravel()
    x = np.asarray(mz, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if x.ndim == 1 and y.ndim == 2:
        if x.size != y.shape[1]:
            raise ValueError("shared mz axis and intensity rows differ in length")
        return _integrate_shared(x, y, lower, upper, variable)
    if y.ndim == 2:
        if x.shape != y.shape:
            raise ValueError("mz and intensity shapes differ")
        n_s, n_c = y.shape
        offsets = np.arange(n_s + 1) * n_c
        x, y = x.ravel(), y.ravel()
    elif offsets is None:
        offsets = np.array([0, y.size])
    offsets = np.asarray(offsets, dtype=np.int64)
    if x.shape != y.shape:
        raise ValueError("mz and intensity lengths differ")
    if offsets[0] != 0 or offsets[-1] != x.size or (np.diff(offsets) < 0).any():
        raise ValueError("offsets must start at 0, end at len(mz) and not decrease")
    _check_sorted(x, offsets)
    n_spec = offsets.size - 1
    out = np.zeros((n_spec, lower.size))
    per = max(1, _CHUNK_VALUES // max(1, 2 * lower.size))
    for s0 in range(0, n_spec, per):
        s1 = min(n_spec, s0 + per)
        a, b = offsets[s0], offsets[s1]
        out[s0:s1] = _integrate_ragged(
            x[a:b], y[a:b], offsets[s0 : s1 + 1] - a, lower, upper, variable
        )
    return out


def _integrate_shared(
    x: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray, variable: str
) -> np.ndarray:
    """Spectra on one common m/z axis: edge positions once, cumulative sums in row chunks."""
    if x.size < 2:
        return np.zeros((y.shape[0], lower.size))
    if (np.diff(x) < 0).any():
        raise ValueError("m/z must be non-decreasing")
    u = np.arange(x.size, dtype=float) if variable == "channel" else x
    du = np.diff(u)
    edges = np.concatenate([lower, upper])
    k = np.clip(np.searchsorted(x, edges, side="right") - 1, 0, x.size - 2)
    dx = x[k + 1] - x[k]
    t = np.clip(np.divide(edges - x[k], dx, out=np.zeros_like(edges), where=dx > 0), 0.0, 1.0)
    out = np.empty((y.shape[0], lower.size))
    per = max(1, _CHUNK_VALUES // x.size)
    for r0 in range(0, y.shape[0], per):
        yy = y[r0 : r0 + per]
        cum = np.zeros(yy.shape)
        np.cumsum(du * (yy[:, 1:] + yy[:, :-1]) / 2, axis=1, out=cum[:, 1:])
        yk, yk1 = yy[:, k], yy[:, k + 1]
        yb = yk + t * (yk1 - yk)
        c = cum[:, k] + t * du[k] * (yk + yb) / 2
        out[r0 : r0 + per] = c[:, lower.size :] - c[:, : lower.size]
    return out


def _integrate_ragged(
    x: np.ndarray,
    y: np.ndarray,
    offsets: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    variable: str,
) -> np.ndarray:
    """Concatenated spectra of their own m/z axes (one searchsorted on a composite key)."""
    n_spec = offsets.size - 1
    n_win = lower.size
    starts, ends = offsets[:-1], offsets[1:]
    lens = ends - starts
    out = np.zeros((n_spec, n_win))
    ok = lens >= 2
    if not ok.any():
        return out
    # per-pair trapezoid contributions, zero across spectrum boundaries
    if variable == "channel":
        du = np.ones(max(x.size - 1, 0))
    else:
        du = np.diff(x)
    pair = du * (y[1:] + y[:-1]) / 2
    last = ends[lens > 0] - 1
    last = last[last < pair.size]
    pair[last] = 0.0
    cum = np.zeros(x.size)
    np.cumsum(pair, out=cum[1:])
    # composite key: spectrum s occupies [s*K, s*K + K - 1], K = m/z range of the chunk + 1
    xmin = float(np.min(x))
    span = float(np.max(x)) - xmin + 1.0
    key = x - xmin
    key += np.repeat(np.arange(n_spec) * span, lens)
    sidx = np.repeat(np.arange(n_spec), 2 * n_win)
    edges = np.tile(np.concatenate([lower, upper]), n_spec)
    rel = np.clip(edges - xmin, -0.25, span - 0.75)
    kg = np.searchsorted(key, rel + sidx * span, side="right") - 1
    lo_k = starts[sidx]
    hi_k = np.maximum(ends[sidx] - 2, lo_k)
    kg = np.clip(np.clip(kg, lo_k, hi_k), 0, x.size - 1)
    k1 = np.minimum(kg + 1, x.size - 1)
    dx = x[k1] - x[kg]
    t = np.clip(np.divide(edges - x[kg], dx, out=np.zeros_like(edges), where=dx > 0), 0.0, 1.0)
    yk, yk1 = y[kg], y[k1]
    yb = yk + t * (yk1 - yk)
    duk = du[np.minimum(kg, du.size - 1)] if du.size else np.zeros_like(t)
    c = cum[kg] - cum[lo_k] + t * duk * (yk + yb) / 2
    c = c.reshape(n_spec, 2, n_win)
    out = c[:, 1, :] - c[:, 0, :]
    out[~ok] = 0.0
    return out


# ---------------------------------------------------------------------------------------------
# unit-mass binning
# ---------------------------------------------------------------------------------------------
def unit_mass_bins(
    mz: np.ndarray,
    intensity: np.ndarray,
    *,
    offsets: np.ndarray | None = None,
    mz_min: int = 1,
    mz_max: int = 200,
    shift_u: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Counts summed into unit-mass bins ``[n - 0.5 + shift, n + 0.5 + shift)``.

    Parameters
    ----------
    mz, intensity : 1-D concatenated spectra with ``offsets`` (as :func:`integrate_windows`), or
        2-D arrays of one spectrum per row.
    mz_min, mz_max : first and last nominal mass.
    shift_u : moves all bins up (positive mass defects of hydrocarbons and Li compounds).

    Returns
    -------
    (counts of shape (n_spectra, n_bins), nominal masses of shape (n_bins,))
    """
    x = np.asarray(mz, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if y.ndim == 2:
        if x.ndim == 1:
            x = np.broadcast_to(x, y.shape)
        n_s, n_c = y.shape
        offsets = np.arange(n_s + 1) * n_c
        x, y = x.ravel(), y.ravel()
    elif offsets is None:
        offsets = np.array([0, y.size])
    offsets = np.asarray(offsets, dtype=np.int64)
    n_spec = offsets.size - 1
    nominal = np.arange(mz_min, mz_max + 1)
    n_bins = nominal.size
    b = np.floor(x - shift_u + 0.5).astype(np.int64) - mz_min
    seg = np.repeat(np.arange(n_spec), np.diff(offsets))
    inside = (b >= 0) & (b < n_bins)
    flat = np.bincount(
        seg[inside] * n_bins + b[inside], weights=y[inside], minlength=n_spec * n_bins
    )
    return flat.reshape(n_spec, n_bins), nominal


# ---------------------------------------------------------------------------------------------
# long tables (warehouse form) -> wide matrices
# ---------------------------------------------------------------------------------------------
@dataclass
class SpectraArrays:
    """Spectra of a long table as flat arrays: spectrum ``s`` is ``mz[offsets[s]:offsets[s+1]]``.

    Build once with :func:`spectra_arrays` and pass to :func:`peak_areas`, :func:`total_counts`
    and :func:`unit_mass_table` to avoid re-encoding the id column of a large table.
    """

    ids: np.ndarray
    mz: np.ndarray
    intensity: np.ndarray
    offsets: np.ndarray

    def select(self, ids: Iterable[Any]) -> SpectraArrays:
        """The spectra with these ids, in the given order (unknown ids raise KeyError)."""
        pos = {k: i for i, k in enumerate(self.ids.tolist())}
        sel = np.array([pos[k] for k in ids], dtype=np.int64)
        lens = np.diff(self.offsets)[sel]
        new_off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        idx = np.arange(new_off[-1], dtype=np.int64) + np.repeat(
            self.offsets[sel] - new_off[:-1], lens
        )
        return SpectraArrays(self.ids[sel], self.mz[idx], self.intensity[idx], new_off)


def spectra_arrays(
    spectra: pa.Table | pd.DataFrame | SpectraArrays, id_column: str = "measurement_id"
) -> SpectraArrays:
    """Flat arrays of a long spectra table (rows of one spectrum need not be contiguous; their
    order within a spectrum is kept). Ids in first-seen order."""
    if isinstance(spectra, SpectraArrays):
        return spectra
    if isinstance(spectra, pa.Table):
        col = spectra.column(id_column)
        if pa.types.is_dictionary(col.type):
            col = col.unify_dictionaries()
        col = col.combine_chunks()
        if not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        codes = col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        uniques = np.asarray(col.dictionary.to_pylist(), dtype=object)
        mz = spectra.column("mz").to_numpy().astype(float, copy=False)
        y = spectra.column("intensity").to_numpy().astype(float, copy=False)
        # dictionary_encode numbers values in first-seen order; a table that arrived
        # dictionary-encoded may not (or may hold unused values): renumber then
        first_seen = codes.size == 0 or (
            codes[0] == 0 and (np.diff(np.maximum.accumulate(codes)) <= 1).all()
        )
        if not first_seen or (codes.size and codes.max() + 1 != len(uniques)):
            used, first = np.unique(codes, return_index=True)
            order = used[np.argsort(first)]
            remap = np.full(len(uniques), -1, dtype=np.int64)
            remap[order] = np.arange(order.size)
            codes, uniques = remap[codes], uniques[order]
    else:
        codes, uniques = pd.factorize(spectra[id_column].to_numpy())
        uniques = np.asarray(uniques, dtype=object)
        mz = spectra["mz"].to_numpy(float)
        y = spectra["intensity"].to_numpy(float)
    if codes.size and (np.diff(codes) < 0).any():
        order = np.argsort(codes, kind="stable")
        codes, mz, y = codes[order], mz[order], y[order]
    counts = np.bincount(codes, minlength=len(uniques))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SpectraArrays(uniques, np.asarray(mz, float), np.asarray(y, float), offsets)


def peak_areas(
    spectra: pa.Table | pd.DataFrame | SpectraArrays,
    intervals: pd.DataFrame,
    *,
    id_column: str = "measurement_id",
    variable: str = "channel",
) -> pd.DataFrame:
    """Peak areas of every spectrum in a long ``tof_sims_spectra`` table.

    Returns
    -------
    DataFrame indexed by ``id_column`` (first-seen order), one column per interval
    ``assignment``; use :func:`total_counts` for the spectrum totals.
    """
    sa = spectra_arrays(spectra, id_column)
    areas = integrate_windows(
        sa.mz,
        sa.intensity,
        intervals["lower_mass_u"].to_numpy(float),
        intervals["upper_mass_u"].to_numpy(float),
        offsets=sa.offsets,
        variable=variable,
    )
    return pd.DataFrame(
        areas, index=pd.Index(sa.ids, name=id_column), columns=list(intervals["assignment"])
    )


def total_counts(
    spectra: pa.Table | pd.DataFrame | SpectraArrays, *, id_column: str = "measurement_id"
) -> pd.Series:
    """Total counts of each spectrum (the ``total`` row of a SurfaceLab peak list)."""
    sa = spectra_arrays(spectra, id_column)
    csum = np.concatenate([[0.0], np.cumsum(sa.intensity)])
    tot = csum[sa.offsets[1:]] - csum[sa.offsets[:-1]]
    return pd.Series(tot, index=pd.Index(sa.ids, name=id_column), name="total")


def unit_mass_table(
    spectra: pa.Table | pd.DataFrame | SpectraArrays,
    *,
    id_column: str = "measurement_id",
    mz_min: int = 1,
    mz_max: int = 200,
    shift_u: float = 0.0,
) -> pd.DataFrame:
    """Unit-mass-binned counts of every spectrum in a long table; columns ``m1``, ``m2``..."""
    sa = spectra_arrays(spectra, id_column)
    counts, nominal = unit_mass_bins(
        sa.mz, sa.intensity, offsets=sa.offsets, mz_min=mz_min, mz_max=mz_max, shift_u=shift_u
    )
    return pd.DataFrame(
        counts, index=pd.Index(sa.ids, name=id_column), columns=[f"m{n}" for n in nominal]
    )
