"""``synthetic``: tiny deterministic class-prototype images for unit tests and smoke runs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import (DATASETS, DatasetInfo, Splits, check_options, check_positive_int, make_splits,
                   resolve_image_size)
from .inmemory import TensorIndexedDataset

DEFAULT_IMAGE_SIZE = 16
# Fixed so that the data is the same in every process and never depends on the run seed.
PROTOTYPE_SEED = 7
OPTION_DEFAULTS = {"n_train": 256, "n_val": 64, "n_test": 64, "num_classes": 10, "noise": 1.0}


def _prototypes(num_classes: int, image_size: int) -> torch.Tensor:
    """One smooth random pattern per class, ``[K, 3, S, S]``.

    Patterns are drawn at 4x4 and upsampled, so they survive the small translations of augmentation.
    """
    gen = torch.Generator().manual_seed(PROTOTYPE_SEED)
    coarse = torch.randn(num_classes, 3, 4, 4, generator=gen)
    return F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)


def _sample(prototypes: torch.Tensor, n: int, noise: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images with balanced, shuffled labels: the class prototype plus Gaussian pixel noise."""
    # A generator per split keeps val/test unchanged when only n_train changes.
    gen = torch.Generator().manual_seed(PROTOTYPE_SEED + 1 + split_seed)
    num_classes = len(prototypes)
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=gen)]
    images = prototypes[labels] + noise * torch.randn(n, *prototypes.shape[1:], generator=gen)
    return images, labels


@DATASETS.register("synthetic")
def build_synthetic(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                    **options) -> Splits:
    """Build the ``synthetic`` splits (``root`` and ``download`` are ignored).

    Each class is a fixed smooth random prototype; a sample is its prototype plus ``noise``-scaled Gaussian
    noise, so a nearest-prototype rule or a small network beats chance quickly. Values are already roughly
    standardised, hence mean 0 / std 1 in ``DatasetInfo``. Augmentation translates by up to
    ``max(1, image_size // 16)`` pixels and flips horizontally.

    Options:
        n_train, n_val, n_test: Samples per split (default 256, 64, 64).
        num_classes: Number of classes (default 10).
        noise: Standard deviation of the pixel noise (default 1.0).

    Raises:
        ConfigError: Unknown option or a bad value.
    """
    opts = check_options("synthetic", options, OPTION_DEFAULTS)
    sizes = [check_positive_int(key, opts[key]) for key in ("n_train", "n_val", "n_test")]
    num_classes = check_positive_int("num_classes", opts["num_classes"])
    noise = opts["noise"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ConfigError("noise", noise, "a non-negative number is needed")
    size = resolve_image_size("synthetic", image_size, DEFAULT_IMAGE_SIZE)
    info = DatasetInfo(name="synthetic", num_classes=num_classes, in_chans=3, image_size=size,
                       mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    protos = _prototypes(num_classes, size)
    pad = max(1, size // 16)
    train, val, test = (TensorIndexedDataset(info, *_sample(protos, n, float(noise), k), pad=pad, flip=True)
                        for k, n in enumerate(sizes))
    return make_splits(info, train, val, test, augment)
