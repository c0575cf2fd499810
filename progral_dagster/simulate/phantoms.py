"""Phantom microstructures of battery-electrode cross-sections on a pixel grid, with ground truth.

Two kinds, after the electrodes imaged by Lombardo et al., Adv. Mater. Interfaces 10 (2023)
2300640 (SCIENCE.md, workflow 2):

- ``cathode``: NMC secondary particles (near-round, equivalent diameter 5 to 15 um, log-normal),
  a carbon-binder domain (CBD) that wets the particles and bridges their contacts, and pores.
- ``anode``: graphite flakes (elongated ellipses, aspect ratio 2 to 4, lying roughly parallel to
  the current collector as calendering leaves them), Si agglomerates (compact clusters of
  sub-micrometre primaries, 2.5 to 6 um), a CBD and pores.

Particles are placed by random sequential addition, largest first, and may touch with a small
overlap, so that touching particles show the necks a watershed has to cut. The CBD fills the
part of the non-particle space where a smooth random field, biased towards the particle surfaces
(capillary wetting), is highest; the rest is pore. Phase fractions hit their targets by taking a
quantile of that field.

The phantom is drawn directly here (numpy + scipy.ndimage): no maintained library generates
labelled electrode microstructures with per-particle identity; porespy can generate sphere
packings but is not a dependency and offers no per-particle ground truth for flakes.

Ground truth per particle (``particle_table``): equivalent diameter from the pixel count of the
particle as rendered (clipped by the image border, trimmed by neighbours), and aspect ratio from
the eigenvalues of the covariance of its pixel coordinates (the inertia ellipse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

# Global phase codes shared by every simulated image (and written to truth ``phases.json``).
PHASE_CODES: dict[str, int] = {"pore": 0, "carbon-binder": 1, "NMC": 2, "graphite": 3, "Si": 4}
PHASE_NAMES: dict[int, str] = {v: k for k, v in PHASE_CODES.items()}


@dataclass(frozen=True)
class Phantom:
    """A labelled cross-section.

    Attributes
    ----------
    labels : (ny, nx) uint8 phase codes (:data:`PHASE_CODES`)
    instances : (ny, nx) int32 particle ids (0 outside particles)
    phases : phase code -> name, for the phases this kind contains
    particle_phase : particle id -> phase name
    pixel_size_um : edge of a pixel in micrometres
    """

    labels: np.ndarray
    instances: np.ndarray
    phases: dict[int, str]
    particle_phase: dict[int, str]
    pixel_size_um: float


def _ellipse_mask(a_px: float, b_px: float, theta: float) -> tuple[np.ndarray, int]:
    """Boolean mask of an ellipse (semi-axes a, b in px, major axis at angle theta) and its
    half-width (the mask is (2h+1)^2, centred)."""
    h = int(np.ceil(max(a_px, b_px))) + 1
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1].astype(np.float64)
    c, s = np.cos(theta), np.sin(theta)
    u = xx * c + yy * s
    v = -xx * s + yy * c
    return (u / a_px) ** 2 + (v / b_px) ** 2 <= 1.0, h


def _paste(
    canvas: np.ndarray, mask: np.ndarray, h: int, cy: int, cx: int
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Slices of ``canvas`` covered by ``mask`` centred at (cy, cx) and the clipped mask."""
    ny, nx = canvas.shape
    y0, y1 = cy - h, cy + h + 1
    x0, x1 = cx - h, cx + h + 1
    my0, mx0 = max(0, -y0), max(0, -x0)
    my1 = mask.shape[0] - max(0, y1 - ny)
    mx1 = mask.shape[1] - max(0, x1 - nx)
    sl = (slice(max(0, y0), min(ny, y1)), slice(max(0, x0), min(nx, x1)))
    return sl, mask[my0:my1, mx0:mx1]


