"""SliceGAN quality: train on slices of a real 3D volume for a time budget, then compare a
generated volume with the real one.

    python bench/bench_slicegan_quality.py [--mode iso|aniso|both] [--budget S]
        [--config auto|cpu|reference] [--size N] [--seed N] [--no-tortuosity]
        [--checkpoint-dir DIR] [--save-volumes DIR] [--threads N] [--json OUT]

- isotropic: one slice (normal to axis 0, through the middle) of ``NMC_lr_input.tif`` (2 phases)
- anisotropic: three orthogonal middle slices of ``nmc-1-cal_generatedCBD_bridge.tif``
  (3 phases; its interface density differs between axes, printed per axis)

The generated volume (``--size``^3, default 128) is compared with the central ``--size``^3 crop
of the real volume: volume fractions (target: within 0.02), face-counting surface area and
tortuosity factor along axis 0 (targets: within 10 %), two-point-correlation distance, and the
configuration and time used. Fractions and surface areas are also compared with the whole file,
since one crop of a coarse structure need not be representative. Reference measured in the same run: the same metrics between the
two halves of the real crop (natural variation), and the ratio of the two distances.

``--config auto`` uses the paper's reference networks on a CUDA GPU (default budget 10 min per
mode) and the reduced ``cpu`` configuration otherwise (named in the output).

Runs with torch and numpy alone: no dagster, mlflow, scipy or pandas. TIFFs are read with
tifffile when importable, else with Pillow, else with a small built-in reader of baseline TIFF
(uncompressed, PackBits or Deflate strips), which covers the sample files; anything else fails
with a message that says so. Samples come from ``$PROGRAL_SAMPLES`` or ``../shared/samples``.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from progral_dagster.ml.microstructure import compare_metrics, specific_surface_area  # noqa: E402

SAMPLES = Path(os.environ.get("PROGRAL_SAMPLES", ROOT.parent / "shared" / "samples"))
MODES = {
    "iso": "NMC_lr_input.tif",
    "aniso": "nmc-1-cal_generatedCBD_bridge.tif",
}


# -- TIFF reading ----------------------------------------------------------------------------
def _packbits(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        h = data[i]
        i += 1
        if h < 128:
            out += data[i : i + h + 1]
            i += h + 1
        elif h > 128:
            out += data[i : i + 1] * (257 - h)
            i += 1
    return bytes(out)


def _read_tiff_builtin(path: Path) -> np.ndarray:
    """Baseline TIFF (classic, strips, one sample per pixel, 8/16/32-bit integers)."""
    raw = path.read_bytes()
    order = {b"II": "<", b"MM": ">"}.get(raw[:2])
    if order is None or struct.unpack(order + "H", raw[2:4])[0] != 42:
        raise ValueError("not a classic TIFF (BigTIFF is not supported by the built-in reader)")
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 16: 8}
    codes = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q"}
    offset = struct.unpack(order + "I", raw[4:8])[0]
    pages = []
    while offset:
        (count,) = struct.unpack(order + "H", raw[offset : offset + 2])
        tags: dict[int, tuple] = {}
        for k in range(count):
            e = offset + 2 + 12 * k
            tag, typ, n = struct.unpack(order + "HHI", raw[e : e + 8])
            size = sizes.get(typ, 1) * n
            where = e + 8 if size <= 4 else struct.unpack(order + "I", raw[e + 8 : e + 12])[0]
            if typ in codes:
                tags[tag] = struct.unpack(order + codes[typ] * n, raw[where : where + size])
        offset = struct.unpack(order + "I", raw[offset + 2 + 12 * count : offset + 6 + 12 * count])[
            0
        ]
        width, height = tags[256][0], tags[257][0]
        bits = tags.get(258, (1,))[0]
        compression = tags.get(259, (1,))[0]
        if tags.get(277, (1,))[0] != 1 or 322 in tags or tags.get(317, (1,))[0] != 1:
            raise ValueError("only single-sample, stripped TIFFs without predictor are supported")
        kind = "i" if tags.get(339, (1,))[0] == 2 else "u"
        dtype = np.dtype(f"{order}{kind}{bits // 8}")
        body = b""
        for start, length in zip(tags[273], tags[279], strict=True):
            chunk = raw[start : start + length]
            if compression == 1:
                body += chunk
            elif compression in (8, 32946):
                body += zlib.decompress(chunk)
            elif compression == 32773:
                body += _packbits(chunk)
            else:
                raise ValueError(f"TIFF compression {compression} is not supported")
        pages.append(np.frombuffer(body, dtype=dtype, count=width * height).reshape(height, width))
    return np.stack(pages) if len(pages) > 1 else pages[0]


def read_tiff(path: Path) -> np.ndarray:
    """A label image or volume: tifffile, else Pillow, else the built-in reader."""
    errors = []
    try:
        import tifffile

        return np.asarray(tifffile.imread(path))
    except ImportError as exc:
        errors.append(f"tifffile: {exc}")
    try:
        from PIL import Image, ImageSequence

        with Image.open(path) as image:
            frames = [np.array(frame) for frame in ImageSequence.Iterator(image)]
        return np.stack(frames) if len(frames) > 1 else frames[0]
    except Exception as exc:  # ImportError, or a mode Pillow does not handle (int8)
        errors.append(f"Pillow: {exc}")
    try:
        return _read_tiff_builtin(path)
    except Exception as exc:
        errors.append(f"built-in reader: {exc}")
    raise SystemExit(f"cannot read {path}: " + "; ".join(errors) + " (pip install tifffile)")


# -- helpers ---------------------------------------------------------------------------------
def central_crop(volume: np.ndarray, size: int) -> np.ndarray:
    starts = [max(0, (n - size) // 2) for n in volume.shape]
    return volume[tuple(slice(s, s + size) for s in starts)]


def face_density_per_axis(volume: np.ndarray, label: int) -> list[float]:
    """Faces of ``label`` normal to each axis, per voxel (the anisotropy of its interfaces)."""
    out = []
    for axis in range(volume.ndim):
        m = np.moveaxis(volume == label, axis, 0)
        out.append(float(np.count_nonzero(m[1:] != m[:-1]) / volume.size))
    return out


def training_images(volume: np.ndarray, mode: str) -> list[np.ndarray]:
    if mode == "iso":
        return [volume[volume.shape[0] // 2]]
    return [np.take(volume, volume.shape[d] // 2, axis=d) for d in range(3)]


def fmt(x, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def _fmt(value) -> str:
    """A generated volume may lack a phase early in training: it has no TPB density then."""
    return "n/a (a phase is missing)" if value is None else f"{value:.4g}"


def print_comparison(result: dict, baseline: dict, real: np.ndarray, gen: np.ndarray) -> None:
    print(f"  {'phase':>6} {'metric':<26} {'real':>11} {'generated':>11} {'diff':>10}  target")
    for label, entry in result["phases"].items():
        vf = entry["volume_fraction"]
        print(
            f"  {label:>6} {'volume fraction':<26} {fmt(vf['real'])!s:>11} "
            f"{fmt(vf['generated'])!s:>11} {fmt(vf['abs_diff'], '+.4f'):>10}  |diff| <= 0.02"
        )
        for key, name in (
            ("specific_surface_area", "surface area (1/voxel)"),
            ("tortuosity_factor", "tortuosity factor (axis 0)"),
        ):
            if key not in entry:
                continue
            d = entry[key]
            rel = None if d["rel_diff"] is None else 100 * d["rel_diff"]
            print(
                f"  {label:>6} {name:<26} {fmt(d['real'])!s:>11} {fmt(d['generated'])!s:>11} "
                f"{fmt(rel, '+.1f') + ' %':>10}  |rel| <= 10 %"
            )
        print(
            f"  {label:>6} {'two-point distance (rms)':<26} {'':>11} {'':>11} "
            f"{entry['two_point_distance']:>10.4f}  (halves of real: "
            f"{baseline['phases'][label]['two_point_distance']:.4f})"
        )
        fr = face_density_per_axis(real, int(label))
        fg = face_density_per_axis(gen, int(label))
        print(
            f"  {label:>6} {'faces/voxel per axis':<26} real {[round(v, 4) for v in fr]}"
            f" generated {[round(v, 4) for v in fg]}"
        )
    tpb = result["triple_phase_boundary_density"]
    if tpb["real"] is not None:
        print(
            f"  triple-phase-boundary density (1/voxel^2): real {tpb['real']:.4g}, "
            f"generated {_fmt(tpb['generated'])}"
        )
    print(
        f"  distance {result['distance']:.3f} (halves of the real crop: {baseline['distance']:.3f};"
        f" ratio {result['distance'] / max(baseline['distance'], 1e-12):.2f}); "
        f"within targets: {result['within_targets']}"
    )


# -- one mode --------------------------------------------------------------------------------
def run_mode(mode: str, args, torch, config, device) -> dict:
    from progral_dagster.ml.slicegan import generate_volume, train_slicegan

    path = SAMPLES / "microstructure" / MODES[mode]
    volume = read_tiff(path)
    images = training_images(volume, mode)
    real = central_crop(volume, args.size)
    print(
        f"\n== {mode}: {path.name} {volume.shape}, trained on "
        f"{len(images)} slice(s) {[im.shape for im in images]}; labels "
        f"{sorted(int(v) for v in np.unique(volume))}"
    )
    ckpt = Path(args.checkpoint_dir) / mode if args.checkpoint_dir else None
    t0 = time.perf_counter()
    result = train_slicegan(
        images,
        config,
        iterations=args.iterations,
        time_budget_s=args.budget,
        seed=args.seed,
        device=device,
        checkpoint_dir=ckpt,
        resume=ckpt is not None,
    )
    train_s = time.perf_counter() - t0
    h = result.history
    tail = max(1, len(h["wasserstein"]) // 10)
    print(
        f"  trained {result.iterations} iterations in {train_s:.0f} s on {result.device} "
        f"({result.stop_reason}); last-10 % means: W {np.mean(h['wasserstein'][-tail:]):.3f}, "
        f"critic loss {np.mean(h['critic_loss'][-tail:]):.3f}, "
        f"GP {np.mean(h['gradient_penalty'][-tail:]):.3f}"
    )
    t0 = time.perf_counter()
    generated = generate_volume(result, real.shape, seed=args.seed + 1, device=device)
    gen_s = time.perf_counter() - t0
    print(f"  generated {generated.shape} in {gen_s:.2f} s")
    t0 = time.perf_counter()
    comparison = compare_metrics(generated, real, tortuosity=not args.no_tortuosity)
    half = real.shape[0] // 2
    baseline = compare_metrics(
        real[:half], real[half : 2 * half], tortuosity=not args.no_tortuosity
    )
    print(f"  metrics in {time.perf_counter() - t0:.0f} s")
    print_comparison(comparison, baseline, real, generated)
    whole = {}
    if volume.shape != real.shape:  # the crop need not be representative: the whole file too
        print(f"  against the whole real volume {volume.shape} (fraction, surface area 1/voxel):")
        for label in comparison["phases"]:
            vf_w = float(np.mean(volume == int(label)))
            ssa_w = specific_surface_area(volume, int(label))
            vf_g = comparison["phases"][label]["volume_fraction"]["generated"]
            ssa_g = comparison["phases"][label]["specific_surface_area"]["generated"]
            whole[label] = {"volume_fraction": vf_w, "specific_surface_area": ssa_w}
            print(
                f"  {label:>6} fraction {vf_w:.4f} vs {vf_g:.4f} ({vf_g - vf_w:+.4f}), "
                f"surface area {ssa_w:.4f} vs {ssa_g:.4f} ({100 * (ssa_g / ssa_w - 1):+.1f} %)"
            )
    if args.save_volumes:
        out = Path(args.save_volumes)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / f"{mode}_generated.npy", generated)
        np.save(out / f"{mode}_real_crop.npy", real)
    for key in ("generated", "real"):
        comparison.pop(key)
    return {
        "mode": mode,
        "file": path.name,
        "training_shapes": [list(im.shape) for im in images],
        "iterations": result.iterations,
        "train_s": train_s,
        "generate_s": gen_s,
        "stop_reason": result.stop_reason,
        "comparison": comparison,
        "baseline_distance": baseline["distance"],
        "whole_volume": whole,
        "faces_per_axis": {
            label: {
                "real": face_density_per_axis(real, int(label)),
                "generated": face_density_per_axis(generated, int(label)),
            }
            for label in comparison["phases"]
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["iso", "aniso", "both"], default="both")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per mode")
    parser.add_argument("--iterations", type=int, default=None, help="cap on generator steps")
    parser.add_argument(
        "--config", choices=["auto", "cpu", "reference", "reference-v1"], default="auto"
    )
    parser.add_argument("--size", type=int, default=128, help="edge of the compared volumes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-tortuosity", action="store_true")
    parser.add_argument("--checkpoint-dir", default=None, help="checkpoint (and resume) here")
    parser.add_argument("--save-volumes", default=None, help="write the volumes as .npy here")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        raise SystemExit("this benchmark needs torch (and numpy)") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    from progral_dagster.ml.slicegan import cpu_config, reference_config

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = args.config
    if name == "auto":
        name = "reference" if device.startswith("cuda") else "cpu"
    config = {
        "cpu": cpu_config,
        "reference": reference_config,
        "reference-v1": lambda: reference_config("v1"),
    }[name]()
    print(
        f"SliceGAN quality benchmark: configuration '{config.name}' on {device} "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads), budget "
        f"{args.budget:.0f} s per mode"
    )
    print(f"  {json.dumps(config.to_dict())}")
    if device.startswith("cuda"):
        print(f"  GPU: {torch.cuda.get_device_name(0)}")
    modes = ["iso", "aniso"] if args.mode == "both" else [args.mode]
    report = {"config": config.to_dict(), "device": device, "budget_s": args.budget, "modes": []}
    for mode in modes:
        report["modes"].append(run_mode(mode, args, torch, config, device))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    return report


if __name__ == "__main__":
    main()
