"""TIFF label images / volumes: against tifffile directly, the label fractions listed in
samples/SOURCES.md, and synthetic TIFFs written by the test."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers.tiff_labels import sniff
from progral_dagster.warehouse.schemas import conform
from tests.conftest import SAMPLES

DIR = SAMPLES / "microstructure"
# shape and label -> fraction as listed in samples/SOURCES.md
PUBLISHED = {
    "nmc-1-cal_generatedCBD_bridge.tif": ((251, 301, 301), {0: 0.4005, 1: 0.4995, 2: 0.1000}),
    "NMC_lr_input.tif": ((128, 128, 128), {0: 0.5797, 1: 0.4203}),
    "electrode.tiff": ((256, 256, 256), {0: 0.44992, 85: 0.40047, 170: 0.14962}),
    "test_64_64__0.tif": ((64, 64, 64), {0: 0.5311, 128: 0.3747, 255: 0.0942}),
    "SEM_hr_input.tif": ((427, 427), {0: 0.1002, 1: 0.6660, 2: 0.2339}),
    "NREL_NMC111_1000cycles_segmented_phases.tif": (
        (1150, 2000),
        {0: 0.0507, 1: 0.0896, 2: 0.6535, 3: 0.2062},
    ),
}


def test_all_six_samples_listed():
    assert {p.name for p in DIR.glob("*.tif*")} == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_sample_against_tifffile_and_sources_md(name):
    shape, fractions = PUBLISHED[name]
    m = read(DIR / name)
    assert (m.technique, m.format) == ("microstructure", "tiff-labels")
    row = conform("microstructures", m.tables["microstructures"]).to_pylist()[0]
    assert row["ndim"] == len(shape) and tuple(row["shape"]) == shape
    assert row["labels"] == sorted(fractions)
    # SOURCES.md rounds to 4 or 5 decimals
    for label, f in zip(row["labels"], row["fractions"], strict=True):
        assert f == pytest.approx(fractions[label], abs=6e-5)
    assert sum(row["fractions"]) == pytest.approx(1.0)
    # tifffile itself, on every 8th page of a volume (decoding all again would double the time)
    pages = range(0, shape[0], 8) if len(shape) == 3 else [0]
    ref = tifffile.imread(DIR / name, key=pages).reshape((len(pages), *shape[-2:]))
    got = m.arrays["labels"] if len(shape) == 3 else m.arrays["labels"][None]
    np.testing.assert_array_equal(got[list(pages)], ref)
    # none of the samples states a physical voxel size (72 dpi print tags or no unit)
    assert row["voxel_size_um"] is None


def test_imagej_voxel_size_2d_and_3d(tmp_path):
    vol = np.random.default_rng(0).integers(0, 3, (5, 6, 7), dtype=np.uint8)
    p = tmp_path / "vol.tif"
    tifffile.imwrite(
        p,
        vol,
        imagej=True,
        resolution=(1 / 0.39, 1 / 0.39),
        metadata={"unit": "um", "spacing": 0.5},
    )
    m = read(p)
    assert m.metadata["voxel_size_zyx_um"] == pytest.approx([0.5, 0.39, 0.39])
    assert m.tables["microstructures"]["voxel_size_um"][0].as_py() == pytest.approx(0.39)
    np.testing.assert_array_equal(m.arrays["labels"], vol)
    img = vol[0]
    tifffile.imwrite(p, img, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "nm"})
    assert read(p).metadata["voxel_size_zyx_um"] == pytest.approx([0.5e-3, 0.5e-3])
    tifffile.imwrite(p, img, resolution=(1000.0, 1000.0), resolutionunit="CENTIMETER")
    assert read(p).metadata["voxel_size_zyx_um"] == pytest.approx([10.0, 10.0])
    tifffile.imwrite(p, img, resolution=(72.0, 72.0), resolutionunit="INCH")
    assert read(p).metadata["voxel_size_zyx_um"] is None


def test_non_label_tiffs_are_refused_with_a_reason(tmp_path):
    p = tmp_path / "x.tif"
    tifffile.imwrite(p, np.random.default_rng(1).random((8, 8)).astype(np.float32))
    with pytest.raises(ReaderError, match="floating-point"):
        read(p)
    tifffile.imwrite(p, np.arange(400, dtype=np.uint16).reshape(20, 20))
    with pytest.raises(ReaderError, match="400 distinct values"):
        read(p)
    tifffile.imwrite(p, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(ReaderError, match="colour"):
        read(p)


def test_int16_and_bool_labels(tmp_path):
    p = tmp_path / "x.tif"
    a = np.array([[-1, 0], [5, 5]], dtype=np.int16)
    tifffile.imwrite(p, a)
    row = read(p).tables["microstructures"].to_pylist()[0]
    assert row["labels"] == [-1, 0, 5] and row["fractions"] == [0.25, 0.25, 0.5]
    tifffile.imwrite(p, np.eye(4, dtype=bool))
    row = read(p).tables["microstructures"].to_pylist()[0]
    assert row["labels"] == [0, 1] and row["fractions"] == [0.75, 0.25]


def test_header_claiming_a_huge_image_is_refused_without_allocating(tmp_path):
    p = tmp_path / "x.tif"
    tifffile.imwrite(p, np.zeros((10, 10), np.uint8))
    data = bytearray(p.read_bytes())
    with tifffile.TiffFile(p) as tif:
        tags = tif.pages[0].tags
        offsets = [tags[name].valueoffset for name in ("ImageWidth", "ImageLength")]
        types = [tags[name].dtype for name in ("ImageWidth", "ImageLength")]
    for off, typ in zip(offsets, types, strict=True):
        size = 2 if int(typ) == 3 else 4  # SHORT or LONG
        data[off : off + size] = (60000).to_bytes(size, "little")
    p.write_bytes(bytes(data))
    with pytest.raises(ReaderError):
        read(p)


def test_sniff():
    for name in PUBLISHED:
        assert sniff(DIR / name, (DIR / name).read_bytes()[:8]) == "tiff-labels"
    v = SAMPLES / "xps-vamas" / "regular.vms"
    assert sniff(v, v.read_bytes()[:8]) is None
