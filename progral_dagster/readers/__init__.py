"""Pure instrument-file readers: ``read(paths) -> Measurement``. No dagster, no writing."""

from .base import Measurement, ReaderError, UnsupportedFormat
from .registry import detect, read, supported_formats

__all__ = ["Measurement", "ReaderError", "UnsupportedFormat", "detect", "read", "supported_formats"]
