"""``tiny-imagenet`` and ``imagenet``: folder-layout datasets of JPEG files.

For both, the official validation images are our ``test`` split, and our ``val`` split is held out of the
official training images by a permutation with a constant seed, so it is the same for every run. Tiny ImageNet
(1.4 GB as uint8) is decoded once at load and held in memory; ImageNet is decoded per item, or read from a
uint8 cache (option ``cache``, see ``cache.py``) that is decoded once.
"""

from __future__ import annotations

import os
import warnings
from functools import partial

import numpy as np
import torch

from ..errors import DataRootError
from .base import (DATASETS, DatasetInfo, Splits, check_options, holdout_count, holdout_split, make_splits,
                   resolve_image_size)
from .cache import CachedImageDataset, cache_dir, cached_images, list_key
from .files import (IMAGE_EXTENSIONS, FileIndexedDataset, PathTable, check_image_files, decode_images, fit_square,
                    list_dirs, list_images)
from .inmemory import TensorIndexedDataset

TINY_MEAN = (0.4802, 0.4481, 0.3975)
TINY_STD = (0.2302, 0.2265, 0.2262)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Constant seeds: the train/val split is a property of the benchmark, not of a run.
TINY_SPLIT_SEED = 200
IMAGENET_SPLIT_SEED = 1000
# Random-crop padding for Tiny ImageNet at 64x64: PrAC's RandomCrop(64, padding=4) (research/methods.md, sec. 2.3).
TINY_PAD = 4
OPTION_DEFAULTS = {"cache": None}

TINY_HOW = ("unzip tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) so that folder "
            "tiny-imagenet-200 is there, or pass --data-root DIR")
IMAGENET_HOW = ("put the ILSVRC-2012 images there as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, "
                "or pass --data-root DIR")
NO_DOWNLOAD = "it cannot be downloaded (download works for cifar10 and cifar100 only)"
EXTENSIONS = "/".join(IMAGE_EXTENSIONS)


def _require_dir(dataset: str, path: str, how: str) -> str:
    if not os.path.isdir(path):
        raise DataRootError(dataset, path, how)
    return path


def _root(dataset: str, root, how: str) -> str:
    if root is None:
        raise DataRootError(dataset, "(no data root given)", how)
    return _require_dir(dataset, os.path.expanduser(str(root)), how)


def _no_download(dataset: str, root, folders: list[str], how: str) -> None:
    """``download`` for a dataset without a stable mirror: an error if its ``folders`` are absent, else a warning."""
    if root is None:
        raise DataRootError(dataset, "(no data root given)", f"{NO_DOWNLOAD}; {how}")
    path = os.path.expanduser(str(root))
    missing = [os.path.join(path, f) for f in folders if not os.path.isdir(os.path.join(path, f))]
    if missing:
        raise DataRootError(dataset, missing[0], f"{NO_DOWNLOAD}; {how}")
    # stacklevel 4 points past the builder and load_splits at the code that asked for the download.
    warnings.warn(f"dataset {dataset!r}: {NO_DOWNLOAD}; download is ignored and the files under {path} are used",
                  UserWarning, stacklevel=4)


def _class_images(dataset: str, folder: str, wnid: str, what_to_do: str) -> list[str]:
    """Image names in one class folder; an empty one is a half-extracted archive, not a class with no samples."""
    names = list_images(folder)
    if not names:
        raise DataRootError(dataset, folder, f"class {wnid} has no images (no {EXTENSIONS} files); {what_to_do}")
    return names


class DecodedImageDataset(TensorIndexedDataset):
    """A ``TensorIndexedDataset`` of decoded image files that still knows each sample's file."""

    def __init__(self, info: DatasetInfo, images, labels, paths: PathTable, **kwargs):
        super().__init__(info, images, labels, **kwargs)
        self._paths = paths

    def path(self, sid: int) -> str:
        """File of the base sample with stable id ``sid``."""
        return self._paths[sid]


class _Files:
    """Every file of a dataset in storage order: train, then val (held out by a fixed permutation), then test."""

    def __init__(self, info: DatasetInfo, base: str, train_paths: list[str], train_labels: list[int],
                 test_paths: list[str], test_labels: list[int], n_val: int, seed: int, missing_how: str | None):
        train_idx, val_idx = holdout_split(len(train_paths), n_val, seed)
        order = np.concatenate([train_idx, val_idx])
        self.info, self.base, self.missing_how = info, base, missing_how
        self.paths = [train_paths[i] for i in order] + list(test_paths)
        self.labels = np.concatenate([np.asarray(train_labels, dtype=np.int64)[order],
                                      np.asarray(test_labels, dtype=np.int64)])
        ends = np.cumsum([0, len(train_idx), len(val_idx), len(test_paths)])
        self.bounds = list(zip(ends[:-1].tolist(), ends[1:].tolist()))
        # The check reports the first bad file in folder order, train before test.
        self._check_order = [os.path.join(base, p) for p in (*train_paths, *test_paths)]

    def check(self) -> None:
        """Check every file now: a bad test image must not surface only after hours of training."""
        check_image_files(self.info.name, self._check_order, missing_how=self.missing_how)

    def absolute(self) -> list[str]:
        return [os.path.join(self.base, p) for p in self.paths]

    def splits(self, make, augment: bool) -> Splits:
        """``Splits`` from ``make(start, stop, PathTable, labels)`` for each of train, val and test."""
        sets = [make(a, b, PathTable(self.base, self.paths[a:b]), self.labels[a:b]) for a, b in self.bounds]
        return make_splits(self.info, *sets, augment)

    def cached(self, folder: str, fit, side: int, geometry: dict) -> tuple[str, np.ndarray]:
        """The cache of all files in ``folder`` (see ``cache.cached_images``), checking the files if it is built."""
        key = list_key(self.paths, self.labels)
        return cached_images(self.info.name, folder, self.info.image_size, self.absolute(), key, fit, side,
                             geometry, before_build=self.check)


