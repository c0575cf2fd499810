"""Simulated ToF-SIMS mass images of electrode cross-sections, and the imaging campaign.

Follows the measurements of Lombardo et al., Adv. Mater. Interfaces 10 (2023) 2300640
(SCIENCE.md, workflow 2): negative-ion maps of an NMC cathode and a Si/graphite anode, one IONTOF
image export per ion plus ``total``. The image formation model, applied to a labelled phantom
(:mod:`.phantoms`):

1. per-phase ion yields (counts per pixel at the typical dose; table below, a parameter set in
   the spirit of the published maps, not fitted to data): NMC is rich in O-, Ni-, NiO-, Li-,
   LiO2- and the transition-metal fluorides; the carbon-binder domain in C2-, CH2-, F-, C2F-,
   POF2- (PVDF binder, LiPF6 residues); graphite in C_n-, Si in Si-, SiOx-; pores give low
   total counts;
2. CEI rim enrichment: on a chosen subset of NMC particles the CEI ions (C2F-, PO2-, PO3-,
   CO3-, LiCO3-, NiF3-, MnF3-) are multiplied by a per-particle factor in a rim a few pixels
   wide (the CEI itself is nanometres thick, far below a pixel);
3. a matrix effect: Li- and O-containing ions ionise more readily next to the fluorine-rich
   binder (a smooth factor 1 + s * local binder fraction);
4. topography shading: a slow multiplicative field (tilt plus smooth relief) common to all ions;
5. finite lateral resolution: Gaussian point-spread function (sigma about 1 px);
6. Poisson counting at the chosen dose (``typical``: tens to hundreds of counts per pixel in an
   ion's own phase; ``low``: a few); the total image adds species not exported as ions.

Ground truth stays apart from the share: label image on the exported pixel grid, phase names,
and per-particle equivalent diameter and aspect ratio. numpy/scipy only; there is no maintained
ToF-SIMS image simulator to reuse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .image_export import write_image_export
from .phantoms import PHASE_CODES, PHASE_NAMES, Phantom, make_phantom, particle_table
from .sheet import SHEET_COLUMNS

PROJECT = "electrode-imaging"
MATERIALS = {"cathode": "NMC811", "anode": "Si-graphite"}
DOSES = {"typical": 1.0, "low": 0.04}

# Mean counts per pixel at the typical dose, per phase, for each exported ion.
# Cathode columns: pore, carbon-binder, NMC.
CATHODE_YIELDS: dict[str, tuple[float, float, float]] = {
    "C2-": (4, 120, 8),
    "CH2-": (2, 40, 3),
    "O-": (5, 60, 200),
    "F-": (8, 250, 60),
    "Li-": (1, 10, 50),
    "LiO2-": (0.5, 3, 30),
    "LiF2-": (1, 25, 15),
    "Ni-": (0.5, 2, 60),
    "NiO-": (0.5, 2, 80),
    "NiF2-": (0.3, 3, 20),
    "CoF2-": (0.2, 1, 10),
    "MnF2-": (0.2, 1, 10),
    "POF2-": (0.5, 30, 8),
    "C2F-": (1, 40, 4),
    "PO2-": (0.5, 8, 4),
    "PO3-": (0.5, 8, 4),
    "CO3-": (0.5, 4, 6),
    "LiCO3-": (0.2, 1, 4),
    "NiF3-": (0.1, 0.5, 3),
    "MnF3-": (0.1, 0.5, 2),
}
CATHODE_OTHER = (10, 300, 300)  # counts in the total image from species not exported
CATHODE_PHASES = ("pore", "carbon-binder", "NMC")

# Anode columns: pore, carbon-binder, graphite, Si.
ANODE_YIELDS: dict[str, tuple[float, float, float, float]] = {
    "C-": (3, 60, 90, 8),
    "C2-": (4, 120, 250, 10),
    "C4-": (1, 20, 60, 2),
    "C6-": (0.5, 8, 40, 1),
    "CH-": (2, 70, 15, 6),
    "C2H-": (2, 90, 20, 6),
    "O-": (5, 80, 10, 120),
    "OH-": (3, 50, 5, 30),
    "F-": (6, 90, 15, 20),
    "Li-": (1, 15, 25, 30),
    "LiF2-": (0.5, 12, 3, 5),
    "Si-": (0.5, 2, 1, 150),
    "SiO-": (0.3, 1, 0.5, 40),
    "SiO2-": (0.5, 2, 1, 90),
    "SiO3-": (0.3, 1, 0.5, 50),
    "POF2-": (0.5, 15, 2, 3),
}
ANODE_OTHER = (10, 250, 300, 250)
ANODE_PHASES = ("pore", "carbon-binder", "graphite", "Si")

CEI_IONS = ("C2F-", "PO2-", "PO3-", "CO3-", "LiCO3-", "NiF3-", "MnF3-")
MATRIX_IONS = ("Li-", "O-", "LiO2-", "LiF2-")


class SimulatedImages(NamedTuple):
    """What :func:`simulate_image_measurement` returns (unpacks as a 5-tuple).

    ``metadata`` holds JSON-able acquisition facts plus ``instances``, the ground-truth particle
    id image (not JSON; pop it before serialising).
    """

    ion_images: dict[str, np.ndarray]
    labels: np.ndarray
    phases: dict[int, str]
    particles: pd.DataFrame
    metadata: dict[str, Any]


def dose_scale(dose: str | float) -> float:
    """``typical`` -> 1, ``low`` -> 0.04, a number -> that multiple of the typical yields."""
    if isinstance(dose, str):
        if dose not in DOSES:
            raise ValueError(f"dose must be one of {sorted(DOSES)} or a number, got {dose!r}")
        return DOSES[dose]
    if not dose > 0:
        raise ValueError("dose must be positive")
    return float(dose)


def rim_mask(instances: np.ndarray, width_px: float) -> np.ndarray:
    """Particle pixels within ``width_px`` of their own particle's outline (outline included)."""
    inst = instances
    edge = np.zeros(inst.shape, bool)
    edge[:-1, :] |= inst[:-1, :] != inst[1:, :]
    edge[1:, :] |= inst[1:, :] != inst[:-1, :]
    edge[:, :-1] |= inst[:, :-1] != inst[:, 1:]
    edge[:, 1:] |= inst[:, 1:] != inst[:, :-1]
    edge &= inst > 0
    dist = ndi.distance_transform_edt(~edge)
    return (inst > 0) & (dist < width_px)


