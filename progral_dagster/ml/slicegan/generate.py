"""Generate label volumes with a trained SliceGAN generator; save and load generators.

The generator is fully convolutional: a latent of edge l gives 2**n * (l - 2) voxels (config.py),
so any size is reached by choosing the latent's spatial size and cropping to the request.
Generation runs in eval mode (BatchNorm with its running statistics, as the paper prescribes) and
returns label values, not phase indices.

Why windows can be stitched: in output coordinates, latent cell j reaches output voxels
2**n (j - 2) + 1 to 2**n (j + 1) - 2 through the n layers (kernel 4, stride 2, paddings 2, ...,
2, 3; the resize-convolution reaches the same range), so output block b
(voxels [2**n b, 2**n (b + 1))) depends on latent cells b, b + 1 and b + 2 only, and every
intermediate activation it uses depends on a subset of them. Hence:

- chunked generation for volumes too big for memory: windows of the latent that overlap by two
  cells give blocks that tile the one-piece output exactly (tested in float64);
- periodic volumes (Kench & Cooper 2021 offer them for simulations with periodic boundaries): a
  latent of edge P = size / 2**n, extended periodically by one cell on each side, gives P
  blocks that are one period of the volume an infinite periodic latent would give; tiling it
  reproduces the generator's own output across the seam (tested).

Models are saved with ``torch.save`` as a dict of tensors, numbers and strings (read back with
``weights_only=True``, so loading a model file runs no pickled code); no model-zoo library is
needed for one network class.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import torch

from .config import SliceGANConfig
from .networks import Generator3D

GENERATOR_FORMAT = "progral-slicegan-generator"
_WRAP = 1  # latent cells wrapped around on each side for periodic volumes


def save_generator(
    generator: Generator3D,
    path: str | os.PathLike,
    config: SliceGANConfig | None = None,
    phase_labels: list[int] | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write weights, configuration and phase labels to one ``.pt`` file (atomically).

    The file holds only tensors, numbers, strings and lists, so :func:`load_generator` reads it
    with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    config = config or generator.config
    labels = [int(v) for v in (phase_labels or generator.phase_labels)]
    state = {
        "format": GENERATOR_FORMAT,
        "version": 1,
        "config": config.to_dict(),
        "phase_labels": labels,
        "n_phases": generator.n_phases,
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_generator(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> Generator3D:
    """Read a generator written by :func:`save_generator` (or a training checkpoint)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = SliceGANConfig.from_dict(state["config"])
    labels = [int(v) for v in state["phase_labels"]]
    if state.get("format") == GENERATOR_FORMAT:
        weights = state["state_dict"]
    elif "generator" in state:  # a training checkpoint
        weights = state["generator"]
    else:
        raise ValueError(f"{path} is not a SliceGAN generator or checkpoint")
    net = Generator3D(config, len(labels), labels)
    net.load_state_dict(weights)
    net.eval()
    if device is not None:
        net.to(device)
    return net


def _as_generator(obj, device: torch.device) -> Generator3D:
    if isinstance(obj, (str, os.PathLike)):
        return load_generator(obj, device)
    net = getattr(obj, "generator", obj)  # a TrainResult
    if not isinstance(net, Generator3D):
        raise TypeError(f"expected a Generator3D, TrainResult or path, not {type(obj).__name__}")
    return net.to(device)


def _sizes(size: int | tuple[int, ...]) -> tuple[int, int, int]:
    sizes = (size,) * 3 if isinstance(size, int) else tuple(int(s) for s in size)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"size must be a positive int or three of them, not {size!r}")
    return sizes  # type: ignore[return-value]