def _normalise(mean, std):
    import torchvision.transforms as T

    return [T.ToTensor(), T.Normalize(mean, std)]


@DATASETS.register("tiny-imagenet")
def build_tiny_imagenet(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                        **options) -> Splits:
    """Build Tiny ImageNet from the standard ``<root>/tiny-imagenet-200`` layout.

    Reads ``wnids.txt``, ``train/<wnid>/images/*.JPEG`` and ``val/images`` with ``val/val_annotations.txt``.
    Class index = position of the wnid in ``sorted(wnids)``. The official val set is ``test``; 10% of the
    training images (fixed permutation) are ``val``. Every image is decoded at load (threads, progress bar) into
    one uint8 tensor ``[N, 3, 64, 64]`` held in memory (an image of another size is resized and centre-cropped to
    64); augmentation is random crop 64 with padding 4 and horizontal flip. ``download`` is not supported (the
    archive has no stable mirror): with the files absent it is an error saying what to place where, with them
    present a warning.

    Options:
        cache: Folder for a uint8 copy of the decoded images (``cache.py``), read instead of decoding from the
            second load on; None or "" for none.

    Raises:
        DataRootError: ``root`` is missing or does not hold the layout above, a class has no images, or (as
            ``DataFileError``) an image file is missing, empty, not an image or cannot be decoded.
        ConfigError: An unknown option, a bad or stale ``cache``, or an ``image_size`` other than 64.
    """
    name = "tiny-imagenet"
    opts = check_options(name, options, OPTION_DEFAULTS)
    cache = cache_dir(opts["cache"])
    size = resolve_image_size(name, image_size, 64, fixed=True)
    if download:
        _no_download(name, root, ["tiny-imagenet-200"], TINY_HOW)
    base = _require_dir(name, os.path.join(_root(name, root, TINY_HOW), "tiny-imagenet-200"), TINY_HOW)
    wnids_file = os.path.join(base, "wnids.txt")
    if not os.path.isfile(wnids_file):
        raise DataRootError(name, wnids_file, f"the class list is missing; {TINY_HOW}")
    with open(wnids_file, encoding="utf-8") as f:
        wnids = sorted({line.strip() for line in f if line.strip()})
    if not wnids:
        raise DataRootError(name, wnids_file, f"the class list is empty; {TINY_HOW}")
    index = {w: i for i, w in enumerate(wnids)}

    train_paths, train_labels = [], []
    for w in wnids:
        rel = os.path.join("train", w, "images")
        folder = _require_dir(name, os.path.join(base, rel), f"class {w} has no images folder; {TINY_HOW}")
        names = _class_images(name, folder, w, "put its training images there or re-extract tiny-imagenet-200.zip")
        train_paths += [os.path.join(rel, n) for n in names]
        train_labels += [index[w]] * len(names)
    if len(train_paths) < 2:
        raise DataRootError(name, os.path.join(base, "train"), f"fewer than 2 training images; {TINY_HOW}")

    _require_dir(name, os.path.join(base, "val", "images"), f"the val images folder is missing; {TINY_HOW}")
    annotations = os.path.join(base, "val", "val_annotations.txt")
    if not os.path.isfile(annotations):
        raise DataRootError(name, annotations, f"the val labels are missing; {TINY_HOW}")
    test_paths, test_labels = [], []
    with open(annotations, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise DataRootError(name, annotations, f"line {line_no} does not name an image and a wnid of "
                                                       f"wnids.txt; {TINY_HOW}")
            test_paths.append(os.path.join("val", "images", fields[0]))
            test_labels.append(index[fields[1]])

    info = DatasetInfo(name=name, num_classes=len(wnids), in_chans=3, image_size=size, mean=TINY_MEAN, std=TINY_STD)
    missing_how = "val/val_annotations.txt lists it; restore it from tiny-imagenet-200.zip"
    files = _Files(info, base, train_paths, train_labels, test_paths, test_labels, holdout_count(len(train_paths)),
                   TINY_SPLIT_SEED, missing_how)
    fit = partial(fit_square, resize=size, side=size, inner=size)
    if cache is not None:
        images = np.array(files.cached(cache, fit, size, {"resize": size})[1])  # into memory, off the file
    else:
        files.check()
        images = np.empty((len(files.paths), 3, size, size), dtype=np.uint8)
        end = 0
        for chunk in decode_images(name, files.absolute(), fit, size, desc=f"{name}: decoding images"):
            images[end:end + len(chunk)] = chunk
            end += len(chunk)
    images = torch.from_numpy(images)

    def make(start: int, stop: int, paths: PathTable, labels) -> DecodedImageDataset:
        # Slices of one tensor: no copy.
        return DecodedImageDataset(info, images[start:stop], labels, paths, scale=1 / 255, pad=TINY_PAD, flip=True)

    return files.splits(make, augment)


@DATASETS.register("imagenet")
def build_imagenet(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                   **options) -> Splits:
    """Build ImageNet from ImageFolder-style ``<root>/train/<wnid>/*`` and ``<root>/val/<wnid>/*``.

    Class index = position of the wnid among the sorted ``train`` sub-folders. ``val`` is ``test``; our ``val``
    holds out min(10,000, 10%) training images by a fixed permutation. Training augmentation is
    RandomResizedCrop(size) + horizontal flip; evaluation is Resize(size * 256/224) + CenterCrop(size), with
    ``size`` = ``image_size`` (default 224). Images are decoded per item (in loader workers) unless ``cache`` is
    set. ``download`` is not supported: with the files absent it is an error saying what to place where, with
    them present a warning.

    Options:
        cache: Folder for a uint8 cache (``cache.py``), built on first use by decoding every image once and read
            by memory map afterwards. It stores each image resized like the evaluation transform (shorter side
            size * 256/224) and centre-cropped to a square of side ``size + 2 * ((resize - size) // 2)`` (256 for
            224, about 1.14x). Evaluation pixels equal the decode path's exactly; training draws
            RandomResizedCrop(size) + flip from that stored square rather than from the full-resolution image.
            ~0.2 MB per image at 224 (ImageNet: about 260 GB). None or "" for none.

    Raises:
        DataRootError: ``root`` is missing or does not hold the layout above, a class folder has no images, or (as
            ``DataFileError``) an image file is empty or not an image, or (when building the cache) undecodable.
        ConfigError: An unknown option, a bad or stale ``cache``, or a non-positive ``image_size``.
    """
    import torchvision.transforms as T

    name = "imagenet"
    opts = check_options(name, options, OPTION_DEFAULTS)
    cache = cache_dir(opts["cache"])
    size = resolve_image_size(name, image_size, 224)
    if download:
        _no_download(name, root, ["train", "val"], IMAGENET_HOW)
    base = _root(name, root, IMAGENET_HOW)
    train_dir = _require_dir(name, os.path.join(base, "train"), IMAGENET_HOW)
    val_dir = _require_dir(name, os.path.join(base, "val"), IMAGENET_HOW)
    classes = list_dirs(train_dir)
    if not classes:
        raise DataRootError(name, train_dir, f"no class folders found; {IMAGENET_HOW}")
    index = {w: i for i, w in enumerate(classes)}

    def scan(split: str, wnids: list[str]) -> tuple[list[str], list[int]]:
        paths, labels = [], []
        for w in wnids:
            names = _class_images(name, os.path.join(base, split, w), w,
                                  "put its images there or remove the folder")
            paths += [os.path.join(split, w, n) for n in names]
            labels += [index[w]] * len(names)
        return paths, labels

    val_classes = list_dirs(val_dir)
    unknown = [w for w in val_classes if w not in index]
    if not val_classes or unknown:
        problem = f"class folder {unknown[0]} is not in train" if unknown else "no class folders found"
        raise DataRootError(name, val_dir, f"{problem} (val images must be sorted into <wnid> folders); "
                                           f"{IMAGENET_HOW}")
    train_paths, train_labels = scan("train", classes)
    test_paths, test_labels = scan("val", val_classes)
    if len(train_paths) < 2 or not test_paths:
        raise DataRootError(name, base, f"too few images found; {IMAGENET_HOW}")

    info = DatasetInfo(name=name, num_classes=len(classes), in_chans=3, image_size=size,
                       mean=IMAGENET_MEAN, std=IMAGENET_STD)
    files = _Files(info, base, train_paths, train_labels, test_paths, test_labels,
                   holdout_count(len(train_paths), cap=10_000), IMAGENET_SPLIT_SEED, None)
    resize = round(size * 256 / 224)
    if cache is not None:
        side = size + 2 * ((resize - size) // 2)  # an even margin keeps the central crop exact
        npy, _ = files.cached(cache, partial(fit_square, resize=resize, side=side, inner=size), side,
                              {"resize": resize})
        train_tf = T.Compose([T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip()])
        return files.splits(lambda start, stop, paths, labels: CachedImageDataset(
            info, npy, start, paths, labels, train_transform=train_tf), augment)

    files.check()
    norm = _normalise(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), *norm])
    eval_tf = T.Compose([T.Resize(resize), T.CenterCrop(size), *norm])
    return files.splits(lambda start, stop, paths, labels: FileIndexedDataset(
        info, paths, labels, train_transform=train_tf, eval_transform=eval_tf), augment)
