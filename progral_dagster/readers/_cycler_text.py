"""Shared plumbing of the cycler text readers: memory-mapped input, header lines, and the body
handed to pyarrow's multithreaded CSV parser (the fastest maintained CSV parser available here).

The file is memory-mapped, so the body is parsed without a copy into Python memory, and only the
columns a reader needs are converted (``include``), which keeps the readers at or above
pyarrow's own full-file parse rate.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .base import ReaderError


def map_file(path: Path) -> pa.Buffer:
    """The file's bytes as a zero-copy pyarrow buffer over a memory map."""
    try:
        with pa.memory_map(str(path), "r") as mm:
            return mm.read_buffer()
    except OSError as exc:
        raise ReaderError(path, f"cannot open: {exc}") from None


def header_lines(
    buf: pa.Buffer, n: int, path: Path, *, limit: int = 1 << 20
) -> tuple[list[str], int]:
    """The first ``n`` lines (decoded Latin-1, line ends stripped) and the byte offset after them."""
    head = buf[: min(len(buf), limit)].to_pybytes()
    lines: list[str] = []
    pos = 0
    for k in range(n):
        end = head.find(b"\n", pos)
        if end < 0:
            if pos < len(head) and len(head) == len(buf):
                end = len(head)  # last line without a newline
            else:
                raise ReaderError(
                    path,
                    f"file ends inside the header (expected {n} header lines)",
                    f"line {k + 1}",
                )
        lines.append(head[pos:end].decode("latin-1").rstrip("\r"))
        pos = end + 1
    return lines, min(pos, len(buf))


def last_line_complete(buf: pa.Buffer, start: int, delimiter: bytes, n_fields: int) -> int:
    """End offset of the body, without a trailing line that has fewer fields than ``n_fields``.

    Cycler logs that are still being written, and files cut short, end in a partial record;
    that record is dropped (readers note it in the metadata) instead of failing the file.
    """
    size = len(buf)
    if size <= start:
        return start
    tail_start = max(start, size - 65536)
    tail = buf[tail_start:].to_pybytes()
    stripped = tail.rstrip(b"\r\n")
    if not stripped:
        return start if tail_start == start else size
    nl = stripped.rfind(b"\n")
    if nl < 0 and tail_start > start:
        return size  # a single line longer than 64 kB: leave it to the parser
    last = stripped[nl + 1 :]
    if last.count(delimiter) + 1 < n_fields:
        return tail_start + nl + 1 if nl >= 0 else start
    return size


_SHORT_LINE = 160  # bytes
_SMALL_BODY = 1 << 20  # bytes


