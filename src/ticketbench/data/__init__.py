"""Datasets for ticketbench: every item carries a stable sample id, and splits are fixed per dataset.

Importing this package registers the built-in datasets: ``digits`` (the embedded default), ``synthetic`` (for
tests), ``cifar10``, ``cifar100``, ``tiny-imagenet`` and ``imagenet``.
"""

from .base import DATASETS, DatasetInfo, IndexedDataset, Splits, dataset_names, load_splits
from .loader import DeviceBatches, make_batches, make_loader
from . import cifar, digits, folders, synthetic  # noqa: F401  (importing registers the datasets)

__all__ = ["DATASETS", "DatasetInfo", "IndexedDataset", "Splits", "dataset_names", "load_splits", "make_batches", "make_loader", "DeviceBatches"]
