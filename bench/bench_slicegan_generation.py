"""SliceGAN generation throughput (voxels/s) for 128^3 and 256^3 volumes, on the CPU and, when
present, on a CUDA GPU.

    python bench/bench_slicegan_generation.py [--configs cpu,reference] [--sizes 128,256]
        [--repeat N] [--chunk-blocks N] [--threads N] [--json OUT]

Throughput does not depend on the weights, so untrained generators of each configuration are
timed (eval mode, the full ``generate_volume`` call: latent, network, argmax, copy to a numpy
label array). The DESIGN budget is 256^3 in under 1 s on a current data-centre GPU; on the CPU
the numbers are reported. Reference measured in the same run: the time of the network's forward
pass alone, in one piece, on the same latent (on the CPU up to 128^3 only); the
``generate_volume`` / forward ratio shows what argmax, chunking and the copy to numpy cost. Runs with torch and numpy alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(fn, repeat: int, sync) -> float:
    best = float("inf")
    for _ in range(repeat):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="cpu,reference")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--repeat", type=int, default=2, help="best of N timed runs")
    parser.add_argument("--chunk-blocks", type=int, default=-1, help="-1: automatic, 0: one piece")
    parser.add_argument("--devices", default=None, help="default: cpu, plus cuda when present")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from progral_dagster.ml.slicegan import (
        Generator3D,
        cpu_config,
        generate_volume,
        reference_config,
    )

    devices = (
        args.devices.split(",")
        if args.devices
        else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    configs = {
        "cpu": cpu_config(),
        "reference": reference_config(),
        "reference-v1": reference_config("v1"),
    }
    chunk = None if args.chunk_blocks == 0 else args.chunk_blocks
    print(
        f"SliceGAN generation throughput (torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads)"
    )
    rows = []
    for device in devices:
        dev = torch.device(device)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU"
        for cname in args.configs.split(","):
            config = configs[cname]
            torch.manual_seed(0)
            net = Generator3D(config, 3).to(dev).eval()
            generate_volume(net, config.scale, seed=0, device=dev)  # warm-up
            for size in (int(s) for s in args.sizes.split(",")):

                def run(size=size, net=net, dev=dev):
                    return generate_volume(net, size, seed=1, device=dev, chunk_blocks=chunk)

                seconds = best_of(run, args.repeat, sync)
                latent = config.latent_edge(size)
                z = torch.randn(1, config.latent_channels, latent, latent, latent, device=dev)
                amp = dev.type == "cuda"

                def forward(z=z, net=net, amp=amp):
                    with (
                        torch.inference_mode(),
                        torch.autocast("cuda", torch.bfloat16, enabled=amp),
                    ):
                        net.logits(z)

                fwd = None
                if dev.type == "cuda" or size <= 128:  # one piece fits memory there
                    fwd = best_of(forward, args.repeat, sync)
                voxels = size**3
                row = {
                    "device": name,
                    "config": config.name,
                    "size": size,
                    "seconds": seconds,
                    "voxels_per_s": voxels / seconds,
                    "forward_seconds": fwd,
                }
                rows.append(row)
                ratio = f", generate/forward {seconds / fwd:.2f}" if fwd else ""
                print(
                    f"  {name:<28} {config.name:<10} {size:>4}^3: {seconds:8.3f} s, "
                    f"{voxels / seconds:12.4g} voxels/s{ratio}",
                    flush=True,
                )
            del net
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
