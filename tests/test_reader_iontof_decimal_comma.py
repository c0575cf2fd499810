"""IONTOF SurfaceLab exports written with a decimal comma (SurfaceLab on a German-locale Windows
writes ``0,000197``): the depth-profile, peak-list and image readers read them like the
originals and record ``decimal_separator``. The comma files are made here from the real samples
(images: from the simulator and the image tests' writer) by rewriting only the numeric fields."""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.readers import detect, read
from progral_dagster.simulate.image_export import write_image_export
from tests.test_reader_iontof_image import write_image

from .conftest import SAMPLES

DEPTH = sorted((SAMPLES / "sims-iontof").glob("I24*.txt"))
PEAKS = SAMPLES / "sims-iontof" / "Example_mass_interval_list.txt"


def _same_table(a, b):
    """Equal tables, NaN in the same places counting as equal."""
    assert a.schema == b.schema
    assert a.to_pandas().equals(b.to_pandas())


def _comma(field: bytes) -> bytes:
    return field.replace(b".", b",")


def _depth_profile_comma(src, dst, masses_too=False):
    lines = src.read_bytes().split(b"\n")
    out, seen = [], 0
    for ln in lines:
        if ln.startswith(b"#"):
            seen += 1
            # the third '#' line holds the masses; peak names (line 2) stay as they are
            out.append(_comma(ln) if masses_too and seen == 3 else ln)
        else:
            out.append(_comma(ln))
    dst.write_bytes(b"\n".join(out))
    return dst


@pytest.mark.parametrize("src", DEPTH, ids=lambda p: p.name[:8])
@pytest.mark.parametrize("masses_too", [False, True], ids=["rows", "rows+masses"])
def test_depth_profile_decimal_comma(tmp_path, src, masses_too):
    assert len(DEPTH) == 3
    dst = _depth_profile_comma(src, tmp_path / src.name, masses_too)
    assert b"," in dst.read_bytes().split(b"#Data Point", 1)[1]
    assert detect(dst)[0] == "iontof-depth-profile"
    plain, m = read(src), read(dst)
    assert m.metadata["decimal_separator"] == ","
    _same_table(m.tables["tof_sims_depth_profiles"], plain.tables["tof_sims_depth_profiles"])
    assert {k: v for k, v in m.metadata.items() if k != "decimal_separator"} == {
        k: v for k, v in plain.metadata.items() if k != "decimal_separator"
    }


@pytest.mark.parametrize("src", DEPTH, ids=lambda p: p.name[:8])
def test_depth_profile_decimal_point(src):
    # the peak-name line holds commas ("^206PbI_3-, ^207PbI_3-PbI_3-"): not a decimal comma
    assert read(src).metadata["decimal_separator"] == "."


def _peak_list_comma(src, dst, msvc_old=False):
    lines = src.read_bytes().split(b"\r\n")
    titles = lines[0].split(b"\t")
    text_cols = {titles.index(b"Assignment"), titles.index(b"Description")}
    out = [lines[0]]
    for ln in lines[1:]:
        fields = ln.split(b"\t")
        fields = [f if i in text_cols else _comma(f) for i, f in enumerate(fields)]
        if msvc_old:  # older MSVC runtimes: -1.#IND, written -1,#IND on a comma locale
            fields = [b"-1,#IND" if f == b"-NAN(IND)" else f for f in fields]
        out.append(b"\t".join(fields))
    dst.write_bytes(b"\r\n".join(out))
    return dst


@pytest.mark.parametrize("msvc_old", [False, True], ids=["NAN(IND)", "1,#IND"])
def test_peak_list_decimal_comma(tmp_path, msvc_old):
    dst = _peak_list_comma(PEAKS, tmp_path / PEAKS.name, msvc_old)
    assert b"28191324,00" in dst.read_bytes()
    assert detect(dst)[0] == "iontof-peak-list"
    plain, m = read(PEAKS), read(dst)
    assert m.metadata["decimal_separator"] == ","
    _same_table(m.tables["tof_sims_peak_lists"], plain.tables["tof_sims_peak_lists"])
    assert np.isnan(m.tables["tof_sims_peak_lists"]["coverage_per_cm2"][0].as_py())


