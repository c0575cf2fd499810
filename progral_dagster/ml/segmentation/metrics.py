"""Segmentation metrics: per-phase IoU, phase fractions, interface lengths, particle matching.

Interface length is estimated by counting the 4-neighbour pixel edges between two phases and
multiplying by pi/4 (Cauchy-Crofton: the edge count of an isotropically oriented boundary
overestimates its length by 4/pi on a square grid). Plain numpy (bincount): IoU matches
phases by name, so a prediction and a ground truth may use different label values, which
``sklearn.metrics.jaccard_score`` (matching by value) does not do.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def iou_per_phase(
    pred: np.ndarray,
    pred_phases: Mapping[int, str],
    truth: np.ndarray,
    truth_phases: Mapping[int, str],
) -> dict[str, float]:
    """Intersection over union of every phase of the truth (by name; 0 if never predicted)."""
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {truth.shape}")
    pred_value = {name: v for v, name in pred_phases.items()}
    out = {}
    for v, name in truth_phases.items():
        t = truth == v
        if not t.any():
            continue
        p = pred == pred_value[name] if name in pred_value else np.zeros_like(t)
        union = np.count_nonzero(t | p)
        out[name] = float(np.count_nonzero(t & p) / union) if union else 1.0
    return out


def mean_iou(
    pred: np.ndarray,
    pred_phases: Mapping[int, str],
    truth: np.ndarray,
    truth_phases: Mapping[int, str],
) -> float:
    """Mean over the truth's phases of :func:`iou_per_phase`."""
    ious = iou_per_phase(pred, pred_phases, truth, truth_phases)
    return float(np.mean(list(ious.values())))


def phase_fractions(labels: np.ndarray, phases: Mapping[int, str]) -> dict[str, float]:
    """Area fraction of every named phase (labels not in ``phases`` count in the denominator)."""
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=max(phases, default=0) + 1)
    n = labels.size
    return {name: float(counts[v] / n) if v < counts.size else 0.0 for v, name in phases.items()}


def interface_lengths(
    labels: np.ndarray, phases: Mapping[int, str], pixel_size_um: float | None = None
) -> dict[str, float]:
    """Length of the boundary between every pair of phases, keyed ``"A|B"`` (names sorted).

    In micrometres when ``pixel_size_um`` is given, else in pixels; pi/4 x the number of
    4-neighbour edges between the two phases.
    """
    lab = labels.astype(np.int64)
    n = int(lab.max()) + 1
    counts = np.zeros(n * n, np.int64)
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :])):
        diff = a != b
        counts += np.bincount(a[diff] * n + b[diff], minlength=n * n)
    counts = counts.reshape(n, n)
    scale = (np.pi / 4) * (float(pixel_size_um) if pixel_size_um else 1.0)
    out: dict[str, float] = {}
    items = sorted(phases.items(), key=lambda kv: kv[1])
    for i, (va, na) in enumerate(items):
        for vb, nb in items[i + 1 :]:
            if va < n and vb < n:
                c = counts[va, vb] + counts[vb, va]
            else:
                c = 0
            out[f"{na}|{nb}"] = float(c * scale)
    return out


def match_particles(
    pred_instances: np.ndarray, true_instances: np.ndarray, min_iou: float = 0.5
) -> list[tuple[int, int, float]]:
    """Pairs (pred id, true id, IoU) with IoU >= ``min_iou`` (each id used at most once; with
    min_iou >= 0.5 the match is unique by construction)."""
    p = pred_instances.ravel().astype(np.int64)
    t = true_instances.ravel().astype(np.int64)
    sel = (p > 0) & (t > 0)
    np_, nt = int(p.max()) + 1, int(t.max()) + 1
    inter = np.bincount(p[sel] * nt + t[sel], minlength=np_ * nt).reshape(np_, nt)
    area_p = np.bincount(p, minlength=np_)
    area_t = np.bincount(t, minlength=nt)
    pi, ti = np.nonzero(inter)
    out = []
    used_p: set[int] = set()
    used_t: set[int] = set()
    ious = inter[pi, ti] / (area_p[pi] + area_t[ti] - inter[pi, ti])
    for k in np.argsort(-ious):
        a, b, v = int(pi[k]), int(ti[k]), float(ious[k])
        if a == 0 or b == 0 or v < min_iou or a in used_p or b in used_t:
            continue
        used_p.add(a)
        used_t.add(b)
        out.append((a, b, v))
    return out
