"""SliceGAN: 3D microstructures from segmented 2D images (Kench & Cooper, Nat. Mach. Intell. 3
(2021) 299), written from the paper in PyTorch; the reference repository's code was not used.

Runs with torch and numpy alone (a GPU machine may have nothing else). Importing this package
does not import torch: the names below are loaded on first use.

- :func:`train_slicegan` (train.py): WGAN-GP training, checkpoints and resume
- :func:`generate_volume`, :func:`save_generator`, :func:`load_generator` (generate.py)
- :class:`SliceGANConfig`, :func:`reference_config`, :func:`cpu_config` (config.py)
- :class:`Generator3D`, :class:`Critic2D` (networks.py); crops and one-hot in data.py
"""

from __future__ import annotations

import importlib

from .config import SliceGANConfig, cpu_config, reference_config

_LAZY = {
    "train_slicegan": "train",
    "TrainResult": "train",
    "pick_device": "train",
    "generate_volume": "generate",
    "save_generator": "generate",
    "load_generator": "generate",
    "distance_to_training": "evaluate",
    "Generator3D": "networks",
    "Critic2D": "networks",
    "CropSampler": "data",
    "one_hot": "data",
}

__all__ = ["SliceGANConfig", "cpu_config", "reference_config", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
