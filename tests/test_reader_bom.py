"""Text exports saved again with a UTF-8 byte-order mark (Windows Notepad, Excel "CSV UTF-8")
read exactly like the originals; errors name the file the user gave."""

from __future__ import annotations

import gc
import glob
import tempfile

import pyarrow as pa
import pytest

from progral_dagster.readers import ReaderError, read

from .conftest import SAMPLES

BOM = b"\xef\xbb\xbf"
TEXT_SAMPLES = [
    "sims-iontof/P_Ru_Bi1_1.txt",
    "sims-iontof/I241209p_A_MAPI_1f-1nA_neg-B4 - NF.txt",
    "sims-iontof/Example_mass_interval_list.txt",
    "xps-vamas/regular.vms",
    "cycler-biologic/gcpl.issue_149.mpt",
    "cycler-biologic/mb.issue_95.de.mpt",
    "cycler-other/maccor_two.txt",
    "cycler-other/FastCharge_000025_CH8.csv",
    "cycler-other/Test25195.csv",
]


def _tables(m) -> dict[str, pa.Table]:
    out = {}
    for name, t in m.tables.items():
        out[name] = t if isinstance(t, pa.Table) else pa.Table.from_batches(list(t))
    return out


def _bom_dirs() -> set[str]:
    return set(glob.glob(f"{tempfile.gettempdir()}/progral-bom-*"))


@pytest.mark.parametrize("rel", TEXT_SAMPLES)
def test_a_byte_order_mark_changes_nothing(tmp_path, rel):
    src = SAMPLES / rel
    marked = tmp_path / src.name
    marked.write_bytes(BOM + src.read_bytes())
    before = _bom_dirs()
    plain, m = read(src), read(marked)
    assert (m.format, m.technique) == (plain.format, plain.technique)
    assert m.paths == [str(marked)] and m.metadata["utf8_bom_removed"] is True
    a, b = _tables(plain), _tables(m)
    assert set(a) == set(b)
    for name in a:
        assert a[name].to_pandas().equals(b[name].to_pandas()), name
    assert marked.read_bytes().startswith(BOM)  # the user's file is never changed
    del m
    gc.collect()
    assert _bom_dirs() == before  # the copy without the mark went with the measurement


def test_errors_name_the_file_given(tmp_path):
    data = (SAMPLES / "sims-iontof/P_Ru_Bi1_1.txt").read_bytes()
    broken = tmp_path / "broken.txt"
    broken.write_bytes(BOM + data[: len(data) // 2] + b"\nnot a number\tx\ty\n" + data[len(data) // 2 :])
    before = _bom_dirs()
    with pytest.raises(ReaderError) as err:
        read(broken)
    assert err.value.path == str(broken)
    assert _bom_dirs() == before
