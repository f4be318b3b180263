"""``ticketbench fake-data``: small generated replicas of CIFAR-10/100, Tiny-ImageNet and ImageNet, each in its real
on-disk format and resolution, laid out as ``config/paper.yaml``'s ``data_roots`` expect them under one folder.

The paper grid in miniature (``make paper-mini``) runs on them; a lab runs them first on its cluster to find a broken
set-up (paths, GPUs, SLURM requests) in minutes instead of after hours of GPU time. Images are learnable but not
natural: each class has its own colour field and pattern, each image its own noise, so accuracy moves above chance
within a few epochs and the early-stop, matching and claim code sees numbers that change.
"""

from __future__ import annotations

import argparse
import io
import pickle
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import storage
from ..errors import ConfigError
from ..hparams import SEED_MAX
from ..stage import STAGES, Stage

FORMATS = ("cifar10", "cifar100", "tiny-imagenet", "imagenet")
# Where each replica goes under --out: the folders the readers look for, with config/paper.yaml's data roots
# (cifar10, cifar100, tiny-imagenet: <root>; imagenet: <root>/imagenet).
LAYOUT = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "tiny-imagenet": "tiny-imagenet-200",
          "imagenet": "imagenet"}
MARKER = ".ticketbench-fake-data"
PER_CLASS_MAX = 1000


@dataclass(frozen=True)
class Sizes:
    """Images per class in the training and the official test (val) split; classes for the wnid datasets."""

    train: int
    test: int
    classes: int


# Sized for the miniature on 2 CPU cores: a few batches per epoch of the paper networks at each format's resolution
# (ResNet-50 at 224x224 costs 100x a CIFAR ResNet-20 at 32x32 per image, so ImageNet gets the fewest).
DEFAULT_SIZES = {"cifar10": Sizes(train=4, test=1, classes=10), "cifar100": Sizes(train=1, test=1, classes=100),
                 "tiny-imagenet": Sizes(train=2, test=1, classes=4), "imagenet": Sizes(train=3, test=1, classes=3)}


