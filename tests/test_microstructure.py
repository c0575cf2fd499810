"""Microstructure metrics against independent truth: published TauFactor numbers for
``electrode.tiff``, counts made here by other means, analytic geometries, and the installed
``taufactor`` package where present."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from progral_dagster.ml.microstructure import (
    compare_metrics,
    face_count,
    metrics_report,
    specific_surface_area,
    tortuosity,
    triple_phase_boundary,
    triple_phase_boundary_density,
    two_point_correlation,
    two_point_correlation_axes,
    two_point_distance,
    volume_fractions,
)
from tests.conftest import SAMPLES

tifffile = pytest.importorskip("tifffile")

MICRO = SAMPLES / "microstructure"
ELECTRODE_VOXEL_UM = 100.0 / 256  # the TauFactor notebook's 100 um box: 390.625 nm
# Published (TauFactor notebook 00-overview at fb6454851241, see samples/SOURCES.md)
ELECTRODE_FRACTIONS = {0: 0.44992, 85: 0.40047, 170: 0.14962}
ELECTRODE_SSA_PER_M = {0: 785502.0, 85: 374028.0, 170: 876100.0}
ELECTRODE_PORE_TAU_AXIS0 = 2.0776


def _read(name: str) -> np.ndarray:
    return tifffile.imread(MICRO / name)


@pytest.fixture(scope="module")
def electrode() -> np.ndarray:
    return _read("electrode.tiff")


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return _read("test_64_64__0.tif")


# -- volume fractions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "electrode.tiff",
        "nmc-1-cal_generatedCBD_bridge.tif",
        "NMC_lr_input.tif",
        "SEM_hr_input.tif",
        "test_64_64__0.tif",
    ],
)
def test_volume_fractions_are_exact_voxel_counts(name):
    volume = _read(name)
    fractions = volume_fractions(volume)
    # Independent count: a histogram over the raw values, shifted to be non-negative.
    shifted = volume.astype(np.int64) - int(volume.min())
    counts = np.bincount(shifted.ravel())
    expected = {int(v) + int(volume.min()): c / volume.size for v, c in enumerate(counts) if c}
    assert fractions == expected
    assert math.isclose(sum(fractions.values()), 1.0, rel_tol=1e-12)


def test_volume_fractions_match_published_electrode_numbers(electrode):
    fractions = volume_fractions(electrode)
    assert set(fractions) == set(ELECTRODE_FRACTIONS)
    for label, published in ELECTRODE_FRACTIONS.items():
        assert abs(fractions[label] - published) <= 5e-6  # published to 5 decimals
    assert volume_fractions(electrode, [0, 7]) == {0: fractions[0], 7: 0.0}


# -- specific surface area -------------------------------------------------------------------
def test_specific_surface_area_reproduces_published_electrode_numbers(electrode):
    for label, published in ELECTRODE_SSA_PER_M.items():
        ssa = specific_surface_area(electrode, label, ELECTRODE_VOXEL_UM)
        # The issue asks for 5 %; the definition is TauFactor's, so it agrees to rounding.
        assert ssa == pytest.approx(published, rel=1e-5)


def test_face_count_matches_a_loop_over_voxel_pairs():
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 3, size=(7, 6, 5)).astype(np.uint8)
    shape = volume.shape
    expected = {0: 0, 1: 0, 2: 0}
    between_0_2 = 0
    for idx in np.ndindex(shape):
        for axis in range(3):
            nb = list(idx)
            nb[axis] += 1
            if nb[axis] >= shape[axis]:
                continue
            a, b = int(volume[idx]), int(volume[tuple(nb)])
            if a != b:
                expected[a] += 1
                expected[b] += 1
                between_0_2 += {a, b} == {0, 2}
    for label in expected:
        assert face_count(volume, label) == expected[label]
    assert face_count(volume, 0, other=2) == between_0_2
    assert specific_surface_area(volume, 1) == expected[1] / volume.size


def test_face_count_periodic_adds_the_wrap_faces():
    volume = np.zeros((4, 4, 4), dtype=np.uint8)
    volume[0] = 1  # a slab on the first layer: 16 faces inside, 16 more across the wrap
    assert face_count(volume, 1) == 16
    assert face_count(volume, 1, periodic=True) == 32


def test_face_counting_against_marching_cubes():
    """Face counting measures the staircase area: 3/2 of a smooth isotropic surface (Cauchy).

    Stated tolerances: on a sphere of radius 30 voxels, face count = 1.5 x the analytic area
    within 1 %, and 1.5 x the marching-cubes area of the Gaussian-smoothed mask (sigma = 1 voxel,
    as TauFactor smooths) within 3 %. On the real electrode, whose surfaces are rough at the
    voxel scale, smoothing destroys features, so the comparison is with marching cubes on the
    binary mask: that mesh itself overestimates a sphere by a factor k (measured here), and
    every phase's face count is 1.5 / k x its marching-cubes area within 5 %.
    """
    measure = pytest.importorskip("skimage.measure")
    ndimage = pytest.importorskip("scipy.ndimage")

    def mc_area(mask: np.ndarray, sigma: float = 0.0) -> float:
        field = mask.astype(np.float32)
        if sigma:
            field = ndimage.gaussian_filter(field, sigma, mode="nearest")
        verts, faces, _, _ = measure.marching_cubes(field, 0.5)
        return float(measure.mesh_surface_area(verts, faces))

    r = 30
    n = 2 * r + 8
    c = (n - 1) / 2
    z, y, x = np.mgrid[:n, :n, :n]
    sphere = ((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r).astype(np.uint8)
    true_area = 4 * np.pi * r * r
    faces = face_count(sphere, 1)
    assert faces / true_area == pytest.approx(1.5, rel=0.01)
    assert faces / mc_area(sphere, sigma=1.0) == pytest.approx(1.5, rel=0.03)
    k = mc_area(sphere) / true_area  # marching cubes on a binary mask overestimates
    assert 1.0 < k < 1.15

    crop = _read("electrode.tiff")[:96, :96, :96]
    for label in (0, 85, 170):
        ratio = face_count(crop, label) / mc_area(crop == label)
        assert ratio == pytest.approx(1.5 / k, rel=0.05), (label, ratio)


def test_surface_area_agrees_with_taufactor_face_counting(small):
    metrics = pytest.importorskip("taufactor.metrics")
    theirs = metrics.specific_surface_area(
        small, spacing=(0.5, 0.5, 0.5), method="face_counting", device="cpu"
    )
    for label in (0, 128, 255):
        # taufactor divides by the box volume in the spacing's units (um here): 1/um -> 1/m
        assert specific_surface_area(small, label, 0.5) == pytest.approx(
            theirs[str(label)] * 1e6, rel=1e-9
        )


# -- triple phase boundary -------------------------------------------------------------------
def test_triple_phase_boundary_of_a_constructed_line():
    # phase 0 below z = 5; above it phase 1 for y < 4 and phase 2 for y >= 4: the three meet
    # along one line parallel to x, at every x: nx edges.
    nz, ny, nx = 10, 8, 6
    volume = np.zeros((nz, ny, nx), dtype=np.uint8)
    volume[5:, :4] = 1
    volume[5:, 4:] = 2
    count, candidates = triple_phase_boundary(volume)
    assert count == nx
    assert candidates == nx * (nz - 1) * (ny - 1) + ny * (nz - 1) * (nx - 1) + nz * (ny - 1) * (
        nx - 1
    )
    density = triple_phase_boundary_density(volume, voxel_size_um=2.0)
    assert density == pytest.approx(nx * 2e-6 / (volume.size * (2e-6) ** 3))
    assert triple_phase_boundary(volume[:, :, :1].reshape(nz, ny))[0] == 1  # 2D: one point
    assert triple_phase_boundary(volume, phases=[0, 1, 7])[0] == 0


def test_triple_phase_boundary_agrees_with_taufactor(small, capsys):
    metrics = pytest.importorskip("taufactor.metrics")
    crop = small[:40, :40, :40]
    theirs = float(metrics.triple_phase_boundary(crop.astype(np.int16)))  # it pads with -1
    count, candidates = triple_phase_boundary(crop)
    assert count > 100
    assert count / candidates == pytest.approx(theirs, rel=1e-6)  # theirs is float32


# -- two-point correlation -------------------------------------------------------------------
def test_two_point_correlation_matches_direct_products(small):
    for label in (0, 255):
        curves = two_point_correlation_axes(small, label, r_max=20)
        m = (small == label).astype(np.float64)
        assert curves[:, 0] == pytest.approx([m.mean()] * 3)
        for axis in range(3):
            for r in (1, 5, 13, 20):
                a = np.take(m, np.arange(0, 64 - r), axis=axis)
                b = np.take(m, np.arange(r, 64), axis=axis)
                assert curves[axis, r] == pytest.approx(np.mean(a * b), abs=1e-12)
        periodic = two_point_correlation_axes(small, label, r_max=20, periodic=True)
        for axis in range(3):
            direct = np.mean(m * np.roll(m, -7, axis=axis))
            assert periodic[axis, 7] == pytest.approx(direct, abs=1e-12)


def test_two_point_correlation_full_map_and_random_limit():
    rng = np.random.default_rng(0)
    image = (rng.random((48, 40)) < 0.3).astype(np.uint8)
    full = two_point_correlation(image, 1)
    assert full.shape == (95, 79)
    centre = (47, 39)
    m = image.astype(float)
    assert full[centre] == pytest.approx(m.mean())
    assert full[47 + 3, 39 - 2] == pytest.approx(np.mean(m[3:, :-2] * m[:-3, 2:]), abs=1e-12)
    axes = two_point_correlation_axes(image, 1, r_max=10)
    assert full[47 : 47 + 11, 39] == pytest.approx(axes[0], abs=1e-12)
    # uncorrelated voxels: S2(r > 0) is the squared fraction
    assert axes[:, 1:].mean() == pytest.approx(m.mean() ** 2, abs=0.01)
    periodic = two_point_correlation(image, 1, periodic=True)
    assert periodic.shape == image.shape
    assert periodic[24 + 5, 20] == pytest.approx(np.mean(m * np.roll(m, -5, axis=0)), abs=1e-12)


def test_two_point_distance_is_zero_for_itself_and_grows_with_coarsening(small):
    assert two_point_distance(small, small) == {0: 0.0, 128: 0.0, 255: 0.0}
    coarse = np.repeat(np.repeat(np.repeat(small[::2, ::2, ::2], 2, 0), 2, 1), 2, 2)
    distance = two_point_distance(coarse, small)
    assert all(d > 1e-3 for d in distance.values())


# -- tortuosity ------------------------------------------------------------------------------
def test_tortuosity_of_straight_channels_is_one():
    volume = np.zeros((30, 12, 12), dtype=np.uint8)
    volume[:, ::3, ::2] = 1  # straight columns along axis 0, fraction 1/6
    result = tortuosity(volume, 1, axis=0, tol=1e-6)
    assert result.volume_fraction == pytest.approx(1 / 6)
    assert result.relative_diffusivity == pytest.approx(1 / 6, rel=1e-5)
    assert result.tortuosity_factor == pytest.approx(1.0, rel=1e-5)
    # Across the columns nothing conducts.
    across = tortuosity(volume, 1, axis=1)
    assert across.relative_diffusivity == 0.0 and math.isinf(across.tortuosity_factor)
    assert across.as_dict()["tortuosity_factor"] is None
    assert across.as_dict()["percolates"] is False


def _snake(n: int) -> tuple[np.ndarray, int]:
    """A one-voxel-wide path from the first to the last row of an n x n image."""
    path = [(0, 1), (1, 1)]
    row, go_right = 1, True
    while row + 2 < n - 1:
        cols = range(1, n - 1) if go_right else range(n - 2, 0, -1)
        path += [(row + 1, c) for c in cols]
        end = n - 2 if go_right else 1
        path.append((row + 2, end))
        row, go_right = row + 2, not go_right
    last_col = path[-1][1]
    path += [(r, last_col) for r in range(row + 1, n)]
    image = np.zeros((n, n), dtype=np.uint8)
    for p in path:
        image[p] = 1
    assert int(image.sum()) == len(path) == len(set(path))
    return image, len(path)


def test_tortuosity_of_a_snake_path_is_squared_path_length_ratio():
    image, length = _snake(21)
    # A single path carries the flux through length - 1 unit bonds plus two half-voxel
    # boundary links: D_rel = n / (A * length), eps = length / (n * A), tau = (length / n)^2.
    assert image[0].sum() == 1 and image[-1].sum() == 1
    exact = (length / 21) ** 2
    result = tortuosity(image, 1, axis=0, tol=1e-9, dtype=np.float64)
    assert result.converged
    assert result.tortuosity_factor == pytest.approx(exact, rel=1e-7)
    # the default float32 solve, to its precision
    assert tortuosity(image, 1, axis=0).tortuosity_factor == pytest.approx(exact, rel=1e-3)


def test_tortuosity_agrees_with_taufactor_on_a_small_volume(small):
    tau_module = pytest.importorskip("taufactor")
    # taufactor's SOR solve on the CPU takes seconds even for these crops: keep them small.
    for label, crop in ((0, small[:48, :32, :32]), (128, small[:40, :28, :28])):
        solver = tau_module.Solver((crop == label).astype(np.uint8), device="cpu")
        solver.solve(verbose=False)  # its default criterion (flux spread 1e-2)
        ours = tortuosity(crop, label, axis=0, tol=1e-3)
        assert ours.converged
        assert ours.relative_diffusivity == pytest.approx(float(solver.D_rel[0]), rel=2e-3)
        assert ours.tortuosity_factor == pytest.approx(float(solver.tau[0]), rel=2e-3)


def test_tortuosity_axis_argument_moves_the_gradient():
    volume = np.zeros((20, 20, 20), dtype=np.uint8)
    volume[:, :, 5:8] = 1  # a slab spanning axes 0 and 1
    assert tortuosity(volume, 1, axis=0).tortuosity_factor == pytest.approx(1.0, rel=1e-4)
    assert tortuosity(volume, 1, axis=1).tortuosity_factor == pytest.approx(1.0, rel=1e-4)
    assert tortuosity(volume, 1, axis=2).relative_diffusivity == 0.0


def _dense(apply, shape: tuple[int, ...]) -> np.ndarray:
    """The matrix of a linear map on arrays of ``shape``, column by column."""
    size = int(np.prod(shape))
    columns = []
    for i in range(size):
        e = np.zeros(size)
        e[i] = 1.0
        columns.append(apply(e.reshape(shape)).ravel())
    return np.array(columns).T


def test_multigrid_coarse_operator_is_galerkin_product():
    from progral_dagster.ml.microstructure.tortuosity import _Laplacian, _Multigrid

    rng = np.random.default_rng(5)
    mask = rng.random((5, 4, 3)) < 0.7
    fine = _Laplacian.of_mask(mask, np.float64)
    coarse = fine.coarsen()
    assert coarse.shape == (3, 2, 2)
    a = _dense(lambda x: fine.apply(x, np.empty_like(x)), fine.shape)
    assert np.allclose(a, a.T)
    # P: each fine cell belongs to the aggregate (i // 2, j // 2, k // 2)
    p = np.zeros((mask.size, int(np.prod(coarse.shape))))
    for n, (i, j, k) in enumerate(np.ndindex(mask.shape)):
        p[n, np.ravel_multi_index((i // 2, j // 2, k // 2), coarse.shape)] = 1.0
    galerkin = p.T @ a @ p
    assert np.allclose(_dense(lambda x: coarse.apply(x, np.empty_like(x)), coarse.shape), galerkin)
    # The V-cycle is symmetric positive definite on the active cells (a valid preconditioner).
    m = _dense(_Multigrid(fine), fine.shape)
    active = fine.active.ravel()
    m = m[np.ix_(active, active)]
    assert np.allclose(m, m.T)
    assert np.linalg.eigvalsh(m).min() > 0


def test_multigrid_and_jacobi_preconditioners_agree(electrode):
    crop = electrode[:64, :64, :64]
    for label in (0, 170):
        mg = tortuosity(crop, label, axis=0)
        jacobi = tortuosity(crop, label, axis=0, preconditioner="jacobi")
        assert mg.converged and jacobi.converged
        assert mg.tortuosity_factor == pytest.approx(jacobi.tortuosity_factor, rel=2e-3)
        assert mg.iterations * 4 < jacobi.iterations


def test_percolation_flood_fill_fallback_matches_scipy_labelling(small):
    from progral_dagster.ml.microstructure.tortuosity import _grow, _through_mask

    pytest.importorskip("scipy")
    for label in (0, 128, 255):
        mask = small == label
        assert np.array_equal(_through_mask(mask), _grow(mask, 0) & _grow(mask, -1))
    mask = np.zeros((6, 6), dtype=bool)
    mask[:, 2] = True  # a through column
    mask[1:3, 4] = True  # an isolated island
    mask[0:2, 0] = True  # a dead end on the inlet
    through = _through_mask(mask)
    assert through.sum() == 6 and through[:, 2].all()


@pytest.mark.slow
def test_pore_tortuosity_of_electrode_matches_published(electrode):
    result = tortuosity(electrode, 0, axis=0)
    assert result.converged
    assert result.tortuosity_factor == pytest.approx(ELECTRODE_PORE_TAU_AXIS0, rel=0.03)
    assert result.relative_diffusivity == pytest.approx(0.2166, rel=0.03)
    # measured: 2.0771 (0.03 % off); along y the notebook gives 2.0766
    assert result.tortuosity_factor == pytest.approx(ELECTRODE_PORE_TAU_AXIS0, rel=1e-3)
    assert tortuosity(electrode, 0, axis=1).tortuosity_factor == pytest.approx(2.0766, rel=1e-3)


# -- report and comparison -------------------------------------------------------------------
def test_metrics_report_is_json_ready_and_consistent(small):
    report = metrics_report(small, voxel_size_um=0.5, axis=0)
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert set(report["phases"]) == {"0", "128", "255"}
    fractions = volume_fractions(small)
    for label in (0, 128, 255):
        entry = report["phases"][str(label)]
        assert entry["volume_fraction"] == fractions[label]
        assert entry["specific_surface_area"] == specific_surface_area(small, label, 0.5)
        tau = tortuosity(small, label, axis=0)
        if tau.relative_diffusivity > 0:
            assert entry["tortuosity_factor"] == pytest.approx(tau.tortuosity_factor)
            assert entry["tortuosity_factor"] >= 1.0
        else:
            assert entry["tortuosity_factor"] is None
        assert len(entry["two_point_correlation"]["2"]) == 33
    assert report["units"]["specific_surface_area"] == "1/m"
    assert report["triple_phase_boundary_density"] == triple_phase_boundary_density(
        small, voxel_size_um=0.5
    )
    lean = metrics_report(small, phases=[0], tortuosity=False, two_point=False)
    assert set(lean["phases"]) == {"0"} and set(lean["phases"]["0"]) == {
        "volume_fraction",
        "specific_surface_area",
    }
    assert lean["units"]["specific_surface_area"] == "1/voxel"


def test_compare_metrics_distance(small):
    same = compare_metrics(small, small.copy(), tortuosity=False)
    assert same["distance"] == 0.0 and same["within_targets"]
    # Turn a 16^3 block of phase 0 into phase 255: fractions move by a known amount.
    changed = small.copy()
    block = changed[:16, :16, :16]
    moved = int(np.count_nonzero(block == 0))
    block[block == 0] = 255
    result = compare_metrics(changed, small, tortuosity=False)
    dvf = result["phases"]["0"]["volume_fraction"]
    assert dvf["abs_diff"] == pytest.approx(-moved / small.size)
    assert dvf["rel_diff"] == pytest.approx(-moved / np.count_nonzero(small == 0))
    assert result["phases"]["255"]["volume_fraction"]["abs_diff"] == pytest.approx(
        moved / small.size
    )
    assert result["distance"] > 0.1
    # within targets: every fraction within 0.02, every surface area within 10 % (own count)
    expected_within = all(
        abs(np.mean(changed == p) - np.mean(small == p)) <= 0.02
        and abs(face_count(changed, p) / face_count(small, p) - 1) <= 0.10
        for p in (0, 128, 255)
    )
    assert result["within_targets"] == expected_within
    # a worse forgery scores a larger distance and misses the targets
    worse = small.copy()
    worse[:32][worse[:32] == 0] = 255
    bad = compare_metrics(worse, small, tortuosity=False)
    assert bad["distance"] > result["distance"]
    assert not bad["within_targets"]
    json.dumps(result, allow_nan=False)


def test_compare_metrics_with_tortuosity(small):
    a, b = small[:32, :32, :32], small[32:, 32:, 32:]
    result = compare_metrics(a, b, axis=1)
    for label in (0, 128, 255):
        entry = result["phases"][str(label)]["tortuosity_factor"]
        ta, tb = tortuosity(a, label, axis=1), tortuosity(b, label, axis=1)
        if math.isfinite(ta.tortuosity_factor) and math.isfinite(tb.tortuosity_factor):
            assert entry["generated"] == pytest.approx(ta.tortuosity_factor)
            assert entry["rel_diff"] == pytest.approx(
                ta.tortuosity_factor / tb.tortuosity_factor - 1
            )
        else:
            assert entry["rel_diff"] is None
    json.dumps(result, allow_nan=False)
