"""IONTOF SurfaceLab ASCII spectrum export (technique ``tof-sims``, format ``iontof-spectrum``).

Layout (real exports in shared/samples/sims-iontof, e.g. ``P_Ru_Bi1_1.txt``)::

    # Binning: 200 channels
    # Deadtime Correction: on
    Channel<TAB>m/z<TAB>Intensity
    100<TAB>0.000202<TAB>2
    ...

CRLF or LF line ends; further ``#`` header lines may appear before the column titles; the
channel is the bin centre (may be fractional), counts may be non-integer (dead-time corrected).

Table ``tof_sims_spectra``: channel (bin centre, time-of-flight channel units), mz (u),
intensity (counts). Every data row of the file is kept, in file order.

Metadata: ``binning_channels`` (int), ``deadtime_correction`` (bool), every other ``# key: value``
header line under its key, and ``polarity`` / ``polarity_source`` when the file name says it
(``P_``/``N_`` prefix, ``_pos``/``_neg``); the spectrum itself does not record polarity.
``decimal_separator``: ``,`` for exports written with decimal commas (SurfaceLab on a
German-locale Windows; decided from the m/z column of the first data rows), else ``.``.

Why not a library: pySPM reads IONTOF's binary .ita/.itm files, not the ASCII exports; the
export is a three-column TSV, which pyarrow's multithreaded CSV parser reads at full speed, so
this reader only validates the header and hands the body to ``pyarrow.csv``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .base import Measurement, ReaderError, guarded

FORMATS = ("iontof-spectrum",)
READER_VERSION = "1"
_TITLES = ("channel", "m/z", "intensity")
_MAX_HEADER_LINES = 50


def sniff(path: Path, head: bytes) -> str | None:
    lines = head.split(b"\n", _MAX_HEADER_LINES + 1)
    for line in lines[:_MAX_HEADER_LINES]:
        s = line.strip()
        if s.startswith(b"#"):
            continue
        cols = [c.strip().lower() for c in s.split(b"\t")]
        return "iontof-spectrum" if tuple(c.decode("latin-1") for c in cols) == _TITLES else None
    return None


def polarity_from_name(name: str) -> str | None:
    """Ion polarity from a file name as labs encode it (``P_``/``N_`` prefix, ``_pos``/``_neg``)."""
    stem = Path(name).stem
    low = stem.lower()
    if re.search(r"(^|[_\-\s])pos(itive)?([_\-\s.]|$)", low) or stem.startswith("P_"):
        return "positive"
    if re.search(r"(^|[_\-\s])neg(ative)?([_\-\s.]|$)", low) or stem.startswith("N_"):
        return "negative"
    return None


def _parse_header(path: Path, data: bytes) -> tuple[dict, int]:
    """Header metadata and the number of header lines (``#`` lines plus the column titles)."""
    meta: dict = {}
    pos = 0
    for lineno in range(1, _MAX_HEADER_LINES + 1):
        end = data.find(b"\n", pos)
        if end < 0:
            raise ReaderError(path, "header ends before the column-title line", f"line {lineno}")
        line = data[pos:end].decode("latin-1").strip()
        pos = end + 1
        if line.startswith("#"):
            key, _, value = line.lstrip("#").partition(":")
            key, value = key.strip(), value.strip()
            if key.lower() == "binning":
                m = re.match(r"(\d+)", value)
                if not m:
                    raise ReaderError(path, f"binning {value!r} is not a channel count", f"line {lineno}")
                meta["binning_channels"] = int(m.group(1))
            elif key.lower() == "deadtime correction":
                meta["deadtime_correction"] = value.lower() == "on"
            elif key:
                meta[key] = value
            continue
        cols = tuple(c.strip().lower() for c in line.split("\t"))
        if cols != _TITLES:
            raise ReaderError(
                path, f"expected column titles Channel, m/z, Intensity, found {line[:80]!r}", f"line {lineno}"
            )
        return meta, lineno
    raise ReaderError(path, "no column-title line in the first 50 lines")


_TYPES = {"channel": pa.float64(), "mz": pa.float64(), "intensity": pa.float64()}
_COMMA_NUMBER = re.compile(r"^-?\d+,\d+$")


def _decimal_point(head: bytes, n_header: int) -> str:
    """"," when the data rows write decimal commas (SurfaceLab on a German-locale Windows), else
    ".": decided from the m/z column of the first data rows (m/z always has a fraction)."""
    rows = head.split(b"\n")[n_header : n_header + 20]
    for row in rows:
        cells = row.strip().split(b"\t")
        if len(cells) == 3:
            mz = cells[1].decode("latin-1").strip()
            if "." in mz:
                return "."
            if _COMMA_NUMBER.match(mz):
                return ","
    return "."


@guarded
def read(paths) -> Measurement:
    path = Path(paths if not isinstance(paths, (list, tuple)) else paths[0])
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(16384)
    meta, n_header = _parse_header(path, head)
    decimal = _decimal_point(head, n_header)
    meta["decimal_separator"] = decimal
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=["channel", "mz", "intensity"], skip_rows=n_header,
                use_threads=size > (4 << 20),
            ),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(
                column_types=_TYPES, strings_can_be_null=False, decimal_point=decimal
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        msg = str(exc).split("\n")[0]
        raise ReaderError(path, f"malformed data row: {msg}", _row_position(msg, n_header)) from None
    if table.num_rows == 0:
        raise ReaderError(path, "no data rows after the header")
    if table.column("mz").null_count or table.column("intensity").null_count:
        raise ReaderError(path, "empty m/z or intensity value in a data row (truncated file?)")
    mz = table.column("mz")
    mm = pc.min_max(mz)
    meta["n_channels"] = table.num_rows
    meta["mz_min"] = mm["min"].as_py()
    meta["mz_max"] = mm["max"].as_py()
    meta["total_counts"] = pc.sum(table.column("intensity")).as_py()
    pol = polarity_from_name(path.name)
    if pol:
        meta["polarity"] = pol
        meta["polarity_source"] = "file name"
    return Measurement(
        technique="tof-sims",
        format="iontof-spectrum",
        reader="iontof_spectrum",
        reader_version=READER_VERSION,
        instrument="IONTOF SurfaceLab",
        metadata=meta,
        tables={"tof_sims_spectra": table},
        paths=[str(path)],
    )


def _row_position(msg: str, header_lines: int) -> str | None:
    m = re.search(r"[Rr]ow #?(\d+)", msg)
    if not m:
        return None
    return f"line {int(m.group(1)) + header_lines}"
