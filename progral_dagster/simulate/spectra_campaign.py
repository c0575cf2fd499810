"""The ToF-SIMS spectra part of a simulated campaign: Li-compound references, calibration
mixtures, hidden mixtures and Li-metal anodes, written as IONTOF exports with ground truth.

Layout under the share (``file`` in the sheet rows is relative to the share)::

    tof-sims/references/P_REF-Li2CO3-1_Bi1_1.txt      spectra, P_/N_ = polarity as labs name them
    tof-sims/calibration/N_CAL-03_Bi1_2.txt
    tof-sims/mixtures/P_MIX-07_Bi1_1.txt               composition hidden (truth only)
    tof-sims/anodes/N_ANODE-02_Bi1_1.txt               composition hidden (truth only)
    tof-sims/peak-lists/P_REF-Li2CO3-1_Bi1_1_peaks.txt mass interval lists (spot 1 of a sample)

Per-sample and per-spot variation on top of the spectrum physics (:mod:`.tof_spectra`) and the
compound model (:mod:`.li_compounds`):

=========================  ===========================================  ======================
effect                     default                                      source / reasoning
=========================  ===========================================  ======================
surface film               references and mixtures: Beta(2, 30)         Li compounds and Li
                           (mean 6 %) of Li2CO3/LiOH/Li2O, Dirichlet    metal always carry a
                           (4, 4, 2) mix, not in the truth (nominal     thin carbonate /
                           composition is what the lab knows)           hydroxide / oxide film
contamination level        5 % of counts x lognormal(0, 0.5), 1-20 %    adventitious carbon
counts per spectrum        log-uniform 1.5e6 to 2.2e7                   real exports
secondary ions per shot    0.4 x lognormal(0, 0.3)                      varying dead-time load
sample yield variation     10 % lognormal per ion                       li_compounds
spot variation, noise      15 % lognormal per ion, Poisson / dead time  tof_spectra
anodes                     pristine (LiOH, Li2CO3, Li2O, some LiH),     Zhao et al.: N2-plasma
                           air-exposed (LiOH + Li2CO3),                 anode read as 0.87
                           N2-plasma-treated (~85 % Li3N)               Li3N
=========================  ===========================================  ======================

Every random draw comes from ``np.random.default_rng([seed, ...])`` keyed by the sample and
spot, so the same seed gives byte-identical files whatever else changes around them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .iontof_writer import write_mass_interval_list, write_spectrum_export
from .li_compounds import (
    COMPOUNDS,
    characteristic_ions,
    compound_ion_yields,
    validate_fractions,
)
from .sheet import SHEET_COLUMNS, format_composition
from .tof_spectra import simulate_spectrum

PROJECT = "li-compounds"
TRUTH_COLUMNS = ("file", "sample_id", "polarity", "kind", *COMPOUNDS)
_KIND_CODE = {"reference": 1, "calibration": 2, "mixture": 3, "anode": 4}
_POL_CODE = {"positive": 1, "negative": 2}
_SIZES = {
    # references per compound, spots per reference and polarity, calibration spots,
    # random hidden binaries, hidden ternaries, hidden spots, anodes per type, anode spots
    "small": dict(ref_samples=2, ref_spots=2, cal_spots=2, binaries=2, ternaries=0,
                  mix_spots=1, anode_types=("pristine", "n2-plasma"), anodes_per_type=1,
                  anode_spots=1),
    "full": dict(ref_samples=3, ref_spots=4, cal_spots=2, binaries=12, ternaries=4,
                 mix_spots=2, anode_types=("pristine", "air-exposed", "n2-plasma"),
                 anodes_per_type=2, anode_spots=2),
}  # fmt: skip
_CALIBRATION_FULL = (
    ("Li2CO3", "LiOH", 0.5),
    ("LiH", "Li2O", 0.5),
    ("Li2O", "LiOH", 0.5),
    ("Li2CO3", "Li3N", 0.5),
    ("LiH", "LiOH", 0.5),
    ("Li2CO3", "LiOH", 0.25),
    ("LiH", "Li2O", 0.25),
    ("Li2O", "Li3N", 0.25),
    ("Li2CO3", "LiH", 0.75),
    ("Li3N", "LiOH", 0.75),
)
_CALIBRATION_SMALL = (("Li2CO3", "LiOH", 0.5), ("LiH", "Li2O", 0.5))
_ANODES = {
    "pristine": {"LiOH": 0.35, "Li2CO3": 0.30, "Li2O": 0.25, "LiH": 0.10},
    "air-exposed": {"LiOH": 0.50, "Li2CO3": 0.45, "Li2O": 0.05},
    "n2-plasma": {"Li3N": 0.85, "Li2O": 0.08, "LiOH": 0.07},
}
_FILM = ("Li2CO3", "LiOH", "Li2O")
_EXTRA_PEAK_LIST_IONS = {
    "positive": ("CH3+", "Na+", "Si+", "C2H4+", "K+", "C3H5+"),
    "negative": ("C2H-", "Cl-", "C4H-"),
}


@dataclass
class _Sample:
    sample_id: str
    kind: str
    folder: str
    index: int
    fractions: dict[str, float]
    material: str
    label: str | None
    composition: str | None
    spots: int
    film: bool


def parse_mixtures(spec: str) -> list[dict[str, float]]:
    """Parse ``"Li2CO3:0.5,LiOH:0.5;LiH:0.3,Li2O:0.7"`` into a list of compositions.

    Mixtures are separated by ``;``, components by ``,``, name and molar fraction by ``:``.
    Names must be among :data:`COMPOUNDS` and fractions sum to 1 within 0.01.

    Raises
    ------
    ValueError
        With the offending mixture and what is wrong with it.
    """
    out: list[dict[str, float]] = []
    for n, part in enumerate(p.strip() for p in str(spec).split(";")):
        if not part:
            continue
        mix: dict[str, float] = {}
        for comp in part.split(","):
            name, sep, value = comp.strip().partition(":")
            name = name.strip()
            if not sep or not name:
                raise ValueError(
                    f"mixture {n + 1} ({part!r}): write components as NAME:FRACTION, "
                    f"got {comp.strip()!r}"
                )
            try:
                v = float(value)
            except ValueError:
                raise ValueError(
                    f"mixture {n + 1} ({part!r}): fraction of {name} is not a number: {value!r}"
                ) from None
            if name in mix:
                raise ValueError(f"mixture {n + 1} ({part!r}): {name} given twice")
            mix[name] = v
        try:
            out.append(validate_fractions(mix))
        except ValueError as exc:
            raise ValueError(f"mixture {n + 1} ({part!r}): {exc}") from None
    if not out:
        raise ValueError(f"no mixture in {spec!r}; example: 'Li2CO3:0.5,LiOH:0.5;LiH:0.3,Li2O:0.7'")
    return out


def _hidden_mixtures(seed: int, binaries: int, ternaries: int) -> list[dict[str, float]]:
    """Random binaries (minor fraction 0.3 to 0.5) over all pairs, and ternaries (each >= 0.15)."""
    rng = np.random.default_rng([seed, 71])
    pairs = [(a, b) for i, a in enumerate(COMPOUNDS) for b in COMPOUNDS[i + 1 :]]
    order = rng.permutation(len(pairs))
    out = []
    for k in range(binaries):
        a, b = pairs[order[k % len(pairs)]]
        minor = round(float(rng.uniform(0.3, 0.5)), 3)
        if rng.random() < 0.5:
            a, b = b, a
        out.append({a: minor, b: round(1.0 - minor, 3)})
    for _ in range(ternaries):
        trio = sorted(rng.choice(len(COMPOUNDS), 3, replace=False))
        while True:
            f = rng.dirichlet([3.0, 3.0, 3.0])
            if f.min() >= 0.15:
                break
        f = np.round(f, 3)
        f[-1] = round(1.0 - f[:-1].sum(), 3)
        out.append({COMPOUNDS[i]: float(v) for i, v in zip(trio, f, strict=True)})
    return out


def _plan(seed: int, size: str, mixtures: list[dict[str, float]] | None) -> list[_Sample]:
    if size not in _SIZES:
        raise ValueError(f"size must be one of {', '.join(_SIZES)}, not {size!r}")
    cfg = _SIZES[size]
    samples: list[_Sample] = []
    for c in COMPOUNDS:
        for k in range(cfg["ref_samples"]):
            samples.append(
                _Sample(f"REF-{c}-{k + 1}", "reference", "references", len(samples),
                        {c: 1.0}, f"{c} reference powder", c, f"{c}:1",
                        cfg["ref_spots"], True)
            )  # fmt: skip
    cal = _CALIBRATION_FULL if size == "full" else _CALIBRATION_SMALL
    for k, (a, b, fa) in enumerate(cal):
        fr = {a: fa, b: 1.0 - fa}
        samples.append(
            _Sample(f"CAL-{k + 1:02d}", "calibration", "calibration", len(samples), fr,
                    "reference powder mixture", None, format_composition(fr),
                    cfg["cal_spots"], True)
        )  # fmt: skip
    hidden = _hidden_mixtures(seed, cfg["binaries"], cfg["ternaries"]) + list(mixtures or [])
    for k, fr in enumerate(hidden):
        samples.append(
            _Sample(f"MIX-{k + 1:02d}", "mixture", "mixtures", len(samples),
                    validate_fractions(fr), "powder mixture", None, None,
                    cfg["mix_spots"], True)
        )  # fmt: skip
    rng = np.random.default_rng([seed, 73])
    n = 0
    for kind in cfg["anode_types"]:
        base = _ANODES[kind]
        for _ in range(cfg["anodes_per_type"]):
            names = list(base)
            f = rng.dirichlet([base[c] * 60.0 for c in names])
            n += 1
            samples.append(
                _Sample(f"ANODE-{n:02d}", "anode", "anodes", len(samples),
                        dict(zip(names, (float(v) for v in f), strict=True)),
                        "Li metal anode", None, None, cfg["anode_spots"], False)
            )  # fmt: skip
    return samples


def campaign_plan(
    seed: int, size: str = "small", mixtures: list[dict[str, float]] | None = None
) -> list[dict]:
    """The samples a campaign writes (without writing anything): ``sample_id``, ``kind``,
    ``fractions`` (true molar fractions), ``spots`` per polarity, ``material``, and the sheet's
    ``label`` / ``composition``."""
    return [
        {"sample_id": s.sample_id, "kind": s.kind, "fractions": dict(s.fractions),
         "spots": s.spots, "material": s.material, "label": s.label,
         "composition": s.composition}
        for s in _plan(int(seed), size, mixtures)
    ]  # fmt: skip


def _sample_state(seed: int, s: _Sample) -> dict:
    """Per-sample nuisance: film, contamination level."""
    rng = np.random.default_rng([seed, _KIND_CODE[s.kind], s.index, 0])
    eff = dict(s.fractions)
    film_frac = float(rng.beta(2.0, 30.0)) if s.film else 0.0
    film = rng.dirichlet([4.0, 4.0, 2.0])
    if film_frac > 0:
        eff = {c: v * (1.0 - film_frac) for c, v in eff.items()}
        for c, v in zip(_FILM, film, strict=True):
            eff[c] = eff.get(c, 0.0) + film_frac * float(v)
    contamination = float(np.clip(0.05 * rng.lognormal(0.0, 0.5), 0.01, 0.20))
    return {"effective": eff, "film_fraction": film_frac, "contamination": contamination}


def _fmt(v: float) -> str:
    return "0" if v == 0 else f"{v:.6g}"


def simulate_spectra_campaign(
    share: Path,
    truth: Path | None,
    seed: int,
    size: str = "small",
    *,
    mixtures: list[dict[str, float]] | None = None,
    binning: int = 20,
    matrix_strength: float = 1.0,
    deadtime_corrected: bool = True,
) -> list[dict]:
    """Write the ToF-SIMS spectra of a campaign under ``share/tof-sims/`` and return the
    sample-sheet rows (keys of :data:`~.sheet.SHEET_COLUMNS`, ``file`` relative to ``share``).

    Parameters
    ----------
    share, truth : output folders; ``truth/spectra.csv`` gets one row per spectrum (file,
        sample_id, polarity, kind and the true molar fraction of each compound); None: no truth
    seed : all randomness derives from it (same seed, byte-identical files)
    size : ``small`` (56 spectra, seconds) or ``full`` (248 spectra and more with ``mixtures``)
    mixtures : extra hidden-composition mixtures (see :func:`parse_mixtures`)
    binning : export binning in channels (20: ~50,000 rows; 200 as the real samples)
    matrix_strength : scales the matrix effect (0: linear mixing)
    deadtime_corrected : exports dead-time corrected (header ``on``) or raw (``off``)
    """
    share = Path(share)
    rows: list[dict] = []
    truth_rows: list[dict] = []
    for s in _plan(int(seed), size, mixtures):
        state = _sample_state(int(seed), s)
        for pol in ("positive", "negative"):
            srng = np.random.default_rng([seed, _KIND_CODE[s.kind], s.index, _POL_CODE[pol]])
            yields = compound_ion_yields(
                state["effective"], pol, matrix_strength=matrix_strength, rng=srng
            )
            for spot in range(1, s.spots + 1):
                rng = np.random.default_rng(
                    [seed, _KIND_CODE[s.kind], s.index, _POL_CODE[pol], spot]
                )
                total = float(np.exp(rng.uniform(np.log(1.5e6), np.log(2.2e7))))
                ions_per_shot = 0.4 * float(rng.lognormal(0.0, 0.3))
                spec = simulate_spectrum(
                    yields,
                    pol,
                    rng,
                    binning=binning,
                    total_counts=total,
                    ions_per_shot=ions_per_shot,
                    contamination=state["contamination"],
                )
                name = f"{'P' if pol == 'positive' else 'N'}_{s.sample_id}_Bi1_{spot}"
                rel = f"tof-sims/{s.folder}/{name}.txt"
                write_spectrum_export(share / rel, spec, deadtime_corrected=deadtime_corrected)
                base = dict.fromkeys(SHEET_COLUMNS)
                base.update(
                    sample_id=s.sample_id,
                    project=PROJECT,
                    material=s.material,
                    label=s.label,
                    composition=s.composition,
                    polarity=pol,
                    spot=spot,
                    field_of_view_um=500,
                )
                rows.append({**base, "file": rel})
                truth_rows.append(
                    {"file": rel, "sample_id": s.sample_id, "polarity": pol, "kind": s.kind,
                     **{c: s.fractions.get(c, 0.0) for c in COMPOUNDS}}
                )  # fmt: skip
                if spot == 1:
                    ions = characteristic_ions(pol) + list(_EXTRA_PEAK_LIST_IONS[pol])
                    prel = f"tof-sims/peak-lists/{name}_peaks.txt"
                    write_mass_interval_list(share / prel, ions, spec)
                    rows.append({**base, "file": prel})
    if truth is not None:
        truth = Path(truth)
        truth.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(TRUTH_COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in truth_rows:
            w.writerow({k: (_fmt(v) if isinstance(v, float) else v) for k, v in r.items()})
        (truth / "spectra.csv").write_text(buf.getvalue(), encoding="utf-8")
    return rows
