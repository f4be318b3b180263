"""Core types of the data layer: dataset facts, index-carrying datasets, splits, the registry and loaders."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..registry import Registry

# Every builder is called as builder(root=..., download=..., augment=..., image_size=..., **options) -> Splits.
DATASETS: Registry[Callable[..., "Splits"]] = Registry("dataset")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset that models and the training loop need.

    Attributes:
        name: Registry name, e.g. ``"cifar10"``.
        num_classes: Number of classes, i.e. the width of the classifier head.
        in_chans: Channels of the images the datasets yield.
        image_size: Height and width of the images the datasets yield.
        mean: Per-channel mean used for normalisation (in [0, 1] pixel units).
        std: Per-channel standard deviation used for normalisation.
    """

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


class IndexedDataset(Dataset):
    """A view on one split whose items carry a stable sample id.

    Every item is ``(image, label, index)``: a normalised float32 tensor ``[C, H, W]``, the int class label and
    the sample's stable id, its position in the split's base set (``0 .. base_size - 1``). Ids never change
    between views (``subset``, ``with_augment``), so per-sample statistics such as forgetting events can live in
    an array of length ``base_size``.

    Subclasses hold the base set and implement ``_load(sid, augment)``; views share that storage.

    Attributes:
        info: Facts about the dataset.
        ids: Stable ids of the samples in this view, in iteration order.
        targets: Labels in the same order as ``ids``.
        base_size: Number of samples in the full split.
        augment: Whether items are randomly augmented (randomness comes from torch's RNG).
    """

    def __init__(self, info: DatasetInfo, labels: Tensor, *, augment: bool = False):
        self.info = info
        # Labels of the whole base set, indexed by stable id; views only swap ``ids``.
        self._labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        self.base_size = len(self._labels)
        self.ids = torch.arange(self.base_size, dtype=torch.long)
        self.targets = self._labels
        self.augment = bool(augment)

    def _load(self, sid: int, augment: bool) -> Tensor:
        """Return the normalised image of base sample ``sid``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        sid = int(self.ids[i])
        return self._load(sid, self.augment), int(self._labels[sid]), sid

    def subset(self, ids) -> "IndexedDataset":
        """Restrict the view to some of its samples.

        Args:
            ids: Stable ids (list, array or tensor of ints) that must all belong to this view, without repeats.
                They become the new view's ``ids`` in the given order.

        Returns:
            A view sharing storage with this one, with the same ``augment`` setting and ``base_size``.

        Raises:
            ValueError: An id is not a member of this view, or appears twice.
            TypeError: ``ids`` are not integers.
        """
        wanted = torch.as_tensor(ids)
        if wanted.numel() and (wanted.is_floating_point() or wanted.is_complex() or wanted.dtype == torch.bool):
            raise TypeError(f"subset() needs integer sample ids, got dtype {wanted.dtype}")
        wanted = wanted.to(torch.long).reshape(-1)
        member = torch.zeros(self.base_size, dtype=torch.bool)
        member[self.ids] = True
        in_range = (wanted >= 0) & (wanted < self.base_size)
        ok = in_range.clone()
        ok[in_range] = member[wanted[in_range]]
        if not bool(ok.all()):
            foreign = wanted[~ok][:5].tolist()
            raise ValueError(f"subset() of {self.info.name!r}: ids {foreign} are not samples of this view")
        if torch.unique(wanted).numel() != wanted.numel():
            raise ValueError(f"subset() of {self.info.name!r}: ids must not repeat")
        view = copy.copy(self)
        view.ids = wanted.clone()
        view.targets = self._labels[wanted]
        return view

    def with_augment(self, augment: bool) -> "IndexedDataset":
        """Return a view of the same samples with augmentation switched on or off."""
        view = copy.copy(self)
        view.augment = bool(augment)
        return view

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.info.name!r}, len={len(self)}, base_size={self.base_size}, "
                f"augment={self.augment})")


@dataclass
class Splits:
    """The four views a run needs.

    Attributes:
        info: Facts about the dataset.
        train: Training samples, augmented if the splits were loaded with ``augment=True``.
        train_eval: The same training samples, never augmented (for predictions on the train set).
        val: Held-out validation samples, never augmented.
        test: Test samples, never augmented.
    """

    info: DatasetInfo
    train: IndexedDataset
    train_eval: IndexedDataset
    val: IndexedDataset
    test: IndexedDataset


def make_splits(info: DatasetInfo, train: IndexedDataset, val: IndexedDataset, test: IndexedDataset,
                augment: bool) -> Splits:
    """Assemble ``Splits`` from three base sets, deriving ``train``/``train_eval`` from one shared store."""
    return Splits(info=info, train=train.with_augment(augment), train_eval=train.with_augment(False),
                  val=val.with_augment(False), test=test.with_augment(False))


def check_options(dataset: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Merge user options into a dataset's defaults, rejecting unknown keys.

    Raises:
        ConfigError: An option key the dataset does not know.
    """
    for key, value in options.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) if defaults else "none"
            raise ConfigError(key, value, f"dataset {dataset!r} accepts these options: {known}")
    return {**defaults, **options}


