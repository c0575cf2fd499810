"""Training data for SliceGAN: one-hot phases and random square crops, per axis.

Kench & Cooper (2021): the critic of axis d sees 2D slices normal to d. Its real samples are
random crops of

- one segmented image for all three axes (isotropic: one critic shared by the three axes),
- three orthogonal images, ``images[d]`` being a plane normal to axis d whose rows and columns
  run along the two remaining axes in increasing order (anisotropic: one critic per axis), or
- one segmented 3D volume, cut normal to each axis (one critic per axis).

Labels are kept as small integer tensors and one-hot encoded per batch, so a large training
volume costs one byte per voxel. All randomness comes from a ``torch.Generator`` (checkpointed
with the training state, so a resumed run draws the same crops as an uninterrupted one).
Plain numpy/torch indexing: torchvision's random crops would add a dependency a bare GPU
server may lack, for a few lines of code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def phase_labels_of(images: Sequence[np.ndarray]) -> list[int]:
    """Sorted label values found in any of the images."""
    found: set[int] = set()
    for image in images:
        found.update(int(v) for v in np.unique(image))
    return sorted(found)


def label_indices(image: np.ndarray, phase_labels: Sequence[int]) -> np.ndarray:
    """Map label values to phase indices 0..P-1 (uint8); unknown labels raise ValueError."""
    lut = {int(v): i for i, v in enumerate(phase_labels)}
    values, inverse = np.unique(image, return_inverse=True)
    missing = [int(v) for v in values if int(v) not in lut]
    if missing:
        raise ValueError(f"labels {missing} are not among the phases {list(phase_labels)}")
    mapped = np.array([lut[int(v)] for v in values], dtype=np.uint8)
    return mapped[inverse.reshape(image.shape)]


def one_hot(image: np.ndarray, phase_labels: Sequence[int]) -> np.ndarray:
    """One-hot encoding, phases first: shape (P, *image.shape), float32."""
    index = label_indices(image, phase_labels)
    return (np.arange(len(phase_labels)).reshape((-1,) + (1,) * image.ndim) == index).astype(
        np.float32
    )


def volume_slices(
    volume: torch.Tensor, axis: int, index: torch.Tensor | None = None
) -> torch.Tensor:
    """Slices of generated volumes normal to ``axis`` as a batch of 2D images.

    ``volume`` is (B, P, X, Y, Z); the result is (B * k, P, h, w) with k slices per volume
    (``index`` selects them, default all), oriented like ``numpy.take(v, i, axis)``.
    """
    if index is not None:
        volume = volume.index_select(2 + axis, index)
    order = {0: (0, 2, 1, 3, 4), 1: (0, 3, 1, 2, 4), 2: (0, 4, 1, 2, 3)}[axis]
    moved = volume.permute(*order)
    return moved.reshape(-1, *moved.shape[2:])


class CropSampler:
    """Random one-hot crops of the training images for each critic.

    Parameters
    ----------
    images : one 2D image (isotropic), three 2D images (anisotropic, ``images[d]`` normal to
        axis d), or one 3D volume; label values
    crop : edge of the square crops
    phase_labels : label values in phase order (default: all labels found)
    """

    def __init__(
        self, images: Sequence[np.ndarray], crop: int, phase_labels: Sequence[int] | None = None
    ) -> None:
        images = [np.asarray(im) for im in images]
        dims = [im.ndim for im in images]
        if dims == [2]:
            self.mode = "isotropic"
        elif dims == [2, 2, 2]:
            self.mode = "anisotropic"
        elif dims == [3]:
            self.mode = "volume"
        else:
            raise ValueError(
                "give one 2D image (isotropic), three 2D images (anisotropic) or one 3D volume, "
                f"not arrays of {dims} dimensions"
            )
        for im in images:
            if min(im.shape) < crop:
                raise ValueError(f"image of shape {im.shape} is smaller than the {crop}^2 crops")
        self.crop = crop
        self.phase_labels = (
            list(phase_labels) if phase_labels is not None else phase_labels_of(images)
        )
        self.n_phases = len(self.phase_labels)
        self._images = [torch.from_numpy(label_indices(im, self.phase_labels)) for im in images]

    @property
    def n_critics(self) -> int:
        """One critic for isotropic training, one per axis otherwise."""
        return 1 if self.mode == "isotropic" else 3

    def axes_of(self, critic: int) -> list[int]:
        """Axes of the generated volume whose slices critic ``critic`` judges."""
        return [0, 1, 2] if self.mode == "isotropic" else [critic]

    def _plane(self, critic: int, generator: torch.Generator) -> torch.Tensor:
        if self.mode == "volume":
            volume = self._images[0]
            i = int(torch.randint(volume.shape[critic], (1,), generator=generator))
            return volume.select(critic, i)
        return self._images[0 if self.mode == "isotropic" else critic]

    def sample(self, critic: int, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``batch`` random crops for ``critic``: float tensor (batch, P, crop, crop)."""
        c = self.crop
        crops = []
        for _ in range(batch):
            plane = self._plane(critic, generator)
            y = int(torch.randint(plane.shape[0] - c + 1, (1,), generator=generator))
            x = int(torch.randint(plane.shape[1] - c + 1, (1,), generator=generator))
            crops.append(plane[y : y + c, x : x + c])
        index = torch.stack(crops).long()
        return F.one_hot(index, self.n_phases).permute(0, 3, 1, 2).float()

    def fingerprint(self) -> str:
        """A digest of the training data (checked when a run is resumed)."""
        import hashlib

        digest = hashlib.sha256(self.mode.encode())
        digest.update(repr(self.phase_labels).encode())
        for im in self._images:
            digest.update(repr(tuple(im.shape)).encode())
            digest.update(im.numpy().tobytes())
        return digest.hexdigest()