def _place(
    instances: np.ndarray,
    shapes: list[tuple[np.ndarray, int]],
    rng: np.random.Generator,
    *,
    first_id: int,
    max_overlap: float,
    centres: list[tuple[float, float, float]],
    contact_probability: float = 0.5,
    tries: int = 60,
    keep_apart: np.ndarray | None = None,
    gap_px: int = 1,
) -> list[int]:
    """Random sequential addition of the given masks into ``instances`` (in place).

    With probability ``contact_probability`` a candidate is put in contact with a particle
    already placed (centre distance 0.85 to 1.0 times the sum of their equivalent radii), else
    anywhere (centre inside the image). It is accepted when at most ``max_overlap`` of its
    visible pixels fall on particles already placed (those pixels keep their old owner).
    ``centres`` (cy, cx, radius) of placed particles is extended in place. With ``keep_apart``
    (a boolean image, updated in place), a candidate must stay ``gap_px`` pixels away from its
    true pixels (and its own pixels are added to it). Returns the ids placed.
    """
    ny, nx = instances.shape
    placed: list[int] = []
    pid = first_id
    for mask, h in shapes:
        r_new = float(np.sqrt(mask.sum() / np.pi))
        for _ in range(tries):
            if centres and rng.random() < contact_probability:
                cy0, cx0, r0 = centres[int(rng.integers(len(centres)))]
                ang = rng.uniform(0, 2 * np.pi)
                dist = (r0 + r_new) * rng.uniform(0.85, 1.0)
                cy, cx = int(round(cy0 + dist * np.sin(ang))), int(round(cx0 + dist * np.cos(ang)))
                if not (0 <= cy < ny and 0 <= cx < nx):
                    continue
            else:
                cy = int(rng.integers(0, ny))
                cx = int(rng.integers(0, nx))
            sl, m = _paste(instances, mask, h, cy, cx)
            region = instances[sl]
            n = int(m.sum())
            if n == 0:
                continue
            if np.count_nonzero(region[m]) > max_overlap * n:
                continue
            if keep_apart is not None:
                hit = ndi.binary_dilation(m, iterations=gap_px) & keep_apart[sl]
                if hit.any():
                    continue
            free = m & (region == 0)
            region[free] = pid
            if keep_apart is not None:
                keep_apart[sl] |= free
            placed.append(pid)
            centres.append((cy, cx, r_new))
            pid += 1
            break
    return placed


def _smooth_field(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ~sigma_px."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _binder_and_pores(
    solid: np.ndarray,
    cbd_fraction: float,
    pixel_size_um: float,
    rng: np.random.Generator,
    *,
    wetting_um: float = 1.5,
    texture_um: float = 1.2,
) -> np.ndarray:
    """Boolean CBD mask in the non-solid space with overall area fraction ``cbd_fraction``."""
    free = ~solid
    dist_um = ndi.distance_transform_edt(free) * pixel_size_um
    score = _smooth_field(solid.shape, texture_um / pixel_size_um, rng) - dist_um / wetting_um
    n_target = int(round(cbd_fraction * solid.size))
    vals = score[free]
    if n_target <= 0 or vals.size == 0:
        return np.zeros_like(solid)
    n_target = min(n_target, vals.size)
    thr = np.partition(vals, vals.size - n_target)[vals.size - n_target]
    cbd = free & (score >= thr)
    # no isolated single-pixel specks: a binder domain is at least a few pixels across
    cbd = ndi.binary_opening(cbd, structure=np.ones((2, 2), bool)) | (
        cbd & ndi.binary_dilation(solid)
    )
    return cbd


def cathode_phantom(
    shape: tuple[int, int],
    pixel_size_um: float,
    rng: np.random.Generator,
    *,
    nmc_fraction: float = 0.52,
    cbd_fraction: float = 0.2,
    median_diameter_um: float = 9.0,
    sigma_log: float = 0.25,
    diameter_range_um: tuple[float, float] = (5.0, 15.0),
    max_overlap: float = 0.06,
    contact_probability: float = 0.5,
) -> Phantom:
    """NMC cathode cross-section: NMC particles, carbon-binder domain, pores.

    Parameters
    ----------
    shape : (ny, nx) pixels
    pixel_size_um : pixel edge in um
    rng : random generator (the only source of randomness)
    nmc_fraction : target area fraction of NMC (random sequential addition may fall short)
    cbd_fraction : area fraction of the carbon-binder domain
    median_diameter_um, sigma_log : log-normal particle diameters, clipped to diameter_range_um
    max_overlap : largest fraction of a new particle allowed on top of placed ones
    contact_probability : chance that a new particle is placed touching a placed one
    """
    ny, nx = shape
    area_um2 = ny * nx * pixel_size_um**2
    shapes: list[tuple[np.ndarray, int]] = []
    total = 0.0
    while total < 1.6 * nmc_fraction * area_um2:
        d = float(
            np.clip(
                median_diameter_um * np.exp(sigma_log * rng.standard_normal()), *diameter_range_um
            )
        )
        ar = float(rng.uniform(1.0, 1.3))
        a = d / 2 * np.sqrt(ar) / pixel_size_um  # equal-area ellipse
        b = d / 2 / np.sqrt(ar) / pixel_size_um
        shapes.append(_ellipse_mask(a, b, float(rng.uniform(0, np.pi))))
        total += np.pi * d * d / 4
    shapes.sort(key=lambda s: -int(s[0].sum()))
    instances = np.zeros(shape, np.int32)
    target_px = nmc_fraction * ny * nx
    ids: list[int] = []
    centres: list[tuple[float, float, float]] = []
    for mask, h in shapes:
        if np.count_nonzero(instances) >= target_px:
            break
        ids += _place(
            instances,
            [(mask, h)],
            rng,
            first_id=len(ids) + 1,
            max_overlap=max_overlap,
            centres=centres,
            contact_probability=contact_probability,
        )
    instances = _drop_fragments(instances)
    solid = instances > 0
    cbd = _binder_and_pores(solid, cbd_fraction, pixel_size_um, rng)
    labels = np.full(shape, PHASE_CODES["pore"], np.uint8)
    labels[cbd] = PHASE_CODES["carbon-binder"]
    labels[solid] = PHASE_CODES["NMC"]
    ids = [int(i) for i in np.unique(instances) if i]
    phases = {PHASE_CODES[p]: p for p in ("pore", "carbon-binder", "NMC")}
    return Phantom(labels, instances, phases, dict.fromkeys(ids, "NMC"), pixel_size_um)