def shading_field(shape: tuple[int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Slow multiplicative topography field: a tilt plus smooth relief, mean about 1.

    The relief is white noise on an 8 x 8 grid, smoothed and interpolated (cubic) to the image,
    i.e. features about an eighth of the field of view across, at any image size."""
    ny, nx = shape
    coarse = ndi.gaussian_filter(rng.standard_normal((8, 8)), 1.0, mode="reflect")
    yy = np.linspace(0, 7, ny)
    xx = np.linspace(0, 7, nx)
    relief = ndi.map_coordinates(
        coarse, np.meshgrid(yy, xx, indexing="ij"), order=3, mode="nearest"
    )
    relief /= np.abs(relief).max() + 1e-12
    ang = rng.uniform(0, 2 * np.pi)
    tilt = np.cos(ang) * (xx[None, :] / 7 - 0.5) + np.sin(ang) * (yy[:, None] / 7 - 0.5)
    return np.clip(1.0 + amplitude * relief + amplitude * 0.6 * tilt, 0.3, None)


def render_ion_images(
    phantom: Phantom,
    yields: dict[str, tuple[float, ...]],
    other: tuple[float, ...],
    phase_order: tuple[str, ...],
    rng: np.random.Generator,
    *,
    dose: float = 1.0,
    psf_sigma_px: float = 1.0,
    shading_amplitude: float = 0.25,
    matrix_strength: float = 0.3,
    rim_factors: dict[int, float] | None = None,
    rim_width_px: float = 3.0,
) -> dict[str, np.ndarray]:
    """Poisson ion images (unsigned integer counts) of a phantom; ``total`` first, then ``yields``' ions.

    ``yields[ion][k]`` is the mean count per pixel of ``ion`` in phase ``phase_order[k]`` at
    ``dose`` 1. ``rim_factors`` maps particle id -> multiplier of the CEI ions in its rim.
    """
    shape = phantom.labels.shape
    masks = np.stack([(phantom.labels == PHASE_CODES[p]).astype(np.float32) for p in phase_order])
    shade = shading_field(shape, shading_amplitude, rng).astype(np.float32) * np.float32(dose)
    binder = (phantom.labels == PHASE_CODES["carbon-binder"]).astype(np.float32)
    matrix = 1.0 + matrix_strength * ndi.gaussian_filter(binder, 2.0)
    rim = np.ones(shape, np.float32)
    if rim_factors:
        ring = rim_mask(phantom.instances, rim_width_px)
        lut = np.ones(int(phantom.instances.max()) + 1, np.float32)
        for pid, f in rim_factors.items():
            lut[pid] = f
        rim = np.where(ring, lut[phantom.instances], 1.0).astype(np.float32)

    def expose(mean: np.ndarray) -> np.ndarray:
        if psf_sigma_px > 0:
            mean = ndi.gaussian_filter(mean, psf_sigma_px, mode="reflect")
        return rng.poisson(np.clip(mean, 0, None))

    images: dict[str, np.ndarray] = {}
    total = np.zeros(shape, np.int64)
    for ion, ys in yields.items():
        mean = np.tensordot(np.asarray(ys, np.float32), masks, axes=1) * shade
        if ion in MATRIX_IONS:
            mean = mean * matrix
        if ion in CEI_IONS and rim_factors:
            mean = mean * rim
        images[ion] = expose(mean)
        total += images[ion]
    total += expose(np.tensordot(np.asarray(other, np.float32), masks, axes=1) * shade)
    # counts as the smallest unsigned type that holds them (uint16 at the usual doses)
    dtype = np.uint16 if total.max() <= np.iinfo(np.uint16).max else np.uint32
    return {ion: img.astype(dtype) for ion, img in {"total": total, **images}.items()}


def simulate_image_measurement(
    kind: str,
    shape: tuple[int, int] = (256, 256),
    fov_um: float = 100.0,
    dose: str | float = "typical",
    rng: np.random.Generator | None = None,
    *,
    psf_sigma_px: float = 1.0,
    enriched_fraction: float = 0.5,
    rim_factor_range: tuple[float, float] = (2.5, 4.0),
    rim_width_px: float = 3.0,
) -> SimulatedImages:
    """One simulated ToF-SIMS image measurement of an electrode cross-section.

    Parameters
    ----------
    kind : ``cathode`` (NMC, carbon-binder, pore) or ``anode`` (graphite, Si, carbon-binder,
        pore)
    shape : (ny, nx) pixels
    fov_um : field of view along x in um (pixels are square)
    dose : ``typical``, ``low`` or a multiple of the typical dose
    rng : random generator (default: seeded with 0)
    psf_sigma_px : Gaussian PSF sigma in pixels
    enriched_fraction : cathode: share of NMC particles given a CEI rim
    rim_factor_range : uniform range of the CEI rim multiplier of enriched particles
    rim_width_px : rim width in pixels

    Returns
    -------
    SimulatedImages(ion_images, labels, phases, particles, metadata): ``particles`` is the
    ground truth of :func:`.phantoms.particle_table` plus ``cei_rim_factor`` (1 = no rim).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    ny, nx = shape
    pixel_size = float(fov_um) / nx
    scale = dose_scale(dose)
    ph = make_phantom(kind, (ny, nx), pixel_size, rng)
    parts = particle_table(ph)
    rim_factors: dict[int, float] = {}
    if kind == "cathode":
        yields, other, order = CATHODE_YIELDS, CATHODE_OTHER, CATHODE_PHASES
        for pid in parts["particle_id"]:
            if rng.random() < enriched_fraction:
                rim_factors[int(pid)] = float(rng.uniform(*rim_factor_range))
    else:
        yields, other, order = ANODE_YIELDS, ANODE_OTHER, ANODE_PHASES
    parts["cei_rim_factor"] = [rim_factors.get(int(p), 1.0) for p in parts["particle_id"]]
    images = render_ion_images(
        ph,
        yields,
        other,
        order,
        rng,
        dose=scale,
        psf_sigma_px=psf_sigma_px,
        rim_factors=rim_factors,
        rim_width_px=rim_width_px,
    )
    meta = {
        "kind": kind,
        "material": MATERIALS[kind],
        "field_of_view_um": float(fov_um),
        "pixel_size_um": pixel_size,
        "shape": [int(ny), int(nx)],
        "dose": dose if isinstance(dose, str) else float(dose),
        "dose_scale": scale,
        "psf_sigma_px": float(psf_sigma_px),
        "rim_width_px": float(rim_width_px),
        "cei_ions": [i for i in CEI_IONS if i in images],
        "polarity": "negative",
        "instances": ph.instances,
    }
    return SimulatedImages(images, ph.labels, dict(ph.phases), parts, meta)


# ------------------------------------------------------------------------------------------
# campaign
# ------------------------------------------------------------------------------------------
# name, kind, shape, field of view (um), dose, user labels written
_PLANS: dict[str, list[tuple[str, str, tuple[int, int], float, str, bool]]] = {
    "small": [
        ("cathode_01", "cathode", (256, 256), 100.0, "typical", True),
        ("anode_01", "anode", (256, 256), 100.0, "typical", True),
    ],
    "full": [
        ("cathode_01", "cathode", (256, 256), 100.0, "typical", True),
        ("cathode_02", "cathode", (384, 384), 150.0, "typical", False),
        ("cathode_03", "cathode", (512, 384), 150.0, "typical", False),
        ("cathode_04_lowdose", "cathode", (256, 256), 100.0, "low", False),
        ("anode_01", "anode", (256, 256), 100.0, "typical", True),
        ("anode_02", "anode", (384, 384), 150.0, "typical", False),
        ("anode_03_lowdose", "anode", (256, 256), 100.0, "low", False),
    ],
}


def user_label_image(labels: np.ndarray, rng: np.random.Generator, n_boxes: int = 6) -> np.ndarray:
    """A partial annotation as a user paints it: phase code + 1 inside a few boxes, 0 elsewhere
    (unannotated), and the pixels right at phase boundaries left unannotated."""
    ny, nx = labels.shape
    out = np.zeros(labels.shape, np.uint8)
    bh, bw = max(8, ny // 4), max(8, nx // 4)
    boundary = np.zeros(labels.shape, bool)
    boundary[:-1, :] |= labels[:-1, :] != labels[1:, :]
    boundary[1:, :] |= labels[1:, :] != labels[:-1, :]
    boundary[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    boundary[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    for _ in range(n_boxes):
        y0 = int(rng.integers(0, ny - bh + 1))
        x0 = int(rng.integers(0, nx - bw + 1))
        sl = (slice(y0, y0 + bh), slice(x0, x0 + bw))
        out[sl] = labels[sl] + 1
    out[boundary] = 0
    return out


def user_label_description(phases: dict[int, str]) -> str:
    """TIFF ImageDescription of a user label image: JSON naming the label values."""
    return json.dumps(
        {"labels": {str(code + 1): name for code, name in sorted(phases.items())}, "unlabelled": 0},
        sort_keys=True,
    )


def _write_tiff(path: Path, labels: np.ndarray, pixel_size_um: float, description: str | None):
    """uint8 label TIFF with the pixel size as resolution (pixels per cm); no date/software tag,
    so the bytes depend on the content only."""
    import tifffile

    per_cm = 1e4 / pixel_size_um
    kw = {} if description is None else {"description": description}
    tifffile.imwrite(
        path,
        labels.astype(np.uint8),
        metadata=None,
        software=None,
        resolution=(per_cm, per_cm),
        resolutionunit="CENTIMETER",
        **kw,
    )


def _row(**kw: Any) -> dict[str, Any]:
    row = dict.fromkeys(SHEET_COLUMNS)
    row.update(kw)
    return row


def simulate_images_campaign(
    share: Path, truth: Path | None, seed: int, size: str = "small"
) -> list[dict]:
    """Write the imaging campaign's exports under ``share/images/<name>/`` and its ground truth.

    Parameters
    ----------
    share : root of the simulated instrument share
    truth : ground-truth folder (None: not written); gets ``images/<name>.tif`` (label image on
        the exported pixel grid, phase codes), ``images/phases.json`` (code -> phase name) and
        ``images/particles.csv`` (measurement, particle_id, phase, equivalent_diameter_um,
        aspect_ratio)
    seed : same seed -> byte-identical files
    size : ``small`` (one cathode, one anode, 256 px) or ``full`` (several of each, 256 to
        512 px, one low-dose map of each)

    Returns
    -------
    Sample-sheet rows (keys of ``sheet.SHEET_COLUMNS``; ``file`` relative to ``share``, a glob
    over the ion files of a measurement; user label images have ``labels_for`` set).
    """
    if size not in _PLANS:
        raise ValueError(f"size must be one of {sorted(_PLANS)}, got {size!r}")
    share = Path(share)
    rows: list[dict] = []
    particles: list[pd.DataFrame] = []
    truth_labels: dict[str, tuple[np.ndarray, float]] = {}
    root = np.random.SeedSequence(seed)
    plans = _PLANS[size]
    for (name, kind, shape, fov, dose, with_labels), ss in zip(
        plans, root.spawn(len(plans)), strict=True
    ):
        rng = np.random.default_rng(ss)
        sim = simulate_image_measurement(kind, shape, fov, dose, rng)
        folder = share / "images" / name
        write_image_export(folder, name, sim.ion_images, fov_um=fov, polarity="negative", scans=50)
        sample_id = f"IMG-{name.split('_')[0][0].upper()}{name.split('_')[1]}"
        common = {
            "sample_id": sample_id,
            "project": PROJECT,
            "material": MATERIALS[kind],
            "polarity": "negative",
            "field_of_view_um": fov,
        }
        rows.append(_row(file=f"images/{name}/{name} (*) - *.txt", **common))
        if with_labels:
            lab = user_label_image(sim.labels, rng)
            _write_tiff(
                folder / f"{name}.labels.tif",
                lab,
                sim.metadata["pixel_size_um"],
                user_label_description(sim.phases),
            )
            rows.append(_row(file=f"images/{name}/{name}.labels.tif", labels_for=name, **common))
        truth_labels[name] = (sim.labels, sim.metadata["pixel_size_um"])
        p = sim.particles[["particle_id", "phase", "equivalent_diameter_um", "aspect_ratio"]]
        particles.append(p.assign(measurement=name))
    if truth is not None:
        tdir = Path(truth) / "images"
        tdir.mkdir(parents=True, exist_ok=True)
        for name, (lab, px) in truth_labels.items():
            _write_tiff(tdir / f"{name}.tif", lab, px, None)
        (tdir / "phases.json").write_text(
            json.dumps({str(k): v for k, v in sorted(PHASE_NAMES.items())}, indent=1) + "\n",
            encoding="utf-8",
        )
        table = pd.concat(particles, ignore_index=True)[
            ["measurement", "particle_id", "phase", "equivalent_diameter_um", "aspect_ratio"]
        ]
        table.to_csv(tdir / "particles.csv", index=False, float_format="%.6g", lineterminator="\n")
    return rows
