"""BioLogic EC-Lab / BT-Lab ASCII export ``.mpt`` (formats ``biologic-mpt``).

Layout (real exports in shared/samples/cycler-biologic)::

    EC-Lab ASCII FILE
    Nb header lines : 59
    <blank>
    Chronopotentiometry                      <- technique title
    <blank>
    Run on channel : 1 (SN 5304)             <- "key : value" lines, some with indented
    ...                                         continuation lines
    Acquisition started on : 03/02/2021 16:17:59.000
    Device : SP-240 (SN 0200)
    Cycle Definition : Charge/Discharge alternance
    Is                  -100.000             <- settings block: 20-character columns,
    unit Is             mA                      one column per sequence (Ns) of the technique
    <blank>
    mode<TAB>ox/red<TAB>...<TAB>time/s<TAB>...   <- column titles on line "Nb header lines"
    1<TAB>0<TAB>...                              <- data, tab-separated

Latin-1 text; numbers use a decimal comma when EC-Lab ran in a locale that writes one
(``mb.issue_95.de.mpt``); the minimal variant has ``Nb header lines : 3`` and only the column
titles (``vsp_ocv_with.mpt``). ``Time format : Absolute`` exports (dates instead of
``time/s``) are rejected with that reason.

Variants seen in public exports (EC-Lab 11.12 to 11.61, BT-Lab 1.79) and read here: voltage as
``Ewe/V``, ``<Ewe>/V``, ``<Ewe/V>`` (11.50) or ``Ecell/V`` (BT-Lab, BCS cyclers); a blank title
inside the title line and titles after the last filled column (11.61 PEIS with Ece: the rows
stop before them; listed as ``columns_without_data``); a title line with or without a trailing
tab; a last line without a newline; a header without data rows (rejected: no data rows).

Which table: impedance techniques (PEIS, GEIS, ZIR; any file with ``freq/Hz``) go to
``impedance``; everything else (GCPL, CP, OCV, LSV, MB, ...) to ``cycling``. A file with
``freq/Hz`` that also has rows without a frequency (``freq/Hz`` 0: a Modulo Bat run with rest/CC
and PEIS/GEIS sequences, a GEIS/PEIS that records its hold) gives both tables: ``cycling`` of all
rows, ``impedance`` of the rows with a frequency (see ``_cycler_biologic.tables_from_columns``).
The column mapping and derivations are in ``_cycler_biologic`` (shared with the ``.mpr`` reader).

Why not a library: galvani and yadg read .mpt files but are GPL-3 (the project is MIT);
pandas is slower than pyarrow's CSV parser, which reads the tab-separated body here after the
header is parsed in Python.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import _cycler_biologic as bl
from ._cycler_text import (
    Columns,
    header_lines,
    last_line_complete,
    map_file,
    read_body,
    split_fixed_width,
)
from .base import Measurement, ReaderError, guarded

FORMATS = ("biologic-mpt",)
READER_VERSION = "2"
_MAGIC = (b"EC-Lab ASCII FILE", b"BT-Lab ASCII FILE")
_NB = re.compile(r"Nb header lines\s*:\s*(\d+)")
_MAX_HEADER = 10000


def sniff(path: Path, head: bytes) -> str | None:
    if head.startswith(_MAGIC) and b"Nb header lines" in head[:200]:
        return "biologic-mpt"
    return None


def parse_start_time(value: str) -> str | None:
    """ISO start time from EC-Lab's ``MM/DD/YYYY HH:MM:SS.fff`` (None if unparseable)."""
    value = value.strip()
    for fmt in (
        "%m/%d/%Y %H:%M:%S.%f",
        "%m/%d/%Y %H:%M:%S",
        "%m.%d.%Y %H:%M:%S.%f",
        "%m.%d.%Y %H:%M:%S",
    ):
        try:
            return datetime.strptime(value, fmt).isoformat(timespec="milliseconds")
        except ValueError:
            continue
    return None


