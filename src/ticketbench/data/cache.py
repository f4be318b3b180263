"""A uint8 cache of decoded folder images: one ``.npy`` array per dataset and size, read by memory map.

Decoding every JPEG in every epoch is what limits ImageNet-scale training on few cores; the cache pays for it once.
``<cache>/<dataset>-<size>px.npy`` holds all images of train, val and test, in that order (the order of the
paths it was built from), as ``[N, 3, side, side]`` uint8; ``<dataset>-<size>px.json`` beside it records what it
was built from (format version, dataset, geometry, count and a SHA-256 over every relative path and label). A
cache whose record does not match the folder it is asked for is refused, never silently rebuilt: an ImageNet
cache takes long to build and a quarter of a terabyte at 224 px, and two runs with different data roots sharing
one cache folder would otherwise rebuild each other's cache in turn.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import ConfigError, TicketbenchError
from .base import DatasetInfo, IndexedDataset
from .files import PathTable, decode_images

CACHE_VERSION = 1
CACHE_HOW = "choose another cache folder, or none"


def cache_dir(value: Any) -> str | None:
    """The ``cache`` option as a folder that exists, or None when it is unset (None or an empty string).

    Raises:
        ConfigError: Not a string, or the folder cannot be created.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError("cache", value, "a folder path (string) where decoded images are kept, or empty for none")
    path = os.path.expanduser(os.fspath(value))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError("cache", value, f"a folder that can be created ({exc.strerror or exc}); {CACHE_HOW}") \
            from None
    return path


