"""Deterministic DataLoaders over ``IndexedDataset`` views."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import ConfigError
from .base import IndexedDataset, check_positive_int
from .batching import EpochShuffle, NoSingletonBatchSampler


def _seed_worker(worker_id: int) -> None:
    # Recent torch versions also seed numpy/random in workers; doing it here keeps the guarantee explicit and
    # independent of that detail: every generator in a worker follows the loader's seed.
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)


def make_loader(ds: IndexedDataset, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """Wrap a dataset in a deterministic DataLoader.

    Args:
        ds: The dataset view to iterate.
        batch_size: Samples per batch.
        shuffle: Reshuffle every epoch; the order comes from a ``torch.Generator`` seeded with ``seed``, so the
            sequence of epochs is the same for the same seed.
        seed: Seed of the loader's generator (shuffling and worker seeds).
        workers: Worker processes; 0 loads in the calling process (augmentation then uses torch's global RNG).
        drop_last: Drop the last incomplete batch. Without it, a shuffled loader never yields a batch of one sample
            (BatchNorm cannot train on it): a trailing single sample joins the batch before it.

    Returns:
        A DataLoader yielding ``(images, labels, ids)`` tensors.

    Raises:
        ConfigError: A non-positive batch size or a negative worker count.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ConfigError("workers", workers, "a non-negative integer is needed")
    common = dict(generator=torch.Generator().manual_seed(int(seed)), num_workers=int(workers),
                  worker_init_fn=_seed_worker if workers > 0 else None, persistent_workers=workers > 0)
    if shuffle and not drop_last:
        # Training order: the order DataLoader(shuffle=True) gives in-process, whatever the worker count (see
        # EpochShuffle), in batches that never hold one sample alone (see NoSingletonBatchSampler).
        sampler = EpochShuffle(ds, generator=torch.Generator().manual_seed(int(seed)))
        return DataLoader(ds, batch_sampler=NoSingletonBatchSampler(sampler, batch_size), **common)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **common)
