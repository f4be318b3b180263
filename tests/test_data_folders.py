"""Folder datasets: Tiny ImageNet held in memory as uint8, and the uint8 cache for ImageNet-scale folders."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from test_data import _fake_imagenet, _fake_tiny
from ticketbench.cli import main
from ticketbench.data import cache as cache_mod
from ticketbench.data import folders, load_splits, make_loader
from ticketbench.data.base import holdout_count, holdout_split
from ticketbench.data.files import list_images, read_rgb
from ticketbench.data.inmemory import TensorIndexedDataset
from ticketbench.errors import ConfigError, DataFileError


def _noise(path, size, seed):
    """A JPEG of random pixels: every crop offset or resize error shows in the pixels."""
    pixels = np.random.RandomState(seed).randint(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def _all_files(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".JPEG"))


@pytest.fixture
def tiny(tmp_path):
    base = _fake_tiny(str(tmp_path))
    for k, path in enumerate(_all_files(base)):
        _noise(path, (64, 64), k)
    return base, str(tmp_path)


@pytest.fixture
def imagenet(tmp_path):
    root = str(tmp_path / "data")
    _fake_imagenet(root)
    # Odd and even sizes, portrait and landscape, so that crop rounding is exercised on both axes.
    sizes = [(41, 29), (30, 47), (77, 52), (52, 77), (33, 33), (64, 45), (45, 64), (90, 61)]
    for k, path in enumerate(_all_files(root)):
        _noise(path, sizes[k % len(sizes)], k)
    return root


def _one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message, message
    return message


# --- Tiny ImageNet in memory ------------------------------------------------------------------------------------

def test_tiny_imagenet_is_one_uint8_tensor_in_memory(tiny):
    _, root = tiny
    splits = load_splits("tiny-imagenet", root=root)
    stores = [s._images for s in (splits.train, splits.val, splits.test)]
    assert all(isinstance(s, TensorIndexedDataset) for s in (splits.train, splits.val, splits.test))
    assert [tuple(x.shape) for x in stores] == [(11, 3, 64, 64), (1, 3, 64, 64), (3, 3, 64, 64)]
    assert all(x.dtype == torch.uint8 for x in stores)
    # Slices of one decoded array, not copies.
    assert len({x.untyped_storage().data_ptr() for x in stores}) == 1
    assert splits.train_eval._images is splits.train._images


def test_tiny_imagenet_matches_the_lazy_path(tiny):
    # Same ids, files, labels and evaluation tensors as the decode-per-item loader it replaces: the official
    # val set is test, val is held out of the sorted train files by the constant-seed permutation.
    base, root = tiny
    splits = load_splits("tiny-imagenet", root=root)
    wnids = sorted(["n0300", "n0100", "n0200"])
    train = [(os.path.join(base, "train", w, "images", f), c) for c, w in enumerate(wnids)
             for f in list_images(os.path.join(base, "train", w, "images"))]
    train_idx, val_idx = holdout_split(len(train), holdout_count(len(train)), folders.TINY_SPLIT_SEED)
    with open(os.path.join(base, "val", "val_annotations.txt")) as f:
        test = [(os.path.join(base, "val", "images", line.split("\t")[0]), wnids.index(line.split("\t")[1]))
                for line in f]
    old_eval = T.Compose([T.ToTensor(), T.Normalize(folders.TINY_MEAN, folders.TINY_STD)])
    for view, expected in [(splits.train_eval, [train[i] for i in train_idx]),
                           (splits.val, [train[i] for i in val_idx]), (splits.test, test)]:
        assert [view.path(i) for i in range(len(view))] == [p for p, _ in expected]
        for i, (path, label) in enumerate(expected):
            x, y, sid = view[i]
            assert (y, sid) == (label, i)
            torch.testing.assert_close(x, old_eval(Image.open(path).convert("RGB")), rtol=0, atol=1e-6)


def test_tiny_imagenet_augments_by_crop_pad_4_and_flip(tiny):
    _, root = tiny
    splits = load_splits("tiny-imagenet", root=root)
    clean = splits.train_eval[0][0]
    fill = -torch.tensor(folders.TINY_MEAN).view(3, 1, 1) / torch.tensor(folders.TINY_STD).view(3, 1, 1)
    padded = fill.expand(3, 72, 72).clone()
    padded[:, 4:68, 4:68] = clean
    crops = {(dy, dx): padded[:, 4 + dy:68 + dy, 4 + dx:68 + dx] for dy in range(-4, 5) for dx in range(-4, 5)}
    views = {(dy, dx, flip): x.flip(-1) if flip else x for (dy, dx), x in crops.items() for flip in (False, True)}
    torch.manual_seed(0)
    seen = set()
    for _ in range(60):
        x = splits.train[0][0]
        match = [k for k, v in views.items() if torch.allclose(x, v, atol=1e-6)]
        assert match, "not a crop of the 4-padded image, nor its mirror"
        seen.add(match[0])
    assert max(max(abs(dy), abs(dx)) for dy, dx, _ in seen) == 4 and {f for _, _, f in seen} == {False, True}


# --- the uint8 cache --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [224, 48])  # 48: an odd margin (3), where rounding bites
def test_cache_gives_the_decode_paths_evaluation_pixels(imagenet, tmp_path, size):
    cache = str(tmp_path / "cache")
    lazy = load_splits("imagenet", root=imagenet, image_size=size)
    cached = load_splits("imagenet", root=imagenet, image_size=size, cache=cache)
    resize = round(size * 256 / 224)
    geometry = T.Compose([T.Resize(resize), T.CenterCrop(size), T.PILToTensor()])
    for name in ("train_eval", "val", "test"):
        a, b = getattr(lazy, name), getattr(cached, name)
        assert b.targets.tolist() == a.targets.tolist() and b.ids.tolist() == a.ids.tolist()
        for i in range(len(a)):
            assert b.path(i) == a.path(i)
            assert torch.equal(b.pixels(i), geometry(read_rgb("imagenet", a.path(i))))  # uint8, exactly
            torch.testing.assert_close(b[i][0], a[i][0], rtol=0, atol=1e-6)
    torch.manual_seed(0)
    assert cached.train[0][0].shape == (3, size, size) and cached.train[0][0].dtype == torch.float32
    side = size + 2 * ((resize - size) // 2)
    stored = np.load(os.path.join(cache, f"imagenet-{size}px.npy"), mmap_mode="r")
    assert stored.shape == (8, 3, side, side) and stored.dtype == np.uint8
    record = json.load(open(os.path.join(cache, f"imagenet-{size}px.json")))
    assert record["count"] == 8 and record["stored_size"] == side and record["resize"] == resize
    assert sorted(os.listdir(cache)) == [f"imagenet-{size}px.json", f"imagenet-{size}px.npy"]  # no temp files


def test_cache_is_reused_without_decoding_or_checking(imagenet, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first = load_splits("imagenet", root=imagenet, image_size=32, cache=cache)

    def forbidden(*args, **kwargs):
        raise AssertionError("the cache was rebuilt or the files were checked")

    monkeypatch.setattr(cache_mod, "decode_images", forbidden)
    monkeypatch.setattr(folders, "check_image_files", forbidden)
    again = load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    assert all(torch.equal(again.test.pixels(i), first.test.pixels(i)) for i in range(len(first.test)))
    with pytest.raises(AssertionError):  # another size is another cache file
        load_splits("imagenet", root=imagenet, image_size=40, cache=cache)


def test_stale_cache_is_refused_in_one_line(imagenet, tmp_path):
    cache = str(tmp_path / "cache")
    load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    _noise(os.path.join(imagenet, "train", "n001", "n001_9.JPEG"), (40, 40), 99)
    with pytest.raises(ConfigError) as err:
        load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    message = _one_line(err.value)
    npy = os.path.join(cache, "imagenet-32px.npy")
    assert message.startswith(f"cache={cache!r} is not allowed; {npy} is stale")
    assert "holds 8 images, the folder now has 9" in message and "delete it" in message
    os.remove(os.path.join(imagenet, "train", "n001", "n001_9.JPEG"))
    os.rename(os.path.join(imagenet, "train", "n001", "n001_2.JPEG"),
              os.path.join(imagenet, "train", "n001", "n001_7.JPEG"))
    with pytest.raises(ConfigError, match="other files"):
        load_splits("imagenet", root=imagenet, image_size=32, cache=cache)


def test_cache_with_a_missing_or_truncated_array_is_rebuilt(imagenet, tmp_path):
    cache = str(tmp_path / "cache")
    first = load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    npy = os.path.join(cache, "imagenet-32px.npy")
    expected = np.load(npy)
    with open(npy, "r+b") as f:
        f.truncate(os.path.getsize(npy) // 2)
    again = load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    assert np.array_equal(np.load(npy), expected) and torch.equal(again.val.pixels(0), first.val.pixels(0))


def test_cache_build_stops_at_an_undecodable_image_and_leaves_nothing(imagenet, tmp_path):
    path = os.path.join(imagenet, "val", "n001", "val_1.JPEG")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])  # the header passes the check, the body does not decode
    cache = str(tmp_path / "cache")
    with pytest.raises(DataFileError) as err:
        load_splits("imagenet", root=imagenet, image_size=32, cache=cache)
    assert err.value.path == path and "decode" in _one_line(err.value)
    assert os.listdir(cache) == []


def test_cache_build_checks_the_files_first(imagenet, tmp_path):
    path = os.path.join(imagenet, "train", "n002", "n002_1.JPEG")
    open(path, "wb").close()
    with pytest.raises(DataFileError) as err:
        load_splits("imagenet", root=imagenet, image_size=32, cache=str(tmp_path / "cache"))
    assert err.value.path == path and "0 bytes" in _one_line(err.value)


def test_cache_needs_the_space_up_front(imagenet, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(ConfigError, match=r"needs 0\.0 GB, 0\.0 GB are free") as err:
        load_splits("imagenet", root=imagenet, image_size=32, cache=str(tmp_path / "cache"))
    _one_line(err.value)


def test_cached_dataset_maps_the_file_in_each_worker(imagenet, tmp_path):
    splits = load_splits("imagenet", root=imagenet, image_size=32, cache=str(tmp_path / "cache"))
    test = splits.test
    test[0]  # maps the file in this process
    assert len(pickle.dumps(test)) < 4000  # the mapping is not shipped to workers
    batches = [torch.cat([x for x, _, _ in make_loader(test, 1, shuffle=False, workers=w)]) for w in (0, 2)]
    assert torch.equal(*batches)


def test_tiny_imagenet_cache_gives_the_same_tensors(tiny, tmp_path, monkeypatch):
    _, root = tiny
    cache = str(tmp_path / "cache")
    plain = load_splits("tiny-imagenet", root=root)
    built = load_splits("tiny-imagenet", root=root, cache=cache)
    monkeypatch.setattr(cache_mod, "decode_images", None)  # a second load reads the cache only
    reused = load_splits("tiny-imagenet", root=root, cache=cache)
    for splits in (built, reused):
        for name in ("train", "val", "test"):
            a, b = getattr(plain, name), getattr(splits, name)
            assert b._images.dtype == torch.uint8 and torch.equal(a._images, b._images)
            assert [b.path(i) for i in range(len(b))] == [a.path(i) for i in range(len(a))]
    assert os.path.isfile(os.path.join(cache, "tiny-imagenet-64px.npy"))


# --- bad input --------------------------------------------------------------------------------------------------

def test_bad_cache_values_are_one_line(imagenet, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for value, allowed in [(5, "a folder path"), (str(a_file), "a folder that can be created")]:
        with pytest.raises(ConfigError) as err:
            load_splits("imagenet", root=imagenet, cache=value)
        assert _one_line(err.value).startswith(f"cache={value!r} is not allowed; {allowed}")
    with pytest.raises(ConfigError, match=r"^colour=1 is not allowed; dataset 'imagenet' accepts these options: "
                                          r"cache$"):
        load_splits("imagenet", root=imagenet, colour=1)
    with pytest.raises(ConfigError, match=r"^cache='x' is not allowed; dataset 'synthetic' accepts these options"):
        load_splits("synthetic", cache="x")


def test_cli_cache_flag(tmp_path, capsys):
    root = str(tmp_path / "data")
    _fake_imagenet(root)
    out, cache = str(tmp_path / "run"), str(tmp_path / "cache")
    args = ["pretrain", "--dataset", "imagenet", "--data-root", root, "--image-size", "32", "--epochs", "1",
            "--no-progress", "--workers", "0", "--cache", cache, "--out", out]
    assert main(args) == 0, capsys.readouterr().err
    assert os.path.isfile(os.path.join(cache, "imagenet-32px.npy"))
    code = main(["pretrain", "--dataset", "synthetic", "--epochs", "1", "--no-progress", "--cache", cache,
                 "--out", str(tmp_path / "run2")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cache=" in err and "'synthetic'" in err, err
