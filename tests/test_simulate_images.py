"""The ToF-SIMS mass-image simulator: phantoms, image formation, IONTOF image export, campaign.

Ground truth is checked by independent means: pixel counts and moments computed here with
numpy, files parsed here with numpy / the standard library, and physical expectations (Poisson
dispersion, yields per phase, rim factors) measured on images rendered without blur.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from progral_dagster.simulate import phantoms
from progral_dagster.simulate.image_export import write_image_export
from progral_dagster.simulate.images_campaign import (
    CATHODE_OTHER,
    CATHODE_PHASES,
    CATHODE_YIELDS,
    CEI_IONS,
    render_ion_images,
    rim_mask,
    simulate_image_measurement,
    simulate_images_campaign,
)
from progral_dagster.simulate.sheet import SHEET_COLUMNS

PX = 100.0 / 256


@pytest.fixture(scope="module")
def cathode():
    return phantoms.cathode_phantom((256, 256), PX, np.random.default_rng(3))


@pytest.fixture(scope="module")
def anode():
    return phantoms.anode_phantom((256, 256), PX, np.random.default_rng(3))


def _interior(ph: phantoms.Phantom) -> np.ndarray:
    """Particles that do not touch the image border."""
    inst = ph.instances
    border = np.unique(np.concatenate([inst[0], inst[-1], inst[:, 0], inst[:, -1]]))
    return np.setdiff1d(np.unique(inst[inst > 0]), border)


def test_phantom_labels_agree_with_instances(cathode, anode):
    for ph in (cathode, anode):
        inst, lab = ph.instances, ph.labels
        for pid, phase in ph.particle_phase.items():
            sel = inst == pid
            if sel.any():
                assert np.all(lab[sel] == phantoms.PHASE_CODES[phase]), pid
        # every particle pixel belongs to a particle, every particle pixel has a particle phase
        solid_codes = [phantoms.PHASE_CODES[p] for p in ("NMC", "graphite", "Si")]
        assert np.array_equal(np.isin(lab, solid_codes), inst > 0)
        # each particle is one connected piece
        for pid in np.unique(inst[inst > 0])[:40]:
            assert ndi.label(inst == pid)[1] == 1


def test_cathode_fractions_and_nmc_sizes(cathode):
    frac = {n: float((cathode.labels == c).mean()) for c, n in cathode.phases.items()}
    assert set(frac) == {"pore", "carbon-binder", "NMC"}
    assert 0.45 <= frac["NMC"] <= 0.6
    assert frac["carbon-binder"] == pytest.approx(0.2, abs=0.02)
    inner = _interior(cathode)
    counts = np.bincount(cathode.instances.ravel())[inner]
    d_um = np.sqrt(4 * counts / np.pi) * PX
    # NMC secondary particles 5-15 um (overlap trimming may shave a little off the smallest)
    assert d_um.min() >= 4.0 and d_um.max() <= 15.5
    assert 7.5 <= np.median(d_um) <= 11.5
    # some particles touch (the watershed must have something to separate)
    inst = cathode.instances
    touching = (inst[:, :-1] != inst[:, 1:]) & (inst[:, :-1] > 0) & (inst[:, 1:] > 0)
    assert touching.sum() > 20


def test_anode_flakes_elongated_si_compact(anode):
    tab = phantoms.particle_table(anode).set_index("particle_id")
    inner = _interior(anode)
    g = tab.loc[[i for i in inner if anode.particle_phase[i] == "graphite"]]
    s = tab.loc[[i for i in inner if anode.particle_phase[i] == "Si"]]
    assert len(g) >= 10 and len(s) >= 30
    assert g["aspect_ratio"].median() >= 2.0
    assert s["aspect_ratio"].median() <= 1.4
    assert 2.0 <= s["equivalent_diameter_um"].median() <= 6.0
    # flakes lie near the horizontal: orientation of the inertia ellipse from moments here
    angles = []
    for pid in g.index:
        yy, xx = np.nonzero(anode.instances == pid)
        cov = np.cov(np.vstack([xx, yy]))
        w, v = np.linalg.eigh(cov)
        major = v[:, 1]
        angles.append(np.degrees(np.arctan2(abs(major[1]), abs(major[0]))))
    assert np.median(angles) < 30
    # two Si agglomerates never touch (by definition they would be one)
    si = np.isin(anode.instances, s.index.to_numpy())
    lab, _ = ndi.label(si)
    for pid in s.index[:30]:
        own = anode.instances == pid
        assert len(np.unique(lab[own])) == 1
        assert np.count_nonzero(lab == lab[own][0]) == own.sum()


def test_particle_table_matches_pixel_moments(anode):
    tab = phantoms.particle_table(anode)
    row = tab.iloc[len(tab) // 2]
    yy, xx = np.nonzero(anode.instances == row["particle_id"])
    assert row["area_px"] == len(yy)
    assert row["equivalent_diameter_um"] == pytest.approx(np.sqrt(4 * len(yy) / np.pi) * PX)
    c = np.cov(np.vstack([xx, yy]), bias=True) + np.eye(2) / 12
    ev = np.linalg.eigvalsh(c)
    assert row["aspect_ratio"] == pytest.approx(np.sqrt(ev[1] / ev[0]), rel=1e-9)
    assert row["centroid_x"] == pytest.approx(xx.mean())


def test_rendering_poisson_yields_and_rim(cathode):
    """Without blur, shading and matrix effect: counts are Poisson with the table's means, and
    CEI ions are multiplied by each particle's factor in its rim."""
    rng = np.random.default_rng(5)
    pids = sorted(cathode.particle_phase)
    factors = {pid: 3.0 for pid in pids[::2]}
    imgs = render_ion_images(
        cathode,
        CATHODE_YIELDS,
        CATHODE_OTHER,
        CATHODE_PHASES,
        rng,
        dose=1.0,
        psf_sigma_px=0.0,
        shading_amplitude=0.0,
        matrix_strength=0.0,
        rim_factors=factors,
        rim_width_px=3,
    )
    assert imgs["Ni-"].dtype == np.uint16
    assert list(imgs)[0] == "total"
    ring = rim_mask(cathode.instances, 3)
    core = (cathode.instances > 0) & ~ring
    for k, phase in enumerate(CATHODE_PHASES):
        sel = (cathode.labels == phantoms.PHASE_CODES[phase]) & ~ring
        for ion in ("Ni-", "C2-", "O-"):
            v = imgs[ion][sel].astype(float)
            assert v.mean() == pytest.approx(CATHODE_YIELDS[ion][k], rel=0.05, abs=0.05)
            if CATHODE_YIELDS[ion][k] > 5:
                assert v.var() / v.mean() == pytest.approx(1.0, abs=0.1)  # Poisson dispersion
    expected_total = sum(CATHODE_YIELDS[i][2] for i in CATHODE_YIELDS) + CATHODE_OTHER[2]
    assert imgs["total"][core].mean() == pytest.approx(expected_total, rel=0.03)
    enriched = np.isin(cathode.instances, list(factors))
    for ion in ("LiCO3-", "NiF3-"):
        rim_en = imgs[ion][ring & enriched].mean()
        rim_plain = imgs[ion][ring & ~enriched & (cathode.instances > 0)].mean()
        core_mean = imgs[ion][core].mean()
        assert rim_en / core_mean == pytest.approx(3.0, rel=0.12)
        assert rim_plain / core_mean == pytest.approx(1.0, rel=0.12)
    # total = sum of ions + the unexported species: never below the sum of the ion images
    ion_sum = np.sum([imgs[i].astype(np.int64) for i in CATHODE_YIELDS], axis=0)
    assert np.all(imgs["total"] >= ion_sum)


