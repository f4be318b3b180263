"""Bad image data is one clear line, found before training: corrupt, empty or missing files, empty class folders,
``download`` without a network, and images that only fail when decoded (also inside DataLoader workers)."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image, ImageFile

from test_data import _fake_cifar, _fake_imagenet, _fake_tiny
from ticketbench.cli import main
from ticketbench.data import files, load_splits, make_loader
from ticketbench.errors import DataRootError, TicketbenchError


def _one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message, message
    return message


def _noise_jpeg(path, size=(64, 64)):
    """A JPEG of random pixels, so that its compressed data is far longer than its header."""
    pixels = np.random.RandomState(0).randint(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


def _truncate(path, keep: float = 0.5):
    """Cut a file to ``keep`` of its length: the header still identifies, the pixel data cannot be decoded."""
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


@pytest.fixture
def tiny(tmp_path):
    return _fake_tiny(str(tmp_path)), str(tmp_path)


@pytest.fixture
def imagenet(tmp_path):
    _fake_imagenet(str(tmp_path))
    return str(tmp_path)


# --- every file of every split is checked before training ---------------------------------------------------

TINY_FILES = [os.path.join("train", "n0200", "images", "n0200_3.JPEG"), os.path.join("val", "images", "val_1.JPEG")]
IMAGENET_FILES = [os.path.join("train", "n001", "n001_2.JPEG"), os.path.join("val", "n002", "val_0.JPEG")]
CASES = [("tiny-imagenet", os.path.join("tiny-imagenet-200", f)) for f in TINY_FILES] + \
        [("imagenet", f) for f in IMAGENET_FILES]


def _make(name, tmp_path) -> str:
    if name == "tiny-imagenet":
        _fake_tiny(str(tmp_path))
    else:
        _fake_imagenet(str(tmp_path))
    return str(tmp_path)


@pytest.mark.parametrize("name, rel", CASES)
def test_zero_byte_image_is_one_line_naming_the_file(name, rel, tmp_path):
    root = _make(name, tmp_path)
    path = os.path.join(root, rel)
    open(path, "wb").close()
    with pytest.raises(DataRootError) as err:
        load_splits(name, root=root)
    message = _one_line(err.value)
    assert path in message and "0 bytes" in message and f"dataset {name!r}" in message
    assert err.value.path == path and err.value.dataset == name
    assert "replace" in message


@pytest.mark.parametrize("name, rel", CASES)
def test_unidentifiable_image_is_one_line_naming_the_file(name, rel, tmp_path):
    root = _make(name, tmp_path)
    path = os.path.join(root, rel)
    with open(path, "wb") as f:
        f.write(b"<html>404 not found</html>" * 20)
    with pytest.raises(DataRootError) as err:
        load_splits(name, root=root)
    message = _one_line(err.value)
    assert path in message and "not an image" in message and err.value.path == path


def test_first_bad_file_in_split_order_is_reported(imagenet, monkeypatch):
    # Two bad files, one file per thread task: the report is deterministic (train before test, sorted within a
    # split), not whichever thread finishes first.
    monkeypatch.setattr(files, "CHECK_CHUNK", 1)
    first = os.path.join(imagenet, "train", "n001", "n001_1.JPEG")
    later = os.path.join(imagenet, "val", "n001", "val_1.JPEG")
    for p in (later, first):
        open(p, "wb").close()
    for _ in range(3):
        with pytest.raises(DataRootError) as err:
            load_splits("imagenet", root=imagenet)
        assert err.value.path == first


def test_missing_annotated_test_image_is_one_line(tiny):
    base, root = tiny
    path = os.path.join(base, "val", "images", "val_2.JPEG")
    os.remove(path)
    with pytest.raises(DataRootError) as err:
        load_splits("tiny-imagenet", root=root)
    message = _one_line(err.value)
    assert path in message and "missing" in message and "val_annotations.txt" in message


def test_check_reads_headers_only(imagenet, monkeypatch):
    path = os.path.join(imagenet, "val", "n002", "val_0.JPEG")
    _noise_jpeg(path)
    _truncate(path)
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im) or real_load(im))
    splits = load_splits("imagenet", root=imagenet)  # a truncated body passes the header check
    assert decoded == [] and len(splits.test) == 2


def test_check_shows_progress_over_every_file(tiny, monkeypatch):
    base, root = tiny
    bars = {}

    class Bar:
        def __init__(self, *args, total=None, disable=None, desc="", **kwargs):
            self.seen = bars[desc.split(": ")[1]] = {"total": total, "disable": disable, "steps": 0}

        def update(self, n=1):
            self.seen["steps"] += n

        def close(self):
            self.seen["closed"] = True

    monkeypatch.setattr(files, "tqdm", Bar)
    monkeypatch.setattr(files, "PROGRESS_MIN_FILES", 0)
    load_splits("tiny-imagenet", root=root)
    # Tiny ImageNet is checked, then decoded into memory: one bar each, over all 15 files.
    assert bars == {what: {"total": 15, "disable": None, "steps": 15, "closed": True}
                    for what in ("checking image files", "decoding images")}
    monkeypatch.setattr(files, "PROGRESS_MIN_FILES", 16)
    load_splits("tiny-imagenet", root=root)
    assert all(bar["disable"] is True for bar in bars.values())  # small sets show no bar


def test_bad_test_image_stops_the_cli_before_training(tiny, capsys):
    base, root = tiny
    open(os.path.join(base, "val", "images", "val_1.JPEG"), "wb").close()
    out = os.path.join(root, "run")
    code = main(["pretrain", "--dataset", "tiny-imagenet", "--data-root", root, "--epochs", "1", "--no-progress",
                 "--out", out])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "val_1.JPEG" in err, err
    assert not os.path.exists(out)  # nothing was trained or written


# --- an image that only fails to decode -------------------------------------------------------------------------

def _decode_failure(root, split: str, workers: int) -> TicketbenchError:
    splits = load_splits("imagenet", root=root)
    loader = make_loader(getattr(splits, split), 2, shuffle=False, workers=workers)
    with pytest.raises(TicketbenchError) as err:
        for _ in loader:
            pass
    return err.value


@pytest.mark.parametrize("workers", [0, 2])
def test_undecodable_image_is_one_line_naming_the_file(imagenet, workers):
    # ImageNet decodes per item, so the damage surfaces when the item is loaded, possibly in a worker.
    path = os.path.join(imagenet, "val", "n002", "val_0.JPEG")
    _noise_jpeg(path)
    _truncate(path)
    error = _decode_failure(imagenet, "test", workers)
    message = _one_line(error)
    assert isinstance(error, DataRootError)
    assert path in message and "decode" in message and "replace" in message
    assert "Traceback" not in message and "worker" not in message
    if workers:
        # The worker's error reaches the caller with exactly the message an in-process load gives.
        assert message == _one_line(_decode_failure(imagenet, "test", 0))


def test_undecodable_tiny_imagenet_image_is_one_line_at_load(tiny):
    # Tiny ImageNet is decoded into memory at load, so the damage surfaces there, before any training.
    base, root = tiny
    path = os.path.join(base, "val", "images", "val_2.JPEG")
    _noise_jpeg(path)
    _truncate(path)
    with pytest.raises(DataRootError) as err:
        load_splits("tiny-imagenet", root=root)
    message = _one_line(err.value)
    assert err.value.path == path and "decode" in message and "replace" in message


@pytest.mark.parametrize("name, folder, size", [("tiny-imagenet", os.path.join("tiny-imagenet-200", "train", "n0100",
                                                                                "images"), "64"),
                                                 ("imagenet", os.path.join("train", "n001"), "32")])
def test_undecodable_image_in_training_run_is_one_cli_line(name, folder, size, tmp_path, capsys):
    # Tiny ImageNet fails while loading, ImageNet inside a loader worker during the epoch: one line either way.
    root = _make(name, tmp_path)
    folder = os.path.join(root, folder)
    for f in os.listdir(folder):
        _noise_jpeg(os.path.join(folder, f))
        _truncate(os.path.join(folder, f))
    out = os.path.join(root, "run")
    code = main(["pretrain", "--dataset", name, "--data-root", root, "--epochs", "1", "--no-progress",
                 "--image-size", size, "--workers", "2", "--out", out])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert os.path.join(folder, "") in err and "decode" in err


# --- empty class folders ----------------------------------------------------------------------------------------

def _assert_empty_class_is_named(dataset: str, root: str, folder: str) -> None:
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    with pytest.raises(DataRootError) as err:
        load_splits(dataset, root=root)
    message = _one_line(err.value)
    assert err.value.path == folder and "no images" in message


@pytest.mark.parametrize("split", ["train", "val"])
def test_imagenet_empty_class_folder_is_error(imagenet, split):
    _assert_empty_class_is_named("imagenet", imagenet, os.path.join(imagenet, split, "n001"))


def test_imagenet_extra_empty_train_folder_is_not_a_class(imagenet):
    os.makedirs(os.path.join(imagenet, "train", "n003"))
    with pytest.raises(DataRootError, match="n003"):
        load_splits("imagenet", root=imagenet)


def test_tiny_imagenet_empty_class_folder_is_error(tiny):
    base, root = tiny
    _assert_empty_class_is_named("tiny-imagenet", root, os.path.join(base, "train", "n0300", "images"))


# --- download ---------------------------------------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """No network: every URL open fails as it does on an offline machine, and no socket can connect."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    def no_connect(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    return calls


