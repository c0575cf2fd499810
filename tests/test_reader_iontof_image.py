"""IONTOF image exports (one file per ion), written by the test from the format description in
SCIENCE.md; the arrays the test writes are the ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from progral_dagster.readers import ReaderError, read
from progral_dagster.readers.grouping import group_members
from progral_dagster.readers.iontof_image import sniff
from progral_dagster.warehouse.schemas import conform
from tests.conftest import SAMPLES

TABLE = "tof_sims_images"


def write_image(
    folder,
    meas,
    n,
    ion,
    arr,
    *,
    fov="# Field of view: 100.0 x 100.0 um",
    encoding="utf-8",
    newline="\n",
    sep=" ",
    title=True,
    pixels=True,
):
    """One export file as the simulator / SurfaceLab writes it (x fastest)."""
    three_d = arr.ndim == 3
    dims = arr.shape[::-1]  # x, y(, z)
    lines = [
        "# IONTOF SurfaceLab image export",
        f"# Measurement: {meas}",
        f"# Ion: {ion}",
        "# Polarity: negative",
    ]
    if fov:
        lines.append(fov)
    if pixels:
        lines.append("# Pixels: " + " x ".join(map(str, dims)))
    lines.append("# Scans: 50")
    if title:
        lines.append("x y z value" if three_d else "x y intensity")
    if three_d:
        z, y, x = np.indices(arr.shape).reshape(3, -1)
        lines += [
            f"{a}{sep}{b}{sep}{c}{sep}{v}"
            for a, b, c, v in zip(x, y, z, arr.reshape(-1), strict=True)
        ]
    else:
        y, x = np.indices(arr.shape).reshape(2, -1)
        lines += [f"{a}{sep}{b}{sep}{v}" for a, b, v in zip(x, y, arr.reshape(-1), strict=True)]
    p = folder / f"{meas} ({n}) - {ion}.txt"
    p.write_bytes((newline.join(lines) + newline).encode(encoding))
    return p


def to_array(t, ion, shape):
    sub = t.filter(t["ion"].to_numpy(zero_copy_only=False) == ion)
    out = np.full(shape, -1.0)
    if len(shape) == 2:
        out[sub["y"].to_numpy(), sub["x"].to_numpy()] = sub["intensity"].to_numpy()
    else:
        out[sub["z"].to_numpy(), sub["y"].to_numpy(), sub["x"].to_numpy()] = sub[
            "intensity"
        ].to_numpy()
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_2d_group_round_trip(tmp_path, rng):
    ions = ["total", "Li-", "NiO-", "C_2H-"]
    truth = {ion: rng.poisson(20, (12, 16)) for ion in ions}  # y=12 rows, x=16 columns
    paths = [write_image(tmp_path, "NMC_cs", i + 1, ion, truth[ion]) for i, ion in enumerate(ions)]
    groups = group_members([str(p) for p in paths])
    assert len(groups) == 1
    members = next(iter(groups.values()))
    m = read(members[::-1])  # order of the list must not matter
    assert (m.format, m.technique) == ("iontof-image", "tof-sims")
    t = m.tables[TABLE]
    conform(TABLE, t)
    assert t.num_rows == 4 * 12 * 16 and t["z"].null_count == t.num_rows
    assert m.metadata["ions"] == ions  # image-number order
    assert m.metadata["shape"] == [12, 16]
    assert m.metadata["field_of_view_um"] == [100.0, 100.0]
    assert m.metadata["pixel_size_um"] == pytest.approx(100.0 / 16)
    assert m.metadata["pixel_size_y_um"] == pytest.approx(100.0 / 12)
    assert m.metadata["measurement_name"] == "NMC_cs" and m.metadata["has_total"]
    assert m.metadata["polarity"] == "negative" and m.metadata["scans"] == 50
    for ion in ions:
        np.testing.assert_array_equal(to_array(t, ion, (12, 16)), truth[ion])
        assert m.metadata["total_counts"][ion] == truth[ion].sum()


def test_3d_export(tmp_path, rng):
    truth = rng.poisson(3, (4, 5, 6)).astype(float) * 1.5  # z, y, x; non-integer counts
    p1 = write_image(tmp_path, "vol", 1, "total", truth)
    p2 = write_image(tmp_path, "vol", 2, "Li-", truth[::-1])
    m = read([p1, p2])
    t = m.tables[TABLE]
    assert m.metadata["shape"] == [4, 5, 6]
    assert t["z"].null_count == 0
    np.testing.assert_array_equal(to_array(t, "total", (4, 5, 6)), truth)
    np.testing.assert_array_equal(to_array(t, "Li-", (4, 5, 6)), truth[::-1])


@pytest.mark.parametrize(
    "fov, encoding, want",
    [
        ("# Field of View (µm): 200", "utf-8", 200.0),
        ("# Field of View (µm): 200", "latin-1", 200.0),
        ("# Field of view: 0.5 x 0.5 mm", "utf-8", 500.0),
        ("# Field of view: 50 µm", "latin-1", 50.0),
        (None, "utf-8", None),
    ],
)
def test_field_of_view_variants(tmp_path, fov, encoding, want):
    p = write_image(tmp_path, "m", 1, "total", np.ones((8, 8), int), fov=fov, encoding=encoding)
    m = read(p)
    if want is None:
        assert m.metadata["field_of_view_um"] is None and m.metadata["pixel_size_um"] is None
    else:
        assert m.metadata["field_of_view_um"] == [pytest.approx(want)] * 2
        assert m.metadata["pixel_size_um"] == pytest.approx(want / 8)


def test_crlf_irregular_spaces_no_title_no_pixels(tmp_path, rng):
    truth = rng.integers(0, 9, (3, 7))
    p = write_image(
        tmp_path, "m", 1, "Li-", truth, newline="\r\n", sep="   ", title=False, pixels=False
    )
    m = read(p)
    assert m.metadata["shape"] == [3, 7]
    np.testing.assert_array_equal(to_array(m.tables[TABLE], "Li-", (3, 7)), truth)


def test_registry_dispatches_the_group(tmp_path, rng):
    ps = [
        write_image(tmp_path, "g", i, ion, rng.integers(0, 5, (4, 4)))
        for i, ion in [(1, "total"), (2, "O-")]
    ]
    assert sniff(ps[0], ps[0].read_bytes()) == "iontof-image"
    assert read([str(p) for p in ps]).metadata["ions"] == ["total", "O-"]


def test_mismatched_grids_are_refused(tmp_path):
    a = write_image(tmp_path, "m", 1, "total", np.ones((8, 8), int))
    b = write_image(tmp_path, "m", 2, "Li-", np.ones((8, 9), int))
    with pytest.raises(ReaderError, match="grid"):
        read([a, b])


def test_missing_member_file_is_refused_by_name(tmp_path):
    a = write_image(tmp_path, "m", 1, "total", np.ones((4, 4), int))
    gone = tmp_path / "m (2) - Li-.txt"
    with pytest.raises(ReaderError) as ei:
        read([a, gone])
    assert ei.value.path == str(gone) and "missing" in ei.value.reason


def test_gap_in_image_numbers_is_reported(tmp_path):
    a = write_image(tmp_path, "m", 1, "total", np.ones((4, 4), int))
    c = write_image(tmp_path, "m", 3, "NiO-", np.ones((4, 4), int))
    m = read([a, c])
    assert m.metadata["missing_image_numbers"] == [2]


def test_missing_and_duplicate_pixels_are_refused(tmp_path):
    p = write_image(tmp_path, "m", 1, "total", np.arange(16).reshape(4, 4))
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:-1]) + "\n")  # last pixel missing
    with pytest.raises(ReaderError, match="pixel"):
        read(p)
    lines[-1] = lines[-2]  # a pixel twice, another missing
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReaderError, match="more than once"):
        read(p)


def test_members_of_two_measurements_or_one_ion_twice_are_refused(tmp_path):
    a = write_image(tmp_path, "m", 1, "total", np.ones((4, 4), int))
    b = write_image(tmp_path, "other", 2, "Li-", np.ones((4, 4), int))
    with pytest.raises(ReaderError, match="different measurements"):
        read([a, b])
    c = write_image(tmp_path, "m", 2, "total", np.ones((4, 4), int))
    with pytest.raises(ReaderError, match="twice"):
        read([a, c])


def test_header_claiming_a_huge_grid_does_not_allocate(tmp_path):
    p = write_image(tmp_path, "m", 1, "total", np.ones((4, 4), int))
    p.write_text(p.read_text().replace("# Pixels: 4 x 4", "# Pixels: 1000000 x 1000000"))
    with pytest.raises(ReaderError, match="pixel rows"):
        read(p)


def test_sniff_leaves_the_other_iontof_exports_alone():
    for f in (SAMPLES / "sims-iontof").glob("*.txt"):
        assert sniff(f, f.read_bytes()[:65536]) is None, f.name


def test_the_simulators_exports_read_back(tmp_path, rng):
    """The project's simulator writes the header this reader documents: its arrays come back."""
    sim = pytest.importorskip("progral_dagster.simulate.image_export")
    imgs = {"Li-": rng.poisson(5, (32, 48)), "NiO-": rng.poisson(2, (32, 48)) * 0.5}
    paths = sim.write_image_export(tmp_path, "NMC cs 1", imgs, fov_um=120.0)
    m = read(next(iter(group_members([str(p) for p in paths]).values())))
    assert sorted(m.metadata["ions"]) == ["Li-", "NiO-", "total"]
    assert m.metadata["pixel_size_um"] == pytest.approx(120.0 / 48)
    t = m.tables[TABLE]
    for ion, img in imgs.items():
        np.testing.assert_array_equal(to_array(t, ion, (32, 48)), img)
