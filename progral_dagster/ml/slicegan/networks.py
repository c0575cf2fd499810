"""SliceGAN networks (Kench & Cooper, Nat. Mach. Intell. 3 (2021) 299), written from the paper.

- :class:`Generator3D`: latent noise (channels x l^3) -> per-voxel phase probabilities. Hidden
  layers are 3D transposed convolutions (kernel 4, stride 2, padding 2) with BatchNorm and ReLU;
  the last layer is a transposed convolution with padding 3, or a resize-convolution (nearest
  upsampling, kernel-3 convolution without padding, one-voxel crop); softmax over phases. The
  network is fully convolutional, so a larger latent gives a larger volume (see config.py for the
  size arithmetic).
- :class:`Critic2D`: a 2D image of one-hot phases -> one score. Convolutions with kernel 4,
  stride 2, ReLU, no normalisation (WGAN-GP forbids batch-wise normalisation in the critic).

The generator carries its configuration and the label values of its phases, so that a saved
model regenerates volumes in the labels it was trained on. Plain PyTorch: no GAN library offers
SliceGAN's 3D-generator / 2D-critic pairing.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SliceGANConfig


class Generator3D(nn.Module):
    """3D generator; ``forward(z)`` returns phase probabilities of shape (B, phases, X, Y, Z)."""

    def __init__(
        self, config: SliceGANConfig, n_phases: int, phase_labels: list[int] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.n_phases = n_phases
        self.phase_labels = (
            list(phase_labels) if phase_labels is not None else list(range(n_phases))
        )
        if len(self.phase_labels) != n_phases:
            raise ValueError(f"{len(self.phase_labels)} phase labels for {n_phases} phases")
        channels = [config.latent_channels, *config.generator_filters, n_phases]
        layers: list[nn.Module] = []
        for i in range(len(channels) - 1):
            c_in, c_out = channels[i], channels[i + 1]
            if i < len(channels) - 2:
                layers += [
                    nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=2, bias=False),
                    nn.BatchNorm3d(c_out),
                    nn.ReLU(inplace=True),
                ]
            elif config.final_layer == "resize":
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv3d(c_in, c_out, 3)]
            else:
                layers.append(nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=3))
        self.body = nn.Sequential(*layers)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised phase scores (before the softmax)."""
        out = self.body(z)
        if self.config.final_layer == "resize":
            out = out[:, :, 1:-1, 1:-1, 1:-1]
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(z), dim=1)


class Critic2D(nn.Module):
    """2D critic; ``forward(x)`` maps (N, phases, crop, crop) to N scores."""

    def __init__(self, config: SliceGANConfig, n_phases: int) -> None:
        super().__init__()
        channels = [n_phases, *config.critic_filters, 1]
        layers: list[nn.Module] = []
        for i in range(len(channels) - 1):
            last = i == len(channels) - 2
            layers.append(
                nn.Conv2d(channels[i], channels[i + 1], 4, stride=2, padding=0 if last else 1)
            )
            if not last:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).reshape(-1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