def test_measurement_doses_and_truth():
    typ = simulate_image_measurement(
        "cathode", (128, 128), 50.0, "typical", np.random.default_rng(1)
    )
    low = simulate_image_measurement("cathode", (128, 128), 50.0, "low", np.random.default_rng(1))
    ion_images, labels, phases, particles, meta = typ
    assert np.array_equal(labels, low.labels)  # same seed: same phantom, only the dose differs
    nmc = labels == phantoms.PHASE_CODES["NMC"]
    # typical: tens to hundreds of counts in an ion's own phase; low: a few
    assert 30 < ion_images["Ni-"][nmc].mean() < 150
    assert 1 < low.ion_images["Ni-"][nmc].mean() < 6
    assert 4 < low.ion_images["O-"][nmc].mean() < 15
    assert meta["pixel_size_um"] == pytest.approx(50.0 / 128)
    assert set(meta["cei_ions"]) == set(CEI_IONS)
    assert set(phases.values()) == {"pore", "carbon-binder", "NMC"}
    assert {
        "particle_id",
        "phase",
        "equivalent_diameter_um",
        "aspect_ratio",
        "cei_rim_factor",
    } <= set(particles.columns)
    factors = particles["cei_rim_factor"]
    assert (factors == 1).any() and (factors > 2).any()
    anode = simulate_image_measurement("anode", (96, 128), 50.0, 0.5, np.random.default_rng(1))
    assert anode.labels.shape == (96, 128) and anode.ion_images["Si-"].shape == (96, 128)
    si = anode.labels == phantoms.PHASE_CODES["Si"]
    assert anode.ion_images["Si-"][si].mean() > 10 * anode.ion_images["Si-"][~si].mean()
    with pytest.raises(ValueError):
        simulate_image_measurement("separator")
    with pytest.raises(ValueError):
        simulate_image_measurement("cathode", dose="medium")