def list_key(rel_paths: Sequence[str], labels: Sequence[int]) -> str:
    """SHA-256 over the relative paths and labels, in order: any added, removed, renamed or relabelled file or a
    different split changes it. File contents are not hashed; a file replaced in place under the same name (after
    a decode error, the only reason to do so) is not seen, and cannot have been in the cache, whose build stops at
    the first undecodable file."""
    digest = hashlib.sha256()
    for path, label in zip(rel_paths, labels):
        digest.update(f"{path}\t{int(label)}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _stale(found: dict, wanted: dict) -> str:
    if not found:
        return "its record cannot be read"
    if found.get("count") != wanted["count"]:
        return f"it holds {found.get('count')} images, the folder now has {wanted['count']}"
    if found.get("files_sha256") != wanted["files_sha256"]:
        return "the folder now lists other files, labels or splits"
    changed = ", ".join(k for k in sorted(wanted) if found.get(k) != wanted[k])
    return f"it was built with another {changed}"


def _read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as a record that matches nothing
    return record if isinstance(record, dict) else {}


def _open(path: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array at ``path`` memory-mapped read-only, or None when it is absent, truncated or of another shape."""
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return array if array.shape == shape and array.dtype == np.uint8 else None


def cached_images(dataset: str, folder: str, size: int, paths: Sequence[str], key: str,
                  fit: Callable[[Image.Image], Image.Image], side: int, geometry: dict,
                  before_build: Callable[[], None] = lambda: None) -> tuple[str, np.ndarray]:
    """The cache of ``paths`` in ``folder``, built first if it is not there.

    Args:
        dataset: Registry name; with ``size`` it names the files.
        folder: Cache folder (from ``cache_dir``).
        size: Training image size.
        paths: Image files, in storage order.
        key: ``list_key`` of the relative paths and labels.
        fit: RGB image -> ``side`` x ``side`` stored image.
        side: Stored height and width.
        geometry: How ``fit`` is parametrised, recorded and compared (e.g. the resize size).
        before_build: Called before a build only (the file check: a valid cache needs no source file).

    Returns:
        The ``.npy`` file and its read-only memory-mapped ``[N, 3, side, side]`` uint8 array.

    Raises:
        ConfigError: The cache there was built from other files or settings (stale), or it cannot be written.
        DataFileError: An image cannot be decoded (nothing is left behind).
    """
    base = os.path.join(folder, f"{dataset}-{size}px")
    npy, record_file = base + ".npy", base + ".json"
    wanted = {"version": CACHE_VERSION, "dataset": dataset, "image_size": size, "stored_size": side,
              **geometry, "count": len(paths), "files_sha256": key}
    shape = (len(paths), 3, side, side)
    record = _read_record(record_file)
    if record is not None:
        if record != wanted:
            raise ConfigError("cache", folder, f"{npy} is stale ({_stale(record, wanted)}); delete it and "
                                               f"{os.path.basename(record_file)} to rebuild, or {CACHE_HOW}")
        array = _open(npy, shape)
        if array is not None:
            return npy, array
    before_build()
    _build(dataset, folder, npy, record_file, wanted, paths, fit, side)
    array = _open(npy, shape)
    if array is None:  # another process replaced it between our rename and this read
        raise ConfigError("cache", folder, f"{npy} changed while it was built; run again, or {CACHE_HOW}")
    return npy, array


def _build(dataset: str, folder: str, npy: str, record_file: str, record: dict, paths: Sequence[str],
           fit: Callable[[Image.Image], Image.Image], side: int) -> None:
    """Decode into a temporary file and rename it into place, then write the record: a crash at any point leaves
    either no record (rebuilt next time) or a complete, matching pair."""
    shape = (len(paths), 3, side, side)
    need = int(np.prod(shape))
    free = shutil.disk_usage(folder).free
    if need > free:
        # Checked up front: running out of space mid-way would waste the decoding time so far.
        raise ConfigError("cache", folder, f"{os.path.basename(npy)} needs {need / 1e9:.1f} GB, "
                                           f"{free / 1e9:.1f} GB are free; free space or {CACHE_HOW}")
    tmp = f"{npy}.{os.getpid()}.tmp"
    try:
        if os.path.exists(record_file):
            os.remove(record_file)
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                                                     "fortran_order": False, "shape": shape})
            for chunk in decode_images(dataset, paths, fit, side, desc=f"{dataset}: caching {len(paths)} images"):
                f.write(chunk.tobytes())
        os.replace(tmp, npy)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, record_file)
    except TicketbenchError:
        raise  # an undecodable image (a DataFileError is an OSError too)
    except OSError as exc:
        raise ConfigError("cache", folder, f"writing {npy} failed ({exc.strerror or exc}); {CACHE_HOW}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class CachedImageDataset(IndexedDataset):
    """Base set stored in a cache array, rows ``start .. start + N - 1``; nothing is decoded on access.

    Evaluation takes the central ``info.image_size`` crop of the stored square (the decode path's evaluation
    pixels, see ``files.fit_square``); training applies ``train_transform`` to the whole stored square. The array
    is opened lazily in each process, so DataLoader workers map the file instead of receiving a copy.

    Args:
        info: Facts about the dataset.
        file: The cache ``.npy``.
        start: Row of this set's first sample.
        paths: Source file of each sample, for ``path``.
        labels: ``[N]`` class labels.
        train_transform: uint8 tensor ``[3, side, side]`` -> uint8 tensor ``[3, size, size]``, random.
        augment: Initial augmentation setting.
    """

    def __init__(self, info: DatasetInfo, file: str, start: int, paths: PathTable, labels, *,
                 train_transform: Callable[[Tensor], Tensor], augment: bool = False):
        super().__init__(info, labels, augment=augment)
        self._file, self._start, self._paths = file, int(start), paths
        self._train_transform = train_transform
        self._mean = torch.tensor(info.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(info.std, dtype=torch.float32).view(-1, 1, 1)
        self._mapped: dict[str, np.ndarray] = {}  # shared by the views, emptied for pickling

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_mapped": {}}

    def _stored(self, sid: int) -> np.ndarray:
        if "array" not in self._mapped:
            self._mapped["array"] = np.load(self._file, mmap_mode="r")
        return self._mapped["array"][self._start + sid]

    def path(self, sid: int) -> str:
        """Source file of the base sample with stable id ``sid``."""
        return self._paths[sid]

    def pixels(self, sid: int, augment: bool = False) -> Tensor:
        """uint8 ``[3, size, size]`` image of base sample ``sid`` before normalisation."""
        stored = self._stored(sid)
        if augment:
            return self._train_transform(torch.from_numpy(np.array(stored)))
        size = self.info.image_size
        m = (stored.shape[-1] - size) // 2
        return torch.from_numpy(np.array(stored[:, m:m + size, m:m + size]))

    def _load(self, sid: int, augment: bool) -> Tensor:
        # div(255) as in ToTensor, so evaluation tensors equal the decode path's exactly.
        return (self.pixels(sid, augment).to(torch.float32).div(255) - self._mean) / self._std
