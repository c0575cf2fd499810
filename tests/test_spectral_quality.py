"""Model quality on a simulated ``full`` ToF-SIMS campaign, judged against the simulator's ground
truth (truth/spectra.csv), which only this test reads.

Pipeline under test, as the lake runs it: IONTOF spectrum exports read with the lake's reader ->
peak areas over the default interval list (processing-side characteristic-ion table) -> total-ion
normalisation -> positive and negative spectra of one sample spot paired -> grouped-CV classifier
(labels and groups from the sample sheet) and unmixing calibrated with the sheet's calibration
mixtures.

Must show (issue "spectral models"), with matrix effects at their default strength:
grouped-CV accuracy >= 0.95 on the five pure compounds; for every binary mixture whose minor
component is at least 0.3 the two true components get the two highest probabilities; unmixing
within 0.15 of the true fractions for at least 90 % of the hidden-composition mixtures; and a
table of how the unmixing error grows with ``matrix_strength``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from progral_dagster.ml.classification import blocks_from_columns, train_classifier
from progral_dagster.ml.unmixing import fit_unmixer
from progral_dagster.processing.peaks import intervals_from_peak_list
from progral_dagster.processing.spectral_features import (
    composition_matrix,
    pair_polarities,
    spectra_features,
)

pytestmark = pytest.mark.quality

# another simulator seed: PROGRAL_QUALITY_SEED=N (acceptance runs seeds not used here)
SEED = int(os.environ.get("PROGRAL_QUALITY_SEED", "7"))
COMPOUNDS = ["Li2CO3", "Li2O", "Li3N", "LiH", "LiOH"]
SWEEP = (0.0, 2.0)  # matrix strengths simulated besides the default 1.0


def _simulate(root: Path, matrix_strength: float) -> tuple[Path, list[dict], pd.DataFrame]:
    from progral_dagster.simulate.spectra_campaign import simulate_spectra_campaign

    share, truth = root / "share", root / "truth"
    rows = simulate_spectra_campaign(share, truth, SEED, "full", matrix_strength=matrix_strength)
    return share, rows, pd.read_csv(truth / "spectra.csv")


def _features(share: Path, rows: list[dict], truth: pd.DataFrame, intervals=None) -> dict:
    """Read every spectrum with the lake's reader, build paired features; attach the truth."""
    from progral_dagster.readers.iontof_spectrum import read

    tables, meta = [], []
    for r in rows:
        if not r["file"].startswith("tof-sims/") or "/peak-lists/" in r["file"]:
            continue
        m = read(share / r["file"])
        assert m.metadata["polarity"] == r["polarity"], r["file"]  # file name vs sample sheet
        t = m.tables["tof_sims_spectra"]
        ids = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(t.num_rows, np.int32)), pa.array([r["file"]])
        )
        tables.append(t.append_column("measurement_id", ids))
        meta.append({**r, "measurement_id": r["file"]})
    long = pa.concat_tables(tables)
    ft = spectra_features(long, pd.DataFrame(meta), intervals=intervals)
    pair = pair_polarities(ft["positive"], ft["negative"])
    tr = truth.set_index("file")
    kinds = tr.loc[pair.meta["measurement_id_positive"], "kind"].to_numpy()
    assert (kinds == tr.loc[pair.meta["measurement_id_negative"], "kind"].to_numpy()).all()
    fractions = tr.loc[pair.meta["measurement_id_positive"], COMPOUNDS].to_numpy(float)
    return {"ft": ft, "pair": pair, "kind": kinds, "truth": fractions}


def _fit(d: dict) -> dict:
    pair, kind = d["pair"], d["kind"]
    X, y, g = pair.xy()
    cal = pair.X[kind == "calibration"]
    # composition comes from the sample sheet (what the lab knows), not from the truth file
    cal_f = composition_matrix(pair.meta.loc[cal.index, "composition"], COMPOUNDS)
    blocks = blocks_from_columns(list(X.columns), pair.record["blocks"])
    rep = train_classifier(
        X, y, g, blocks=blocks, calibration_features=cal, calibration_fractions=cal_f, seed=SEED
    )
    refs = pair.X[kind == "reference"]
    um = fit_unmixer(
        refs,
        pair.meta.loc[refs.index, "label"],
        cal,
        cal_f,
        blocks=list(pair.record["blocks"].values()),
        compounds=COMPOUNDS,
    )
    return {"report": rep, "unmixer": um, "blocks": blocks}


