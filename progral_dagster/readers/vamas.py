"""VAMAS surface-chemical-analysis transfer format, ISO 14976 (format ``vamas``; technique
``xps``, ``aes`` or ``tof-sims`` from the blocks' technique).

Follows the structure of ISO 14976:1998 ("Surface chemical analysis - Data transfer format"):
a line-oriented file of an experiment header (identifiers, comment lines, experiment mode
NORM/SDP/SDPSV/MAP/MAPDP/MAPSV/MAPSVDP/SEM, scan mode, experimental variables, the block
parameter inclusion/exclusion list, manually entered items, future-upgrade counts, the number
of blocks), then the blocks (identifiers, date, comment lines, technique, source, analyser,
species/transition, abscissa, corresponding variables, signal, sample angles, additional
numerical parameters, ordinate values), then ``end of experiment``. Items that depend on the
experiment mode or technique (map coordinates, sputtering ion for SIMS-family techniques,
differential width for ``AES diff``, sputter source for depth profiles ...) are read only where
the standard puts them; parameters excluded by the inclusion list in blocks after the first
take the first block's value.

- REGULAR scans: abscissa = start + i * increment; IRREGULAR scans (as CasaXPS writes them):
  no abscissa start/increment, the abscissa is the first corresponding variable.
- "Unknown" is written ``1e37`` (``1e+37``, ``1E37``, ``1e+037``): stored as null/None.
- CRLF and LF, ASCII or Latin-1/UTF-8 text; blank lines before the format identifier (Kratos
  ESCApe exports) are skipped.
- CasaXPS keeps its quantification regions and fitted components in block comment lines
  (``CASA region (*name*) (*background*) start end rsf ...`` and
  ``CASA comp (*name*) (*lineshape*) Area v ... MFWHM v ... Position v ... RSF v ...``).

Tables
------
``xps_spectra`` (one row per point of every XPS/AES block; SIMS-family blocks on an energy
axis too): block (0-based, file order), region (block identifier), cycle and sputter_time_s
(depth-profile modes, from an experimental variable whose label names a time; else null),
point (0-based), kinetic_energy_ev and binding_energy_ev (eV; the abscissa gives one, the other
is derived for photon sources as BE = hv - KE; AES blocks keep binding energy null), intensity
(first corresponding variable, in the unit the file states: ``metadata.blocks[i].ordinate_unit``).
The analyser work function the block states is kept in its metadata (``work_function_ev``) but
not subtracted: instruments write a kinetic energy already referenced to the Fermi level
(spectrometers are calibrated on Au 4f / Cu 2p binding energies). Checked on exports of three
vendors: SPECS Prodigy (phi = 4.108 in the file; O 1s of MgO at 531.0 eV and As 3d of CuMnAs at
42.1 eV only without subtracting it), Kratos ESCApe (phi = -4.5; a 1200 to -5 eV survey window
only without it), and files with phi = 0 (CasaXPS exports, this project's simulator).

``tof_sims_spectra`` (SIMS-family blocks whose abscissa is a mass): channel null, mz (u),
intensity (counts).

``xps_casa_components`` (when CasaXPS regions/components are present): block, region (the
CasaXPS region name), kind ``region``/``component``, name, lineshape (components),
background (regions), start_ev/end_ev (regions), position_ev, fwhm_ev, area, rsf, parameters
(JSON of every keyword and value on the line). Energies as CasaXPS stores them: kinetic
energy, whatever the block's abscissa (a binding-energy block's regions and components are in
kinetic energy too); ``parameters`` adds ``energy_scale`` ("kinetic energy") and, for photon
sources with a known energy, the binding-energy equivalents (``binding_ev``,
``position_binding_ev``; same conversion as the spectra).

Metadata: the experiment header (identifiers, comment lines, modes, experimental variables),
and per block every parameter (unknown values as None), the comment lines, the corresponding
variables and the CasaXPS lines.

Why not a library: the ``vamas`` package (BSD) reads only REGULAR scans, drops the block
parameter inclusion list's semantics and keeps comments as plain text; this reader handles
IRREGULAR scans and CasaXPS comment metadata. ``vamas`` is used in the tests as an independent
reference on the REGULAR sample files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..warehouse.schemas import reader_schema
from .base import Measurement, ReaderError, UnsupportedFormat, guarded

FORMATS = ("vamas",)
READER_VERSION = "2"  # 2: BE = hv - KE (work function not subtracted), CasaXPS energies kinetic
MAGIC = "VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4"
UNKNOWN = 1e37

_EXP_MODES = {"MAP", "MAPDP", "MAPSV", "MAPSVDP", "NORM", "SDP", "SDPSV", "SEM", "NOEXP"}
_DEPTH_MODES = {"MAPDP", "MAPSVDP", "SDP", "SDPSV"}
_SIMS_FAMILY = {
    "FABMS",
    "FABMS ENERGY SPEC",
    "ISS",
    "SIMS",
    "SIMS ENERGY SPEC",
    "SNMS",
    "SNMS ENERGY SPEC",
}
_SPUTTER_SOURCE_TECHS = {"AES DIFF", "AES DIR", "EDX", "ELS", "UPS", "XPS", "XRF"}
# Technique in the file -> lake technique. EDX/XRF (X-ray emission) and ISS (ion scattering)
# have no place in the lake and are refused.
_TECHNIQUE = {
    "XPS": "xps",
    "UPS": "xps",
    "AES DIFF": "aes",
    "AES DIR": "aes",
    "ELS": "aes",
    "SIMS": "tof-sims",
    "SIMS ENERGY SPEC": "tof-sims",
    "FABMS": "tof-sims",
    "FABMS ENERGY SPEC": "tof-sims",
    "SNMS": "tof-sims",
    "SNMS ENERGY SPEC": "tof-sims",
}
_PHOTON = {"XPS", "UPS"}
_CASA_TOKEN = re.compile(r"\(\*(.*?)\*\)|(\S+)")


def sniff(path: Path, head: bytes) -> str | None:
    # The first non-blank line: Kratos ESCApe exports start with empty lines before it.
    for line in head.lstrip(b"\xef\xbb\xbf").split(b"\n"):
        first = line.strip()
        if first:
            return "vamas" if first.decode("latin-1") == MAGIC else None
    return None


class _Cursor:
    """Line reader with bounds checks and positions for error messages."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.lines = lines
        self.i = 0

    def err(self, reason: str, line: int | None = None) -> ReaderError:
        return ReaderError(self.path, reason, f"line {(line if line is not None else self.i) + 1}")

    def text(self, what: str) -> str:
        if self.i >= len(self.lines):
            raise self.err(f"file ends where the {what} was expected (truncated file?)")
        s = self.lines[self.i].strip()
        self.i += 1
        return s

    def int(self, what: str, lo: int = 0, hi: int | None = None) -> int:
        s = self.text(what)
        try:
            v = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise self.err(f"{what}: {s[:60]!r} is not an integer", self.i - 1) from None
            if not f.is_integer():
                raise self.err(f"{what}: {s[:60]!r} is not an integer", self.i - 1) from None
            v = int(f)
        if v < lo or (hi is not None and v > hi):
            raise self.err(f"{what} = {v} is out of range", self.i - 1)
        return v

    def count(self, what: str, per_item: int = 1) -> int:
        """A count of following lines, checked against the lines left (no huge allocation)."""
        left = len(self.lines) - self.i - 1
        return self.int(what, 0, max(left // max(per_item, 1), 0))

    def float(self, what: str) -> float | None:
        s = self.text(what)
        try:
            v = float(s)
        except ValueError:
            raise self.err(f"{what}: {s[:60]!r} is not a number", self.i - 1) from None
        return None if abs(v) >= UNKNOWN or not np.isfinite(v) else v

    def take(self, n: int, what: str) -> list[str]:
        if self.i + n > len(self.lines):
            raise self.err(
                f"{what}: {n} lines announced but only {len(self.lines) - self.i} left (truncated file?)"
            )
        out = self.lines[self.i : self.i + n]
        self.i += n
        return out


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\ufeff")


def _read_header(c: _Cursor) -> dict:
    h: dict = {}
    while c.i < len(c.lines) and not c.lines[c.i].strip():
        c.i += 1  # blank lines before the identifier (Kratos ESCApe exports)
    if c.text("format identifier") != MAGIC:
        raise UnsupportedFormat(
            c.path, "first line is not the VAMAS format identifier", f"line {c.i}"
        )
    for key in ("institution", "instrument_model", "operator", "experiment"):
        h[key] = c.text(f"{key} identifier")
    h["comment"] = c.take(c.count("number of header comment lines"), "header comment")
    h["comment"] = [s.rstrip() for s in h["comment"]]
    h["experiment_mode"] = c.text("experiment mode").upper()
    if h["experiment_mode"] not in _EXP_MODES:
        raise c.err(f"unknown experiment mode {h['experiment_mode']!r}", c.i - 1)
    h["scan_mode"] = c.text("scan mode").upper()
    if h["scan_mode"] == "MAPPING":
        raise UnsupportedFormat(
            c.path, "VAMAS scan mode MAPPING (image data) is not supported", f"line {c.i}"
        )
    if h["scan_mode"] not in ("REGULAR", "IRREGULAR"):
        raise c.err(f"unknown scan mode {h['scan_mode']!r}", c.i - 1)
    mode = h["experiment_mode"]
    if mode in ("MAP", "MAPDP", "NORM", "SDP"):
        h["n_spectral_regions"] = c.int("number of spectral regions")
    if mode in ("MAP", "MAPDP"):
        h["n_analysis_positions"] = c.int("number of analysis positions")
        h["n_x_coordinates"] = c.int("number of discrete x coordinates")
        h["n_y_coordinates"] = c.int("number of discrete y coordinates")
    n = c.count("number of experimental variables", 2)
    h["experimental_variables"] = [
        {
            "label": c.text("experimental variable label"),
            "unit": c.text("experimental variable unit"),
        }
        for _ in range(n)
    ]
    n = c.int("parameter inclusion/exclusion count", -40, 40)
    listed = {c.int("block parameter number", 1, 40) for _ in range(abs(n))}
    # n > 0: only the listed parameters appear in blocks after the first; n < 0: all but them.
    h["include"] = [((k + 1) in listed) if n > 0 else ((k + 1) not in listed) for k in range(40)]
    h["manually_entered_items"] = [
        c.int("manually entered item", 0)
        for _ in range(c.count("number of manually entered items"))
    ]
    n_exp_future = c.count("number of future upgrade experiment entries")
    h["n_future_block_entries"] = c.count("number of future upgrade block entries")
    h["future_experiment_entries"] = c.take(n_exp_future, "future upgrade experiment entries")
    h["n_blocks"] = c.count("number of blocks")
    return h


def _read_block(c: _Cursor, h: dict, first: dict | None) -> dict:
    """One block as a dict of parameters (ISO 14976 order)."""
    inc = h["include"] if first is not None else [True] * 40
    mode = h["experiment_mode"]
    b: dict = {"line": c.i + 1}

    def p(k: int, key: str, fn):
        if inc[k]:
            b[key] = fn()
        elif key in first:
            b[key] = first[key]
        else:
            raise c.err(f"block parameter {k + 1} ({key}) is excluded but the first block has none")

    b["block_identifier"] = c.text("block identifier")
    b["sample_identifier"] = c.text("sample identifier")
    for k, key in enumerate(("year", "month", "day", "hour", "minute", "second")):
        p(k, key, lambda key=key: c.int(key, -(10**9)))
    p(6, "hours_ahead_of_gmt", lambda: c.float("hours ahead of GMT"))
    p(
        7,
        "comment",
        lambda: [
            s.rstrip() for s in c.take(c.count("number of block comment lines"), "block comment")
        ],
    )
    p(8, "technique", lambda: c.text("technique"))
    tech = b["technique"].upper()
    if mode in ("MAP", "MAPDP"):
        p(9, "xy", lambda: [c.float("x coordinate"), c.float("y coordinate")])
    p(
        10,
        "experimental_variable_values",
        lambda: [c.float("experimental variable value") for _ in h["experimental_variables"]],
    )
    p(11, "source_label", lambda: c.text("analysis source label"))
    if mode in _DEPTH_MODES or tech in _SIMS_FAMILY:
        p(
            12,
            "sputtering_ion",
            lambda: {
                "atomic_number": c.float("sputtering ion atomic number"),
                "n_atoms": c.float("number of atoms in sputtering particle"),
                "charge": c.float("sputtering ion charge"),
            },
        )
    p(13, "source_energy_ev", lambda: c.float("analysis source characteristic energy"))
    p(14, "source_strength", lambda: c.float("analysis source strength"))
    p(15, "source_beam_width", lambda: [c.float("beam width x"), c.float("beam width y")])
    if mode in ("MAP", "MAPDP", "MAPSV", "MAPSVDP", "SEM"):
        p(16, "field_of_view", lambda: [c.float("field of view x"), c.float("field of view y")])
    if mode in ("MAPSV", "MAPSVDP", "SEM"):
        p(17, "linescan", lambda: [c.float("linescan coordinate") for _ in range(6)])
    p(18, "source_polar_angle", lambda: c.float("source polar angle of incidence"))
    p(19, "source_azimuth", lambda: c.float("source azimuth"))
    p(20, "analyser_mode", lambda: c.text("analyser mode"))
    p(21, "pass_energy", lambda: c.float("analyser pass energy / retard ratio / mass resolution"))
    if tech == "AES DIFF":
        p(22, "differential_width", lambda: c.float("differential width"))
    p(23, "magnification", lambda: c.float("analyser transfer lens magnification"))
    p(24, "work_function_ev", lambda: c.float("analyser work function or acceptance energy"))
    p(25, "target_bias", lambda: c.float("target bias"))
    p(26, "analysis_width", lambda: [c.float("analysis width x"), c.float("analysis width y")])
    p(27, "take_off", lambda: [c.float("take-off polar angle"), c.float("take-off azimuth")])
    p(28, "species", lambda: c.text("species label"))
    p(
        29,
        "transition",
        lambda: [
            c.text("transition or charge state label"),
            c.float("charge of detected particle"),
        ],
    )
    if h["scan_mode"] == "REGULAR":
        p(
            30,
            "abscissa",
            lambda: {
                "label": c.text("abscissa label"),
                "unit": c.text("abscissa units"),
                "start": c.float("abscissa start"),
                "step": c.float("abscissa increment"),
            },
        )
    p(
        31,
        "corresponding_variables",
        lambda: [
            {
                "label": c.text("corresponding variable label"),
                "unit": c.text("corresponding variable units"),
            }
            for _ in range(c.count("number of corresponding variables", 2))
        ],
    )
    p(32, "signal_mode", lambda: c.text("signal mode"))
    p(33, "collection_time_s", lambda: c.float("signal collection time"))
    p(34, "n_scans", lambda: c.int("number of scans", -(10**9)))
    p(35, "time_correction_s", lambda: c.float("signal time correction"))
    if tech in _SPUTTER_SOURCE_TECHS and mode in _DEPTH_MODES:
        p(
            36,
            "sputter_source",
            lambda: {
                "energy": c.float("sputtering source energy"),
                "current": c.float("sputtering source beam current"),
                "width": [c.float("sputtering width x"), c.float("sputtering width y")],
                "polar_angle": c.float("sputtering polar angle"),
                "azimuth": c.float("sputtering azimuth"),
                "mode": c.text("sputtering mode"),
            },
        )
    p(37, "sample_tilt", lambda: [c.float("sample normal tilt"), c.float("sample tilt azimuth")])
    p(38, "sample_rotation", lambda: c.float("sample rotation"))
    p(
        39,
        "additional_parameters",
        lambda: [
            {
                "label": c.text("parameter label"),
                "unit": c.text("parameter units"),
                "value": c.float("parameter value"),
            }
            for _ in range(c.count("number of additional numerical parameters", 3))
        ],
    )
    b["future_entries"] = c.take(h["n_future_block_entries"], "future upgrade block entries")
    ncorr = len(b["corresponding_variables"])
    if ncorr == 0:
        raise c.err("block has no corresponding variables", c.i - 1)
    nvals = c.count("number of ordinate values")
    if nvals % ncorr:
        raise c.err(
            f"{nvals} ordinate values do not divide among {ncorr} corresponding variables", c.i - 1
        )
    b["ordinate_ranges"] = [
        [c.float("minimum ordinate"), c.float("maximum ordinate")] for _ in range(ncorr)
    ]
    start = c.i
    raw = c.take(nvals, "ordinate values")
    b["values"] = _to_floats(c, raw, start).reshape(-1, ncorr) if nvals else np.empty((0, ncorr))
    return b


def _to_floats(c: _Cursor, raw: list[str], start: int) -> np.ndarray:
    try:
        return pa.array(raw, pa.string()).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return np.array(raw, dtype=np.float64)
    except ValueError:
        for k, s in enumerate(raw):
            try:
                float(s)
            except ValueError:
                raise c.err(
                    f"ordinate value {s.strip()[:60]!r} is not a number", start + k
                ) from None
        raise


def _casa_lines(comment: list[str]) -> list[str]:
    return [s for s in comment if s.startswith("CASA region") or s.startswith("CASA comp")]


def _casa_params(tokens: list[tuple[str, str]]) -> dict:
    """Keyword -> following values (numbers as floats, (*strings*) as text)."""
    out: dict[str, list] = {}
    key = None
    for quoted, word in tokens:
        if word and re.fullmatch(r"[A-Za-z][A-Za-z_]*", word):
            key = word
            out.setdefault(key, [])
            continue
        if key is None:
            continue
        if quoted is not None and not word:
            out[key].append(quoted)
        else:
            try:
                v = float(word)
                out[key].append(v if np.isfinite(v) else None)
            except ValueError:
                out[key].append(word)
    return out


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) and abs(f) < UNKNOWN else None


def _casa_rows(block_index: int, b: dict, to_be) -> list[dict]:
    """``to_be``: binding energy of a kinetic energy (CasaXPS keeps region limits and component
    positions in kinetic energy whatever the block's abscissa, binding-energy blocks included)."""
    rows = []
    region = None
    scale = "kinetic energy"
    for line in _casa_lines(b["comment"]):
        toks = [(m.group(1), m.group(2)) for m in _CASA_TOKEN.finditer(line)][2:]
        strings = [q for q, w in toks if q is not None and not w]
        if line.startswith("CASA region"):
            region = strings[0] if strings else None
            nums = [w for q, w in toks[2:] if w]
            vals = [_num(x) for x in nums[:3]] + [None] * 3
            params = {"raw": line, "values": nums, "energy_scale": scale}
            if vals[0] is not None and vals[1] is not None:
                be = [to_be(vals[0]), to_be(vals[1])]
                if None not in be:
                    params["binding_ev"] = be
            rows.append(
                dict(
                    block=block_index,
                    region=region,
                    kind="region",
                    name=region,
                    lineshape=None,
                    background=strings[1] if len(strings) > 1 else None,
                    start_ev=vals[0],
                    end_ev=vals[1],
                    position_ev=None,
                    fwhm_ev=None,
                    area=None,
                    rsf=vals[2],
                    parameters=json.dumps(params),
                )
            )
        else:
            kw = _casa_params(toks[2:])
            first = {k: (_num(v[0]) if v else None) for k, v in kw.items()}
            params = {"raw": line, "keywords": kw, "energy_scale": scale}
            pos = first.get("Position")
            if pos is not None and to_be(pos) is not None:
                params["position_binding_ev"] = to_be(pos)
            rows.append(
                dict(
                    block=block_index,
                    region=region,
                    kind="component",
                    name=strings[0] if strings else None,
                    lineshape=strings[1] if len(strings) > 1 else None,
                    background=None,
                    start_ev=None,
                    end_ev=None,
                    position_ev=pos,
                    fwhm_ev=first.get("MFWHM", first.get("FWHM")),
                    area=first.get("Area"),
                    rsf=first.get("RSF"),
                    parameters=json.dumps(params),
                )
            )
    return rows


def _energy_kind(label: str) -> str | None:
    s = label.lower()
    if "kinetic" in s:
        return "kinetic"
    if "binding" in s:
        return "binding"
    if s.strip() in ("energy", "e"):
        return "kinetic"
    return None


_CASA_SCHEMA = reader_schema("xps_casa_components")


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    lines = _decode(path.read_bytes()).split("\n")
    c = _Cursor(path, lines)
    h = _read_header(c)
    blocks: list[dict] = []
    for _ in range(h["n_blocks"]):
        blocks.append(_read_block(c, h, blocks[0] if blocks else None))
    end = c.text("'end of experiment'")
    if end.lower() != "end of experiment":
        raise c.err(f"expected 'end of experiment', found {end[:60]!r}", c.i - 1)
    if not blocks:
        raise ReaderError(path, "the file holds no blocks")

    # Depth-profile modes: a time-like experimental variable gives the sputter time.
    time_var = None
    if h["experiment_mode"] in _DEPTH_MODES:
        for k, ev in enumerate(h["experimental_variables"]):
            if re.search(r"time|etch|sputter", ev["label"], re.I):
                time_var = k
                break
    cycles: dict[float | None, int] = {}

    xps_parts: list[dict] = []
    sims_parts: list[dict] = []
    casa: list[dict] = []
    meta_blocks = []
    skipped = []
    techniques = []
    for bi, b in enumerate(blocks):
        tech = b["technique"].upper()
        lake_tech = _TECHNIQUE.get(tech)
        vals = b.pop("values")
        n = vals.shape[0]
        corr = b["corresponding_variables"]
        if h["scan_mode"] == "REGULAR":
            ab = b["abscissa"]
            if ab["start"] is None or ab["step"] is None:
                raise ReaderError(
                    path, f"block {bi + 1}: abscissa start/increment unknown", f"line {b['line']}"
                )
            x = ab["start"] + ab["step"] * np.arange(n)
            y = vals[:, 0]
            ylab = corr[0]
        else:
            if len(corr) < 2:
                raise ReaderError(
                    path,
                    f"block {bi + 1}: IRREGULAR scan needs the abscissa and an ordinate variable",
                    f"line {b['line']}",
                )
            ab = {"label": corr[0]["label"], "unit": corr[0]["unit"], "start": None, "step": None}
            b["abscissa"] = ab
            x = vals[:, 0]
            y = vals[:, 1]
            ylab = corr[1]
        hv = b["source_energy_ev"]
        kind = _energy_kind(ab["label"])

        mb = {k: v for k, v in b.items() if k not in ("comment",)}
        mb.update(
            index=bi,
            n_points=int(n),
            ordinate_label=ylab["label"],
            ordinate_unit=ylab["unit"],
            comment=b["comment"],
            energy_axis=kind,
        )
        meta_blocks.append(mb)
        if lake_tech is None:
            raise UnsupportedFormat(
                path,
                f"block {bi + 1}: technique {b['technique']!r} is not stored in the lake "
                "(supported: XPS, UPS, AES, ELS and SIMS-family techniques)",
                f"line {b['line']}",
            )
        techniques.append(lake_tech)

        def ke_to_be(v, hv=hv, tech=tech):
            """Binding energy of a kinetic energy in this block (None if unknown)."""
            return hv - v if tech in _PHOTON and hv else None

        casa.extend(_casa_rows(bi, b, ke_to_be))
        if tech in _SIMS_FAMILY and re.search(
            r"mass|m/z|amu|\bu\b", ab["label"] + " " + ab["unit"], re.I
        ):
            sims_parts.append({"mz": x, "intensity": y})
            continue
        if kind is None:
            skipped.append(
                {"block": bi, "abscissa": ab["label"], "reason": "abscissa is not an energy"}
            )
            continue
        ke = x if kind == "kinetic" else None
        be = x if kind == "binding" else None
        if tech in _PHOTON and hv:
            if kind == "kinetic":
                be = hv - x
            else:
                ke = hv - x
        tval = b["experimental_variable_values"][time_var] if time_var is not None else None
        if time_var is not None:
            cycles.setdefault(tval, len(cycles) + 1)
        xps_parts.append(
            {
                "block": np.full(n, bi, np.int32),
                "region": b["block_identifier"],
                "cycle": cycles.get(tval) if time_var is not None else None,
                "sputter_time_s": tval,
                "point": np.arange(n, dtype=np.int32),
                "binding_energy_ev": be,
                "kinetic_energy_ev": ke,
                "intensity": y,
            }
        )
    if not xps_parts and not sims_parts:
        raise ReaderError(
            path, "no block has an energy or mass abscissa: " + json.dumps(skipped)[:200]
        )

    tables: dict[str, pa.Table] = {}
    if xps_parts:
        tables["xps_spectra"] = _xps_table(xps_parts)
    if sims_parts:
        tables["tof_sims_spectra"] = pa.table(
            {
                "channel": pa.nulls(sum(len(p["mz"]) for p in sims_parts), pa.float64()),
                "mz": pa.array(np.concatenate([p["mz"] for p in sims_parts])),
                "intensity": pa.array(np.concatenate([p["intensity"] for p in sims_parts])),
            }
        )
    if casa:
        tables["xps_casa_components"] = pa.Table.from_pylist(casa, schema=_CASA_SCHEMA)
    header = {k: v for k, v in h.items() if k != "include"}
    header["excluded_block_parameters"] = [k + 1 for k, v in enumerate(h["include"]) if not v]
    meta: dict = {
        "header": header,
        "blocks": meta_blocks,
        "n_blocks": len(blocks),
        "techniques": [b["technique"] for b in blocks],
    }
    if skipped:
        meta["skipped_blocks"] = skipped
    return Measurement(
        technique=techniques[0],
        format="vamas",
        reader="vamas",
        reader_version=READER_VERSION,
        instrument=h["instrument_model"]
        if h["instrument_model"].lower() != "not specified"
        else None,
        metadata=meta,
        tables=tables,
        paths=[str(path)],
    )


def _xps_table(parts: list[dict]) -> pa.Table:
    def cat(key: str, dtype) -> pa.Array:
        chunks = []
        for p in parts:
            n = len(p["point"])
            v = p[key]
            chunks.append(
                np.full(n, np.nan if v is None else v, dtype) if v is None or np.isscalar(v) else v
            )
        arr = np.concatenate(chunks) if chunks else np.empty(0, dtype)
        return pa.array(arr, from_pandas=True) if dtype is np.float64 else pa.array(arr)

    def per_block(key: str, typ: pa.DataType) -> pa.ChunkedArray:
        return pa.chunked_array(
            [pa.repeat(pa.scalar(p[key], typ), len(p["point"])) for p in parts], typ
        )

    return pa.table(
        {
            "block": pa.array(np.concatenate([p["block"] for p in parts])),
            "region": per_block("region", pa.string()),
            "cycle": per_block("cycle", pa.int32()),
            "sputter_time_s": per_block("sputter_time_s", pa.float64()),
            "point": pa.array(np.concatenate([p["point"] for p in parts])),
            "binding_energy_ev": cat("binding_energy_ev", np.float64),
            "kinetic_energy_ev": cat("kinetic_energy_ev", np.float64),
            "intensity": pa.array(np.concatenate([p["intensity"] for p in parts])),
        }
    )
