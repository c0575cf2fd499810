"""Corrupted input never crashes or hangs a reader.

For every file in samples/ (all instrument folders; the registry picks the reader): the file
cut at many offsets (0, 1, inside the header, inside the data, one byte short), bytes flipped at
several positions, random bytes behind the file's own first bytes (so its sniffer claims it),
pure random bytes and an empty file. Each case must either read or raise ReaderError, and must
finish within a 30 s deadline (a thread per case is the hang detector; pytest-timeout is the
backstop for the whole test). Big binary files get fewer cases to keep the file under ~2 min.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from progral_dagster.readers import ReaderError, read
from tests.conftest import SAMPLES

DEADLINE_S = 30.0
FILES = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.parent != SAMPLES)
BIG = 1 << 20  # files above 1 MiB (TIFF volumes, Arbin .res) get fewer cases


def run_case(path: Path) -> str:
    """Read ``path`` in a thread with a deadline; return 'ok' or 'error'; fail on anything else."""
    box: dict = {}

    def target():
        try:
            read(path)
            box["r"] = "ok"
        except ReaderError as exc:
            assert exc.reason, "a ReaderError must say why"
            box["r"] = "error"
        except BaseException as exc:  # noqa: BLE001 - exactly what the test looks for
            box["r"] = exc

    t = threading.Thread(target=target, daemon=True)
    t0 = time.perf_counter()
    t.start()
    t.join(DEADLINE_S)
    if t.is_alive():
        pytest.fail(f"{path.name}: reader still running after {DEADLINE_S} s (hang?)")
    r = box.get("r")
    if isinstance(r, BaseException):
        pytest.fail(
            f"{path.name}: {type(r).__name__} escaped the reader: {r!r} (after {time.perf_counter() - t0:.1f} s)"
        )
    return r


def truncation_offsets(size: int, big: bool) -> list[int]:
    if big:
        return sorted({0, 1, 100, 4096, size // 2, size - 1})
    fixed = [0, 1, 2, 7, 16, 50, 100, 200, 400, 1000, 2000, 4096]
    frac = [int(size * f) for f in (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9)]
    return sorted({o for o in fixed + frac + [size - 100, size - 2, size - 1] if 0 <= o < size})


def flip_positions(size: int, big: bool, rng) -> list[int]:
    fixed = [0, 3, 10, 40, 120, 300, size // 3, size // 2, size - 5]
    if big:
        fixed = [0, 40, 300, size // 2]
    extra = [] if big else rng.integers(0, size, 4).tolist()
    return sorted({p for p in fixed + extra if 0 <= p < size})


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corrupted_copies(path, tmp_path):
    data = path.read_bytes()
    size = len(data)
    big = size > BIG
    rng = np.random.default_rng(size)
    out = tmp_path / path.name  # same name: sniffers and grouping may look at it
    outcomes = []

    for off in truncation_offsets(size, big):
        out.write_bytes(data[:off])
        outcomes.append(run_case(out))
    for pos in flip_positions(size, big, rng):
        for mask in (0xFF, 0x01) if not big else (0xFF,):
            b = bytearray(data)
            b[pos] ^= mask
            out.write_bytes(bytes(b))
            outcomes.append(run_case(out))
    head = data[: min(64, size)]
    out.write_bytes(head + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    outcomes.append(run_case(out))
    out.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    outcomes.append(run_case(out))
    out.write_bytes(b"")
    assert run_case(out) == "error"  # an empty file is never a measurement
    assert outcomes  # the cases ran


# Text exports: random cut points chosen by hypothesis.
TEXT = [
    *sorted((SAMPLES / "sims-iontof").glob("*.txt")),
    *sorted((SAMPLES / "xps-vamas").glob("*.vms")),
]


@pytest.mark.timeout(300)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(TEXT), st.floats(0.0, 1.0), st.booleans())
def test_text_readers_random_truncation(tmp_path, path, frac, crlf_to_lf):
    data = path.read_bytes()
    if crlf_to_lf:
        data = data.replace(b"\r\n", b"\n")
    cut = int(len(data) * frac)
    out = tmp_path / path.name
    out.write_bytes(data[:cut])
    run_case(out)


def test_the_unmodified_samples_of_this_engineer_read():
    """Sanity check of the fixture: every XPS/SIMS/TIFF sample reads as is."""
    for sub in ("sims-iontof", "xps-vamas", "xps-phi", "microstructure"):
        for p in sorted((SAMPLES / sub).iterdir()):
            if p.stat().st_size < BIG:
                assert run_case(p) == "ok", p.name


def test_metadata_of_every_sample_is_strict_json():
    """The catalog stores metadata as JSON: no NaN/inf, no numpy types, in any sample's reading."""
    import json

    for sub in ("sims-iontof", "xps-vamas", "xps-phi", "microstructure"):
        for p in sorted((SAMPLES / sub).iterdir()):
            if p.stat().st_size < BIG:
                json.dumps(read(p).metadata, allow_nan=False)
