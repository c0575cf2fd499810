"""SliceGAN configurations: the reference networks of Kench & Cooper (2021) and a CPU one.

Size arithmetic (checked in the tests). Every generator layer but the last is a 3D transposed
convolution with kernel 4, stride 2, padding 2, which maps an edge s to 2s - 2; the last one has
padding 3 (2s - 4), or is a resize-convolution (nearest upsampling x2, then a kernel-5 convolution
without padding, also 2s - 4). Both satisfy the padding rule of the paper (stride < kernel,
kernel mod stride = 0, padding >= kernel - stride). With n layers a latent of edge l gives an
output edge of 2**n * (l - 2): the reference (n = 5) turns a 4^3 latent into 64^3 and a 10^3 one
into 256^3; the CPU configuration (n = 4) turns 4^3 into 32^3.

Every critic layer is a 2D convolution with kernel 4, stride 2 (padding 1, none in the last), so
with m layers it maps a 2**(m + 1) square crop to one number: 64 for the reference (m = 5), 32 for
the CPU configuration (m = 4).

Dataclasses rather than a configuration library (hydra, pydantic): the configuration must load
on a GPU server that has torch and numpy only, and it is stored as a plain dict with each model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class SliceGANConfig:
    """Network sizes and training hyper-parameters.

    Attributes
    ----------
    name : a name recorded with the model (``reference``, ``reference-v1``, ``cpu``, ...)
    latent_channels : channels of the latent noise
    generator_filters : channels of the hidden generator layers (latent and phases excluded)
    critic_filters : channels of the hidden critic layers (phases and the output excluded)
    training_latent : spatial edge of the latent during training (output edge = crop)
    batch_size : volumes generated per step (and real crops per axis per critic step)
    lr_generator, lr_critic : Adam learning rates
    betas : Adam betas
    gp_weight : weight of the gradient penalty (WGAN-GP)
    critic_steps : critic updates per generator update
    final_layer : ``"transpose"`` (transposed convolution, padding 3) or ``"resize"``
        (nearest upsampling + kernel-3 convolution without padding + one-voxel crop)
    slices_per_axis : slices per generated volume and axis shown to the critics; None shows
        all of them (the paper); fewer make CPU training cheaper
    checkpoint_every : generator steps between checkpoints when a checkpoint folder is given
    """

    name: str
    latent_channels: int
    generator_filters: tuple[int, ...]
    critic_filters: tuple[int, ...]
    training_latent: int = 4
    batch_size: int = 8
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    gp_weight: float = 10.0
    critic_steps: int = 5
    final_layer: str = "transpose"
    slices_per_axis: int | None = None
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.final_layer not in ("transpose", "resize"):
            raise ValueError(
                f"final_layer must be 'transpose' or 'resize', not {self.final_layer!r}"
            )
        if self.training_latent < 3:
            raise ValueError("training_latent must be at least 3")
        if self.output_edge(self.training_latent) != self.crop:
            raise ValueError(
                f"generator gives {self.output_edge(self.training_latent)}^3 from a "
                f"{self.training_latent}^3 latent but the critics take {self.crop}^2 crops"
            )
        if self.slices_per_axis is not None and not 1 <= self.slices_per_axis <= self.crop:
            raise ValueError(f"slices_per_axis must be in 1..{self.crop}")

    @property
    def generator_layers(self) -> int:
        return len(self.generator_filters) + 1

    @property
    def critic_layers(self) -> int:
        return len(self.critic_filters) + 1

    @property
    def scale(self) -> int:
        """Output voxels per latent cell: 2 ** generator_layers."""
        return 2**self.generator_layers

    @property
    def crop(self) -> int:
        """Edge of the square training crops the critics take."""
        return 2 ** (self.critic_layers + 1)

    def output_edge(self, latent_edge: int) -> int:
        """Generated edge for a latent edge: scale * (latent_edge - 2)."""
        return self.scale * (latent_edge - 2)

    def latent_edge(self, size: int) -> int:
        """Smallest latent edge whose output is at least ``size`` voxels."""
        return max(3, math.ceil(size / self.scale) + 2)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples as lists), e.g. for MLflow params or a checkpoint."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> SliceGANConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names
        }
        return cls(**kwargs)


def reference_config(variant: str = "current") -> SliceGANConfig:
    """The paper's networks (SCIENCE.md, workflow 3): for a GPU.

    ``current``: generator filters [32, 1024, 512, 128, 32, phases], resize-convolution in the
    last layer, batch 8, Adam betas (0.9, 0.99). ``v1``: [16, 512, 256, 128, 64, phases], all
    transposed convolutions, batch 32, betas (0, 0.9) (Gulrajani et al.'s WGAN-GP setting).
    Both: critic [phases, 64, 128, 256, 512, 1], lr 1e-4, gradient-penalty weight 10, 5 critic
    steps per generator step, 64^2 crops, 64^3 training volumes from a 4^3 latent.
    """
    if variant == "current":
        return SliceGANConfig(
            name="reference",
            latent_channels=32,
            generator_filters=(1024, 512, 128, 32),
            critic_filters=(64, 128, 256, 512),
            batch_size=8,
            betas=(0.9, 0.99),
            final_layer="resize",
        )
    if variant == "v1":
        return SliceGANConfig(
            name="reference-v1",
            latent_channels=16,
            generator_filters=(512, 256, 128, 64),
            critic_filters=(64, 128, 256, 512),
            batch_size=32,
            betas=(0.0, 0.9),
            final_layer="transpose",
        )
    raise ValueError(f"unknown reference variant {variant!r} (current, v1)")


def cpu_config() -> SliceGANConfig:
    """A small network for 2 CPU cores: 32^2 crops, 32^3 training volumes, 4 + 4 layers.

    Generator [16, 64, 32, 16, phases] (0.23 M parameters against 40 M), critic
    [phases, 16, 32, 64, 1], batch 4, 8 random slices of 32 per volume and axis shown to the
    critics, 5 critic steps, Adam lr 2e-4 with betas (0.5, 0.9). About 0.5 s per iteration on
    one busy core; on ``SEM_hr_input.tif`` the volume fractions come within 0.02 and the surface
    areas within about 15 % after 6 minutes (docs/slicegan.md). Larger networks and lr 1e-4
    learned far more slowly per second of CPU.
    """
    return SliceGANConfig(
        name="cpu",
        latent_channels=16,
        generator_filters=(64, 32, 16),
        critic_filters=(16, 32, 64),
        batch_size=4,
        lr_generator=2e-4,
        lr_critic=2e-4,
        betas=(0.5, 0.9),
        final_layer="transpose",
        slices_per_axis=8,
        checkpoint_every=100,
    )
