"""Throughput and memory of the ToF-SIMS image segmentation pipeline, against a plain
scikit-image baseline (Otsu + distance-transform watershed) on the same image.

    .venv/bin/python bench/bench_segmentation.py [--size 2048] [--ions 20] [--train 512]
        [--seed 0] [--json OUT]

The image is a simulated NMC-cathode cross-section (``simulate_image_measurement``, typical
dose, 0.39 um pixels) with ``--ions`` ion images plus ``total``, counts as uint16. The model
(unsupervised: marker-named k-means) is fitted on a central ``--train`` crop; then the full
image goes through ``segment`` (denoising, normalisation, phases, watershed particles,
per-particle statistics, rim enrichment, fractions, interface lengths).

Printed: megapixels per second of the full pipeline and of the baseline (Otsu threshold of the
Ni- image, h-maxima-free ``peak_local_max`` markers on the distance transform, watershed: what
one writes with scikit-image alone), their ratio, the quality of both against the simulator's
truth (NMC IoU, particle count), and the memory peak of ``segment``: Python/numpy allocations
(tracemalloc) and the process resident set sampled every 10 ms (psutil), each above the level
before the call, next to the size of the input images.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class RssPeak:
    """Peak resident set size (bytes) of this process while the context is open."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssPeak:
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def baseline_otsu_watershed(marker_image: np.ndarray, min_distance: int = 5) -> np.ndarray:
    """Plain scikit-image: Otsu threshold, distance transform, local-maximum markers, watershed."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    img = marker_image.astype(np.float32)
    mask = img > threshold_otsu(img)
    dist = ndi.distance_transform_edt(mask)
    comp, _ = ndi.label(mask)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=comp, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-dist, markers, mask=mask)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2048, help="image edge in pixels")
    ap.add_argument("--ions", type=int, default=20, help="ion images besides total (<= 20)")
    ap.add_argument("--train", type=int, default=512, help="edge of the training crop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    from progral_dagster.ml.segmentation import fit_unsupervised
    from progral_dagster.ml.segmentation.metrics import iou_per_phase
    from progral_dagster.simulate.images_campaign import CATHODE_YIELDS, simulate_image_measurement

    n = args.size
    px = 100.0 / 256
    t0 = time.perf_counter()
    sim = simulate_image_measurement(
        "cathode", (n, n), fov_um=n * px, dose="typical", rng=np.random.default_rng(args.seed)
    )
    t_sim = time.perf_counter() - t0
    keep = ["total", *list(CATHODE_YIELDS)[: args.ions]]
    images = {k: sim.ion_images[k] for k in keep}
    input_mb = sum(v.nbytes for v in images.values()) / 1e6
    truth_nmc = sim.labels == 2  # phantoms.PHASE_CODES["NMC"]
    n_true = int((sim.particles["phase"] == "NMC").sum())

    c = min(args.train, n)
    o = (n - c) // 2
    crop = {k: v[o : o + c, o : o + c] for k, v in images.items()}
    t0 = time.perf_counter()
    model = fit_unsupervised([crop], "NMC811")
    t_fit = time.perf_counter() - t0

    tracemalloc.start()
    tracemalloc.reset_peak()
    base_traced = tracemalloc.get_traced_memory()[0]
    with RssPeak() as rss:
        t0 = time.perf_counter()
        result = model.segment(images, px)
        t_ours = time.perf_counter() - t0
    peak_traced = tracemalloc.get_traced_memory()[1] - base_traced
    tracemalloc.stop()

    t0 = time.perf_counter()
    base_inst = baseline_otsu_watershed(images["Ni-"])
    t_base = time.perf_counter() - t0

    mp = n * n / 1e6
    ious = iou_per_phase(result.labels, result.phases, sim.labels, sim.phases)
    base_mask = base_inst > 0
    base_iou = float((base_mask & truth_nmc).sum() / max(1, (base_mask | truth_nmc).sum()))
    n_ours = int((result.particles["phase"] == "NMC").sum())
    n_base = int(len(np.unique(base_inst)) - 1)
    out = {
        "image": f"{n} x {n} px, {len(keep) - 1} ions + total, uint16",
        "input_mb": round(input_mb, 1),
        "simulate_s": round(t_sim, 2),
        "fit_s_on_crop": round(t_fit, 2),
        "train_crop_px": c,
        "pipeline_s": round(t_ours, 2),
        "pipeline_mpix_per_s": round(mp / t_ours, 4),
        "baseline_s": round(t_base, 2),
        "baseline_mpix_per_s": round(mp / t_base, 4),
        "speed_ratio_pipeline_over_baseline": round(t_base / t_ours, 4),
        "peak_traced_mb": round(peak_traced / 1e6, 1),
        "peak_rss_above_start_mb": round((rss.peak - rss.start) / 1e6, 1),
        "peak_rss_mb": round(rss.peak / 1e6, 1),
        "pipeline_mean_iou": round(float(np.mean(list(ious.values()))), 4),
        "pipeline_nmc_iou": round(ious["NMC"], 4),
        "baseline_nmc_iou": round(base_iou, 4),
        "nmc_particles_true": n_true,
        "nmc_particles_pipeline": n_ours,
        "nmc_particles_baseline": n_base,
    }
    width = max(len(k) for k in out)
    print(f"segmentation benchmark ({out['image']})")
    for k, v in out.items():
        print(f"  {k:<{width}}  {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
