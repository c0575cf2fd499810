"""BioLogic EC-Lab binary ``.mpr`` (format ``biologic-mpr``): a container of modules.

Structure, worked out from the sample files with their ``.mpt`` exports as the truth
(shared/samples/cycler-biologic, seven pairs):

- File header, 52 bytes: ``BIO-LOGIC MODULAR FILE``, 0x1A, spaces, four zero bytes.
- Modules, back to back to the end of the file. Each starts with ``MODULE``, a 10-byte short
  name (``VMP Set``, ``VMP data``, ``VMP LOG``, ``VMP loop``, ``VMP ExtDev``) and a 25-byte long
  name, then either (older EC-Lab) uint32 length, uint32 version, 8-byte date ``MM/DD/YY``, or
  (EC-Lab 11.50 on) uint32 0xFFFFFFFF, uint32 length, uint32 (zero), uint32 version, date.
  ``length`` bytes of module content follow.
- ``VMP data``: uint32 number of points; the number of columns (uint8 for module versions 2
  and 3, uint16 from version 10); that many uint16 column ids; the records start at byte 405
  (version 2), 406 (version 3) or 1007 (version 10 and later) of the content. A record holds
  the columns in id order, little-endian, packed; ids 1, 2, 3, 21, 31 and 65 are bits of one
  flags byte (mode = bits 0-1, ox/red = bit 2, error = bit 3, control changes = bit 4, Ns
  changes = bit 5, counter inc. = bit 7; the error and counter-inc. bits are 0 throughout the
  sample pairs, so those two are not confirmed by them). :data:`COLUMNS` lists each id's title (as the
  ``.mpt`` export names it) and type; an id not listed cannot be skipped (its size is unknown),
  so such a file is rejected naming the id.
- ``VMP Set``: byte 0 is the technique id; Pascal strings (length byte, Latin-1 text) at fixed
  offsets hold the comments, electrode material, initial state, electrolyte and reference
  electrode.
- ``VMP LOG``: byte 2 technique id, byte 9 channel (from 0), float64 at 585 the acquisition
  start as an OLE date (days since 1899-12-30), Pascal strings at 951/958/965 the software and
  firmware versions, byte 974 the device code, Pascal string at 975 the device serial.
  Files without a log module (``vsp_ocv_with.mpr``) have no start time or device.

The rows then go through the same mapping as the ``.mpt`` reader (``_cycler_biologic``), so the
two readers give the same table for a file and its export.

Why not a library: galvani and yadg read .mpr files but are GPL-3 and cannot be dependencies
of this MIT project (galvani is only used, when installed, as an optional reference in a test).
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from . import _cycler_biologic as bl
from .base import Measurement, ReaderError, guarded

FORMATS = ("biologic-mpr",)
READER_VERSION = "2"  # 2: files mixing impedance and other rows give both tables (shared with .mpt)
MAGIC = b"BIO-LOGIC MODULAR FILE\x1a"
FILE_HEADER = 52

# Flag columns: id -> (title, bit mask) within the one flags byte.
FLAG_BITS: dict[int, tuple[str, int]] = {
    1: ("mode", 0x03),
    2: ("ox/red", 0x04),
    3: ("error", 0x08),
    21: ("control changes", 0x10),
    31: ("Ns changes", 0x20),
    65: ("counter inc.", 0x80),
}

# Column id -> (title as in the .mpt export, numpy type); each verified on a sample pair.
COLUMNS: dict[int, tuple[str, str]] = {
    4: ("time/s", "<f8"),
    5: ("control/V/mA", "<f4"),
    6: ("Ewe/V", "<f4"),
    7: ("dq/mA.h", "<f8"),
    8: ("I/mA", "<f4"),
    9: ("Ece/V", "<f4"),
    11: ("<I>/mA", "<f8"),
    13: ("(Q-Qo)/mA.h", "<f8"),
    16: ("Analog IN 1/V", "<f4"),
    17: ("Analog IN 2/V", "<f4"),
    19: ("control/V", "<f4"),
    20: ("control/mA", "<f4"),
    24: ("cycle number", "<f8"),
    32: ("freq/Hz", "<f4"),
    33: ("|Ewe|/V", "<f4"),
    34: ("|I|/A", "<f4"),
    35: ("Phase(Z)/deg", "<f4"),
    36: ("|Z|/Ohm", "<f4"),
    37: ("Re(Z)/Ohm", "<f4"),
    38: ("-Im(Z)/Ohm", "<f4"),
    39: ("I Range", "<u2"),
    70: ("P/W", "<f4"),
    76: ("<I>/mA", "<f4"),
    77: ("<Ewe>/V", "<f4"),
    96: ("|Ece|/V", "<f4"),
    98: ("Phase(Zce)/deg", "<f4"),
    99: ("|Zce|/Ohm", "<f4"),
    100: ("Re(Zce)/Ohm", "<f4"),
    101: ("-Im(Zce)/Ohm", "<f4"),
    131: ("Ns", "<u2"),
    169: ("Cs/µF", "<f4"),
    172: ("Cp/µF", "<f4"),
    174: ("<Ewe>/V", "<f4"),
    430: ("Phase(Zwe-ce)/deg", "<f4"),
    431: ("|Zwe-ce|/Ohm", "<f4"),
    432: ("Re(Zwe-ce)/Ohm", "<f4"),
    433: ("-Im(Zwe-ce)/Ohm", "<f4"),
    434: ("(Q-Qo)/C", "<f4"),
    435: ("dQ/C", "<f4"),
    441: ("<Ece>/V", "<f4"),
    467: ("Q charge/discharge/mA.h", "<f8"),
    468: ("half cycle", "<u4"),
    471: ("<Ece>/V", "<f4"),
}

# Offset of the first record inside the data module, by module version.
_DATA_START = {2: 405, 3: 406}
_DATA_START_NEW = 1007  # versions >= 10
_SET_STRINGS = {
    "comments": 7,
    "electrode_material": 286,
    "initial_state": 367,
    "electrolyte": 448,
    "reference_electrode": 533,
}


def sniff(path: Path, head: bytes) -> str | None:
    return "biologic-mpr" if head.startswith(MAGIC) else None


def modules(data: bytes, path: Path) -> list[dict]:
    """The modules of an .mpr: short name, long name, version, date, content offset and length."""
    if not data.startswith(MAGIC):
        raise ReaderError(
            path, "not a BioLogic .mpr (no 'BIO-LOGIC MODULAR FILE' header)", "byte 0"
        )
    pos = FILE_HEADER
    out = []
    size = len(data)
    while pos < size:
        if data[pos : pos + 6] != b"MODULE":
            raise ReaderError(
                path, "expected a module header ('MODULE'), found other bytes", f"byte {pos}"
            )
        if pos + 57 > size:
            raise ReaderError(path, "file ends inside a module header (truncated)", f"byte {pos}")
        short = data[pos + 6 : pos + 16].decode("latin-1").strip()
        long_name = data[pos + 16 : pos + 41].decode("latin-1").strip()
        if data[pos + 41 : pos + 45] == b"\xff\xff\xff\xff":
            if pos + 65 > size:
                raise ReaderError(
                    path, "file ends inside a module header (truncated)", f"byte {pos}"
                )
            length, _zero, version = struct.unpack_from("<III", data, pos + 45)
            date = data[pos + 57 : pos + 65]
            start = pos + 65
        else:
            length, version = struct.unpack_from("<II", data, pos + 41)
            date = data[pos + 49 : pos + 57]
            start = pos + 57
        if start + length > size:
            raise ReaderError(
                path, f"module {short!r} claims {length} bytes but the file ends after {size - start} (truncated)",
                f"byte {pos}",
            )  # fmt: skip
        out.append(
            {
                "short": short,
                "long": long_name,
                "version": version,
                "date": date.decode("latin-1", "replace").strip("\x00 "),
                "start": start,
                "length": length,
            }
        )
        pos = start + length
    return out


def record_dtype(ids: list[int], path: Path) -> tuple[np.dtype, list[tuple[int, str]]]:
    """numpy dtype of one record, and (id, title) of each column in it."""
    fields: list[tuple[str, str]] = []
    flags_added = False
    columns = []
    for cid in ids:
        if cid in FLAG_BITS:
            if not flags_added:
                fields.append(("_flags", "u1"))
                flags_added = True
            columns.append((cid, FLAG_BITS[cid][0]))
            continue
        if cid not in COLUMNS:
            raise ReaderError(
                path,
                f"data column id {cid} is not known to this reader, so the record layout cannot be "
                "decoded; export the file to .mpt in EC-Lab (that export is read) and report the id",
            )
        title, typ = COLUMNS[cid]
        fields.append((f"c{cid}", typ))
        columns.append((cid, title))
    if len({c for c, _ in columns}) != len(columns):
        raise ReaderError(path, "a column id appears twice in the data module")
    return np.dtype(fields), columns


def data_layout(
    data: bytes, mod: dict, path: Path
) -> tuple[int, int, np.dtype, list[tuple[int, str]]]:
    """(number of points, offset of the first record, record dtype, (id, title) per column)."""
    start, length, version = mod["start"], mod["length"], mod["version"]
    content = memoryview(data)[start : start + length]
    if length < 6:
        raise ReaderError(path, "data module too short", f"byte {start}")
    (npts,) = struct.unpack_from("<I", content, 0)
    if version in _DATA_START:
        ncols = content[4]
        ids_at = 5
        first = _DATA_START[version]
    elif version >= 10:
        (ncols,) = struct.unpack_from("<H", content, 4)
        ids_at = 6
        first = _DATA_START_NEW
    else:
        raise ReaderError(path, f"data module version {version} is not supported", f"byte {start}")
    if ids_at + 2 * ncols > min(first, length):
        raise ReaderError(
            path, f"{ncols} column ids do not fit the data module header", f"byte {start}"
        )
    ids = list(struct.unpack_from(f"<{ncols}H", content, ids_at))
    dtype, columns = record_dtype(ids, path)
    if first + npts * dtype.itemsize > length:
        raise ReaderError(
            path, f"data module holds {length - first} bytes of records, {npts} points need "
            f"{npts * dtype.itemsize} (truncated or unknown layout)", f"byte {start}",
        )  # fmt: skip
    return npts, start + first, dtype, columns


def data_columns(data: bytes, mod: dict, path: Path, select=None) -> dict[str, np.ndarray]:
    """EC-Lab columns of the data module, keyed by their .mpt titles: all of them as float64,
    or, with ``select`` (titles -> {title: numpy type}), only the selected ones."""
    npts, offset, dtype, columns = data_layout(data, mod, path)
    titles = list(dict.fromkeys(t for _, t in columns))
    only = select(titles) if select is not None else dict.fromkeys(titles, "float64")
    rec = np.frombuffer(data, dtype=dtype, count=npts, offset=offset)
    cols: dict[str, np.ndarray] = {}
    for cid, title in columns:
        if title in cols or title not in only:
            continue
        if cid in FLAG_BITS:
            mask = FLAG_BITS[cid][1]
            shift = (mask & -mask).bit_length() - 1
            cols[title] = ((rec["_flags"] & mask) >> shift).astype(only[title])
        else:
            cols[title] = rec[f"c{cid}"].astype(only[title])
    return cols


def _pstr(content: bytes, at: int, maxlen: int = 255) -> str | None:
    if at >= len(content):
        return None
    n = content[at]
    if n == 0 or n > maxlen or at + 1 + n > len(content):
        return None
    return content[at + 1 : at + 1 + n].decode("latin-1").strip() or None


def _ole(days: float) -> str | None:
    if not np.isfinite(days) or not 1.0 < days < 2958465.0:
        return None
    t = datetime(1899, 12, 30) + timedelta(days=days)
    return t.replace(microsecond=round(t.microsecond / 1000) * 1000 % 1000000).isoformat(
        timespec="milliseconds"
    )


def log_metadata(content: bytes) -> dict:
    """Metadata held in the ``VMP LOG`` module."""
    meta: dict = {}
    if len(content) > 10:
        meta["technique_id"] = content[2]
        meta["channel"] = content[9] + 1
    if len(content) >= 593:
        (days,) = struct.unpack_from("<d", content, 585)
        meta["start_time"] = _ole(days)
    if len(content) > 980:
        meta["software_version"] = _pstr(content, 951, 16)
        meta["firmware_version"] = _pstr(content, 958, 16)
        meta["device_code"] = content[974]
        meta["instrument_serial"] = _pstr(content, 975, 16)
    return meta


def settings_metadata(content: bytes) -> dict:
    """Technique id and the free-text fields of the ``VMP Set`` module."""
    meta: dict = {"technique_id": content[0] if content else None}
    for key, at in _SET_STRINGS.items():
        value = _pstr(content, at, 80)
        if value is not None:
            meta[key] = value
    return meta


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    data = path.read_bytes()
    mods = modules(data, path)
    by_name = {m["short"]: m for m in mods}
    if "VMP data" not in by_name:
        raise ReaderError(path, "no 'VMP data' module (file holds settings only)")
    all_titles = list(dict.fromkeys(t for _, t in data_layout(data, by_name["VMP data"], path)[3]))
    cols = data_columns(data, by_name["VMP data"], path, bl.needed_columns)

    settings: dict = {}
    if "VMP Set" in by_name:
        m = by_name["VMP Set"]
        settings = settings_metadata(data[m["start"] : m["start"] + m["length"]])
    log: dict = {}
    if "VMP LOG" in by_name:
        m = by_name["VMP LOG"]
        log = log_metadata(data[m["start"] : m["start"] + m["length"]])
    tid = log.get("technique_id", settings.get("technique_id"))
    technique = bl.TECHNIQUE_IDS.get(tid) if tid is not None else None
    kind, tables, mapping = bl.tables_from_columns(cols, technique, path)
    code = log.get("device_code")
    instrument = bl.DEVICE_CODES.get(code) if code is not None else None
    table = next(iter(tables.values()))
    metadata = {
        "technique": technique or (f"unknown technique id {tid}" if tid is not None else None),
        "technique_id": tid,
        "instrument_serial": log.get("instrument_serial"),
        "device_code": code,
        "channel": log.get("channel"),
        "start_time": log.get("start_time"),
        "software_version": log.get("software_version"),
        "firmware_version": log.get("firmware_version"),
        "modules": [
            {k: m[k] for k in ("short", "long", "version", "date", "length")} for m in mods
        ],
        "columns": all_titles,
        "n_points": table.num_rows,
        "settings": {k: v for k, v in settings.items() if k != "technique_id"},
        **mapping,
        "twin_key": bl.twin_key(kind, table),
    }
    if code is not None and instrument is None:
        metadata["instrument_note"] = f"BioLogic device code {code} not in the reader's table"
    return Measurement(
        technique=kind,
        format="biologic-mpr",
        reader="biologic_mpr",
        reader_version=READER_VERSION,
        instrument=instrument,
        metadata=metadata,
        tables=tables,
        paths=[str(path)],
    )