def _is_settings_line(line: str, in_block: bool) -> bool:
    """A fixed-width settings row: key padded to 20 characters, then value columns."""
    if len(line) <= 20 or line[:1] in (" ", "\t") or " : " in line or line[19] != " ":
        return False
    return bool(line[:20].strip()) and (in_block or line[18] == " ")


def parse_header(lines: list[str]) -> dict:
    """Metadata from the header lines between the ``Nb header lines`` line and the titles.

    Returns ``technique_name`` (the title line), ``header`` (``key : value`` lines; repeated
    keys become lists; indented lines under a key without value become a nested dict; lines
    without a colon are listed under ``flags``) and ``settings`` (the fixed-width block, one
    value per technique sequence).
    """
    header: dict = {}
    settings: dict = {}
    technique_name = None
    parent_key: str | None = None
    in_block = False
    for line in lines:
        if not line.strip():
            continue
        if _is_settings_line(line, in_block):
            key, values = split_fixed_width(line)
            settings[key] = values[0] if len(values) == 1 else values
            in_block = True
            continue
        in_block = False
        indented = line[:1] in (" ", "\t")
        text = line.strip()
        if " : " in line or text.endswith(" :") or text.endswith(":"):
            key, _, value = line.partition(" : ") if " : " in line else (text.rstrip(":"), "", "")
            key, value = key.strip(), value.strip()
            if indented and parent_key is not None:
                sub = header.get(parent_key)
                if not isinstance(sub, dict):
                    sub = {} if sub in ("", None) else {"": sub}
                    header[parent_key] = sub
                sub[key] = value
                continue
            if key in header:
                prev = header[key]
                header[key] = (prev if isinstance(prev, list) else [prev]) + [value]
            else:
                header[key] = value
            parent_key = key if value == "" else None
            continue
        if indented and parent_key is not None and isinstance(header.get(parent_key), (dict, str)):
            sub = header.get(parent_key)
            if not isinstance(sub, dict):
                sub = {}
                header[parent_key] = sub
            sub.setdefault("flags", []).append(text)
            continue
        if technique_name is None and not header:
            technique_name = text
            continue
        header.setdefault("flags", []).append(text)
        parent_key = text  # e.g. "Text export" followed by indented "Mode : Standard"
    return {"technique_name": technique_name, "header": header, "settings": settings}


def _version(line: str | None) -> str | None:
    m = re.search(r"v([\d.]+)\s*\(software\)", line or "")
    return m.group(1) if m else None


