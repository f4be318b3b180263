"""``tiny-imagenet`` and ``imagenet``: folder-layout datasets decoded lazily from JPEG files.

For both, the official validation images are our ``test`` split, and our ``val`` split is held out of the
official training images by a permutation with a constant seed, so it is the same for every run.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import DataRootError
from .base import (DATASETS, DatasetInfo, Splits, check_options, holdout_count, holdout_split, make_splits,
                   resolve_image_size)
from .files import IMAGE_EXTENSIONS, FileIndexedDataset, PathTable, check_image_files, list_dirs, list_images

TINY_MEAN = (0.4802, 0.4481, 0.3975)
TINY_STD = (0.2302, 0.2265, 0.2262)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Constant seeds: the train/val split is a property of the benchmark, not of a run.
TINY_SPLIT_SEED = 200
IMAGENET_SPLIT_SEED = 1000

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


def _file_splits(info: DatasetInfo, base: str, train_paths: list[str], train_labels: list[int],
                 test_paths: list[str], test_labels: list[int], n_val: int, seed: int, transforms: tuple,
                 augment: bool, missing_how: str | None = None) -> Splits:
    """Check every file, hold ``n_val`` permuted training files out as val and wrap all three sets lazily."""
    # All of train, val and test, now: a bad test image must not surface only after hours of training.
    check_image_files(info.name, [os.path.join(base, p) for p in (*train_paths, *test_paths)],
                      missing_how=missing_how)
    train_tf, eval_tf = transforms
    labels = np.asarray(train_labels, dtype=np.int64)
    train_idx, val_idx = holdout_split(len(train_paths), n_val, seed)

    def file_set(paths: list[str], targets) -> FileIndexedDataset:
        return FileIndexedDataset(info, PathTable(base, paths), np.asarray(targets, dtype=np.int64),
                                  train_transform=train_tf, eval_transform=eval_tf)

    train = file_set([train_paths[i] for i in train_idx], labels[train_idx])
    val = file_set([train_paths[i] for i in val_idx], labels[val_idx])
    return make_splits(info, train, val, file_set(test_paths, test_labels), augment)


def _normalise(mean, std):
    import torchvision.transforms as T

    return [T.ToTensor(), T.Normalize(mean, std)]


@DATASETS.register("tiny-imagenet")
def build_tiny_imagenet(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                        **options) -> Splits:
    """Build Tiny ImageNet from the standard ``<root>/tiny-imagenet-200`` layout.

    Reads ``wnids.txt``, ``train/<wnid>/images/*.JPEG`` and ``val/images`` with ``val/val_annotations.txt``.
    Class index = position of the wnid in ``sorted(wnids)``. The official val set is ``test``; 10% of the
    training images (fixed permutation) are ``val``. Images are 64x64; augmentation is random crop 64 with
    padding 4 and horizontal flip. ``download`` is not supported (the archive has no stable mirror): with the
    files absent it is an error saying what to place where, with them present a warning.

    Raises:
        DataRootError: ``root`` is missing or does not hold the layout above, a class has no images, or (as
            ``DataFileError``) an image file is missing, empty or not an image.
        ConfigError: Any option, or an ``image_size`` other than 64.
    """
    import torchvision.transforms as T

    name = "tiny-imagenet"
    check_options(name, options, {})
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
    norm = _normalise(TINY_MEAN, TINY_STD)
    transforms = (T.Compose([T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), *norm]), T.Compose(norm))
    missing_how = "val/val_annotations.txt lists it; restore it from tiny-imagenet-200.zip"
    return _file_splits(info, base, train_paths, train_labels, test_paths, test_labels,
                        holdout_count(len(train_paths)), TINY_SPLIT_SEED, transforms, augment, missing_how)


@DATASETS.register("imagenet")
def build_imagenet(*, root=None, download: bool = False, augment: bool = True, image_size: int | None = None,
                   **options) -> Splits:
    """Build ImageNet from ImageFolder-style ``<root>/train/<wnid>/*`` and ``<root>/val/<wnid>/*``.

    Class index = position of the wnid among the sorted ``train`` sub-folders. ``val`` is ``test``; our ``val``
    holds out min(10,000, 10%) training images by a fixed permutation. Training augmentation is
    RandomResizedCrop(size) + horizontal flip; evaluation is Resize(size * 256/224) + CenterCrop(size), with
    ``size`` = ``image_size`` (default 224). ``download`` is not supported: with the files absent it is an error
    saying what to place where, with them present a warning.

    Raises:
        DataRootError: ``root`` is missing or does not hold the layout above, a class folder has no images, or (as
            ``DataFileError``) an image file is empty or not an image.
        ConfigError: Any option, or a non-positive ``image_size``.
    """
    import torchvision.transforms as T

    name = "imagenet"
    check_options(name, options, {})
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
    norm = _normalise(IMAGENET_MEAN, IMAGENET_STD)
    transforms = (T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), *norm]),
                  T.Compose([T.Resize(round(size * 256 / 224)), T.CenterCrop(size), *norm]))
    return _file_splits(info, base, train_paths, train_labels, test_paths, test_labels,
                        holdout_count(len(train_paths), cap=10_000), IMAGENET_SPLIT_SEED, transforms, augment)
