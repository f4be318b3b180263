"""``cifar10`` and ``cifar100``, read from the standard python-pickle batches.

The batches are read directly rather than through torchvision's classes, whose md5 checks would reject
partial or hand-made folders. Without those checks a batch file could be anything, so it is unpickled by an unpickler
that builds only what a CIFAR batch holds (dicts, lists, strings, bytes, numbers, numpy arrays): a crafted file is
refused before any of its code runs. Split convention of the lottery-ticket papers: the first 90% of the official
training set is ``train`` (indices 0..44,999), the last 10% is ``val`` (45,000..49,999), the test batch is ``test``.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataRootError
from ..untrusted import RefusedPickle, load_pickle
from .base import (DATASETS, DatasetInfo, Splits, check_options, holdout_count, make_splits,
                   resolve_image_size)
from .inmemory import TensorIndexedDataset


@dataclass(frozen=True)
class _CifarSpec:
    name: str
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    torchvision_class: str


CIFAR10 = _CifarSpec(
    name="cifar10", title="CIFAR-10", folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",), label_key="labels",
    num_classes=10, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), torchvision_class="CIFAR10",
)
CIFAR100 = _CifarSpec(
    name="cifar100", title="CIFAR-100", folder="cifar-100-python",
    train_files=("train",), test_files=("test",), label_key="fine_labels",
    num_classes=100, mean=(0.5071, 0.4866, 0.4409), std=(0.2673, 0.2564, 0.2762), torchvision_class="CIFAR100",
)


def _how(spec: _CifarSpec) -> str:
    return (f"put the {spec.title} python batches there (folder {spec.folder}), pass --data-root DIR, "
            f"or set download: true")


def _download(spec: _CifarSpec, root: str, folder: str) -> None:
    """Fetch and unpack the archive into ``root``; any failure is one line saying what to place where instead."""
    # Imported here: torchvision is only needed to fetch the archive (its URL and checksum live on its classes).
    import torchvision.datasets
    from torchvision.datasets.utils import download_and_extract_archive

    source = getattr(torchvision.datasets, spec.torchvision_class)
    try:
        download_and_extract_archive(source.url, root, filename=source.filename, md5=source.tgz_md5)
    except (OSError, RuntimeError, EOFError, tarfile.TarError) as exc:
        # OSError covers URLError, timeouts, SSL and permission errors; RuntimeError is a failed checksum.
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        files = ", ".join(spec.train_files + spec.test_files)
        raise DataRootError(spec.name, folder, f"download failed ({reason}); without a network, fetch {source.url} "
                                               f"elsewhere and extract it in {root}, so that {folder} holds the "
                                               f"files {files}") from None


def _read_batch(spec: _CifarSpec, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels of one pickle batch."""
    def bad(problem: str) -> DataRootError:
        return DataRootError(spec.name, path, f"{problem}; replace it with the original {spec.title} python batch")

    if not os.path.isfile(path):
        raise DataRootError(spec.name, path, _how(spec))
    try:
        with open(path, "rb") as f:
            # encoding="bytes" is how the original python-2 pickles load; it leaves keys as bytes.
            batch = load_pickle(f, encoding="bytes")
    except RefusedPickle as exc:
        raise bad(f"the file is not a CIFAR batch: {exc}; nothing of it was run") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise bad(f"the file is not a readable pickle ({type(exc).__name__})") from None
    if not isinstance(batch, dict):
        raise bad("the file does not hold a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or spec.label_key not in batch:
        raise bad(f"the batch lacks the keys 'data' and {spec.label_key!r}")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[spec.label_key], dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise bad(f"expected data of shape N x 3072 with N labels, got {data.shape} and {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise bad(f"labels must lie in 0..{spec.num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _read_all(spec: _CifarSpec, folder: str, files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [_read_batch(spec, os.path.join(folder, name)) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


def _build(spec: _CifarSpec, *, root, download: bool, augment: bool, image_size: int | None, **options) -> Splits:
    check_options(spec.name, options, {})
    size = resolve_image_size(spec.name, image_size, 32, fixed=True)
    if root is None:
        raise DataRootError(spec.name, "(no data root given)", _how(spec))
    root = os.path.expanduser(str(root))
    folder = os.path.join(root, spec.folder)
    # Only what is missing is fetched: files already there need no network, and damaged ones get their own error.
    if download and not all(os.path.isfile(os.path.join(folder, f)) for f in spec.train_files + spec.test_files):
        _download(spec, root, folder)
    if not os.path.isdir(folder):
        raise DataRootError(spec.name, folder, _how(spec))

    train_images, train_labels = _read_all(spec, folder, spec.train_files)
    test_images, test_labels = _read_all(spec, folder, spec.test_files)
    n = len(train_labels)
    if n == 0 or len(test_labels) == 0:
        raise DataRootError(spec.name, folder, f"the batches there hold no images; {_how(spec)}")
    n_train = n - holdout_count(n)

    info = DatasetInfo(name=spec.name, num_classes=spec.num_classes, in_chans=3, image_size=size,
                       mean=spec.mean, std=spec.std)

    def tensor_set(images: torch.Tensor, labels: torch.Tensor) -> TensorIndexedDataset:
        # Kept as uint8 (150 MB for the training set) and normalised per item; padding 4 + flip as in the papers.
        return TensorIndexedDataset(info, images, labels, scale=1 / 255, pad=4, flip=True)

    # Contiguous slices are views, so the training set is not copied.
    train = tensor_set(train_images[:n_train], train_labels[:n_train])
    val = tensor_set(train_images[n_train:], train_labels[n_train:])
    return make_splits(info, train, val, tensor_set(test_images, test_labels), augment)


@DATASETS.register("cifar10")
def build_cifar10(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                  **options) -> Splits:
    """Build CIFAR-10 from ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}``.

    The last 10% of the training batches (by position) is ``val``. Augmentation: random crop 32 with zero
    padding 4, and horizontal flip. With ``download=True`` the archive is fetched into ``root`` first unless all
    batches are already there.

    Raises:
        DataRootError: ``root`` is missing or does not hold the batches, or the download failed (the message says
            which files to place where instead).
        ConfigError: Any option, or an ``image_size`` other than 32.
    """
    return _build(CIFAR10, root=root, download=download, augment=augment, image_size=image_size, **options)


@DATASETS.register("cifar100")
def build_cifar100(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                   **options) -> Splits:
    """Build CIFAR-100 (fine labels) from ``<root>/cifar-100-python/{train, test}``.

    Same split convention and augmentation as ``cifar10``.

    Raises:
        DataRootError: ``root`` is missing or does not hold the batches.
        ConfigError: Any option, or an ``image_size`` other than 32.
    """
    return _build(CIFAR100, root=root, download=download, augment=augment, image_size=image_size, **options)