def _device(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    m = re.match(r"(.+?)\s*\(SN\s*([^)]*)\)", value)
    return (m.group(1).strip(), m.group(2).strip()) if m else (value.strip(), None)


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    buf = map_file(path)
    first, _ = header_lines(buf, 2, path)
    if first[0].strip().encode("latin-1") not in _MAGIC:
        raise ReaderError(
            path, "not an EC-Lab ASCII export (first line is not 'EC-Lab ASCII FILE')", "line 1"
        )
    m = _NB.search(first[1])
    if not m:
        raise ReaderError(path, "second line does not give 'Nb header lines : N'", "line 2")
    nb = int(m.group(1))
    if not 3 <= nb <= _MAX_HEADER:
        raise ReaderError(path, f"implausible header length {nb} lines", "line 2")
    lines, start = header_lines(buf, nb, path)
    titles = lines[nb - 1].split("\t")
    while titles and titles[-1].strip() == "":
        titles.pop()
    columns = list(titles)  # as written, for the metadata
    # a blank title inside the line (EC-Lab 11.61 writes "...\tRwe-ce/Ohm\t\tEwe-Ece/V" when Ece
    # is recorded): a column of its own, named so that two blanks are not duplicates
    titles = [t if t.strip() else f"_blank{k + 1}" for k, t in enumerate(titles)]
    if not titles or "mode" not in titles and "freq/Hz" not in titles and "time/s" not in titles:
        raise ReaderError(
            path, f"line {nb} is not the column-title line: {lines[nb - 1][:80]!r}", f"line {nb}"
        )
    if len(set(titles)) != len(titles):
        dup = sorted({t for t in titles if titles.count(t) > 1})
        raise ReaderError(path, f"duplicate column titles {dup}", f"line {nb}")
    meta = parse_header(lines[2 : nb - 1])

    # first data line: decimal separator and field count
    probe = buf[start : min(len(buf), start + 65536)].to_pybytes()
    first_data = probe.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_data.strip():
        raise ReaderError(path, "no data rows after the header", f"line {nb + 1}")
    decimal_comma = b"," in first_data
    n_fields = first_data.count(b"\t") + 1
    without_data: list[str] = []
    if n_fields < len(titles):
        # EC-Lab 11.61 writes titles after the last column it fills (the blank one and
        # "Ewe-Ece/V" of PEIS with Ece recorded): the rows stop after the columns they fill. That
        # is accepted when no column the mapping uses is among the titles without values.
        without_data = columns[n_fields:]
        used_missing = [t for t in titles[n_fields:] if t in bl.needed_columns(titles)]
        if used_missing:
            raise ReaderError(
                path,
                f"first data row has {n_fields} fields for {len(titles)} column titles "
                f"(no values for {used_missing})",
                f"line {nb + 1}",
            )
        titles = titles[:n_fields]
    names = titles + [f"_extra{k}" for k in range(n_fields - len(titles))]
    end = last_line_complete(buf, start, b"\t", len(titles))
    if end <= start:
        raise ReaderError(path, "no complete data row after the header", f"line {nb + 1}")
    if "time/s" in titles and b"/" in first_data.split(b"\t")[titles.index("time/s")]:
        raise ReaderError(
            path,
            "absolute-time export (dates in time/s) is not supported: export with elapsed time",
        )
    # only the columns the mapping uses are converted
    needed = bl.needed_columns(titles)
    used = list(needed)
    table = read_body(
        path, buf, start, end, names,
        delimiter="\t", decimal_comma=decimal_comma,
        types={c: pa.from_numpy_dtype(np.dtype(t)) for c, t in needed.items()}, include=used,
        first_line=nb + 1,
    )  # fmt: skip
    if table.num_rows == 0:
        raise ReaderError(path, "no data rows after the header", f"line {nb + 1}")
    for c in used:
        if table.column(c).null_count:
            raise ReaderError(path, f"empty value in column {c!r} (truncated or damaged file?)")
    data = Columns(table)
    del table
    cols = {c: data.get(c, needed[c]) for c in used}
    del data

    hdr = meta["header"]
    tname = meta["technique_name"]
    technique = bl.TECHNIQUE_NAMES.get(tname) if tname else None
    kind, tables, mapping = bl.tables_from_columns(cols, technique, path)
    instrument, serial = _device(hdr.get("Device") if isinstance(hdr.get("Device"), str) else None)
    started = hdr.get("Acquisition started on")
    software = next((k for k in hdr.get("flags", []) if "(software)" in k), None)
    channel = hdr.get("Run on channel")
    metadata = {
        "technique": technique or (tname if tname else None),
        "technique_name": tname,
        "instrument_serial": serial,
        "channel": int(channel.split()[0])
        if isinstance(channel, str) and channel.split()[0].isdigit()
        else None,
        "start_time": parse_start_time(started) if isinstance(started, str) else None,
        "software_version": _version(software),
        "cycle_definition": hdr.get("Cycle Definition"),
        "decimal_separator": "," if decimal_comma else ".",
        "encoding": "latin-1",
        "header_lines": nb,
        "columns": columns,
        **({"columns_without_data": without_data} if without_data else {}),
        "n_points": next(iter(tables.values())).num_rows,
        "settings": meta["settings"],
        "header": hdr,
        "dropped_incomplete_last_row": end < len(buf) and bool(bytes(buf[end:]).strip()),
        **mapping,
    }
    metadata["twin_key"] = bl.twin_key(kind, next(iter(tables.values())))
    return Measurement(
        technique=kind,
        format="biologic-mpt",
        reader="biologic_mpt",
        reader_version=READER_VERSION,
        instrument=instrument,
        metadata=metadata,
        tables=tables,
        paths=[str(path)],
    )
