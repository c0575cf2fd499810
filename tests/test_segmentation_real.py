"""The segmentation pipeline on real segmented electrode micrographs (shared/samples/microstructure):

- ``SEM_hr_input.tif``: segmented SEM of an NMC cathode, 427 x 427, labels 0 pore (0.1002),
  1 NMC (0.6660), 2 carbon-binder (0.2339) (SOURCES.md);
- ``NREL_NMC111_1000cycles_segmented_phases.tif``: segmented NMC111 cross-section, 1150 x 2000,
  labels 0 (0.0507), 1 (0.0896), 2 = NMC (0.6535), 3 (0.2062) (SOURCES.md; phases unnamed).

Particle statistics are computed on the real labels and checked against the published label
fractions and against connected components and edge counts computed here with scipy/numpy.
Then a synthetic multi-ion image is rendered from the labels (per-phase yields + Poisson
noise, written here, independent of the simulator) and the pipeline must recover the labels.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from progral_dagster.ml.segmentation import SegmentationParams, analyse_labels, fit_unsupervised
from progral_dagster.ml.segmentation.metrics import iou_per_phase, phase_fractions
from tests.conftest import SAMPLES

tifffile = pytest.importorskip("tifffile")

MICRO = SAMPLES / "microstructure"
SEM_PHASES = {0: "pore", 1: "NMC", 2: "carbon-binder"}
NREL_PHASES = {0: "phase_0", 1: "phase_1", 2: "NMC", 3: "phase_3"}


@pytest.fixture(scope="module")
def sem() -> np.ndarray:
    return tifffile.imread(MICRO / "SEM_hr_input.tif")


@pytest.fixture(scope="module")
def nrel() -> np.ndarray:
    return tifffile.imread(MICRO / "NREL_NMC111_1000cycles_segmented_phases.tif")


def _components(mask: np.ndarray, min_area: int) -> int:
    lab, n = ndi.label(mask)
    return int((np.bincount(lab.ravel())[1:] >= min_area).sum())


def _crofton(labels: np.ndarray, a: int, b: int) -> float:
    h = ((labels[:, :-1] == a) & (labels[:, 1:] == b)) | (
        (labels[:, :-1] == b) & (labels[:, 1:] == a)
    )
    v = ((labels[:-1] == a) & (labels[1:] == b)) | ((labels[:-1] == b) & (labels[1:] == a))
    return float(h.sum() + v.sum()) * np.pi / 4


def test_sem_particle_statistics(sem):
    assert sem.shape == (427, 427)
    params = SegmentationParams(min_particle_area_px=15)
    res = analyse_labels(sem, SEM_PHASES, None, None, params)
    published = {"pore": 0.1002, "NMC": 0.6660, "carbon-binder": 0.2339}
    for name, f in published.items():
        assert res.phase_fractions[name] == pytest.approx(f, abs=5e-4)
    parts = res.particles
    assert set(parts["phase"]) == {"NMC"}
    # the watershed only splits: at least one particle per connected NMC piece of >= 15 px
    n_comp = _components(sem == 1, 15)
    assert len(parts) >= n_comp
    # particles cover exactly the NMC phase with background pieces under 15 px filled and
    # then pieces under 15 px dropped (the speckle of single NMC pixels in the binder goes)
    bg, _n = ndi.label(sem != 1)
    filled = (sem == 1) | (np.bincount(bg.ravel())[bg] < 15) & (bg > 0)
    lab, _n = ndi.label(filled)
    pieces = (lab > 0) & (np.bincount(lab.ravel())[lab] >= 15)
    assert np.array_equal(res.instances > 0, pieces)
    assert pieces.sum() > 0.85 * (sem == 1).sum()
    assert np.array_equal(np.bincount(res.instances.ravel())[1:], parts["area_px"].to_numpy())
    # round NMC particles: large ones are compact; no pixel size in the file -> px only
    big = parts[parts["area_px"] > 300]
    assert len(big) >= 10
    assert big["solidity"].median() > 0.85 and big["aspect_ratio"].median() < 1.8
    assert parts["equivalent_diameter_um"].isna().all()
    assert 15 < big["equivalent_diameter_px"].median() < 80
    assert res.interface_lengths["NMC|pore"] == pytest.approx(_crofton(sem, 0, 1))
    assert res.interface_lengths["NMC|carbon-binder"] == pytest.approx(_crofton(sem, 1, 2))


def test_nrel_particle_statistics(nrel):
    assert nrel.shape == (1150, 2000)
    published = {"phase_0": 0.0507, "phase_1": 0.0896, "NMC": 0.6535, "phase_3": 0.2062}
    fractions = phase_fractions(nrel, NREL_PHASES)
    for name, f in published.items():
        assert fractions[name] == pytest.approx(f, abs=5e-4)
    crop = nrel[:575, :1000]  # a quarter keeps the test fast
    params = SegmentationParams(particle_phases=("NMC",), min_particle_area_px=30)
    res = analyse_labels(crop, NREL_PHASES, None, pixel_size_um=None, params=params)
    parts = res.particles
    assert set(parts["phase"]) == {"NMC"}
    assert len(parts) >= _components(crop == 2, 30)
    assert res.interface_lengths["NMC|phase_3"] == pytest.approx(_crofton(crop, 2, 3))
    assert res.phase_fractions["NMC"] == pytest.approx((crop == 2).mean())
    # large cycled particles, tens to hundreds of pixels across, hold most of the NMC
    big = parts[parts["equivalent_diameter_px"] > 50]
    assert len(big) >= 5
    assert big["area_px"].sum() > 0.6 * (crop == 2).sum()


def _render(
    labels: np.ndarray, yields: dict[str, list[float]], other: list[float], dose: float, seed: int
) -> dict[str, np.ndarray]:
    """Per-phase mean counts x dose, Poisson noise; total = ions + unexported species."""
    rng = np.random.default_rng(seed)
    images = {}
    total = np.zeros(labels.shape, np.int64)
    for ion, y in yields.items():
        images[ion] = rng.poisson(np.asarray(y, float)[labels] * dose)
        total += images[ion]
    total += rng.poisson(np.asarray(other, float)[labels] * dose)
    return {"total": total, **images}


# mean counts per pixel at dose 1; columns follow the label values (SEM: pore, NMC, CBD)
SEM_YIELDS = {
    "O-": [5, 200, 60],
    "Ni-": [0.5, 60, 2],
    "NiO-": [0.5, 80, 2],
    "Li-": [1, 50, 10],
    "LiO2-": [0.5, 30, 3],
    "C2-": [4, 8, 120],
    "CH2-": [2, 3, 40],
    "F-": [8, 60, 250],
    "C2F-": [1, 4, 40],
    "POF2-": [0.5, 8, 30],
}


@pytest.mark.quality
def test_sem_labels_recovered_from_rendered_ion_images(sem):
    images = _render(sem, SEM_YIELDS, [10, 300, 300], dose=0.1, seed=1)
    markers = {
        "NMC": ["Ni-", "NiO-", "LiO2-"],
        "carbon-binder": ["C2-", "CH2-", "C2F-"],
        "pore": [],
    }
    # the binder of this segmentation is speckled at the pixel scale (single NMC pixels in
    # it): no spatial denoising, or the speckle is smoothed away
    model = fit_unsupervised([images], markers, SegmentationParams(denoise="none"))
    res = model.segment(images)
    ious = iou_per_phase(res.labels, res.phases, sem, SEM_PHASES)
    assert np.mean(list(ious.values())) >= 0.85, ious


@pytest.mark.quality
def test_nrel_labels_recovered_at_low_dose_and_denoising_helps(nrel):
    crop = nrel[:320, :640]
    yields = {  # one marker ion per phase plus two shared ions
        "A-": [0.5, 40, 4, 3],
        "B-": [0.5, 4, 40, 3],
        "C-": [0.5, 3, 4, 40],
        "D-": [1, 30, 30, 30],
        "E-": [1, 20, 10, 5],
    }
    images = _render(crop, yields, [10, 200, 200, 200], dose=0.05, seed=2)
    markers = {"phase_1": ["A-"], "NMC": ["B-"], "phase_3": ["C-"], "phase_0": []}
    mean = {}
    for denoise in ("none", "tv"):
        model = fit_unsupervised([images], markers, SegmentationParams(denoise=denoise))
        res = model.segment(images)
        ious = iou_per_phase(res.labels, res.phases, crop, NREL_PHASES)
        mean[denoise] = float(np.mean(list(ious.values())))
    assert mean["tv"] >= 0.85, mean
    assert mean["tv"] > mean["none"] + 0.05, mean
