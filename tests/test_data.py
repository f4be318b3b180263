"""Tests of ticketbench.data: splits, stable ids, augmentation, loaders and file-backed datasets on fake folders."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ticketbench.data import (DATASETS, DatasetInfo, IndexedDataset, Splits, dataset_names, load_splits,
                              make_loader)
from ticketbench.data.digits import DIGITS_MEAN, DIGITS_STD, digits_split_indices
from ticketbench.errors import ConfigError, DataRootError

FILE_DATASETS = ["cifar10", "cifar100", "tiny-imagenet", "imagenet"]


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_splits("digits")


@pytest.fixture(scope="module")
def synthetic() -> Splits:
    return load_splits("synthetic")


def _stack(ds: IndexedDataset, n: int | None = None) -> tuple[torch.Tensor, list[int], list[int]]:
    items = [ds[i] for i in range(len(ds) if n is None else n)]
    return torch.stack([x for x, _, _ in items]), [y for _, y, _ in items], [i for _, _, i in items]


def _shift(img: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """out[y, x] = img[y + dy, x + dx], ``fill`` outside."""
    _, h, w = img.shape
    padded = F.pad(img, (2, 2, 2, 2), value=fill)
    return padded[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


# --- registry and options ---------------------------------------------------------------------------------------

def test_dataset_names_lists_all_builtins():
    assert set(dataset_names()) >= {"digits", "synthetic", "cifar10", "cifar100", "tiny-imagenet", "imagenet"}
    assert dataset_names() == DATASETS.names()


def test_unknown_dataset_is_config_error():
    with pytest.raises(ConfigError, match="digits"):
        load_splits("digitz")


def test_unknown_option_names_key_and_allowed():
    with pytest.raises(ConfigError, match="bogus") as err:
        load_splits("synthetic", bogus=3)
    assert "n_train" in str(err.value)
    with pytest.raises(ConfigError, match="bogus"):
        load_splits("digits", bogus=3)
    with pytest.raises(ConfigError, match="n_train"):
        load_splits("synthetic", n_train=0)


@pytest.mark.parametrize("name, size", [("cifar10", 64), ("cifar100", 16), ("tiny-imagenet", 32)])
def test_fixed_size_datasets_reject_image_size(name, size, tmp_path):
    with pytest.raises(ConfigError, match="image_size"):
        load_splits(name, root=str(tmp_path), image_size=size)


# --- digits -----------------------------------------------------------------------------------------------------

def test_digits_split_sizes_and_info(digits):
    assert (len(digits.train), len(digits.train_eval), len(digits.val), len(digits.test)) == (1259, 1259, 179, 359)
    assert (digits.train.base_size, digits.val.base_size, digits.test.base_size) == (1259, 179, 359)
    assert digits.info == DatasetInfo("digits", 10, 3, 32, (DIGITS_MEAN,) * 3, (DIGITS_STD,) * 3)
    assert digits.train.augment and not digits.train_eval.augment
    assert not digits.val.augment and not digits.test.augment
    assert not load_splits("digits", augment=False).train.augment


def test_digits_split_disjoint_complete_and_stratified():
    train, val, test = digits_split_indices()
    assert (len(train), len(val), len(test)) == (1259, 179, 359)
    everything = np.concatenate([train, val, test])
    assert len(np.unique(everything)) == 1797 and set(everything.tolist()) == set(range(1797))
    from sklearn.datasets import load_digits

    labels = load_digits().target
    for part, fraction in ((test, 0.2), (val, 0.1)):
        per_class = np.bincount(labels[part], minlength=10) / np.bincount(labels, minlength=10)
        assert np.allclose(per_class, fraction, atol=0.01)


def test_digits_split_ignores_global_seeds():
    torch.manual_seed(0)
    np.random.seed(0)
    first, a = digits_split_indices(), load_splits("digits")
    torch.manual_seed(12345)
    np.random.seed(999)
    second, b = digits_split_indices(), load_splits("digits")
    for x, y in zip(first, second):
        assert np.array_equal(x, y)
    assert torch.equal(a.test.targets, b.test.targets)
    assert torch.equal(_stack(a.val, 20)[0], _stack(b.val, 20)[0])


def test_digits_items_and_stable_ids(digits):
    x, y, i = digits.train[7]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert type(y) is int and type(i) is int and i == 7
    assert torch.equal(digits.test.ids, torch.arange(359)) and digits.test.ids.dtype == torch.long
    assert digits.train.targets.dtype == torch.long
    # Id k of each split is the k-th (sorted) sklearn index of that split: check against a hand-made pipeline.
    from sklearn.datasets import load_digits

    raw = load_digits().images
    for split, idx in zip((digits.train_eval, digits.val, digits.test), digits_split_indices()):
        for k in (0, len(idx) // 2, len(idx) - 1):
            src = torch.tensor(raw[idx[k]], dtype=torch.float32)[None, None] / 16
            expect = (F.interpolate(src, size=(32, 32), mode="bilinear", align_corners=False)[0] - DIGITS_MEAN)
            got, label, sid = split[k]
            assert sid == k and label == int(load_digits().target[idx[k]])
            assert torch.allclose(got, (expect / DIGITS_STD).expand(3, -1, -1), atol=1e-5)


def test_digits_normalisation_constants(digits):
    images, _, _ = _stack(digits.train_eval)
    assert torch.allclose(images.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-3)
    assert torch.allclose(images.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    assert torch.equal(images[:, 0], images[:, 2])  # grey replicated to 3 channels


def test_digits_augmentation_is_seeded_translation(digits):
    torch.manual_seed(3)
    aug_a, labels_a, ids_a = _stack(digits.train, 40)
    torch.manual_seed(3)
    aug_b, _, _ = _stack(digits.train, 40)
    clean, labels, ids = _stack(digits.train_eval, 40)
    assert torch.equal(aug_a, aug_b)
    assert labels_a == labels and ids_a == ids
    assert not torch.equal(aug_a, clean)
    assert torch.equal(clean, _stack(digits.train_eval, 40)[0])  # train_eval is never augmented
    background = -DIGITS_MEAN / DIGITS_STD
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for a, c in zip(aug_a, clean):
        # Every augmented image is a translation of the clean one (no flips, no other change).
        assert any(torch.allclose(a, _shift(c, dy, dx, background), atol=1e-5) for dy, dx in shifts)


def test_digits_image_size_override():
    splits = load_splits("digits", image_size=16)
    assert splits.info.image_size == 16 and splits.test[0][0].shape == (3, 16, 16)
    with pytest.raises(ConfigError, match="image_size"):
        load_splits("digits", image_size=0)


# --- IndexedDataset views ---------------------------------------------------------------------------------------

def test_subset_keeps_ids_targets_and_base_size(digits):
    sub = digits.train.subset([5, 2, 9])
    assert sub.ids.tolist() == [5, 2, 9] and len(sub) == 3 and sub.base_size == 1259
    assert sub.targets.tolist() == [digits.train_eval[k][1] for k in (5, 2, 9)]
    assert sub.augment and not digits.train_eval.subset([5]).augment
    x, y, i = sub.with_augment(False)[1]
    assert i == 2 and torch.equal(x, digits.train_eval[2][0]) and y == digits.train_eval[2][1]
    assert len(digits.train) == 1259  # the parent view is unchanged
    assert digits.test.subset(np.array([3, 1])).ids.tolist() == [3, 1]
    assert digits.test.subset(torch.tensor([4])).ids.tolist() == [4]
    assert len(digits.test.subset([])) == 0


def test_subset_rejects_foreign_or_repeated_ids(digits):
    sub = digits.train.subset([5, 2, 9])
    assert sub.subset([9]).ids.tolist() == [9]
    for bad in ([3], [-1], [1259], [5, 5]):
        with pytest.raises(ValueError):
            sub.subset(bad)
    with pytest.raises(ValueError):
        digits.val.subset([179])
    with pytest.raises(TypeError):
        digits.val.subset([1.0])


def test_with_augment_shares_samples(digits):
    view = digits.train_eval.with_augment(True)
    assert view.augment and not digits.train_eval.augment
    assert torch.equal(view.ids, digits.train_eval.ids) and torch.equal(view.targets, digits.train_eval.targets)


# --- loaders ----------------------------------------------------------------------------------------------------

def _epoch_ids(loader) -> list[int]:
    return [i for _, _, ids in loader for i in ids.tolist()]


def test_make_loader_order_is_seeded(synthetic):
    ds = synthetic.train_eval
    a, b, c = (make_loader(ds, 32, shuffle=True, seed=s) for s in (1, 1, 2))
    epochs_a = [_epoch_ids(a) for _ in range(2)]
    assert epochs_a == [_epoch_ids(b) for _ in range(2)]  # same seed, same sequence of epochs
    assert sorted(epochs_a[0]) == list(range(256))
    assert epochs_a[0] != epochs_a[1]  # each epoch reshuffles
    assert epochs_a[0] != _epoch_ids(c)
    assert _epoch_ids(make_loader(ds, 50, shuffle=False)) == list(range(256))


def test_make_loader_batches_carry_ids(synthetic):
    loader = make_loader(synthetic.val, 16, shuffle=True, seed=0, drop_last=True)
    images, labels, ids = next(iter(loader))
    assert images.shape == (16, 3, 16, 16) and images.dtype == torch.float32
    assert labels.dtype == torch.long and ids.dtype == torch.long
    assert torch.equal(labels, synthetic.val.targets[ids])
    assert len(make_loader(synthetic.val, 30, shuffle=False, drop_last=True)) == 2
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(synthetic.val, 0, shuffle=False)


class _RandomValues(IndexedDataset):
    """Each item reports one torch and one numpy random draw, to see how workers are seeded."""

    def __init__(self):
        super().__init__(DatasetInfo("rand", 2, 1, 1, (0.0,), (1.0,)), torch.zeros(8, dtype=torch.long))

    def _load(self, sid, augment):
        return torch.tensor([torch.rand(()).item(), np.random.rand()])


def test_make_loader_workers_are_seeded():
    def draws(seed):
        loader = make_loader(_RandomValues(), 4, shuffle=True, seed=seed, workers=1)
        return torch.cat([x for x, _, _ in loader])

    a, b, c = draws(5), draws(5), draws(6)
    assert torch.equal(a, b)
    # Both torch (seeded by DataLoader) and numpy (seeded by worker_init_fn) must follow the loader's seed.
    assert not torch.equal(a[:, 0], c[:, 0]) and not torch.equal(a[:, 1], c[:, 1])


# --- synthetic --------------------------------------------------------------------------------------------------

def test_synthetic_is_deterministic_and_sized(synthetic):
    torch.manual_seed(42)
    again = load_splits("synthetic")
    for name in ("train_eval", "val", "test"):
        x1, y1, _ = _stack(getattr(synthetic, name))
        x2, y2, _ = _stack(getattr(again, name))
        assert torch.equal(x1, x2) and y1 == y2
    assert (len(synthetic.train), len(synthetic.val), len(synthetic.test)) == (256, 64, 64)
    assert synthetic.info.num_classes == 10 and synthetic.test[0][0].shape == (3, 16, 16)
    small = load_splits("synthetic", n_train=40, n_val=8, n_test=12, num_classes=4, image_size=8)
    assert (len(small.train), len(small.val), len(small.test)) == (40, 8, 12)
    assert small.train[0][0].shape == (3, 8, 8) and set(small.train.targets.tolist()) == {0, 1, 2, 3}


def test_synthetic_is_learnable(synthetic):
    x, y, _ = _stack(synthetic.train_eval)
    y = torch.tensor(y)
    prototypes = torch.stack([x[y == c].mean(0) for c in range(10)]).flatten(1)
    xt, yt, _ = _stack(synthetic.test)
    predicted = torch.cdist(xt.flatten(1), prototypes).argmin(1)
    assert (predicted == torch.tensor(yt)).float().mean() > 0.8


# --- fake CIFAR -------------------------------------------------------------------------------------------------

def _write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _fake_cifar(root, hundred: bool):
    """20 training and 10 test images in the real python-pickle format; returns (train, test) (data, labels)."""
    rng = np.random.RandomState(0)
    train = rng.randint(0, 256, size=(20, 3072)).astype(np.uint8)
    test = rng.randint(0, 256, size=(10, 3072)).astype(np.uint8)
    n_classes = 100 if hundred else 10
    train_labels = [(7 * k) % n_classes for k in range(20)]
    test_labels = [(3 * k) % n_classes for k in range(10)]
    if hundred:
        folder = os.path.join(root, "cifar-100-python")
        os.makedirs(folder)
        _write_pickle(os.path.join(folder, "train"),
                      {b"data": train, b"fine_labels": train_labels, b"coarse_labels": [0] * 20})
        _write_pickle(os.path.join(folder, "test"), {b"data": test, b"fine_labels": test_labels})
    else:
        folder = os.path.join(root, "cifar-10-batches-py")
        os.makedirs(folder)
        for b in range(5):
            part = slice(4 * b, 4 * b + 4)
            _write_pickle(os.path.join(folder, f"data_batch_{b + 1}"),
                          {b"data": train[part], b"labels": train_labels[part]})
        _write_pickle(os.path.join(folder, "test_batch"), {b"data": test, b"labels": test_labels})
    return (train, train_labels), (test, test_labels)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_fake_folder(name, tmp_path):
    (train, train_labels), (test, test_labels) = _fake_cifar(str(tmp_path), hundred=name == "cifar100")
    splits = load_splits(name, root=str(tmp_path))
    info = splits.info
    assert info.name == name and info.image_size == 32 and info.num_classes == (100 if name == "cifar100" else 10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (18, 2, 10)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)

    def expected(row):
        return (torch.from_numpy(row.reshape(3, 32, 32)).float() / 255 - mean) / std

    # train = first 90% of the training set in file order, val = the last 10%, test = the test batch.
    cases = [(splits.train_eval, train, train_labels, 0), (splits.val, train, train_labels, 18),
             (splits.test, test, test_labels, 0)]
    for split, data, labels, offset in cases:
        for k in range(len(split)):
            x, y, i = split[k]
            assert i == k and y == labels[offset + k]
            assert torch.allclose(x, expected(data[offset + k]), atol=1e-5)
    torch.manual_seed(0)
    augmented, _, _ = _stack(splits.train)
    assert augmented.shape == (18, 3, 32, 32) and not torch.allclose(augmented, _stack(splits.train_eval)[0])


def test_cifar_incomplete_folder(tmp_path):
    _fake_cifar(str(tmp_path), hundred=False)
    os.remove(tmp_path / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(DataRootError, match="test_batch"):
        load_splits("cifar10", root=str(tmp_path))
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataRootError, match="test_batch"):
        load_splits("cifar10", root=str(tmp_path))


# --- fake Tiny ImageNet and ImageNet ----------------------------------------------------------------------------

COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230)]


def _jpeg(path, colour, size=(64, 64)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def _colour_class(x: torch.Tensor) -> int:
    """The class whose colour an (un-normalised-agnostic) image shows: its brightest channel."""
    return int(x.mean(dim=(1, 2)).argmax())


def _fake_tiny(root):
    base = os.path.join(root, "tiny-imagenet-200")
    wnids = ["n0300", "n0100", "n0200"]  # unsorted on purpose: class index = rank in sorted order
    os.makedirs(base)
    with open(os.path.join(base, "wnids.txt"), "w") as f:
        f.write("\n".join(wnids) + "\n")
    for w in wnids:
        for k in range(4):
            _jpeg(os.path.join(base, "train", w, "images", f"{w}_{k}.JPEG"), COLOURS[sorted(wnids).index(w)])
    annotations = [("val_0.JPEG", "n0200"), ("val_1.JPEG", "n0100"), ("val_2.JPEG", "n0300")]
    for fname, w in annotations:
        _jpeg(os.path.join(base, "val", "images", fname), COLOURS[sorted(wnids).index(w)])
    with open(os.path.join(base, "val", "val_annotations.txt"), "w") as f:
        f.writelines(f"{fname}\t{w}\t0\t0\t63\t63\n" for fname, w in annotations)
    return base


def test_tiny_imagenet_fake_folder(tmp_path):
    base = _fake_tiny(str(tmp_path))
    splits = load_splits("tiny-imagenet", root=str(tmp_path))
    assert splits.info.num_classes == 3 and splits.info.image_size == 64
    assert (len(splits.train), len(splits.val), len(splits.test)) == (11, 1, 3)
    files = {splits.train_eval.path(i) for i in range(11)} | {splits.val.path(0)}
    assert len(files) == 12 and all(os.path.relpath(p, base).startswith("train") for p in files)
    again = load_splits("tiny-imagenet", root=str(tmp_path))
    assert again.val.path(0) == splits.val.path(0)  # the held-out image is fixed
    for split in (splits.train_eval, splits.val, splits.test):
        x, labels, ids = _stack(split)
        assert x.shape[1:] == (3, 64, 64) and ids == list(range(len(split)))
        assert labels == [_colour_class(img) for img in x] == split.targets.tolist()
    assert [splits.test[k][1] for k in range(3)] == [1, 0, 2]
    torch.manual_seed(0)
    assert _stack(splits.train)[0].shape == (11, 3, 64, 64)


def test_tiny_imagenet_bad_annotation(tmp_path):
    base = _fake_tiny(str(tmp_path))
    with open(os.path.join(base, "val", "val_annotations.txt"), "a") as f:
        f.write("val_9.JPEG\tn9999\t0\t0\t1\t1\n")
    with pytest.raises(DataRootError, match="val_annotations.txt"):
        load_splits("tiny-imagenet", root=str(tmp_path))


def _fake_imagenet(root):
    for k, w in enumerate(["n002", "n001"]):
        colour = COLOURS[sorted(["n002", "n001"]).index(w)]
        for j in range(3):
            _jpeg(os.path.join(root, "train", w, f"{w}_{j}.JPEG"), colour, size=(40, 30))
        _jpeg(os.path.join(root, "val", w, f"val_{k}.JPEG"), colour, size=(30, 40))


def test_imagenet_fake_folder(tmp_path):
    _fake_imagenet(str(tmp_path))
    splits = load_splits("imagenet", root=str(tmp_path))
    assert splits.info.num_classes == 2 and splits.info.image_size == 224
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 1, 2)
    x, labels, _ = _stack(splits.test)
    assert x.shape == (2, 3, 224, 224) and labels == [0, 1] == [_colour_class(img) for img in x]
    x, labels, _ = _stack(splits.train_eval)
    assert labels == [_colour_class(img) for img in x] and sorted(set(labels)) == [0, 1]
    torch.manual_seed(0)
    assert _stack(splits.train)[0].shape == (5, 3, 224, 224)
    small = load_splits("imagenet", root=str(tmp_path), image_size=32)
    assert small.test[0][0].shape == (3, 32, 32) and small.train[0][0].shape == (3, 32, 32)


def test_imagenet_flat_val_folder(tmp_path):
    _fake_imagenet(str(tmp_path))
    for w in ("n001", "n002"):
        for f in os.listdir(tmp_path / "val" / w):
            os.rename(tmp_path / "val" / w / f, tmp_path / "val" / f)
        os.rmdir(tmp_path / "val" / w)
    with pytest.raises(DataRootError, match="wnid"):
        load_splits("imagenet", root=str(tmp_path))


# --- missing roots ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FILE_DATASETS)
@pytest.mark.parametrize("kind", ["none", "missing", "empty"])
def test_missing_root_is_one_clear_line(name, kind, tmp_path):
    root = {"none": None, "missing": str(tmp_path / "nowhere"), "empty": str(tmp_path)}[kind]
    with pytest.raises(DataRootError) as err:
        load_splits(name, root=root)
    message = str(err.value)
    assert "\n" not in message and f"dataset {name!r}" in message
    assert err.value.dataset == name
    if root is None:
        assert "no data root given" in message
    else:
        assert message.count(root) >= 1 and err.value.path.startswith(root)
    assert "--data-root" in message