def _unmixing_errors(d: dict, um, correct: bool = True) -> np.ndarray:
    hidden = d["kind"] == "mixture"
    est = um.estimate(d["pair"].X[hidden], correct=correct).to_numpy()
    return np.abs(est - d["truth"][hidden]).max(axis=1)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("spectra-full")
    share, rows, truth = _simulate(root, 1.0)
    d = _features(share, rows, truth)
    d.update(_fit(d))
    d["share"], d["rows"], d["truth_table"] = share, rows, truth
    return d


def test_grouped_cv_accuracy_on_pure_compounds(campaign, record_property):
    rep = campaign["report"]
    X, y, g = campaign["pair"].xy()
    assert len(y) == 60 and sorted(set(y)) == COMPOUNDS  # 5 compounds x 3 samples x 4 spots
    for tr, te in rep.folds:
        assert not set(g[tr]) & set(g[te])  # replicate spots never straddle train and test
    table = {n: {k: round(v, 4) for k, v in r.metrics().items()} for n, r in rep.cv.items()}
    print("\ngrouped-CV on paired polarities:", json.dumps(table, indent=1), "selected:", rep.best)
    record_property("grouped_cv", json.dumps(table))
    assert rep.cv[rep.best].accuracy >= 0.95
    assert rep.cv[rep.best].macro_f1 >= 0.95
    # the characteristic ions of the published recipe name each compound's own ions first
    ions = rep.characteristic_ions
    own = {"Li2CO3": "CO3", "Li2O": "O", "Li3N": "N", "LiH": "H", "LiOH": "OH"}
    for c, frag in own.items():
        top = ions[(ions.compound == c) & (ions["rank"] == 1)]["ion"].item()
        assert frag in top, (c, top)


def test_per_polarity_fallback_models(campaign):
    """A spectrum whose partner polarity is missing is classified by a per-polarity model: the
    selected candidate reaches the same bar on each polarity alone."""
    best = campaign["report"].best
    for pol in ("positive", "negative"):
        ft = campaign["ft"][pol]
        X, y, g = ft.xy()
        rep = train_classifier(X, y, g, candidates=[best], seed=SEED)
        print(f"\n{pol}: {best} accuracy {rep.cv[best].accuracy:.3f}; published "
              f"minmax_logreg {rep.cv['minmax_logreg'].accuracy:.3f}")  # fmt: skip
        assert rep.cv[best].accuracy >= 0.95, pol


def test_binary_mixtures_top_two_probabilities(campaign, record_property):
    d, rep = campaign, campaign["report"]
    hidden = d["kind"] == "mixture"
    P = rep.predict_proba(d["pair"].X[hidden])[COMPOUNDS].to_numpy()
    F = d["truth"][hidden]
    checked, lines = 0, []
    for p, f, idx in zip(P, F, d["pair"].X.index[hidden], strict=True):
        comps = np.flatnonzero(f > 0)
        if len(comps) != 2 or f[comps].min() < 0.3:
            continue
        checked += 1
        top2 = set(np.argsort(-p)[:2])
        true = {COMPOUNDS[i]: round(float(f[i]), 2) for i in comps}
        prob = {c: round(float(v), 2) for c, v in zip(COMPOUNDS, p, strict=True)}
        lines.append(f"{idx}: true {true} p {prob}")
        assert top2 == set(comps), lines[-1]
    print("\n" + "\n".join(lines))
    assert checked >= 20  # 12 binary mixtures x 2 paired spots, minor fraction 0.3..0.5
    record_property("binary_mixtures_checked", checked)
    # anodes: the N2-plasma-treated ones (~85 % Li3N) read as Li3N (published: 0.87 Li3N)
    anodes = d["kind"] == "anode"
    Pa = rep.predict_proba(d["pair"].X[anodes])[COMPOUNDS].to_numpy()
    Fa = d["truth"][anodes]
    nitride = Fa[:, COMPOUNDS.index("Li3N")] > 0.7
    assert nitride.any()
    assert (Pa[nitride].argmax(axis=1) == COMPOUNDS.index("Li3N")).all()


