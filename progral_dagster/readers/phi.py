"""PHI MultiPak / SmartSoft native XPS files: spectra ``.spe`` and depth profiles ``.pro``
(technique ``xps``, formats ``phi-spe`` and ``phi-pro``).

No published description of the binary part exists; the layout below was worked out from the
sample files (shared/samples/xps-phi: VersaProbe 4 ``SnO2_10nm.spe`` and ``SnO2_10nm_1.pro``,
Quantum 2000 ``test0.spe``) by matching the sizes and offsets against the header's region
definitions, and is checked on every read:

- ASCII header from ``SOFH`` to ``EOFH`` (CRLF or LF): ``Key: value`` lines. ``NoSpectralReg``
  and one ``SpectralRegDef: <no> <id> <name> <Z> <points> <step> <start> <end> <...> <...>
  <dwell s> <pass energy> <mode>`` per region (energies are binding energies in eV; the first
  point is at ``start``, point i at ``start + i * step``); the ``...Full`` variants describe the
  acquisition template and are kept as metadata only. ``.pro`` adds ``NoDPDataCyc`` (cycles),
  ``DepthCalDef`` and sputter settings.
- Binary part, little endian, right after the ``EOFH`` line: four int32 (1, number of data
  descriptors n, 96 n, 16), then n descriptors of 96 bytes (24 int32 slots):
  slot 0 descriptor number, slot 3 region number (0 for profile summaries), slot 5 length of
  the fastest axis, slot 6 length of the second axis, slots 8 and 10 the axis names (4 ASCII
  bytes: ``pnt``, ``sar``/``cyc``/``reg``), bytes 56-71 the unit (``c/s``, ``s``,
  ``c/s * eV``), slot 18 the sample type (``f4`` VersaProbe, ``f8`` Quantum 2000), slot 19 the
  data size in bytes, slot 20 the data offset from the start of the binary part.
- Spectrum data: ``points x cycles`` samples, points fastest (one spectrum per cycle). The
  Quantum 2000 writes each region's dwell time (float32) after its samples.
- ``.pro`` summaries (axes ``cyc`` x ``reg``, cycles fastest): unit ``s`` = the sputter time of
  each cycle per region, unit ``c/s * eV`` = the profile's integrated area per cycle and region.

Table ``xps_spectra``: block (region index, 0-based), region (name), cycle (1-based; null for
``.spe``), sputter_time_s (s, ``.pro`` only), point (0-based), binding_energy_ev (eV, from the
region definition), kinetic_energy_ev (hv - BE, hv from ``XraySource``: the kinetic energy
referenced to the Fermi level, as the VAMAS reader gives it; the analyser work function is kept
in ``metadata.work_function_ev``), intensity (the file's unit, normally counts per second: ``metadata.unit``).

Metadata: every header line (repeated keys as lists), ``regions`` (parsed definitions),
``n_cycles``, ``sputter_times_s`` and ``profile_areas`` (``.pro``), ``excitation_energy_ev``,
``work_function_ev``, ``dtype``.

Why not a library: pynxtools-xps (Apache-2.0) reads these files but pulls in the NeXus tool
chain, and yadg's reader is GPL-3.0 (not allowed as a dependency of this MIT project); the
format is small, so it is decoded here with numpy, with every size and offset checked against
the header before any array is created.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa

from .base import Measurement, ReaderError, guarded

FORMATS = ("phi-spe", "phi-pro")
READER_VERSION = "2"  # 2: KE = hv - BE (work function kept as metadata)
_DESC = 96
_DTYPES = {b"f4": "<f4", b"f8": "<f8", b"i4": "<i4"}
_MAX_HEADER = 1 << 20


def sniff(path: Path, head: bytes) -> str | None:
    if not head.startswith(b"SOFH"):
        return None
    m = re.search(rb"\nFileType:\s*(\w+)", head)
    kind = m.group(1).upper() if m else b""
    if kind == b"DEPTHPRO" or (not kind and path.suffix.lower() == ".pro"):
        return "phi-pro"
    return "phi-spe"


def _header(path: Path, data: bytes) -> tuple[dict, int]:
    end = data.find(b"EOFH", 0, _MAX_HEADER)
    if not data.startswith(b"SOFH") or end < 0:
        raise ReaderError(path, "no SOFH..EOFH header (not a PHI file, or truncated header)")
    nl = data.find(b"\n", end)
    if nl < 0:
        raise ReaderError(path, "file ends right after EOFH: no binary data", f"byte {end}")
    meta: dict = {}
    for line in data[4:end].decode("latin-1").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in meta:
            if not isinstance(meta[key], list):
                meta[key] = [meta[key]]
            meta[key].append(value)
        else:
            meta[key] = value
    return meta, nl + 1


def _as_list(v) -> list[str]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _regions(path: Path, meta: dict) -> list[dict]:
    regs = []
    for line in _as_list(meta.get("SpectralRegDef")):
        f = line.split()
        try:
            reg = {
                "number": int(f[0]),
                "id": int(f[1]),
                "name": f[2],
                "atomic_number": int(f[3]),
                "points": int(f[4]),
                "step_ev": float(f[5]),
                "start_ev": float(f[6]),
                "end_ev": float(f[7]),
                "dwell_s": float(f[10]),
                "pass_energy_ev": float(f[11]),
            }
        except (IndexError, ValueError):
            raise ReaderError(path, f"cannot read the region definition {line[:80]!r}") from None
        if not all(np.isfinite(reg[k]) for k in ("step_ev", "start_ev", "end_ev", "dwell_s")):
            raise ReaderError(path, f"region {reg['name']}: energies or dwell time not finite")
        if reg["points"] < 1:
            raise ReaderError(path, f"region {reg['name']} has {reg['points']} points")
        last = reg["start_ev"] + reg["step_ev"] * (reg["points"] - 1)
        if abs(last - reg["end_ev"]) > max(abs(reg["step_ev"]), 1e-6) * 0.51:
            raise ReaderError(
                path,
                f"region {reg['name']}: start {reg['start_ev']} + {reg['points'] - 1} steps of "
                f"{reg['step_ev']} does not end at {reg['end_ev']}",
            )
        regs.append(reg)
    n = meta.get("NoSpectralReg")
    if n is not None and str(n).strip().isdigit() and int(n) != len(regs):
        raise ReaderError(path, f"NoSpectralReg says {n} regions, {len(regs)} SpectralRegDef lines")
    if not regs:
        raise ReaderError(path, "no SpectralRegDef line in the header")
    return regs


def _descriptors(path: Path, bin_: memoryview, base: int) -> list[dict]:
    if len(bin_) < 16:
        raise ReaderError(path, "binary part shorter than its 16-byte header", f"byte {base}")
    one, n, size, first = struct.unpack_from("<4i", bin_, 0)
    if n < 1 or size != n * _DESC or first != 16 or 16 + size > len(bin_):
        raise ReaderError(
            path,
            f"binary header ({one}, {n}, {size}, {first}) does not describe {n} data blocks "
            f"within {len(bin_)} bytes",
            f"byte {base}",
        )
    out = []
    for k in range(n):
        off = 16 + k * _DESC
        slots = struct.unpack_from("<24i", bin_, off)
        raw = bytes(bin_[off : off + _DESC])
        dkey = raw[72:76].rstrip(b"\x00")
        d = {
            "number": slots[0],
            "region": slots[3],
            "n1": slots[5],
            "n2": slots[6],
            "axis1": raw[32:36].rstrip(b"\x00").decode("latin-1"),
            "axis2": raw[40:44].rstrip(b"\x00").decode("latin-1"),
            "unit": raw[56:72].split(b"\x00", 1)[0].decode("latin-1"),
            "dtype": _DTYPES.get(dkey),
            "nbytes": slots[19],
            "offset": slots[20],
        }
        if d["dtype"] is None:
            raise ReaderError(
                path, f"data block {k + 1}: unknown sample type {dkey!r}", f"byte {base + off + 72}"
            )
        item = np.dtype(d["dtype"]).itemsize
        if d["n1"] < 1 or d["n2"] < 1 or d["nbytes"] != d["n1"] * d["n2"] * item:
            raise ReaderError(
                path,
                f"data block {k + 1}: {d['n1']} x {d['n2']} samples of {item} bytes do not make "
                f"{d['nbytes']} bytes",
                f"byte {base + off}",
            )
        if d["offset"] < 16 + size or d["offset"] + d["nbytes"] > len(bin_):
            raise ReaderError(
                path,
                f"data block {k + 1} ({d['nbytes']} bytes at {d['offset']}) lies outside the "
                f"{len(bin_)}-byte binary part (truncated file?)",
                f"byte {base + off + 80}",
            )
        out.append(d)
    return out


def _excitation(meta: dict) -> float | None:
    m = re.search(r"([0-9]+(?:\.[0-9]*)?)", str(meta.get("XraySource", "")))
    return float(m.group(1)) if m else None


def _work_function(meta: dict) -> float | None:
    m = re.match(r"\s*(-?[0-9.]+)", str(meta.get("AnalyserWorkFcn", "")))
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def _finite_list(a: np.ndarray) -> list[float | None]:
    """JSON-safe list: non-finite values become None."""
    return [float(v) if np.isfinite(v) else None for v in a]


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    data = path.read_bytes()
    meta, start = _header(path, data)
    regions = _regions(path, meta)
    bin_ = memoryview(data)[start:]
    descs = _descriptors(path, bin_, start)
    file_type = str(meta.get("FileType", "")).strip().upper()
    is_pro = file_type == "DEPTHPRO"
    by_region = {r["number"]: r for r in regions}
    spectra = [d for d in descs if d["region"] > 0]
    summaries = [d for d in descs if d["region"] <= 0]
    if len(spectra) != len(regions):
        raise ReaderError(
            path, f"{len(regions)} regions in the header, {len(spectra)} spectra in the data"
        )

    def array(d: dict) -> np.ndarray:
        return np.frombuffer(bin_, dtype=d["dtype"], count=d["n1"] * d["n2"], offset=d["offset"])

    ncyc = spectra[0]["n2"]
    times = None
    areas = None
    for d in summaries:
        if (
            d["axis1"] == "cyc"
            and d["axis2"] == "reg"
            and d["n1"] == ncyc
            and d["n2"] == len(regions)
        ):
            vals = array(d).astype(np.float64).reshape(d["n2"], d["n1"])
            if d["unit"].strip() == "s":
                times = vals
            elif "ev" in d["unit"].lower():
                areas = vals
    hv = _excitation(meta)
    phi = _work_function(meta)
    cols: dict[str, list] = {k: [] for k in ("block", "cycle", "time", "point", "be", "y")}
    names: list[str] = []
    region_idx: list[np.ndarray] = []
    for bi, d in enumerate(spectra):
        reg = by_region.get(d["region"])
        if reg is None:
            raise ReaderError(
                path, f"data block {d['number']} refers to region {d['region']}, not in the header"
            )
        if d["n1"] != reg["points"]:
            raise ReaderError(
                path,
                f"region {reg['name']}: header says {reg['points']} points, data has {d['n1']}",
            )
        if d["n2"] != ncyc:
            raise ReaderError(path, f"region {reg['name']}: {d['n2']} cycles, first region {ncyc}")
        y = array(d).astype(np.float64)
        n, nc = d["n1"], d["n2"]
        be = reg["start_ev"] + reg["step_ev"] * np.arange(n)
        cols["block"].append(np.full(n * nc, bi, np.int32))
        cols["point"].append(np.tile(np.arange(n, dtype=np.int32), nc))
        cols["be"].append(np.tile(be, nc))
        cols["y"].append(y)
        cols["cycle"].append(np.repeat(np.arange(1, nc + 1, dtype=np.int32), n))
        ri = sorted(by_region).index(d["region"])
        t = times[ri] if times is not None else np.full(nc, np.nan)
        cols["time"].append(np.repeat(t + 0.0, n))  # + 0.0: no negative zero
        names.append(reg["name"])
        region_idx.append(np.full(n * nc, bi))
    be = np.concatenate(cols["be"])
    ke = hv - be if hv else None
    nrows = len(be)
    table = pa.table(
        {
            "block": pa.array(np.concatenate(cols["block"])),
            "region": pa.chunked_array(
                [
                    pa.repeat(pa.scalar(nm, pa.string()), len(ix))
                    for nm, ix in zip(names, region_idx, strict=True)
                ],
                pa.string(),
            ),
            "cycle": pa.array(np.concatenate(cols["cycle"]))
            if is_pro
            else pa.nulls(nrows, pa.int32()),
            "sputter_time_s": pa.array(np.concatenate(cols["time"]), from_pandas=True)
            if is_pro
            else pa.nulls(nrows, pa.float64()),
            "point": pa.array(np.concatenate(cols["point"])),
            "binding_energy_ev": pa.array(be),
            "kinetic_energy_ev": pa.array(ke) if ke is not None else pa.nulls(nrows, pa.float64()),
            "intensity": pa.array(np.concatenate(cols["y"])),
        }
    )
    if not np.all(np.isfinite(table.column("intensity").to_numpy())):
        raise ReaderError(path, "non-finite intensities in the data (corrupt binary part?)")
    out_meta: dict = {"header": meta, "regions": regions, "file_type": file_type or None}
    out_meta.update(
        n_cycles=ncyc,
        unit=spectra[0]["unit"],
        dtype=spectra[0]["dtype"],
        excitation_energy_ev=hv,
        work_function_ev=phi,
    )
    if is_pro:
        out_meta["sputter_times_s"] = _finite_list(times[0] + 0.0) if times is not None else None
        if areas is not None:
            out_meta["profile_areas"] = {
                r["name"]: _finite_list(areas[i]) for i, r in enumerate(regions)
            }
    return Measurement(
        technique="xps",
        format="phi-pro" if is_pro else "phi-spe",
        reader="phi",
        reader_version=READER_VERSION,
        instrument=str(meta.get("InstrumentModel")) if meta.get("InstrumentModel") else None,
        metadata=out_meta,
        tables={"xps_spectra": table},
        paths=[str(path)],
    )