def _class_pattern(rng: np.random.RandomState, side: int) -> np.ndarray:
    """A class's look: a colour field with a low-frequency pattern, float32 [3, side, side] in 0..255."""
    colour = rng.uniform(40, 215, size=(3, 1, 1))
    coarse = rng.uniform(-60, 60, size=(3, 4, 4))
    pattern = np.kron(coarse, np.ones((1, -(-side // 4), -(-side // 4))))[:, :side, :side]
    return (colour + pattern).astype(np.float32)


def _images(rng: np.random.RandomState, pattern: np.ndarray, n: int) -> np.ndarray:
    """``n`` uint8 images [n, 3, H, W]: the class pattern, shifted in brightness, with per-pixel noise."""
    shift = rng.uniform(-20, 20, size=(n, 1, 1, 1))
    noise = rng.normal(0, 25, size=(n, *pattern.shape))
    return np.clip(pattern[None] + shift + noise, 0, 255).astype(np.uint8)


def _pickle(path: Path, obj: dict) -> None:
    # Protocol 2 and bytes keys, as the python-2 pickles of the original archives.
    storage.write_bytes(path, pickle.dumps(obj, protocol=2))


def _jpeg(path: Path, chw: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0))).save(buf, format="JPEG", quality=90)
    storage.write_bytes(path, buf.getvalue())


def _cifar(out: Path, hundred: bool, sizes: Sizes, seed: int) -> int:
    """The python-pickle batches: data [N, 3072] uint8 (R, G, B planes of 32x32), labels as a list."""
    rng = np.random.RandomState(seed + (100 if hundred else 10))
    classes = 100 if hundred else 10  # the format's, whatever sizes.classes says
    patterns = [_class_pattern(rng, 32) for _ in range(classes)]

    def split(per_class: int) -> tuple[np.ndarray, list[int]]:
        labels = [c for _ in range(per_class) for c in range(classes)]  # classes interleaved, as a shuffled set
        order = rng.permutation(len(labels))
        labels = [labels[i] for i in order]
        data = np.concatenate([_images(rng, patterns[c], 1) for c in labels]) if labels else np.zeros((0, 3, 32, 32))
        return data.reshape(len(labels), 3072).astype(np.uint8), labels

    train, train_labels = split(sizes.train)
    test, test_labels = split(sizes.test)
    if hundred:
        folder = out / LAYOUT["cifar100"]
        _pickle(folder / "train", {b"filenames": [f"train_{k}.png".encode() for k in range(len(train_labels))],
                                   b"fine_labels": train_labels, b"coarse_labels": [c // 5 for c in train_labels],
                                   b"data": train})
        _pickle(folder / "test", {b"filenames": [f"test_{k}.png".encode() for k in range(len(test_labels))],
                                  b"fine_labels": test_labels, b"coarse_labels": [c // 5 for c in test_labels],
                                  b"data": test})
        _pickle(folder / "meta", {b"fine_label_names": [f"class{c}".encode() for c in range(100)],
                                  b"coarse_label_names": [f"super{c}".encode() for c in range(20)]})
        return len(train_labels) + len(test_labels)
    folder = out / LAYOUT["cifar10"]
    parts = np.array_split(np.arange(len(train_labels)), 5)
    for b, part in enumerate(parts, 1):
        _pickle(folder / f"data_batch_{b}", {b"batch_label": f"training batch {b} of 5".encode(),
                                             b"labels": [train_labels[i] for i in part], b"data": train[part]})
    _pickle(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1", b"labels": test_labels, b"data": test})
    _pickle(folder / "batches.meta", {b"label_names": [f"class{c}".encode() for c in range(10)],
                                      b"num_cases_per_batch": len(parts[0]), b"num_vis": 3072})
    return len(train_labels) + len(test_labels)


def _wnids(rng: np.random.RandomState, n: int) -> list[str]:
    # Real-looking, distinct and not in sorted order: the readers rank them.
    ids = rng.choice(np.arange(1_000_000, 9_999_999), size=n, replace=False)
    return [f"n0{i}" for i in ids]


def _tiny(out: Path, sizes: Sizes, seed: int) -> int:
    """tiny-imagenet-200: wnids.txt, words.txt, train/<wnid>/images/*.JPEG with <wnid>_boxes.txt, val/images with
    val/val_annotations.txt, test/images; 64x64 JPEGs."""
    rng = np.random.RandomState(seed + 200)
    base = out / LAYOUT["tiny-imagenet"]
    wnids = _wnids(rng, sizes.classes)
    storage.write_bytes(base / "wnids.txt", "".join(f"{w}\n" for w in wnids).encode())
    storage.write_bytes(base / "words.txt", "".join(f"{w}\tfake class {k}\n" for k, w in enumerate(wnids)).encode())
    count = 0
    annotations = []
    for w in wnids:
        pattern = _class_pattern(rng, 64)
        boxes = []
        for k, img in enumerate(_images(rng, pattern, sizes.train)):
            _jpeg(base / "train" / w / "images" / f"{w}_{k}.JPEG", img)
            boxes.append(f"{w}_{k}.JPEG\t0\t0\t63\t63\n")
        storage.write_bytes(base / "train" / w / f"{w}_boxes.txt", "".join(boxes).encode())
        for img in _images(rng, pattern, sizes.test):
            name = f"val_{len(annotations)}.JPEG"
            _jpeg(base / "val" / "images" / name, img)
            annotations.append(f"{name}\t{w}\t0\t0\t63\t63\n")
        count += sizes.train + sizes.test
    storage.write_bytes(base / "val" / "val_annotations.txt", "".join(annotations).encode())
    _jpeg(base / "test" / "images" / "test_0.JPEG", _images(rng, _class_pattern(rng, 64), 1)[0])  # unlabelled
    return count + 1


def _imagenet(out: Path, sizes: Sizes, seed: int) -> int:
    """ILSVRC-2012 as the readers take it: train/<wnid>/<wnid>_<k>.JPEG and val/<wnid>/ILSVRC2012_val_*.JPEG, of
    varied sizes around the 224x224 the readers crop (short side 224 to 320, as photos are larger than the crop)."""
    rng = np.random.RandomState(seed + 1000)
    base = out / LAYOUT["imagenet"]
    count = 0
    for w in _wnids(rng, sizes.classes):
        for split, n in (("train", sizes.train), ("val", sizes.test)):
            for k in range(n):
                h, wd = (int(v) for v in rng.randint(224, 321, size=2))
                img = _images(rng, _class_pattern_for(w, seed, max(h, wd)), 1)[0][:, :h, :wd]
                name = f"{w}_{k}.JPEG" if split == "train" else f"ILSVRC2012_val_{count + 1:08d}.JPEG"
                _jpeg(base / split / w / name, img)
                count += 1
    return count


def _class_pattern_for(wnid: str, seed: int, side: int) -> np.ndarray:
    """The same look for a class at any size: seeded by the class, so every image of it shares the pattern."""
    return _class_pattern(np.random.RandomState((seed * 7919 + int(wnid[1:])) % (2 ** 31)), side)


WRITERS = {"cifar10": lambda out, s, seed: _cifar(out, False, s, seed),
           "cifar100": lambda out, s, seed: _cifar(out, True, s, seed),
           "tiny-imagenet": _tiny, "imagenet": _imagenet}


def make_fake_data(out: str | Path, formats: list[str] | tuple[str, ...] = FORMATS, seed: int = 0,
                   **sizes: int | None) -> dict[str, int]:
    """Write the replicas of ``formats`` under ``out``; returns the number of images written per format.

    ``sizes`` (train, test, classes), where given, replace every format's DEFAULT_SIZES entry (CIFAR keeps its
    class count, which the format fixes).

    A replica already there is replaced whole, and only in a folder this command made (it leaves a marker file), so
    that pointing ``--out`` at a real data root can never overwrite the real files.
    """
    out = Path(out)
    for name in formats:
        if name not in WRITERS:
            raise ConfigError("--datasets", name, f"one of {', '.join(FORMATS)}")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError("--out", str(out), f"an empty or new folder, or one that fake-data made (it holds {MARKER}):"
                          " the replicas never go beside real datasets")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("generated by `ticketbench fake-data`; not real data\n")
    written = {}
    for name in formats:
        shutil.rmtree(out / LAYOUT[name], ignore_errors=True)
        given = {k: v for k, v in sizes.items() if v is not None}
        written[name] = WRITERS[name](out, replace(DEFAULT_SIZES[name], **given), seed)
    return written


def _per_class(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer from 1 to {PER_CLASS_MAX}, got {text!r}") from None
    if not 1 <= value <= PER_CLASS_MAX:
        raise argparse.ArgumentTypeError(f"an integer from 1 to {PER_CLASS_MAX}, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"an integer from 0 to {SEED_MAX}, got {text!r}")
    return value


@STAGES.register("fake-data")
class FakeData(Stage):
    name = "fake-data"
    help = ("write small generated replicas of CIFAR-10/100, Tiny-ImageNet and ImageNet in their real on-disk formats "
            "(the paper grid in miniature runs on them; a lab checks its cluster set-up with them)")

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True, metavar="DIR",
                            help="data root to write: cifar-10-batches-py, cifar-100-python and tiny-imagenet-200 in "
                            "it, ImageNet in DIR/imagenet (config/paper.yaml's data_roots layout)")
        parser.add_argument("--datasets", default=",".join(FORMATS), metavar="LIST",
                            help=f"comma-separated, from {', '.join(FORMATS)} (default: all)")
        defaults = "; ".join(f"{n} {s.train}/{s.test}/{s.classes}" for n, s in DEFAULT_SIZES.items())
        parser.add_argument("--train-per-class", type=_per_class, metavar="N",
                            help="training images per class, for every format (default, as train/test/classes: "
                            f"{defaults})")
        parser.add_argument("--test-per-class", type=_per_class, metavar="N",
                            help="official test (val) images per class, for every format")
        parser.add_argument("--classes", type=_per_class, metavar="N",
                            help="classes of the Tiny-ImageNet and ImageNet replicas (CIFAR's are fixed by the format)")
        parser.add_argument("--seed", type=_seed, default=0, help="seed of the generated images (default: 0)")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        formats = [f.strip() for f in args.datasets.split(",") if f.strip()]
        written = make_fake_data(args.out, formats, args.seed, train=args.train_per_class, test=args.test_per_class,
                                 classes=args.classes)
        for name, n in written.items():
            print(f"{name}: {n} images -> {Path(args.out) / LAYOUT[name]}")
        return 0