def test_unmixing_within_015_for_90_percent(campaign, record_property):
    um = campaign["unmixer"]
    err = _unmixing_errors(campaign, um)
    plain = _unmixing_errors(campaign, um, correct=False)
    frac = float(np.mean(err <= 0.15))
    print(f"\nunmixing: {frac:.3f} of {err.size} hidden-mixture spots within 0.15 "
          f"(mean max error {err.mean():.3f}; uncorrected NNLS {np.mean(plain <= 0.15):.3f}, "
          f"{plain.mean():.3f})")  # fmt: skip
    record_property("unmixing_within_0.15", frac)
    assert err.size >= 30  # 12 binaries + 4 ternaries, 2 paired spots each
    assert frac >= 0.90
    # the matrix-effect correction is what gets it there
    assert err.mean() < plain.mean()


def test_unmixing_error_vs_matrix_strength(campaign, tmp_path_factory, record_property):
    rows = []

    def summarise(strength: float, d: dict, um) -> dict:
        err = _unmixing_errors(d, um)
        plain = _unmixing_errors(d, um, correct=False)
        return {
            "matrix_strength": strength,
            "mean_max_error": round(float(err.mean()), 4),
            "within_0.15": round(float(np.mean(err <= 0.15)), 3),
            "uncorrected_mean_max_error": round(float(plain.mean()), 4),
            "uncorrected_within_0.15": round(float(np.mean(plain <= 0.15)), 3),
        }

    rows.append(summarise(1.0, campaign, campaign["unmixer"]))
    for s in SWEEP:
        root = tmp_path_factory.mktemp(f"spectra-m{s:g}")
        share, srows, truth = _simulate(root, s)
        d = _features(share, srows, truth)
        pair, kind = d["pair"], d["kind"]
        refs, cal = pair.X[kind == "reference"], pair.X[kind == "calibration"]
        um = fit_unmixer(
            refs,
            pair.meta.loc[refs.index, "label"],
            cal,
            composition_matrix(pair.meta.loc[cal.index, "composition"], COMPOUNDS),
            blocks=list(pair.record["blocks"].values()),
            compounds=COMPOUNDS,
        )
        rows.append(summarise(s, d, um))
    table = pd.DataFrame(rows).sort_values("matrix_strength").reset_index(drop=True)
    print(f"\nunmixing error vs matrix strength (seed {SEED}, full campaign):\n{table.to_string()}")
    record_property("unmixing_vs_matrix_strength", table.to_json(orient="records"))
    e = table.set_index("matrix_strength")
    # stronger matrix effects make the plain NNLS reading worse ...
    assert e.loc[0.0, "uncorrected_mean_max_error"] < e.loc[2.0, "uncorrected_mean_max_error"]
    # ... linear mixing (strength 0) needs only the RSF part of the correction ...
    assert e.loc[0.0, "within_0.15"] >= 0.9
    # ... and the corrected error grows with the strength, but the correction always helps
    assert e.loc[0.0, "mean_max_error"] <= e.loc[2.0, "mean_max_error"]
    assert (e["mean_max_error"] < e["uncorrected_mean_max_error"]).all()


def test_lab_peak_list_as_interval_list(campaign):
    """The lab's exported mass interval lists (read with the lake's peak-list reader) work as the
    interval list too: same accuracy bar with the selected candidate."""
    rd = pytest.importorskip("progral_dagster.readers.iontof_peak_list")
    share, rows = campaign["share"], campaign["rows"]
    lists = {}
    for r in rows:
        if "/peak-lists/" in r["file"] and r["polarity"] not in lists:
            table = rd.read(share / r["file"]).tables["tof_sims_peak_lists"]
            iv = intervals_from_peak_list(table)
            iv["polarity"] = r["polarity"]
            lists[r["polarity"]] = iv
    intervals = pd.concat(list(lists.values()), ignore_index=True)
    d = _features(share, rows, campaign["truth_table"], intervals=intervals)
    X, y, g = d["pair"].xy()
    blocks = blocks_from_columns(list(X.columns), d["pair"].record["blocks"])
    best = campaign["report"].best
    rep = train_classifier(X, y, g, candidates=[best], blocks=blocks, seed=SEED)
    print(f"\nlab peak lists ({X.shape[1]} peaks): {best} accuracy {rep.cv[best].accuracy:.3f}")
    assert rep.cv[best].accuracy >= 0.95
