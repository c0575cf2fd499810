"""Format detection and dispatch: which reader reads a file, decided from its content.

Every reader module in :data:`READER_MODULES` exposes

- ``FORMATS``: the format names it can return (``measurements.format``),
- ``sniff(path: Path, head: bytes) -> str | None``: the format name if the first bytes (up to
  :data:`HEAD_BYTES`) and the name say the file is one of its formats, else None. Content
  decides; the extension only breaks ties. Sniffing never raises.
- ``read(paths) -> Measurement``: decorated with :func:`~progral_dagster.readers.base.guarded`.

Modules are imported lazily, so loading the code location stays fast.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

from .base import Measurement, ReaderError, UnsupportedFormat, as_paths, read_head

HEAD_BYTES = 65536
# A UTF-8 byte-order mark: no instrument writes one, but a text export opened and saved again in
# Windows Notepad (or Excel's "CSV UTF-8") starts with it. Detection looks past it and the
# reader gets a copy without it (see :func:`read`), so every text reader handles such files.
BOM = b"\xef\xbb\xbf"

# Order matters only where two readers might both claim a file: more specific ones first.
READER_MODULES: tuple[str, ...] = (
    "iontof_image",
    "iontof_spectrum",
    "iontof_depth_profile",
    "iontof_peak_list",
    "vamas",
    "phi",
    "biologic_mpr",
    "biologic_mpt",
    "neware",
    "maccor",
    "arbin",
    "pec",
    "lanhe",
    "tiff_labels",
)


@cache
def reader_modules() -> tuple[ModuleType, ...]:
    """The reader modules present in this installation, in detection order."""
    mods = []
    for name in READER_MODULES:
        full = f"{__package__}.{name}"
        try:
            mods.append(importlib.import_module(full))
        except ModuleNotFoundError as exc:
            if exc.name != full:  # a missing dependency inside an existing reader is a bug
                raise
    return tuple(mods)


def detect(path: str | os.PathLike) -> tuple[str, ModuleType] | None:
    """(format, reader module) for a file, or None if no reader recognises it."""
    p = Path(path)
    try:
        head = read_head(p, HEAD_BYTES)
    except OSError:
        return None
    if head.startswith(BOM):
        head = head[len(BOM) :]
    for mod in reader_modules():
        try:
            fmt = mod.sniff(p, head)
        except Exception:  # noqa: BLE001 - a sniffer bug must not stop detection
            fmt = None
        if fmt:
            return fmt, mod
    return None


def supported_formats() -> list[str]:
    """Every format name the installed readers can produce."""
    return [f for m in reader_modules() for f in m.FORMATS]


def read(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Measurement:
    """Read one file, or the files of one acquisition group, with the reader that claims it.

    Raises
    ------
    UnsupportedFormat
        No reader recognises the (first) file.
    ReaderError
        A reader recognised the file but could not parse it.
    """
    ps = as_paths(paths)
    if not ps:
        raise ReaderError(None, "no file given")
    first = ps[0]
    try:
        size = first.stat().st_size
    except OSError as exc:
        raise ReaderError(first, f"cannot open: {exc.strerror or exc}") from None
    if size == 0:
        raise ReaderError(first, "empty file (0 bytes)")
    found = detect(first)
    if found is None:
        raise UnsupportedFormat(
            first,
            "no reader recognises this file; supported formats: "
            + ", ".join(supported_formats())
            + " (see docs/formats.md for unsupported variants)",
        )
    _fmt, mod = found
    readable, tmpdir = _without_bom(ps)
    if tmpdir is None:
        m = mod.read(ps if len(ps) > 1 else ps[0])
    else:
        try:
            m = mod.read(readable if len(readable) > 1 else readable[0])
        except ReaderError as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            back = {str(r): str(p) for r, p in zip(readable, ps, strict=True)}
            raise type(exc)(back.get(exc.path, exc.path), exc.reason, exc.position) from None
        # tables may be streams that read the copy later: it goes when the measurement does
        weakref.finalize(m, shutil.rmtree, tmpdir, ignore_errors=True)
        m.metadata = {**(m.metadata or {}), "utf8_bom_removed": True}
        m.paths = []
    if not m.paths:
        m.paths = [str(p) for p in ps]
    return m


def _without_bom(ps: list[Path]) -> tuple[list[Path], str | None]:
    """The files to give the reader: those starting with a UTF-8 byte-order mark copied, under
    their own names, into a temporary folder without it (the originals are never touched)."""
    marked = []
    for p in ps:
        try:
            with open(p, "rb") as fh:
                marked.append(fh.read(len(BOM)) == BOM)
        except OSError:
            marked.append(False)
    if not any(marked):
        return ps, None
    tmpdir = tempfile.mkdtemp(prefix="progral-bom-")
    out = []
    for i, (p, has_bom) in enumerate(zip(ps, marked, strict=True)):
        if not has_bom:
            out.append(p)
            continue
        q = Path(tmpdir) / str(i) / p.name
        q.parent.mkdir()
        with open(p, "rb") as fin, open(q, "wb") as fout:
            fin.seek(len(BOM))
            shutil.copyfileobj(fin, fout, 1 << 20)
        out.append(q)
    return out, tmpdir