@pytest.mark.parametrize("name, folder, needed", [
    ("cifar10", "cifar-10-batches-py", ["data_batch_1", "data_batch_5", "test_batch"]),
    ("cifar100", "cifar-100-python", ["train", "test"]),
])
def test_cifar_download_without_network_is_one_line(name, folder, needed, tmp_path, offline):
    with pytest.raises(DataRootError) as err:
        load_splits(name, root=str(tmp_path), download=True)
    message = _one_line(err.value)
    assert offline, "the download was not attempted"
    target = os.path.join(str(tmp_path), folder)
    assert f"dataset {name!r}" in message and target in message and err.value.path == target
    assert "download" in message and all(f in message for f in needed)


def test_cifar_download_needs_no_network_when_batches_are_there(tmp_path, offline):
    _fake_cifar(str(tmp_path), hundred=False)
    splits = load_splits("cifar10", root=str(tmp_path), download=True)
    assert len(splits.test) == 10 and not offline


@pytest.mark.parametrize("name, placed", [("tiny-imagenet", "tiny-imagenet-200"), ("imagenet", "train/<wnid>")])
def test_undownloadable_dataset_with_download_says_what_to_place(name, placed, tmp_path, offline):
    with pytest.raises(DataRootError) as err:
        load_splits(name, root=str(tmp_path), download=True)
    message = _one_line(err.value)
    assert "cannot be downloaded" in message and placed in message and str(tmp_path) in message
    assert not offline


@pytest.mark.parametrize("name", ["tiny-imagenet", "imagenet"])
def test_undownloadable_dataset_with_download_and_data_present_loads(name, tmp_path, offline):
    root = _make(name, tmp_path)
    with pytest.warns(UserWarning, match="cannot be downloaded"):
        splits = load_splits(name, root=root, download=True)
    assert len(splits.test) > 0 and not offline
