"""Fast tests of the segmentation pipeline's parts against independent truth: hand-computed
values, analytic shapes (disks, ellipses, their perimeters and areas), Poisson means, and a
small simulated image with its ground truth."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from progral_dagster.ml.segmentation import (
    SegmentationParams,
    analyse_labels,
    fit_supervised,
    fit_unsupervised,
    ion_images_from_table,
    label_names_from_description,
    summary_metrics,
    write_segmentation_outputs,
)
from progral_dagster.ml.segmentation.denoise import denoise_counts
from progral_dagster.ml.segmentation.features import (
    composition_channels,
    iter_multiscale,
    multiscale_strip,
    relative_intensity,
)
from progral_dagster.ml.segmentation.metrics import (
    interface_lengths,
    iou_per_phase,
    match_particles,
    mean_iou,
    phase_fractions,
)
from progral_dagster.ml.segmentation.normalize import (
    anscombe,
    inverse_anscombe,
    normalize_images,
    pixel_normalize,
    reference_image,
)
from progral_dagster.ml.segmentation.particles import (
    h_maxima_markers,
    particle_table,
    rim_enrichment,
    separate_particles,
)
from progral_dagster.simulate.images_campaign import simulate_image_measurement, user_label_image


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


@pytest.fixture(scope="module")
def small_cathode():
    return simulate_image_measurement(
        "cathode", (128, 128), 50.0, "typical", np.random.default_rng(21)
    )


# --------------------------------------------------------------------------------------------
# normalisation and denoising
# --------------------------------------------------------------------------------------------
def test_pixel_normalize_zero_guard():
    img = np.array([[2, 0], [3, 5]])
    ref = np.array([[4, 0], [0, 10]])
    with np.errstate(all="raise"):
        out = pixel_normalize(img, ref)
    assert out.dtype == np.float32
    assert out.tolist() == [[0.5, 0.0], [0.0, 0.5]]
    imgs = {
        "total": np.array([[10.0, 0.0]]),
        "A-": np.array([[4.0, 1.0]]),
        "B-": np.array([[6.0, 2.0]]),
    }
    norm = normalize_images(imgs)
    assert set(norm) == {"A-", "B-"}
    np.testing.assert_allclose(norm["A-"], [[0.4, 0.0]], rtol=1e-6)
    by_ion = normalize_images(imgs, reference="B-")
    np.testing.assert_allclose(by_ion["A-"], [[4 / 6, 0.5]], rtol=1e-6)
    # without a total image the sum of the ions stands in for it
    no_total = {"A-": imgs["A-"], "B-": imgs["B-"]}
    assert reference_image(no_total).tolist() == [[10.0, 3.0]]
    with pytest.raises(KeyError):
        reference_image(no_total, "C-")


@pytest.mark.parametrize("lam", [0.5, 1.0, 3.0, 10.0, 60.0])
def test_anscombe_inverse_is_unbiased_for_poisson(lam):
    x = np.random.default_rng(0).poisson(lam, 400_000)
    y = anscombe(x)
    if lam >= 3:  # the transform stabilises the variance to 1 from a few counts on
        assert y.var() == pytest.approx(1.0, abs=0.03)
    # the exact unbiased inverse maps E[anscombe(X)] back to the Poisson mean, even at 0.5
    assert float(inverse_anscombe(np.array([y.mean()]))[0]) == pytest.approx(lam, rel=0.02)


def test_denoise_counts_reduces_error_on_poisson_image():
    rng = np.random.default_rng(1)
    lam = np.full((96, 96), 3.0)
    lam[:, 48:] = 8.0
    lam[disk(lam.shape, 30, 20, 10)] = 12.0
    counts = rng.poisson(lam)
    raw_mse = np.mean((counts - lam) ** 2)
    for method in ("tv", "nlm", "gaussian"):
        den = denoise_counts(counts, method)
        assert den.dtype == np.float32 and den.shape == lam.shape
        assert np.mean((den - lam) ** 2) < 0.4 * raw_mse, method
        assert den.mean() == pytest.approx(lam.mean(), rel=0.05)  # no bias in the counts
    assert np.array_equal(denoise_counts(counts, "none"), counts.astype(np.float32))
    with pytest.raises(ValueError):
        denoise_counts(counts, "median")


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
def test_relative_intensity_removes_shading_and_splits_pores():
    ny, nx = 128, 160
    yy, xx = np.mgrid[:ny, :nx]
    shading = 0.6 + 0.8 * xx / nx  # 0.6 .. 1.4 across the field
    pores = disk((ny, nx), 40, 50, 18) | disk((ny, nx), 90, 120, 22)
    level = np.where(pores, 30.0, 800.0) * shading
    ratio, t = relative_intensity(level)
    assert np.all((ratio > t) == ~pores)
    assert ratio[~pores].min() > 0.85 and ratio[~pores].max() < 1.15


def test_multiscale_strips_equal_whole_image():
    rng = np.random.default_rng(2)
    ch = rng.normal(size=(3, 50, 40)).astype(np.float32)
    whole = multiscale_strip(ch, (1.0, 2.0))
    parts = [f for _r0, _r1, f in iter_multiscale(ch, (1.0, 2.0), max_pixels=7 * 40)]
    assert sum(len(p) for p in parts) == 50 * 40
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_streamed_projection_equals_matrix_projection(small_cathode):
    model = fit_unsupervised([small_cathode.ion_images], "NMC811")
    feats = model.phase_model.features
    ref = feats.reference_image(small_cathode.ion_images)
    comp = feats.project(small_cathode.ion_images, ref)
    chans = composition_channels(
        small_cathode.ion_images, feats.ions, ref, feats.denoise, feats.strength
    )
    full = np.stack([c.ravel() for _i, c in chans], axis=1)
    expect = ((full - feats.mean) / feats.scale) @ feats.components
    np.testing.assert_allclose(comp.reshape(comp.shape[0], -1).T, expect, atol=2e-4)
    # CEI ions are measured at rims, not used as phase features
    assert "LiCO3-" not in feats.ions and "Ni-" in feats.ions


# --------------------------------------------------------------------------------------------
# particles
# --------------------------------------------------------------------------------------------
def test_watershed_splits_touching_disks_and_keeps_a_flake_whole():
    shape = (120, 200)
    a = disk(shape, 60, 50, 20)
    b = disk(shape, 60, 85, 18)  # centre distance 35 < 38: a neck
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    flake = ((xx - 150) / 40.0) ** 2 + ((yy - 60) / 10.0) ** 2 <= 1
    inst = separate_particles(a | b | flake)
    assert inst.max() == 3
    assert len(np.unique(inst[flake])) == 1  # no cut along the flake's ridge
    tab = particle_table(inst, dict.fromkeys(range(1, 4), "NMC"), pixel_size_um=0.5)
    fl = tab.set_index("particle_id").loc[int(inst[60, 150])]
    assert fl["area_px"] == flake.sum()
    assert fl["aspect_ratio"] == pytest.approx(4.0, rel=0.03)
    assert fl["equivalent_diameter_um"] == pytest.approx(np.sqrt(4 * flake.sum() / np.pi) * 0.5)
    assert fl["solidity"] > 0.9
    crescent = disk(shape, 60, 50, 25) & ~disk(shape, 60, 62, 22)
    ctab = particle_table(separate_particles(crescent), {1: "NMC"})
    assert len(ctab) == 1 and ctab["solidity"].iloc[0] < 0.6
    # the two disks: areas close to pi r^2 (the watershed line goes through the neck)
    areas = sorted(tab["area_px"])[:2]
    assert areas[0] == pytest.approx(np.pi * 18**2, rel=0.1)
    assert areas[1] == pytest.approx(np.pi * 20**2, rel=0.1)


def test_markers_one_per_plateau_and_small_kept():
    m = np.zeros((40, 80), bool)
    m[10:30, 5:75] = True  # a bar: its distance map has a flat ridge of equal maxima
    m[2:5, 2:5] = True  # tiny blob whose maximum is below h
    mk = h_maxima_markers(ndi.distance_transform_edt(m), 2.0, m)
    assert len(np.unique(mk[10:30, 5:75])) == 2  # background + one marker
    assert mk[3, 3] > 0
    inst = separate_particles(m, min_area_px=5)
    assert inst.max() == 2
    inst = separate_particles(m, min_area_px=20)
    assert inst.max() == 1 and inst[3, 3] == 0


def test_rim_enrichment_exact_on_noise_free_disks():
    shape = (80, 120)
    inst = np.zeros(shape, np.int32)
    inst[disk(shape, 40, 30, 20)] = 1
    inst[disk(shape, 40, 85, 20)] = 2
    ref = np.full(shape, 100.0)
    # rim as documented: within 3 px of the particle's outline (pixels with a 4-neighbour
    # outside it), computed here by brute force
    from scipy.spatial.distance import cdist

    p1 = inst == 1
    outline = p1 & ~ndi.binary_erosion(p1, border_value=0)
    pix = np.argwhere(p1)
    d = cdist(pix, np.argwhere(outline)).min(axis=1)
    sig = np.where(inst > 0, 5.0, 0.0)
    rim_pix = pix[d < 3]
    sig[rim_pix[:, 0], rim_pix[:, 1]] = 15.0  # particle 1: 3x in a 3-pixel rim
    e = rim_enrichment(inst, {"s": sig}, ref, width_px=3, core_depth_px=5)["s"]
    assert np.isnan(e[0])
    assert e[1] == pytest.approx(3.0, rel=1e-6)
    assert e[2] == pytest.approx(1.0, rel=1e-6)
    tiny = np.zeros(shape, np.int32)
    tiny[40:43, 40:43] = 1
    assert np.isnan(rim_enrichment(tiny, {"s": sig}, ref)["s"][1])  # no core


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def test_metrics_by_name_fractions_and_interface_length():
    truth = np.zeros((10, 10), np.uint8)
    truth[:, 5:] = 1
    pred = np.full((10, 10), 7, np.uint8)
    pred[:, 6:] = 3
    ious = iou_per_phase(pred, {7: "pore", 3: "NMC"}, truth, {0: "pore", 1: "NMC"})
    assert ious == {"pore": pytest.approx(50 / 60), "NMC": pytest.approx(40 / 50)}
    assert mean_iou(pred, {7: "pore"}, truth, {0: "pore", 1: "NMC"}) == pytest.approx(
        (50 / 60 + 0) / 2  # NMC never predicted: IoU 0
    )
    assert phase_fractions(truth, {0: "pore", 1: "NMC", 2: "none"}) == {
        "pore": 0.5,
        "NMC": 0.5,
        "none": 0.0,
    }
    # Cauchy-Crofton: edge count x pi/4 estimates the perimeter of an isotropic boundary
    lab = disk((300, 300), 150, 150, 100).astype(np.uint8)
    lab[disk((300, 300), 150, 150, 40)] = 2
    got = interface_lengths(lab, {0: "pore", 1: "NMC", 2: "Si"}, pixel_size_um=0.5)
    assert got["NMC|pore"] == pytest.approx(2 * np.pi * 100 * 0.5, rel=0.03)
    assert got["NMC|Si"] == pytest.approx(2 * np.pi * 40 * 0.5, rel=0.03)
    assert got["Si|pore"] == 0.0


def test_match_particles():
    a = np.zeros((20, 20), int)
    b = np.zeros((20, 20), int)
    a[2:8, 2:8] = 5
    b[2:8, 3:9] = 9
    a[12:18, 12:18] = 6  # no partner
    pairs = match_particles(a, b)
    assert pairs == [(5, 9, pytest.approx(30 / 42))]


# --------------------------------------------------------------------------------------------
# pipeline on a small simulated image
# --------------------------------------------------------------------------------------------
def test_unsupervised_small_image_and_pickle(small_cathode):
    ion_images, labels, phases, _parts, meta = small_cathode
    model = fit_unsupervised([ion_images], "NMC811")
    assert set(model.phases.values()) == {"NMC", "carbon-binder", "pore"}
    res = model.segment(ion_images, meta["pixel_size_um"])
    assert mean_iou(res.labels, res.phases, labels, phases) > 0.9
    assert sum(res.phase_fractions.values()) == pytest.approx(1.0)
    assert set(res.particles["phase"]) == {"NMC"}
    assert res.particles["equivalent_diameter_um"].between(1, 20).all()
    assert np.array_equal(
        np.bincount(res.instances.ravel())[1:], res.particles["area_px"].to_numpy()
    )
    assert res.rim_enrichment["n_particles"] > 5 and res.rim_enrichment["median"] > 0
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict_labels(ion_images), res.labels)
    with pytest.raises(KeyError):
        model.segment({k: v for k, v in ion_images.items() if k != "Ni-"})
    # a marker table whose ions are absent is refused
    with pytest.raises(ValueError):
        fit_unsupervised([ion_images], {"A": ["Xx-"], "pore": []})
    with pytest.raises(ValueError):
        fit_unsupervised([ion_images], {"A": ["Ni-"], "B": [], "C": []})


def test_supervised_from_partial_labels(small_cathode):
    ion_images, labels, phases, _parts, meta = small_cathode
    user = user_label_image(labels, np.random.default_rng(0))
    names = {v + 1: n for v, n in phases.items()}
    params = SegmentationParams(n_estimators=15, sample_pixels=8000)
    model = fit_supervised([ion_images], [user], names, params)
    assert model.kind == "supervised" and model.phases == names
    res = model.segment(ion_images, meta["pixel_size_um"])
    assert mean_iou(res.labels, res.phases, labels, phases) > 0.85
    with pytest.raises(ValueError):
        fit_supervised([ion_images], [np.zeros_like(user)], names)
    with pytest.raises(ValueError):
        fit_supervised([ion_images], [user[:-1]], names)


def test_analyse_labels_without_images():
    lab = np.zeros((60, 60), np.uint8)
    lab[disk(lab.shape, 20, 20, 10)] = 1
    lab[disk(lab.shape, 40, 42, 12)] = 1
    res = analyse_labels(lab, {0: "pore", 1: "NMC"}, None, None)
    assert len(res.particles) == 2
    assert res.particles["equivalent_diameter_um"].isna().all()
    assert res.rim_enrichment["median"] is None
    assert res.particles["equivalent_diameter_px"].max() == pytest.approx(
        np.sqrt(4 * disk(lab.shape, 40, 42, 12).sum() / np.pi)
    )


def test_ion_images_from_table():
    df = pd.DataFrame(
        {
            "ion": ["total"] * 6 + ["A-"] * 6,
            "x": [0, 1, 2, 0, 1, 2] * 2,
            "y": [0, 0, 0, 1, 1, 1] * 2,
            "z": [None] * 12,
            "intensity": list(range(6)) + [5, 4, 3, 2, 1, 0],
        }
    )
    im = ion_images_from_table(df)
    assert list(im) == ["total", "A-"]
    assert im["total"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert im["A-"][1, 0] == 2
    with pytest.raises(ValueError):
        ion_images_from_table(df.assign(z=1))


def test_outputs_and_plots(tmp_path, small_cathode):
    import tifffile

    ion_images, _labels, _phases, _parts, meta = small_cathode
    res = fit_unsupervised([ion_images], "NMC811").segment(ion_images, meta["pixel_size_um"])
    paths = write_segmentation_outputs(res, tmp_path, "cathode_x")
    assert {p.name for p in paths.values()} == {
        "cathode_x.tif",
        "cathode_x.phases.json",
        "cathode_x.particles.csv",
        "cathode_x.overlay.png",
    }
    assert np.array_equal(tifffile.imread(paths["labels"]), res.labels)
    phases = json.loads(paths["phases"].read_text())
    assert {int(k): v for k, v in phases.items()} == res.phases
    with tifffile.TiffFile(paths["labels"]) as tf:
        assert label_names_from_description(tf.pages[0].description) == res.phases
    assert len(pd.read_csv(paths["particles"])) == len(res.particles)
    assert paths["overlay"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reader = pytest.importorskip("progral_dagster.readers.tiff_labels")
    m = reader.read(paths["labels"])
    assert m.tables["microstructures"].column("voxel_size_um")[0].as_py() == pytest.approx(
        meta["pixel_size_um"]
    )
    metrics = summary_metrics(res)
    assert metrics["n_particles_NMC"] == len(res.particles)
    assert metrics["fraction_NMC"] == pytest.approx(res.phase_fractions["NMC"])

    from progral_dagster.ml.segmentation.plots import particle_histograms, rim_histogram

    fig = particle_histograms(res.particles)
    ax_d, ax_a = fig.axes
    assert sum(p.get_height() for p in ax_d.patches) == len(res.particles)
    assert "um" in ax_d.get_xlabel()
    fig = rim_histogram(res.particles, threshold=1.4)
    assert (
        sum(p.get_height() for p in fig.axes[0].patches)
        == res.particles["rim_enrichment"].notna().sum()
    )


def test_pure_package_imports_no_dagster_mlflow_or_matplotlib():
    code = (
        "import sys; import progral_dagster.ml.segmentation, progral_dagster.simulate.images_campaign;"
        "bad = [m for m in ('dagster', 'mlflow', 'matplotlib', 'torch') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
