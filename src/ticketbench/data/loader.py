"""Deterministic batches over ``IndexedDataset`` views: gathered on the device, or from a DataLoader.

:func:`make_batches` is what training and evaluation use. In-memory datasets get :class:`DeviceBatches`
(the base set lives on the training device; order and augmentation are drawn once per epoch from a
seeded CPU generator, so a seed gives the same batches on every device). Datasets read from files get a
worker-based DataLoader (:func:`make_loader`) with pinned memory and prefetching.
"""

from __future__ import annotations

import os
import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import ConfigError
from .base import IndexedDataset, check_positive_int
from .batching import EpochShuffle, NoSingletonBatchSampler, batch_sizes
from .inmemory import TensorIndexedDataset

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def auto_workers(cores: int | None = None) -> int:
    """Loader processes for file datasets when ``workers`` is left at -1: one core stays with the training loop."""
    cores = cores if cores is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(0, min(8, cores - 1))


def _seed_worker(worker_id: int) -> None:
    # Recent torch versions also seed numpy/random in workers; doing it here keeps the guarantee explicit and
    # independent of that detail: every generator in a worker follows the loader's seed.
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)


def make_loader(ds: IndexedDataset, batch_size: int, *, shuffle: bool, seed: int = 0, workers: int = 0,
                drop_last: bool = False, pin_memory: bool = False) -> DataLoader:
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
        pin_memory: Page-lock batches so copies to a GPU overlap with compute.

    Returns:
        A DataLoader yielding ``(images, labels, ids)`` tensors.

    Raises:
        ConfigError: A non-positive batch size or a negative worker count.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ConfigError("workers", workers, "a non-negative integer is needed")
    common = dict(generator=torch.Generator().manual_seed(int(seed)), num_workers=int(workers),
                  worker_init_fn=_seed_worker if workers > 0 else None, persistent_workers=workers > 0,
                  pin_memory=pin_memory, prefetch_factor=4 if workers > 0 else None)
    if shuffle and not drop_last:
        # Training order: the order DataLoader(shuffle=True) gives in-process, whatever the worker count (see
        # EpochShuffle), in batches that never hold one sample alone (see NoSingletonBatchSampler).
        sampler = EpochShuffle(ds, generator=torch.Generator().manual_seed(int(seed)))
        return DataLoader(ds, batch_sampler=NoSingletonBatchSampler(sampler, batch_size), **common)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **common)


class DeviceBatches:
    """Batches of an in-memory dataset, gathered, augmented and normalised on ``device``.

    Each epoch draws, from one CPU generator seeded with ``seed``: the order (if ``shuffle``), then a translation
    for every sample and, for datasets that flip, a flip for every sample (if the view augments). They go to the
    device in one copy per epoch; nothing comes back to the host while batches are served.
    """

    def __init__(self, ds: TensorIndexedDataset, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu"):
        self.ds = ds
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._ids = ds.ids.to(self.device)
        self._labels = ds.device_store(self.device)[1]
        self._sizes = batch_sizes(len(ds), self.batch_size)

    def __len__(self) -> int:
        return len(self._sizes)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def __iter__(self) -> Iterator[Batch]:
        n, gen = len(self.ds), self.generator
        order = torch.randperm(n, generator=gen) if self.shuffle else None
        shifts = flips = None
        if self.ds.augment:
            pad = self.ds.pad
            if pad > 0:
                shifts = self._to_device(torch.randint(-pad, pad + 1, (n, 2), generator=gen))
            if self.ds.flip:
                flips = self._to_device(torch.rand(n, generator=gen) < 0.5)
        sids = self._ids if order is None else self._ids[self._to_device(order)]
        start = 0
        for size in self._sizes:
            part = slice(start, start + size)
            ids = sids[part]
            x = self.ds.batch(ids, shifts=None if shifts is None else shifts[part],
                              flips=None if flips is None else flips[part])
            yield x, self._labels[ids], ids
            start += size


def make_batches(ds: IndexedDataset, batch_size: int, *, shuffle: bool, seed: int = 0,
                 device: torch.device | str = "cpu", workers: int = -1) -> "DeviceBatches | _DeviceLoader":
    """The batches training and evaluation iterate: ``(images, labels, ids)``, all on ``device``.

    Args:
        ds: The dataset view.
        batch_size: Samples per batch; a shuffled epoch never ends on a batch of one sample.
        shuffle: Reshuffle every epoch (seeded by ``seed``).
        seed: Seed of the order and of the augmentation.
        device: Where batches are wanted.
        workers: Loader processes for file datasets; -1 picks them from the core count (:func:`auto_workers`).
            In-memory datasets never need workers.
    """
    if isinstance(ds, TensorIndexedDataset):
        return DeviceBatches(ds, batch_size, shuffle=shuffle, seed=seed, device=device)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < -1:
        raise ConfigError("workers", workers, "-1 (from the core count) or a non-negative integer")
    device = torch.device(device)
    loader = make_loader(ds, batch_size, shuffle=shuffle, seed=seed,
                         workers=auto_workers() if workers == -1 else int(workers), pin_memory=device.type == "cuda")
    return _DeviceLoader(loader, device)


class _DeviceLoader:
    """A DataLoader whose batches are moved to ``device`` (asynchronously from pinned memory on a GPU)."""

    def __init__(self, loader: DataLoader, device: torch.device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for x, y, ids in self.loader:
            yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True),
                   ids.to(self.device, non_blocking=True))
