"""Writers for IONTOF SurfaceLab ASCII exports: the spectrum export and the mass interval list.

Both layouts are taken from the real exports in shared/samples/sims-iontof (SCIENCE.md, "File
formats"):

- spectrum (``P_Ru_Bi1_1.txt``, ``N_HEA19_Bi1_1.txt``): ``# Binning: N channels``,
  ``# Deadtime Correction: on|off``, ``Channel<TAB>m/z<TAB>Intensity``, then one row per bin:
  the bin centre as an integer (a half channel only for odd partial bins), m/z with six
  decimals, counts as integers (the real corrected exports carry whole numbers); CRLF.
- mass interval list (``Example_mass_interval_list.txt``): 19 tab-separated columns, a
  ``total`` row first (empty centre, ``nan`` limits, ``(null)`` assignment), masses and mass
  deviation with six decimals, areas and normalisations with two, resolution as an integer,
  ``inf`` for the unset reference-peak normalisation, ``0.000000E+00`` RSF, ``-NAN(IND)``
  coverage, Windows RGB colours; CRLF lines and a NUL byte after the last one, as SurfaceLab
  writes it. Normalisations reproduce the example's total row: by total shots = area / shots,
  by primary ion dose = area / (shots x 256 ions per pulse; the example's dose / shots), by
  corrected total = area / corrected total, by total ion intensity = uncorrected area /
  corrected total.

No library writes these formats (they are SurfaceLab's own), so rows are formatted here with
one string join per file; the channel column of a binning is formatted once and cached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .tof_ions import ion_mass, surfacelab_name
from .tof_spectra import K0, SF, SimulatedSpectrum, channel_to_mz, mz_to_channel

PEAK_LIST_COLUMNS = (
    "No.",
    "Center Mass (u)",
    "Lower Mass (u)",
    "Upper Mass (u)",
    "Assignment",
    "Description",
    "Mass Deviation (ppm)",
    "Explained (%)",
    "Resolution",
    "Area",
    "Uncorrected Area",
    "Norm. By Reference Peak",
    "Norm. By Total Ion Intensity",
    "Norm. By Total Shots",
    "Norm. By Corrected Total Ion Intensity",
    "Norm. By Primary Ion Dose",
    "RSF",
    "Coverage (1/cm^2) ",
    "Color",
)
PRIMARY_IONS_PER_SHOT = 256.0
# Windows RGB colours as they occur in the real list
_COLORS = (255, 65280, 16744448, 8453888, 8421631, 16744703, 8421376, 16711680, 8421504, 8388736)


def _channel_text(c: float) -> str:
    return str(int(c)) if float(c).is_integer() else f"{c:.1f}"


@lru_cache(maxsize=8)
def _channel_strings(channel_bytes: bytes) -> tuple[str, ...]:
    ch = np.frombuffer(channel_bytes, dtype=float)
    return tuple(_channel_text(c) + "\t" for c in ch.tolist())


def format_spectrum_export(spec: SimulatedSpectrum, *, deadtime_corrected: bool = True) -> bytes:
    """The export's bytes (see the module docstring)."""
    counts = spec.corrected_counts() if deadtime_corrected else spec.counts
    ints = np.rint(counts).astype(np.int64).tolist()
    mz = spec.mz.tolist()
    chan = _channel_strings(np.ascontiguousarray(spec.channel, dtype=float).tobytes())
    head = (
        f"# Binning: {spec.binning} channels\r\n"
        f"# Deadtime Correction: {'on' if deadtime_corrected else 'off'}\r\n"
        "Channel\tm/z\tIntensity\r\n"
    )
    rows = "\r\n".join(map("{}{:.6f}\t{}".format, chan, mz, ints))
    return (head + rows + "\r\n").encode("ascii")


