"""How close a generator's volumes are to its training image: the one measure that trains a
candidate's score and re-scores the champion, so both are computed the same way."""

from __future__ import annotations

import numpy as np

from .generate import generate_volume


def distance_to_training(
    generator, real: np.ndarray, voxel_size_um: float, *, size: int, seed: int
) -> tuple[np.ndarray, dict]:
    """Generate a ``size``^3 volume (latent ``seed``) and compare it with ``real``.

    A 3D training volume is compared as a volume (tortuosity included); a 2D training image
    with the generated volume's first slice, against a ``2 * size`` square crop of the image.

    Returns
    -------
    the generated volume, and :func:`~progral_dagster.ml.microstructure.compare_metrics`'s
    report (``distance`` is the score: lower is closer)
    """
    from ..microstructure import compare_metrics

    gen = generate_volume(generator, size, seed=seed)
    if real.ndim == 3:
        return gen, compare_metrics(gen, real, voxel_size_um, tortuosity=True)
    crop = real[None, : size * 2, : size * 2]
    return gen, compare_metrics(gen[:1], crop, voxel_size_um, tortuosity=False)
