"""VAMAS (ISO 14976) writer for simulated XPS: REGULAR experiment mode, several blocks, in the
layout CasaXPS exports (compare ../shared/samples/xps-vamas/regular.vms).

Follows the field order of ISO 14976:1998 ("Surface chemical analysis - Data transfer format",
described in Dench, Hazell & Seah, Surf. Interface Anal. 13 (1988) 63) for experiment mode
``NORM`` and scan mode ``REGULAR``: experiment header (identifier, institution, instrument,
operator, experiment, comment lines, mode, scan mode, number of regions, one experimental
variable, empty inclusion list, block count), then per block the identifiers, date, comment
lines (CasaXPS's ``Casa Info Follows`` marker with zero regions and components), technique,
source and analyser settings, species/transition, abscissa (kinetic energy, start and step),
corresponding variables (``counts``; optionally the analyser ``Transmission`` as CasaXPS writes
it), signal settings, the ``ESCAPE DEPTH TYPE`` / ``MFP Exponent`` parameters CasaXPS adds,
the min/max pairs and the ordinates (interleaved per point), and ``end of experiment``.
CRLF line ends, ASCII. The analyser work function is written as 0, so binding energy =
excitation energy - kinetic energy without ambiguity.

Why not a library: the ``vamas`` package on PyPI reads REGULAR files but does not write them;
the tests parse the written files with it (and with our reader) as an independent check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .xps_physics import EXCITATION_EV, SimulatedXps

FORMAT_ID = "VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4"


@dataclass
class VamasBlock:
    """One spectrum block. ``intensity`` (and ``transmission``) run in ascending kinetic energy
    from ``kinetic_start_ev`` in steps of ``step_ev``."""

    name: str
    species: str
    transition: str
    kinetic_start_ev: float
    step_ev: float
    intensity: np.ndarray
    pass_energy_ev: float = 20.0
    dwell_s: float = 0.1
    scans: int = 1
    transmission: np.ndarray | None = None
    excitation_ev: float = EXCITATION_EV
    source_label: str = "Al"
    technique: str = "XPS"
    comment: tuple[str, ...] = ()


def _num(v: float) -> str:
    """Shortest exact-enough text for a number (integers without a decimal point)."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.10g}"


def blocks_from_simulation(sim: SimulatedXps) -> list[VamasBlock]:
    """One VAMAS block per simulated region (survey first), kinetic-energy ordered."""
    out = []
    for b in sim.blocks:
        reg = b.region
        be = b.binding_energy_ev
        if reg.core_level is None:
            species, transition = "Survey", ""
        else:
            species, transition = reg.core_level.split()
        out.append(
            VamasBlock(
                name=reg.name,
                species=species,
                transition=transition,
                kinetic_start_ev=round(EXCITATION_EV - float(be.max()), 6),
                step_ev=reg.step_ev,
                intensity=b.counts[::-1],
                pass_energy_ev=reg.pass_energy_ev,
                dwell_s=b.dwell_s,
                scans=b.scans,
            )
        )
    return out


def write_vamas(
    path: str | os.PathLike,
    blocks: Sequence[VamasBlock],
    *,
    sample_id: str,
    created: tuple[int, int, int, int, int, int] = (2024, 1, 1, 12, 0, 0),
    institution: str = "Not Specified",
    instrument: str = "Not Specified",
    operator: str = "Not Specified",
    experiment: str = "Not Specified",
    source_file: str | None = None,
) -> Path:
    """Write ``blocks`` as one VAMAS REGULAR file; returns the path."""
    if not blocks:
        raise ValueError("a VAMAS file needs at least one block")
    lines: list[str] = [FORMAT_ID, institution, instrument, operator, experiment]
    exp_comment = [
        "Casa Info Follows CasaXPS Version 2.3.25PR1.0",
        "0",
        "Created by ProGrAL lake instrument simulator",
        "SourceAnalyserAngle: Not Specified",
        f"CasaRowLabel:{sample_id}",
    ]
    lines += [str(len(exp_comment)), *exp_comment]
    lines += ["NORM", "REGULAR", "0", "1", "Exp Variable", "d", "0", "0", "0", "0"]
    lines.append(str(len(blocks)))
    year, month, day, hour, minute, second = created
    for i, b in enumerate(blocks):
        y = np.asarray(b.intensity, float)
        cols = [("counts", y)]
        if b.transmission is not None:
            t = np.asarray(b.transmission, float)
            if t.shape != y.shape:
                raise ValueError(f"block {b.name}: transmission and intensity differ in length")
            cols.append(("Transmission", t))
        comment = [
            "Casa Info Follows",
            "0",
            "0",
            "0",
            "0",
            f"File = {source_file or sample_id}",
            f"Spectrum ID = {i + 1}",
            "Scan mode = FixedAnalyzerTransmission",
            f"Kinetic energy start = {_num(b.kinetic_start_ev)}",
            *b.comment,
        ]
        lines += [b.name, sample_id]
        lines += [str(year), str(month), str(day), str(hour), str(minute), str(second), "0"]
        lines += [str(len(comment)), *comment]
        lines += [b.technique, "0", b.source_label, _num(b.excitation_ev)]
        lines += ["0", "0", "0", "54.5", "180", "FAT", _num(b.pass_energy_ev), "1"]
        lines += ["0", "0", "0", "0", "0", "0"]  # work function, bias, widths, take-off angles
        lines += [b.species, b.transition, "-1"]
        lines += ["kinetic energy", "eV", _num(b.kinetic_start_ev), _num(b.step_ev)]
        lines.append(str(len(cols)))
        for label, _ in cols:
            lines += [label, "d"]
        lines += ["pulse counting", _num(b.dwell_s), str(int(b.scans)), "0"]
        lines += ["0", "0", "0"]  # sample tilt, tilt azimuth, rotation
        lines += ["2", "ESCAPE DEPTH TYPE", "d", "1", "MFP Exponent", "d", "0"]
        lines.append(str(y.size * len(cols)))
        for _, v in cols:
            lines += [_num(v.min()), _num(v.max())]
        stacked = np.column_stack([v for _, v in cols]).ravel()
        lines += [_num(v) for v in stacked]
    lines.append("end of experiment")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="ascii", newline="") as fh:
        fh.write("\r\n".join(lines) + "\r\n")
    return p