def write_spectrum_export(
    path: Path, spec: SimulatedSpectrum, *, deadtime_corrected: bool = True
) -> Path:
    """Write an IONTOF ASCII spectrum export; ``deadtime_corrected`` writes the corrected counts
    under ``# Deadtime Correction: on`` (SurfaceLab's default), else raw counts and ``off``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(format_spectrum_export(spec, deadtime_corrected=deadtime_corrected))
    return path


def _f2(x: float) -> str:
    if math.isnan(x):
        return "-NAN(IND)"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.2f}"


def _interval(mz0: float, sf: float, k0: float, fwhm_channels: float) -> tuple[float, float]:
    """Window around a peak: 1.6 effective FWHM below, 2.8 above (peaks tail to long times)."""
    c = mz_to_channel(mz0, sf, k0)
    return float(channel_to_mz(c - 1.6 * fwhm_channels, sf, k0)), float(
        channel_to_mz(c + 2.8 * fwhm_channels, sf, k0)
    )


def _fwhm_mz(mz: np.ndarray, y: np.ndarray) -> float:
    """FWHM (u) of the highest peak in a window, half-maximum crossings interpolated."""
    if y.size < 3 or y.max() <= 0:
        return float("nan")
    i = int(np.argmax(y))
    half = y[i] / 2.0
    lo = i
    while lo > 0 and y[lo] > half:
        lo -= 1
    hi = i
    while hi < y.size - 1 and y[hi] > half:
        hi += 1
    if y[lo] > half or y[hi] > half:
        return float("nan")
    left = mz[lo] + (half - y[lo]) * (mz[lo + 1] - mz[lo]) / (y[lo + 1] - y[lo])
    right = mz[hi - 1] + (y[hi - 1] - half) * (mz[hi] - mz[hi - 1]) / (y[hi - 1] - y[hi])
    return float(right - left)


def format_mass_interval_list(ions: Sequence[str], spec: SimulatedSpectrum | None = None) -> bytes:
    """The mass interval list's bytes (see the module docstring)."""
    lines = ["\t".join(PEAK_LIST_COLUMNS)]
    if spec is not None:
        corrected = spec.corrected_counts()
        raw = np.asarray(spec.counts, dtype=float)
        total_c, total_u = float(corrected.sum()), float(raw.sum())
        shots = float(spec.metadata["primary_shots"])
        sf, k0 = float(spec.metadata["sf"]), float(spec.metadata["k0"])
        r28 = float(spec.metadata.get("resolving_power_28", 5000.0))
        binning = spec.binning
    else:
        corrected = raw = None
        total_c = total_u = 0.0
        shots = float("nan")
        sf, k0, r28, binning = SF, K0, 5000.0, 20
    dose = shots * PRIMARY_IONS_PER_SHOT
    fwhm_t = math.hypot(SF * math.sqrt(28.0) / (2.0 * r28), binning)

    def div(a: float, b: float) -> float:
        if b == 0 or math.isnan(b):
            return float("nan") if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
        return a / b

    lines.append(
        "\t".join(
            [
                "1",
                "",
                "nan",
                "nan",
                "(null)",
                "total",
                "0",
                "",
                "nan",
                f"{total_c:.2f}",
                f"{total_u:.2f}",
                "inf",
                _f2(div(total_u, total_c)),
                _f2(div(total_c, shots)),
                _f2(div(total_c, total_c)),
                _f2(div(total_c, dose)),
                "0.000000E+00",
                "-NAN(IND)",
                str(_COLORS[0]),
            ]
        )
    )
    for n, ion in enumerate(ions, start=2):
        exact = ion_mass(ion)
        lower, upper = _interval(exact, sf, k0, fwhm_t)
        centre, resolution = exact, float("nan")
        area = unc = 0.0
        if spec is not None:
            sel = (spec.mz >= lower) & (spec.mz <= upper)
            y = corrected[sel]
            area, unc = float(y.sum()), float(raw[sel].sum())
            if area > 0:
                centre = float((spec.mz[sel] * y).sum() / area)
                fw = _fwhm_mz(spec.mz[sel], y)
                resolution = centre / fw if fw > 0 else float("nan")
        dev = (centre - exact) / exact * 1e6
        lines.append(
            "\t".join(
                [
                    str(n),
                    f"{centre:.6f}",
                    f"{lower:.6f}",
                    f"{upper:.6f}",
                    surfacelab_name(ion),
                    "(null)",
                    f"{dev:.6f}",
                    "100.00",
                    "nan" if math.isnan(resolution) else str(int(round(resolution))),
                    f"{area:.2f}",
                    f"{unc:.2f}",
                    "inf",
                    _f2(div(unc, total_c)),
                    _f2(div(area, shots)),
                    _f2(div(area, total_c)),
                    _f2(div(area, dose)),
                    "0.000000E+00",
                    "-NAN(IND)",
                    str(_COLORS[(n - 1) % len(_COLORS)]),
                ]
            )
        )
    return ("\r\n".join(lines) + "\r\n").encode("ascii") + b"\x00"


def write_mass_interval_list(
    path: Path, ions: Sequence[str], spec: SimulatedSpectrum | None = None
) -> Path:
    """Write an IONTOF mass interval (peak) list for ``ions`` (formulas, e.g. ``"LiCO3-"``).

    With ``spec``: windows placed with the spectrum's calibration and width, centre mass the
    measured centroid, resolution the measured m/FWHM, areas (dead-time corrected and
    uncorrected) summed over the window. Without: windows at the nominal calibration, exact
    masses, zero areas.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(format_mass_interval_list(ions, spec))
    return path