def read_body(
    path: Path,
    buf: pa.Buffer,
    start: int,
    end: int,
    names: list[str],
    *,
    delimiter: str,
    decimal_comma: bool = False,
    types: dict[str, pa.DataType] | None = None,
    include: list[str] | None = None,
    first_line: int = 1,
    null_values: list[str] | None = None,
    quote_char: str | bool = False,
) -> pa.Table:
    """Parse ``buf[start:end]`` as delimited rows with the given column names.

    Errors become :class:`ReaderError` with the file line number where pyarrow reports one.
    """
    body = buf[start:end]
    # small bodies are parsed on the calling thread: handing one block to the thread pool costs
    # more than parsing it (and, on a busy machine, a scheduling delay)
    read_options = pacsv.ReadOptions(
        column_names=names, block_size=1 << 20, use_threads=len(body) > _SMALL_BODY
    )
    parse_options = pacsv.ParseOptions(delimiter=delimiter, quote_char=quote_char)
    convert_options = pacsv.ConvertOptions(
        column_types=types or {},
        include_columns=include,
        decimal_point="," if decimal_comma else ".",
        null_values=null_values if null_values is not None else [""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    first_nl = body[: min(len(body), 1 << 16)].to_pybytes().find(b"\n")
    line_len = first_nl + 1 if first_nl >= 0 else len(body)
    try:
        if line_len <= _SHORT_LINE:
            # Short rows: the whole-file parser (all cores) holds about the body size while it
            # converts, which is less than the decoded table (about 100 bytes a row) here.
            return pacsv.read_csv(
                pa.BufferReader(body),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
        # Long rows of which few columns are used: the streaming reader converts block by
        # block, so peak memory stays near the size of the columns kept.
        stream = pacsv.open_csv(
            pa.BufferReader(body),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        return pa.Table.from_batches(list(stream), schema=stream.schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        msg = str(exc).split("\n")[0]
        m = re.search(r"[Rr]ow #?(\d+)", msg)
        where = f"line {int(m.group(1)) + first_line - 1}" if m else None
        if where is None:
            where = _locate_bad_value(body, names, msg, delimiter, quote_char, first_line)
        raise ReaderError(path, f"malformed data row: {msg}", where) from None


def _locate_bad_value(body, names, msg, delimiter, quote_char, first_line) -> str | None:
    """Line of the first cell pyarrow could not convert (its message names column and value)."""
    m = re.search(r"column #(\d+).*invalid value '(.*)'", msg)
    if not m or int(m.group(1)) >= len(names):
        return None
    name, value = names[int(m.group(1))], m.group(2)
    try:
        t = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=quote_char),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string()}, include_columns=[name]
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    hits = pc.index(t.column(name), value).as_py()
    return f"line {hits + first_line}" if hits is not None and hits >= 0 else None


def column_numpy(col: pa.ChunkedArray | pa.Array, dtype=None) -> np.ndarray:
    """A (chunked) pyarrow column as one numpy array; nulls become NaN. Combining the chunks
    first is an order of magnitude faster than ChunkedArray.to_numpy."""
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = a.to_numpy(zero_copy_only=False)
    return out if dtype is None else out.astype(dtype, copy=False)


def _string_parts(col) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, row starts, row ends) of a string column, without copying the text."""
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if a.type == pa.large_string():
        a = a.cast(pa.string())
    if a.type != pa.string():
        raise ValueError("not a text column")
    if a.null_count:
        raise ValueError(
            f"empty value in row {int(np.flatnonzero(a.is_null().to_numpy(zero_copy_only=False))[0]) + 1}"
        )
    _, off_buf, data_buf = a.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int32, count=len(a) + 1, offset=4 * a.offset)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    return data, offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)


# "[Nd ]h:m:s[.f]" with one-digit fields, long fractions or a decimal comma (MIMS Client:
# "0d 00:00:5.05000019073486"), for what the fast decoder does not take
_LOOSE_DURATION = r"^\s*(?:(?P<d>\d+)d\s+)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:[.,]\d*)?)\s*$"


def durations_seconds(col, chunk: int = 1 << 15) -> np.ndarray:
    """Seconds from text durations ``[Nd ]H...H:MM:SS[.fff]`` (Maccor ``0d 00:00:10.0000``,
    PEC ``123:45:06.789``: hours unbounded), decoded with numpy on the column's bytes (several
    times faster than regular expressions over the strings), ``chunk`` rows at a time so that
    the working arrays stay small. A chunk the fast decoder refuses is tried once more with a
    regular expression that also takes one-digit fields, long fractions and decimal commas.

    Raises ValueError naming the first row (from 1) that is not such a duration.
    """
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    out = np.empty(len(a))
    for i in range(0, len(a), chunk):
        part = a.slice(i, chunk)
        try:
            out[i : i + chunk] = _durations(part)
        except ValueError:
            try:
                out[i : i + chunk] = _loose_durations(part)
            except ValueError as exc:
                m = re.match(r"row (\d+)", str(exc))
                if not m:
                    raise
                raise ValueError(
                    f"row {int(m.group(1)) + i} is not a [Nd ]h:mm:ss[.f] duration"
                ) from None
    return out


def _loose_durations(col) -> np.ndarray:
    parts = pc.extract_regex(pc.replace_substring(col, ",", "."), _LOOSE_DURATION)
    bad = parts.is_null().to_numpy(zero_copy_only=False)
    if bad.any():
        raise ValueError(f"row {int(np.flatnonzero(bad)[0]) + 1} is not a duration")

    def field(name: str) -> np.ndarray:
        f = pc.struct_field(parts, name)
        f = pc.if_else(pc.equal(f, ""), "0", f)
        return column_numpy(pc.cast(f, pa.float64()))

    return field("d") * 86400.0 + field("h") * 3600.0 + field("m") * 60.0 + field("s")


def _durations(col) -> np.ndarray:
    data, start, end = _string_parts(col)
    n = start.size
    if n == 0:
        return np.zeros(0)
    buf = np.concatenate([np.full(32, 32, dtype=np.uint8), data, np.zeros(32, dtype=np.uint8)])
    start = start + 32
    end = end + 32

    def at(pos):
        return buf[pos]

    def digit(pos):
        b = buf[pos]
        return (b >= 48) & (b <= 57), b.astype(np.int64) - 48

    for _ in range(4):  # trailing blanks / CR
        b = at(end - 1)
        end = end - ((end > start) & ((b == 32) | (b == 13)))
    bad = np.zeros(n, dtype=bool)
    frac_len = np.full(n, -1)
    for k in range(10):  # '.' within the last 10 characters
        hit = (frac_len < 0) & (end - 1 - k > start) & (at(end - 1 - k) == 46)
        frac_len[hit] = k
    has_frac = frac_len >= 0
    sec_end = np.where(has_frac, end - frac_len - 1, end)
    bad |= sec_end - 7 < start  # shorter than H:MM:SS
    frac = np.zeros(n)
    for j in range(int(frac_len.max()) if has_frac.any() else 0):
        use = has_frac & (j < frac_len)
        ok, v = digit(sec_end + 1 + j)
        bad |= use & ~ok
        frac += np.where(use, v, 0) * 10.0 ** -(j + 1)
    parts = []
    for p in (2, 1, 5, 4):  # S S M M
        ok, v = digit(sec_end - p)
        bad |= ~ok
        parts.append(v)
    secs = parts[0] * 10 + parts[1]
    mins = parts[2] * 10 + parts[3]
    bad |= (at(sec_end - 3) != 58) | (at(sec_end - 6) != 58) | (mins > 59) | (secs > 60)
    hours = np.zeros(n, dtype=np.int64)
    first = sec_end - 6
    going = np.ones(n, dtype=bool)
    for j in range(1, 10):  # hour digits before the first colon
        pos = sec_end - 6 - j
        ok, v = digit(pos)
        going &= (pos >= start) & ok
        if not going.any():
            break
        hours += np.where(going, v * 10 ** (j - 1), 0)
        first = np.where(going, pos, first)
    bad |= first == sec_end - 6
    days = np.zeros(n, dtype=np.int64)
    has_d = (first - 3 >= start) & (at(first - 1) == 32) & (at(first - 2) == 100)
    going = has_d.copy()
    d_first = first - 2
    for j in range(1, 8):  # optional "Nd " before the hours
        pos = first - 2 - j
        ok, v = digit(pos)
        going &= (pos >= start) & ok
        if not going.any():
            break
        days += np.where(going, v * 10 ** (j - 1), 0)
        d_first = np.where(going, pos, d_first)
    bad |= has_d & (d_first == first - 2)
    first = np.where(has_d, d_first, first)
    # only blanks (at most 16) before the duration
    lead = first - start
    bad |= lead > 16
    for j in range(int(min(lead.max(), 16))):
        bad |= (j < lead) & (at(np.minimum(start + j, first)) != 32)
    if bad.any():
        raise ValueError(
            f"row {int(np.flatnonzero(bad)[0]) + 1} is not a [Nd ]h:mm:ss[.f] duration"
        )
    return days * 86400.0 + hours * 3600.0 + mins * 60.0 + secs + frac


def string_codes(col, classify) -> tuple[np.ndarray, list[str]]:
    """int8 codes of a text column, ``classify`` called once per distinct (trimmed) value;
    and the distinct values."""
    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = pc.dictionary_encode(pc.utf8_trim_whitespace(a))
    names = enc.dictionary.to_pylist()
    lut = np.array([classify(x) for x in names] or [0], dtype=np.int8)
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return lut[idx], [x for x in names if x is not None]


class Columns:
    """The columns of a parsed table, each converted to numpy once, on first use; a column's
    arrow chunks are let go as it is converted, so peak memory is the parse plus one column
    (the caller drops its own reference to the table after building this)."""

    def __init__(self, table: pa.Table):
        self.num_rows = table.num_rows
        self._arrow = {name: table.column(name) for name in table.column_names}
        self._np: dict[str, np.ndarray] = {}

    def null_count(self, name: str) -> int:
        a = self._arrow.get(name)
        return a.null_count if a is not None else int(np.isnan(self._np[name]).sum())

    def take(self, name: str):
        """The arrow column itself, handed over (for text columns)."""
        return self._arrow.pop(name)

    def get(self, name: str, dtype=np.float64) -> np.ndarray:
        if name not in self._np:
            self._np[name] = column_numpy(self._arrow.pop(name), dtype)
        return self._np[name]


def split_fixed_width(line: str, width: int = 20) -> tuple[str, list[str]]:
    """Key and values of a fixed-width settings line (EC-Lab writes 20-character columns)."""
    key = line[:width].strip()
    rest = line[width:]
    values = [rest[i : i + width].strip() for i in range(0, len(rest), width)]
    while values and values[-1] == "":
        values.pop()
    return key, values