def _parse_export(path: Path) -> tuple[dict[str, str], np.ndarray, list[str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    header = {}
    i = 0
    while lines[i].startswith("# "):
        if ": " in lines[i]:
            k, v = lines[i][2:].split(": ", 1)
            header[k] = v
        i += 1
    title = lines[i].split()
    rows = np.array([ln.split() for ln in lines[i + 1 :] if ln], dtype=np.int64)
    return header, rows, title


def test_export_format(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {
        "total": rng.integers(0, 500, (5, 7)),
        "Ni-": rng.integers(0, 50, (5, 7)),
        "C2-": rng.integers(0, 50, (5, 7)),
    }
    paths = write_image_export(tmp_path / "m", "NMC cross (2)", imgs, fov_um=70.0, scans=12)
    assert [p.name for p in paths] == [
        "NMC cross (2) (1) - total.txt",
        "NMC cross (2) (2) - Ni-.txt",
        "NMC cross (2) (3) - C2-.txt",
    ]
    for p, (ion, img) in zip(paths, imgs.items(), strict=True):
        first = p.read_text().split("\n")[0]
        assert first == "# IONTOF SurfaceLab image export"
        header, rows, title = _parse_export(p)
        assert header["Ion"] == ion and header["Measurement"] == "NMC cross (2)"
        assert header["Field of view"] == "70.0 x 50.0 um"
        assert header["Pixels"] == "7 x 5" and header["Scans"] == "12"
        assert header["Polarity"] == "negative"
        assert title == ["x", "y", "intensity"]
        assert len(rows) == 35
        assert list(rows[:8, 0]) == [0, 1, 2, 3, 4, 5, 6, 0]  # x fastest
        assert list(rows[:8, 1]) == [0] * 7 + [1]
        assert np.array_equal(img[rows[:, 1], rows[:, 0]], rows[:, 2])
    # no total given: the writer adds one, the sum of the ions
    paths = write_image_export(tmp_path / "n", "m2", {"A-": np.full((2, 2), 1.5)}, fov_um=10.0)
    assert paths[-1].name == "m2 (2) - total.txt"
    assert "1.5" in paths[0].read_text()
    with pytest.raises(ValueError):
        write_image_export(tmp_path, "bad/name", imgs)
    with pytest.raises(ValueError):
        write_image_export(tmp_path, "m3", {"a": np.zeros((2, 2)), "b": np.zeros((3, 2))})


def test_export_round_trip_through_reader(tmp_path):
    reader = pytest.importorskip("progral_dagster.readers.iontof_image")
    sim = simulate_image_measurement("anode", (40, 56), 20.0, "low", np.random.default_rng(2))
    paths = write_image_export(tmp_path, "anode_x", sim.ion_images, fov_um=20.0)
    m = reader.read(paths)
    t = m.tables["tof_sims_images"].to_pandas()
    assert m.metadata["measurement_name"] == "anode_x"
    assert m.metadata["pixel_size_um"] == pytest.approx(20.0 / 56)
    assert list(dict.fromkeys(t["ion"])) == list(sim.ion_images)
    for ion, img in sim.ion_images.items():
        sub = t[t["ion"] == ion]
        back = np.zeros(img.shape)
        back[sub["y"], sub["x"]] = sub["intensity"]
        assert np.array_equal(back, img), ion


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_campaign_small_files_truth_and_determinism(tmp_path):
    import tifffile

    rows = simulate_images_campaign(tmp_path / "a" / "share", tmp_path / "a" / "truth", 7)
    simulate_images_campaign(tmp_path / "b" / "share", tmp_path / "b" / "truth", 7)
    simulate_images_campaign(tmp_path / "c" / "share", None, 8)
    da, db = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert da == db  # same seed: byte-identical
    dc = _tree_digest(tmp_path / "c")
    shared = [k for k in dc if k in da]
    assert shared and all(dc[k] != da[k] for k in shared if k.endswith(".txt"))
    assert not (tmp_path / "c" / "truth").exists()

    share, truth = tmp_path / "a" / "share", tmp_path / "a" / "truth" / "images"
    assert all(set(r) <= set(SHEET_COLUMNS) for r in rows)
    ion_rows = [r for r in rows if r["file"].endswith(".txt")]
    label_rows = [r for r in rows if r["labels_for"]]
    assert {r["material"] for r in ion_rows} == {"NMC811", "Si-graphite"}
    assert all(r["project"] == "electrode-imaging" and r["field_of_view_um"] for r in rows)
    phase_names = {int(k): v for k, v in json.loads((truth / "phases.json").read_text()).items()}
    assert phase_names == phantoms.PHASE_NAMES
    import pandas as pd

    parts = pd.read_csv(truth / "particles.csv")
    assert list(parts.columns) == [
        "measurement",
        "particle_id",
        "phase",
        "equivalent_diameter_um",
        "aspect_ratio",
    ]
    for r in ion_rows:
        files = sorted(share.glob(r["file"]))
        name = Path(r["file"]).parent.name
        assert len(files) == (21 if r["material"] == "NMC811" else 17)
        nums = sorted(int(re.search(r"\((\d+)\) - ", f.name).group(1)) for f in files)
        assert nums == list(range(1, len(files) + 1))
        lab = tifffile.imread(truth / f"{name}.tif")
        hdr, rows_, _ = _parse_export(next(f for f in files if f.name.endswith("- total.txt")))
        nx, ny = (int(v) for v in hdr["Pixels"].split(" x "))
        assert lab.shape == (ny, nx)
        # the truth sits on the exported grid: the marker ion is bright exactly on its phase
        marker, code = ("Ni-", 2) if r["material"] == "NMC811" else ("Si-", 4)
        _h, mrows, _t = _parse_export(next(f for f in files if f.name.endswith(f"- {marker}.txt")))
        img = np.zeros((ny, nx))
        img[mrows[:, 1], mrows[:, 0]] = mrows[:, 2]
        assert img[lab == code].mean() > 8 * img[lab == 0].mean()
        assert img[lab == code].mean() > 5 * img[(lab != code)].mean()
        # particles.csv: the measurement's particles, diameters from the truth label areas
        p = parts[parts["measurement"] == name]
        area_um2 = (lab == code).sum() * (r["field_of_view_um"] / nx) ** 2
        own = p[p["phase"] == ("NMC" if code == 2 else "Si")]
        assert (np.pi / 4 * own["equivalent_diameter_um"] ** 2).sum() == pytest.approx(area_um2)
    assert {r["labels_for"] for r in label_rows} == {"cathode_01", "anode_01"}
    for r in label_rows:
        with tifffile.TiffFile(share / r["file"]) as tf:
            user = tf.asarray()
            desc = json.loads(tf.pages[0].description)
        lab = tifffile.imread(truth / f"{r['labels_for']}.tif")
        ann = user > 0
        assert 0.1 < ann.mean() < 0.6  # a partial annotation
        assert np.array_equal(user[ann] - 1, lab[ann])
        names = {int(k): v for k, v in desc["labels"].items()}
        assert all(names[v] == phantoms.PHASE_NAMES[v - 1] for v in np.unique(user[ann]))


@pytest.mark.quality
def test_campaign_full_plan(tmp_path):
    rows = simulate_images_campaign(tmp_path / "share", tmp_path / "truth", 3, size="full")
    names = {Path(r["file"]).parent.name for r in rows}
    assert any("lowdose" in n for n in names if n.startswith("cathode"))
    assert any("lowdose" in n for n in names if n.startswith("anode"))
    assert len([n for n in names if n.startswith("cathode")]) >= 3
    with pytest.raises(ValueError):
        simulate_images_campaign(tmp_path / "x", None, 1, size="huge")
