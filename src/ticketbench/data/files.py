"""Datasets backed by image files on disk, decoded lazily with PIL one item at a time."""

from __future__ import annotations

import os
from typing import Callable, Iterable

import numpy as np
from PIL import Image
from torch import Tensor

from .base import DatasetInfo, IndexedDataset

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def list_images(folder: str) -> list[str]:
    """Sorted names of the image files directly inside ``folder`` (extension match is case-insensitive)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file())


def list_dirs(folder: str) -> list[str]:
    """Sorted names of the sub-folders of ``folder``."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir())


class PathTable:
    """Many file paths below one root, packed into a byte array.

    A Python list of a million strings gets copied page by page into every forked DataLoader worker as reference
    counts are touched; two numpy arrays do not, and are also much smaller.
    """

    def __init__(self, root: str, rel_paths: Iterable[str]):
        encoded = [os.fsencode(p) for p in rel_paths]
        self.root = root
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.array([len(b) for b in encoded], dtype=np.int64), out=self._offsets[1:])
        self._blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        raw = self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes()
        return os.path.join(self.root, os.fsdecode(raw))


class FileIndexedDataset(IndexedDataset):
    """Base set given as image files; each item is decoded, converted to RGB and transformed on access.

    Args:
        info: Facts about the dataset.
        paths: One path per base sample.
        labels: ``[N]`` class labels.
        train_transform: PIL image -> normalised tensor, with random augmentation (torchvision transforms draw from
            torch's RNG, so seeded runs repeat).
        eval_transform: PIL image -> normalised tensor, deterministic.
        augment: Initial augmentation setting.
    """

    def __init__(self, info: DatasetInfo, paths: PathTable, labels, *, train_transform: Callable,
                 eval_transform: Callable, augment: bool = False):
        super().__init__(info, labels, augment=augment)
        if len(paths) != self.base_size:
            raise ValueError(f"{len(paths)} paths but {self.base_size} labels")
        self._paths = paths
        self._train_transform = train_transform
        self._eval_transform = eval_transform

    def path(self, sid: int) -> str:
        """File of the base sample with stable id ``sid``."""
        return self._paths[sid]

    def _load(self, sid: int, augment: bool) -> Tensor:
        path = self._paths[sid]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except OSError as exc:
            raise OSError(f"dataset {self.info.name!r}: cannot read image {path}: {exc}") from exc
        return (self._train_transform if augment else self._eval_transform)(im)