def _si_agglomerate(
    diameter_um: float, pixel_size_um: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """A compact cluster of primary particles whose union has roughly ``diameter_um``."""
    r_agg = diameter_um / 2 / pixel_size_um
    h = int(np.ceil(1.3 * r_agg)) + 1
    yy, xx = np.mgrid[-h : h + 1, -h : h + 1].astype(np.float64)
    mask = (xx**2 + yy**2) <= (0.7 * r_agg) ** 2
    for _ in range(int(rng.integers(4, 8))):
        ang = rng.uniform(0, 2 * np.pi)
        rad = rng.uniform(0.2, 0.45) * r_agg
        rp = rng.uniform(0.4, 0.55) * r_agg
        cy, cx = rad * np.sin(ang), rad * np.cos(ang)
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= rp**2
    mask = ndi.binary_closing(mask, iterations=1, border_value=0)
    return mask, h


def anode_phantom(
    shape: tuple[int, int],
    pixel_size_um: float,
    rng: np.random.Generator,
    *,
    graphite_fraction: float = 0.42,
    si_fraction: float = 0.09,
    cbd_fraction: float = 0.17,
    flake_length_um: float = 16.0,
    flake_sigma_log: float = 0.25,
    aspect_range: tuple[float, float] = (2.0, 4.0),
    tilt_sd_deg: float = 20.0,
    si_diameter_um: tuple[float, float] = (2.5, 6.0),
    max_overlap: float = 0.015,
    contact_probability: float = 0.4,
) -> Phantom:
    """Si/graphite anode cross-section: graphite flakes, Si agglomerates, CBD, pores.

    Flakes are ellipses with log-normal length (major axis) and uniform aspect ratio, tilted
    from the horizontal by a normal angle (calendering aligns them). Si agglomerates go into the
    space the flakes leave; with ``contact_probability`` a new particle is put in contact with
    one already placed (Si on graphite surfaces, flakes stacked against each other).
    """
    ny, nx = shape
    area_px = ny * nx
    instances = np.zeros(shape, np.int32)
    flakes: list[tuple[np.ndarray, int]] = []
    total = 0.0
    while total < 1.6 * graphite_fraction * area_px:
        length = float(
            np.clip(flake_length_um * np.exp(flake_sigma_log * rng.standard_normal()), 8.0, 30.0)
        )
        ar = float(rng.uniform(*aspect_range))
        a = length / 2 / pixel_size_um
        b = a / ar
        theta = np.deg2rad(tilt_sd_deg * rng.standard_normal())
        m = _ellipse_mask(a, b, theta)
        flakes.append(m)
        total += m[0].sum()
    flakes.sort(key=lambda s: -int(s[0].sum()))
    n_id = 0
    centres: list[tuple[float, float, float]] = []
    for m in flakes:
        if np.count_nonzero(instances) >= graphite_fraction * area_px:
            break
        n_id += len(
            _place(
                instances,
                [m],
                rng,
                first_id=n_id + 1,
                max_overlap=max_overlap,
                centres=centres,
                contact_probability=contact_probability,
            )
        )
    graphite_ids = set(range(1, n_id + 1))
    si_target = si_fraction * area_px
    si_ids: set[int] = set()
    si_px = 0
    si_mask = np.zeros(shape, bool)
    for _ in range(10_000):
        if si_px >= si_target:
            break
        d = float(rng.uniform(*si_diameter_um))
        m = _si_agglomerate(d, pixel_size_um, rng)
        # Si decorates the flakes: contacts are drawn against graphite only, and two Si
        # agglomerates never touch (two touching agglomerates are, by definition, one)
        got = _place(
            instances,
            [m],
            rng,
            first_id=n_id + 1,
            max_overlap=max_overlap,
            centres=list(centres),
            contact_probability=contact_probability,
            tries=30,
            keep_apart=si_mask,
        )
        if got:
            n_id += 1
            si_ids.add(got[0])
            si_px += int(np.count_nonzero(instances == got[0]))
    instances = _drop_fragments(instances)
    present = {int(i) for i in np.unique(instances) if i}
    solid = instances > 0
    cbd = _binder_and_pores(solid, cbd_fraction, pixel_size_um, rng)
    labels = np.full(shape, PHASE_CODES["pore"], np.uint8)
    labels[cbd] = PHASE_CODES["carbon-binder"]
    gmask = np.isin(instances, sorted(graphite_ids & present))
    labels[gmask] = PHASE_CODES["graphite"]
    labels[solid & ~gmask] = PHASE_CODES["Si"]
    particle_phase = {i: ("graphite" if i in graphite_ids else "Si") for i in sorted(present)}
    phases = {PHASE_CODES[p]: p for p in ("pore", "carbon-binder", "graphite", "Si")}
    return Phantom(labels, instances, phases, particle_phase, pixel_size_um)


def _drop_fragments(instances: np.ndarray, min_px: int = 6) -> np.ndarray:
    """Keep only the largest connected piece of every particle (overlaps can cut a sliver off)
    and drop particles smaller than ``min_px`` pixels; ids keep their values and the removed
    pixels become non-particle space (binder or pore)."""
    out = instances.copy()
    objs = ndi.find_objects(instances)
    for pid, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        own = instances[sl] == pid
        lab, n = ndi.label(own)
        if n > 1:
            sizes = np.bincount(lab.ravel())[1:]
            keep = lab == (int(np.argmax(sizes)) + 1)
            out[sl][own & ~keep] = 0
            own = keep
        if own.sum() < min_px:
            out[sl][own] = 0
    return out


def particle_table(phantom: Phantom) -> pd.DataFrame:
    """Ground truth per particle, from the rendered instance map.

    Columns: particle_id, phase, area_px, equivalent_diameter_um, aspect_ratio (major/minor axis
    of the inertia ellipse of the visible pixels), centroid_x, centroid_y (px), touches_border.
    """
    inst = phantom.instances
    ny, nx = inst.shape
    rows = []
    for pid, sl in enumerate(ndi.find_objects(inst), start=1):
        if sl is None:
            continue
        yy, xx = np.nonzero(inst[sl] == pid)
        if yy.size == 0:
            continue
        yy = yy + sl[0].start
        xx = xx + sl[1].start
        n = yy.size
        cov = np.cov(np.vstack([xx, yy]).astype(np.float64), bias=True) if n > 1 else np.eye(2)
        ev = np.sort(np.linalg.eigvalsh(cov + np.eye(2) / 12.0))  # + pixel's own extent
        rows.append(
            {
                "particle_id": pid,
                "phase": phantom.particle_phase.get(pid, "unknown"),
                "area_px": n,
                "equivalent_diameter_um": float(np.sqrt(4 * n / np.pi) * phantom.pixel_size_um),
                "aspect_ratio": float(np.sqrt(ev[1] / ev[0])),
                "centroid_x": float(xx.mean()),
                "centroid_y": float(yy.mean()),
                "touches_border": bool(
                    yy.min() == 0 or xx.min() == 0 or yy.max() == ny - 1 or xx.max() == nx - 1
                ),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "particle_id",
            "phase",
            "area_px",
            "equivalent_diameter_um",
            "aspect_ratio",
            "centroid_x",
            "centroid_y",
            "touches_border",
        ],
    )


def make_phantom(
    kind: str, shape: tuple[int, int], pixel_size_um: float, rng: np.random.Generator
) -> Phantom:
    """``cathode`` or ``anode`` phantom with default parameters."""
    if kind == "cathode":
        return cathode_phantom(shape, pixel_size_um, rng)
    if kind == "anode":
        return anode_phantom(shape, pixel_size_um, rng)
    raise ValueError(f"unknown phantom kind {kind!r} (cathode or anode)")
