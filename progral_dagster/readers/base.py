"""The reader contract: ``read(paths) -> Measurement`` and the one error type readers raise.

Readers are pure: they read files and return data. They never write anything, never import
dagster or mlflow, and never know where the lake is. Every failure to understand a file is a
:class:`ReaderError` naming the file, the position (line or byte offset, when known) and a reason
a person can act on; no other exception may escape a reader (``guarded`` enforces that).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

# Techniques a measurement can have (the `measurements.technique` column).
TECHNIQUES = ("tof-sims", "xps", "aes", "cycling", "impedance", "microstructure")


class ReaderError(Exception):
    """A file that cannot be parsed.

    Parameters
    ----------
    path : path of the offending file
    reason : what is wrong, phrased so that a person can act on it
    position : where it went wrong, e.g. ``"line 12"`` or ``"byte 4096"``, if known
    """

    def __init__(self, path: str | os.PathLike | None, reason: str, position: str | None = None):
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.position = position
        where = f" ({position})" if position else ""
        super().__init__(f"{self.path}{where}: {reason}" if self.path else f"{reason}{where}")


class UnsupportedFormat(ReaderError):
    """No reader recognises the file (listed in the docs as an unsupported variant)."""


TableData = pa.Table | Iterator[pa.RecordBatch]


@dataclass
class Measurement:
    """What a reader returns.

    Attributes
    ----------
    technique : one of :data:`TECHNIQUES`
    format : detected format name, e.g. ``iontof-spectrum``, ``vamas``, ``biologic-mpt``
    reader : the reader's name (module), recorded in the catalog with ``reader_version``
    reader_version : bump when the reader's output for the same bytes changes
    instrument : instrument or software named by the file, if any
    metadata : acquisition metadata from the header, JSON-serialisable
    tables : warehouse table name -> pyarrow table (or iterator of record batches for exports
        larger than memory). Tables carry no ``measurement_id``: the warehouse adds it. Columns
        follow ``progral_dagster.warehouse.schemas``.
    arrays : large n-dimensional arrays (label volumes) stored as files in the lake
    paths : the file(s) read, in order
    """

    technique: str
    format: str
    reader: str
    reader_version: str = "1"
    instrument: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, TableData] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.technique not in TECHNIQUES:
            raise ValueError(f"unknown technique {self.technique!r}")


def guarded(func: Callable[..., Measurement]) -> Callable[..., Measurement]:
    """Decorator for ``read`` functions: any exception other than ReaderError becomes one.

    A bug or an unforeseen corruption must never crash the service; the file is rejected with
    the exception text as the reason instead.
    """

    @functools.wraps(func)
    def wrapper(paths: str | os.PathLike | Sequence[str | os.PathLike], *args, **kwargs):
        first = _first_path(paths)
        try:
            return func(paths, *args, **kwargs)
        except ReaderError:
            raise
        except MemoryError:
            raise ReaderError(first, "file too large to decode in memory") from None
        except RecursionError:
            raise ReaderError(first, "file structure nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - the contract: nothing else escapes a reader
            raise ReaderError(first, f"cannot parse: {type(exc).__name__}: {exc}") from exc

    return wrapper


def _first_path(paths) -> str | None:
    if isinstance(paths, (str, os.PathLike)):
        return str(paths)
    try:
        return str(paths[0]) if len(paths) else None
    except TypeError:
        return None


def as_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Normalise the ``paths`` argument of a reader to a list of Paths."""
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_head(path: str | os.PathLike, n: int = 4096) -> bytes:
    """First ``n`` bytes of a file (for format sniffing)."""
    with open(path, "rb") as fh:
        return fh.read(n)