def check_positive_int(key: str, value: Any) -> int:
    """Return ``value`` if it is a positive int (bools excluded), else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(key, value, "a positive integer is needed")
    return int(value)


def resolve_image_size(dataset: str, image_size: int | None, default: int, *, fixed: bool = False) -> int:
    """Return the image size to use; ``None`` means the dataset's default.

    Raises:
        ConfigError: Not a positive int, or a different size for a dataset whose size is ``fixed``.
    """
    if image_size is None:
        return default
    size = check_positive_int("image_size", image_size)
    if fixed and size != default:
        raise ConfigError("image_size", image_size, f"dataset {dataset!r} only comes at {default}x{default}")
    return size


def holdout_split(n: int, n_val: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into train and val indices.

    Args:
        n: Number of training-set samples.
        n_val: How many to hold out.
        seed: ``None`` holds out the last ``n_val`` indices; otherwise the last ``n_val`` of a permutation drawn
            with numpy's legacy ``RandomState(seed)``, whose stream numpy guarantees never to change.

    Returns:
        Sorted train indices and sorted val indices.
    """
    order = np.arange(n) if seed is None else np.random.RandomState(seed).permutation(n)
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val:])


def holdout_count(n: int, fraction: float = 0.1, cap: int | None = None) -> int:
    """How many of ``n`` training samples to hold out: ``fraction`` rounded, at least one when ``n >= 2``."""
    k = int(np.floor(n * fraction + 0.5))
    if n >= 2:
        k = max(k, 1)
    if cap is not None:
        k = min(k, cap)
    return min(k, max(n - 1, 0))


def load_splits(name: str, *, root: str | None = None, download: bool = False, augment: bool = True,
                image_size: int | None = None, **options: Any) -> Splits:
    """Build the train/train_eval/val/test views of a registered dataset.

    Args:
        name: Registry name, see ``dataset_names()``.
        root: Folder holding the dataset's files; ignored by in-memory datasets (``digits``, ``synthetic``).
        download: Fetch the files into ``root`` first where the dataset supports it (CIFAR).
        augment: Whether ``train`` applies random augmentation.
        image_size: Override of the default size where the dataset allows it.
        **options: Dataset-specific options (e.g. ``n_train`` for ``synthetic``).

    Returns:
        The dataset's ``Splits``.

    Raises:
        ConfigError: Unknown dataset, unknown option or a bad option value.
        DataRootError: The dataset's files are missing or malformed.
    """
    builder = DATASETS.get(name)
    return builder(root=root, download=download, augment=augment, image_size=image_size, **options)


def dataset_names() -> list[str]:
    """Return the registered dataset names, sorted."""
    return DATASETS.names()
