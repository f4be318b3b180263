"""``digits``: scikit-learn's bundled 8x8 handwritten digits, the suite's no-download default dataset.

The 1,797 images are split once, with a constant seed, stratified by class, into
1,259 train / 179 val / 359 test samples (per class: 20% test and 10% val, rounded; the rest train).
The split never depends on the run seed, so every run of every method sees the same samples.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .base import DATASETS, DatasetInfo, Splits, check_options, make_splits, resolve_image_size
from .inmemory import TensorIndexedDataset

DEFAULT_IMAGE_SIZE = 32
# Constant so the split is a property of the benchmark, not of a run.
SPLIT_SEED = 1797
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1

# Mean and std of the training split's pixels in [0, 1] units after the bilinear resize to 32x32. Hard-coded so
# that normalisation does not shift if someone subsets the training set; the test suite recomputes them.
DIGITS_MEAN = 0.304064
DIGITS_STD = 0.322984


def digits_split_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions in ``sklearn.datasets.load_digits()`` of the train, val and test samples.

    Each split is sorted, so a sample's stable id is its rank within its split. The shuffle uses numpy's legacy
    ``RandomState``, whose stream numpy promises never to change, so the split is identical on every install.

    Returns:
        Sorted index arrays ``(train, val, test)`` of lengths 1,259, 179 and 359.
    """
    labels = _raw_digits()[1]
    rng = np.random.RandomState(SPLIT_SEED)
    train, val, test = [], [], []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        n_test = int(np.floor(len(members) * TEST_FRACTION + 0.5))
        n_val = int(np.floor(len(members) * VAL_FRACTION + 0.5))
        test.append(members[:n_test])
        val.append(members[n_test:n_test + n_val])
        train.append(members[n_test + n_val:])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    # Imported here: scikit-learn is slow to import and only this dataset needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _resized_digits(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images as ``[N, 1, S, S]`` floats in [0, 1], resized once, and their labels."""
    images, labels = _raw_digits()
    x = torch.from_numpy(images).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0), torch.from_numpy(labels)


@DATASETS.register("digits")
def build_digits(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                 **options) -> Splits:
    """Build the ``digits`` splits (``root`` and ``download`` are ignored: the data ships with scikit-learn).

    Images are scaled to [0, 1], resized bilinearly to ``image_size`` (default 32), replicated to 3 channels and
    normalised with the training split's statistics. Training augmentation is a random translation of up to
    ``image_size // 16`` pixels (2 at 32x32); there is no flip, since digits are not mirror-symmetric.

    Raises:
        ConfigError: Any option, or a non-positive ``image_size``.
    """
    check_options("digits", options, {})
    size = resolve_image_size("digits", image_size, DEFAULT_IMAGE_SIZE)
    info = DatasetInfo(name="digits", num_classes=10, in_chans=3, image_size=size,
                       mean=(DIGITS_MEAN,) * 3, std=(DIGITS_STD,) * 3)
    images, labels = _resized_digits(size)
    pad = max(1, size // 16)
    train, val, test = (
        TensorIndexedDataset(info, images[idx], labels[idx], pad=pad, flip=False)
        for idx in map(torch.from_numpy, digits_split_indices())
    )
    return make_splits(info, train, val, test, augment)