def _label_dtype(labels: list[int]) -> np.dtype:
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= min(labels) and max(labels) <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _windows(n_blocks: int, core: int) -> list[tuple[int, int, int, int]]:
    """(latent start, latent stop, first output block, last output block + 1) per window.

    As few windows as ``core`` allows, of near-equal sizes (16 blocks in windows of at most 14
    become 8 + 8, not 14 + 2): at most two window shapes per axis, so an accelerator's kernels
    tuned for one shape serve the others, and no thin window pays a whole halo for little output.
    """
    k = -(-n_blocks // core)
    bounds = [round(i * n_blocks / k) for i in range(k + 1)]
    # blocks j0..j1-1 need latent cells j0..j1+1
    return [(j0, j1 + 2, j0, j1) for j0, j1 in zip(bounds[:-1], bounds[1:], strict=True)]


def _argmax_phases(logits: torch.Tensor) -> torch.Tensor:
    """Index of the largest of (P, ...) scores, first on ties, as uint8.

    Same result as ``logits.argmax(0)``, by elementwise comparisons: a strided reduction over
    the phase axis is about ten times slower on the CPU.
    """
    best = logits[0].clone()
    index = torch.zeros(logits.shape[1:], dtype=torch.uint8, device=logits.device)
    for k in range(1, logits.shape[0]):
        better = logits[k] > best
        index[better] = k
        torch.maximum(best, logits[k], out=best)
    return index


@torch.inference_mode()
def indices_from_latent(
    net: Generator3D, z: torch.Tensor, chunk_blocks: int | None = None, amp: bool = False
) -> torch.Tensor:
    """Phase indices (uint8, X x Y x Z, on the CPU) generated from one latent (C, l0, l1, l2).

    ``chunk_blocks``: generate windows of at most this many output blocks (2**n voxels) per
    axis at a time; None generates in one piece.
    """
    scale = net.config.scale
    latent = z.shape[1:]
    blocks = [n - 2 for n in latent]
    if min(blocks) < 1:
        raise ValueError(f"latent edges {tuple(latent)} must be at least 3")
    device = next(net.parameters()).device
    use_amp = amp and device.type == "cuda"

    def run(part: torch.Tensor) -> torch.Tensor:
        part = part.unsqueeze(0).to(device)
        if not use_amp:
            return _argmax_phases(net.logits(part)[0]).cpu()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return _argmax_phases(net.logits(part)[0].float()).cpu()

    if chunk_blocks is None or all(b <= chunk_blocks for b in blocks):
        return run(z)
    out = torch.empty(tuple(scale * b for b in blocks), dtype=torch.uint8)
    per_axis = [_windows(blocks[d], chunk_blocks) for d in range(3)]
    for w in itertools.product(*per_axis):
        part = z[:, w[0][0] : w[0][1], w[1][0] : w[1][1], w[2][0] : w[2][1]]
        piece = run(part)
        src = tuple(slice(scale * (j0 - a), scale * (j1 - a)) for a, _, j0, j1 in w)
        dst = tuple(slice(scale * j0, scale * j1) for _, _, j0, j1 in w)
        out[dst] = piece[src]
    return out


def periodic_latent(z: torch.Tensor) -> torch.Tensor:
    """Extend a latent (C, p0, p1, p2) periodically by ``_WRAP`` cells on each side of each axis."""
    for dim in (1, 2, 3):
        n = z.shape[dim]
        z = z.index_select(dim, torch.arange(-_WRAP, n + _WRAP) % n)
    return z


def periodic_crop(config: SliceGANConfig, size: tuple[int, int, int]) -> tuple[slice, ...]:
    """The window of a :func:`periodic_latent` output that is one period of the volume."""
    start = config.scale * (_WRAP - 1)
    return tuple(slice(start, start + s) for s in size)


def latent_for(
    config: SliceGANConfig, size: tuple[int, int, int], periodic: bool, generator: torch.Generator
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Random latent for a volume of ``size`` and the crop that takes the volume out of it."""
    if periodic:
        bad = [s for s in size if s % config.scale]
        if bad:
            raise ValueError(
                f"periodic volumes need edges that are multiples of {config.scale} "
                f"(2**generator_layers), not {bad}"
            )
        period = [s // config.scale for s in size]
        z = torch.randn((config.latent_channels, *period), generator=generator)
        return periodic_latent(z), periodic_crop(config, size)
    edges = [config.latent_edge(s) for s in size]
    z = torch.randn((config.latent_channels, *edges), generator=generator)
    return z, tuple(slice(0, s) for s in size)


def bytes_per_voxel(config: SliceGANConfig, n_phases: int = 3) -> float:
    """Rough peak memory of one-piece generation per output voxel (activations, x2 workspace)."""
    channels = [*config.generator_filters, n_phases]
    floats = sum(c / 8 ** (len(channels) - 1 - i) for i, c in enumerate(channels))
    if config.final_layer == "resize":
        floats += channels[-2]  # the upsampled last hidden layer, at full resolution
    return 2 * 4 * floats


def default_chunk_blocks(config: SliceGANConfig, device: torch.device) -> int:
    """Window edge (in blocks of 2**n voxels) that keeps generation within a memory budget.

    The budget is 2 GB on the CPU and a quarter of the free memory on a GPU.
    """
    budget = 2e9
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free / 4
    edge = (budget / bytes_per_voxel(config)) ** (1 / 3)
    return max(1, int(edge // config.scale))


def generate_volume(
    generator_or_checkpoint,
    size: int | tuple[int, int, int],
    seed: int | None = None,
    periodic: bool = False,
    device: str | torch.device | None = None,
    chunk_blocks: int | None = -1,
    amp: bool | None = None,
) -> np.ndarray:
    """Generate a label volume of exactly ``size`` voxels.

    Parameters
    ----------
    generator_or_checkpoint : a :class:`Generator3D`, a ``TrainResult``, or the path of a file
        from :func:`save_generator` or of a training checkpoint
    size : edge, or three edges (any positive sizes; multiples of 2**n when periodic)
    seed : seed of the latent (None: random)
    periodic : make the volume periodic along every axis
    device : where to run (default: CUDA when present)
    chunk_blocks : window edge in blocks of 2**n voxels for chunked generation; -1 (default)
        chooses one that fits 2 GB on the CPU or a quarter of a GPU's free memory
        (:func:`default_chunk_blocks`), None generates in one piece
    amp : bfloat16 autocast on CUDA (default: on for CUDA)

    Returns
    -------
    numpy array of the generator's label values (the smallest integer dtype that holds them)
    """
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    net = _as_generator(generator_or_checkpoint, dev)
    sizes = _sizes(size)
    rng = torch.Generator()
    rng.manual_seed(int(seed) if seed is not None else int.from_bytes(os.urandom(8)) >> 1)
    z, crop = latent_for(net.config, sizes, periodic, rng)
    if chunk_blocks == -1:
        chunk_blocks = default_chunk_blocks(net.config, dev)
    use_amp = dev.type == "cuda" if amp is None else amp
    was_training = net.training
    net.eval()
    try:
        index = indices_from_latent(net, z, chunk_blocks, use_amp)[crop]
    finally:
        net.train(was_training)
    dtype = _label_dtype(net.phase_labels)
    index = index.numpy()
    if net.phase_labels == list(range(net.n_phases)):
        return index.astype(dtype, copy=False)
    return np.take(np.asarray(net.phase_labels, dtype=dtype), index)


def latent_edges(config: SliceGANConfig, size: int | tuple[int, int, int]) -> tuple[int, int, int]:
    """Latent edges used for a (non-periodic) volume of ``size``."""
    return tuple(config.latent_edge(s) for s in _sizes(size))  # type: ignore[return-value]
