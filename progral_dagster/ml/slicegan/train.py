"""WGAN-GP training of SliceGAN (Kench & Cooper, Nat. Mach. Intell. 3 (2021) 299).

One training iteration is ``critic_steps`` critic updates and one generator update:

- critic update: generate a batch of volumes (no gradient to the generator), cut them into 2D
  slices normal to the critic's axes (``slices_per_axis`` random ones per volume, or all), and
  minimise ``mean D(fake) - mean D(real) + gp_weight * GP``, where GP is the gradient penalty of
  Gulrajani et al. (2017): the squared deviation from 1 of the norm of dD/dx at random points
  between real crops and fake slices;
- generator update: minimise ``-mean D(slices)`` over the critics.

``wasserstein`` in the history is the critic's estimate mean D(real) - mean D(fake) (averaged
over the critic steps and critics): it rises while the critic learns to tell the two apart and
comes down as the generator catches up.

On CUDA the forward passes run under bfloat16 autocast (no loss scaling needed, so the gradient
penalty's double backward is unaffected); on CPU in float32. A checkpoint (networks, optimisers,
random-number state, history) is written every ``config.checkpoint_every`` iterations and at
the end; ``resume=True`` continues from it and, on CPU, reproduces the uninterrupted run exactly.

Why no library: GAN toolkits (e.g. torchgan) train one critic on the generator's own output;
SliceGAN's critics judge 2D slices of 3D volumes, which is the part written here. The loop is a
few dozen lines of plain PyTorch (autograd, Adam, autocast).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import SliceGANConfig, cpu_config
from .data import CropSampler, volume_slices
from .networks import Critic2D, Generator3D

CHECKPOINT_NAME = "slicegan_checkpoint.pt"
CHECKPOINT_FORMAT = "progral-slicegan-checkpoint"
HISTORY_KEYS = (
    "iteration",
    "critic_loss",
    "generator_loss",
    "wasserstein",
    "gradient_penalty",
    "elapsed_s",
)


@dataclass
class TrainResult:
    """What :func:`train_slicegan` returns.

    ``history`` holds one value per iteration under each of :data:`HISTORY_KEYS`
    (``iteration`` counts from 1; ``elapsed_s`` is the training time since the first start,
    resumed runs included).
    """

    generator: Generator3D
    history: dict[str, list[float]]
    config: SliceGANConfig
    phase_labels: list[int]
    iterations: int
    elapsed_s: float
    device: str
    mode: str
    stop_reason: str
    checkpoint_path: str | None = None
    critics: list[Critic2D] = field(default_factory=list, repr=False)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def gradient_penalty(
    critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Mean of (||grad_x D(x)|| - 1)^2 at random points between ``real`` and ``fake``."""
    eps = torch.rand((real.shape[0], 1, 1, 1), generator=generator).to(real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = critic(mixed)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class _Trainer:
    """The training state: networks, optimisers, data sampler and random-number generator."""

    def __init__(
        self,
        sampler: CropSampler,
        config: SliceGANConfig,
        seed: int,
        device: torch.device,
        amp: bool,
    ) -> None:
        self.sampler, self.config, self.device, self.amp = sampler, config, device, amp
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator = Generator3D(config, sampler.n_phases, sampler.phase_labels)
            self.critics = [Critic2D(config, sampler.n_phases) for _ in range(sampler.n_critics)]
        self.generator.to(device)
        for critic in self.critics:
            critic.to(device)
        self.opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_generator, betas=config.betas
        )
        self.opt_c = [
            torch.optim.Adam(c.parameters(), lr=config.lr_critic, betas=config.betas)
            for c in self.critics
        ]
        self.rng = torch.Generator().manual_seed(seed)
        self.history: dict[str, list[float]] = {key: [] for key in HISTORY_KEYS}
        self.iteration = 0
        self.elapsed = 0.0

    # -- sampling ------------------------------------------------------------------------------
    def noise(self) -> torch.Tensor:
        c = self.config
        shape = (c.batch_size, c.latent_channels) + (c.training_latent,) * 3
        return torch.randn(shape, generator=self.rng).to(self.device)

    def fake_slices(self, volumes: torch.Tensor, critic: int) -> torch.Tensor:
        k = self.config.slices_per_axis
        parts = []
        for axis in self.sampler.axes_of(critic):
            index = None
            if k is not None:
                index = torch.randperm(self.config.crop, generator=self.rng)[:k].to(self.device)
            parts.append(volume_slices(volumes, axis, index))
        return torch.cat(parts)

    # -- one iteration -------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        c = self.config
        totals = {"critic_loss": 0.0, "wasserstein": 0.0, "gradient_penalty": 0.0}
        for _ in range(c.critic_steps):
            with torch.no_grad(), _autocast(self.device, self.amp):
                volumes = self.generator(self.noise()).float()
            for k, (critic, opt) in enumerate(zip(self.critics, self.opt_c, strict=True)):
                fake = self.fake_slices(volumes, k)
                real = self.sampler.sample(k, c.batch_size, self.rng).to(self.device)
                pick = torch.randperm(fake.shape[0], generator=self.rng)[: c.batch_size]
                with _autocast(self.device, self.amp):
                    d_real = critic(real).float().mean()
                    d_fake = critic(fake).float().mean()
                    gp = gradient_penalty(critic, real, fake[pick.to(self.device)], self.rng)
                loss = d_fake - d_real + c.gp_weight * gp
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                totals["critic_loss"] += float(loss.detach())
                totals["wasserstein"] += float((d_real - d_fake).detach())
                totals["gradient_penalty"] += float(gp.detach())
        n = c.critic_steps * len(self.critics)
        record = {key: value / n for key, value in totals.items()}

        for critic in self.critics:
            critic.requires_grad_(False)
        with _autocast(self.device, self.amp):
            volumes = self.generator(self.noise())
            scores = [
                critic(self.fake_slices(volumes, k)).float().mean()
                for k, critic in enumerate(self.critics)
            ]
            loss_g = -torch.stack(scores).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for critic in self.critics:
            critic.requires_grad_(True)
        record["generator_loss"] = float(loss_g.detach())
        return record

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "iteration": self.iteration,
            "elapsed_s": self.elapsed,
            "config": self.config.to_dict(),
            "phase_labels": list(self.sampler.phase_labels),
            "mode": self.sampler.mode,
            "fingerprint": self.sampler.fingerprint(),
            "generator": self.generator.state_dict(),
            "critics": [critic.state_dict() for critic in self.critics],
            "opt_generator": self.opt_g.state_dict(),
            "opt_critics": [opt.state_dict() for opt in self.opt_c],
            "rng": self.rng.get_state(),
            "history": self.history,
        }

    def save(self, path: Path) -> None:
        from .generate import save_generator

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)
        save_generator(self.generator, path.with_name("generator.pt"))

    def load(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a SliceGAN checkpoint")
        if state["fingerprint"] != self.sampler.fingerprint():
            raise ValueError(
                "the checkpoint was trained on other images; resume with the same ones"
            )
        self.generator.load_state_dict(state["generator"])
        for critic, sd in zip(self.critics, state["critics"], strict=True):
            critic.load_state_dict(sd)
        self.opt_g.load_state_dict(state["opt_generator"])
        for opt, sd in zip(self.opt_c, state["opt_critics"], strict=True):
            opt.load_state_dict(sd)
        self.rng.set_state(state["rng"])
        self.history = {key: list(state["history"][key]) for key in HISTORY_KEYS}
        self.iteration = int(state["iteration"])
        self.elapsed = float(state["elapsed_s"])


def train_slicegan(
    images: Sequence[np.ndarray],
    config: SliceGANConfig | None = None,
    *,
    iterations: int | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
    callback: Callable[[dict], bool | None] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    amp: bool | None = None,
) -> TrainResult:
    """Train a SliceGAN generator on segmented label images.

    Parameters
    ----------
    images : one 2D label image (isotropic), three orthogonal ones (anisotropic; ``images[d]``
        is normal to axis d), or one 3D label volume
    config : network and training configuration (default :func:`cpu_config`; with ``resume``
        and no config, the checkpoint's)
    iterations : total generator steps to reach (a resumed run continues the count)
    time_budget_s : stop before this many seconds of this call would be exceeded
    seed : seeds weight initialisation, noise, crops and penalties
    callback : called after every iteration with that iteration's record (the history keys);
        returning True stops training
    checkpoint_dir : folder for ``slicegan_checkpoint.pt`` (full training state) and
        ``generator.pt`` (see :func:`save_generator`), written every
        ``config.checkpoint_every`` iterations and at the end
    resume : continue from the checkpoint in ``checkpoint_dir`` when there is one
    device : ``"cuda"``, ``"cpu"``, ... (default: CUDA when present)
    amp : bfloat16 autocast (default: on for CUDA, off on CPU)

    Returns
    -------
    TrainResult (the generator is left in eval mode, on ``device``)
    """
    if iterations is None and time_budget_s is None:
        raise ValueError("give iterations, time_budget_s or both")
    dev = pick_device(device)
    use_amp = (dev.type == "cuda" and torch.cuda.is_bf16_supported()) if amp is None else amp
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    state = None
    if resume and path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = SliceGANConfig.from_dict(state["config"])
        if config is not None and config != saved:
            raise ValueError(f"checkpoint config {saved} differs from the one given ({config})")
        config = saved
    config = config or cpu_config()
    labels = state["phase_labels"] if state is not None else None
    sampler = CropSampler(images, config.crop, labels)
    trainer = _Trainer(sampler, config, seed, dev, use_amp)
    if state is not None:
        trainer.load(state)

    start = time.perf_counter()
    last = 0.0
    reason = "iterations"
    trainer.generator.train()
    while True:
        if iterations is not None and trainer.iteration >= iterations:
            reason = "iterations"
            break
        spent = time.perf_counter() - start
        if time_budget_s is not None and spent + last > time_budget_s:
            reason = "time_budget"
            break
        t0 = time.perf_counter()
        record = trainer.step()
        last = time.perf_counter() - t0
        trainer.iteration += 1
        trainer.elapsed += last
        record = {"iteration": trainer.iteration, **record, "elapsed_s": trainer.elapsed}
        for key in HISTORY_KEYS:
            trainer.history[key].append(record[key])
        if path is not None and trainer.iteration % config.checkpoint_every == 0:
            trainer.save(path)
        if callback is not None and callback(record):
            reason = "callback"
            break
    if path is not None:
        trainer.save(path)
    trainer.generator.eval()
    return TrainResult(
        generator=trainer.generator,
        history=trainer.history,
        config=config,
        phase_labels=list(sampler.phase_labels),
        iterations=trainer.iteration,
        elapsed_s=trainer.elapsed,
        device=str(dev),
        mode=sampler.mode,
        stop_reason=reason,
        checkpoint_path=str(path) if path is not None else None,
        critics=trainer.critics,
    )
