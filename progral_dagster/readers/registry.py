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
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

from .base import Measurement, ReaderError, UnsupportedFormat, as_paths, read_head

HEAD_BYTES = 65536

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
    m = mod.read(ps if len(ps) > 1 else ps[0])
    if not m.paths:
        m.paths = [str(p) for p in ps]
    return m