def test_peak_list_comma_in_assignment_is_no_decimal_comma(tmp_path):
    lines = PEAKS.read_bytes().split(b"\r\n")
    f = lines[2].split(b"\t")
    f[4] = b"^206PbI_3-, ^207PbI_3-PbI_3-"
    f[5] = b"1,5"  # a description that looks like a number
    dst = tmp_path / "peaks.txt"
    dst.write_bytes(b"\r\n".join(lines[:2] + [b"\t".join(f)] + lines[3:]))
    m = read(dst)
    assert m.metadata["decimal_separator"] == "."
    assert m.tables["tof_sims_peak_lists"]["assignment"][1].as_py() == f[4].decode()


def test_peak_list_decimal_point():
    assert read(PEAKS).metadata["decimal_separator"] == "."


def _image_comma(src, dst, fov_too=False):
    """Rewrite the pixel rows (after the column-title line) with decimal commas."""
    lines = src.read_bytes().split(b"\n")
    n_head = next(i for i, ln in enumerate(lines) if not ln.startswith(b"#")) + 1
    head = [
        _comma(ln) if fov_too and ln.lower().startswith(b"# field of view") else ln
        for ln in lines[:n_head]
    ]
    dst.write_bytes(b"\n".join(head + [_comma(ln) for ln in lines[n_head:]]))
    return dst


def _simulated(folder):
    rng = np.random.default_rng(3)
    images = {ion: rng.gamma(2.0, 3.0, (9, 11)) for ion in ("Li-", "NiO-")}
    images["Li-"][0, :3] = [1e-7, 123456.5, 0.0]  # exponent, large and integer values
    return write_image_export(folder, "NMC_cs", images, fov_um=(50.0, 40.0))


def _helper_files(folder, sep, three_d):
    rng = np.random.default_rng(5)
    shape = (3, 4, 5) if three_d else (6, 7)
    return [
        write_image(folder, "vol", n, ion, rng.poisson(4, shape) * 0.25, sep=sep)
        for n, ion in enumerate(["total", "Li-"], start=1)
    ]


@pytest.mark.parametrize(
    "make, fov_too",
    [
        (_simulated, False),
        (_simulated, True),
        (lambda d: _helper_files(d, "  ", False), False),  # irregular spacing: fallback parser
        (lambda d: _helper_files(d, " ", True), True),  # 3D
    ],
    ids=["simulator", "simulator+fov", "double-space", "3d"],
)
def test_image_decimal_comma(tmp_path, make, fov_too):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    srcs = make(tmp_path / "a")
    dsts = [_image_comma(p, tmp_path / "b" / p.name, fov_too) for p in srcs]
    assert all(detect(p)[0] == "iontof-image" for p in dsts)
    plain, m = read(srcs), read(dsts)
    assert m.metadata["decimal_separator"] == ","
    _same_table(m.tables["tof_sims_images"], plain.tables["tof_sims_images"])
    skip = {"decimal_separator", "headers"}
    assert {k: v for k, v in m.metadata.items() if k not in skip} == {
        k: v for k, v in plain.metadata.items() if k not in skip
    }


def test_image_decimal_point(tmp_path):
    srcs = _simulated(tmp_path)
    assert read(srcs).metadata["decimal_separator"] == "."


def test_image_integer_counts_decide_nothing(tmp_path):
    """Integer counts carry no separator: read as before, recorded as '.'."""
    p = write_image(tmp_path, "m", 1, "total", np.arange(20).reshape(4, 5))
    m = read(p)
    assert m.metadata["decimal_separator"] == "."
    assert m.tables["tof_sims_images"]["intensity"].to_pylist() == list(map(float, range(20)))
