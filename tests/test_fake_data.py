"""`ticketbench fake-data`: replicas in the real on-disk formats, read by the real readers, never beside real data."""

from __future__ import annotations

import pickle

import pytest
import torch

from ticketbench.cli import main
from ticketbench.data import load_splits
from ticketbench.data.fake import DEFAULT_SIZES, LAYOUT, MARKER, make_fake_data


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake")
    assert main(["fake-data", "--out", str(root)]) == 0
    return root


@pytest.mark.parametrize("name, sub, classes, side", [
    ("cifar10", "", 10, 32), ("cifar100", "", 100, 32), ("tiny-imagenet", "", 4, 64), ("imagenet", "imagenet", 3, 224),
])
def test_the_readers_take_every_replica_at_its_real_resolution(replicas, name, sub, classes, side):
    splits = load_splits(name, root=str(replicas / sub) if sub else str(replicas))
    size = DEFAULT_SIZES[name]
    assert splits.info.num_classes == classes and splits.info.image_size == side
    assert len(splits.train) + len(splits.val) == size.train * classes
    assert len(splits.test) == size.test * classes
    x, y, _ = splits.test[0]
    assert x.shape == (3, side, side) and 0 <= y < classes
    labels = {int(splits.train_eval[k][1]) for k in range(len(splits.train_eval))}
    assert len(labels) >= min(classes, len(splits.train_eval)) - 1  # every class is there, but what val holds


def test_the_files_are_those_of_the_archives(replicas):
    c10, c100, tiny, inet = (replicas / LAYOUT[n] for n in ("cifar10", "cifar100", "tiny-imagenet", "imagenet"))
    assert sorted(p.name for p in c10.iterdir()) == sorted(
        [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"])
    batch = pickle.loads((c10 / "data_batch_1").read_bytes(), encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data"} and batch[b"data"].shape[1] == 3072
    meta = pickle.loads((c100 / "meta").read_bytes(), encoding="bytes")
    assert len(meta[b"fine_label_names"]) == 100 and len(meta[b"coarse_label_names"]) == 20
    wnids = (tiny / "wnids.txt").read_text().split()
    assert len(wnids) == 4 and all((tiny / "train" / w / f"{w}_boxes.txt").is_file() for w in wnids)
    assert len((tiny / "val" / "val_annotations.txt").read_text().splitlines()) == 4
    assert {p.name for p in (inet / "train").iterdir()} == {p.name for p in (inet / "val").iterdir()}


def test_the_classes_can_be_learned(replicas):
    """Each class has its own look: the nearest class mean of the training images labels most test images."""
    splits = load_splits("cifar10", root=str(replicas))
    x = torch.stack([splits.train_eval[k][0] for k in range(len(splits.train_eval))]).flatten(1)
    y = torch.tensor([splits.train_eval[k][1] for k in range(len(splits.train_eval))])
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    xt = torch.stack([splits.test[k][0] for k in range(len(splits.test))]).flatten(1)
    yt = torch.tensor([splits.test[k][1] for k in range(len(splits.test))])
    assert (torch.cdist(xt, means).argmin(1) == yt).float().mean() >= 0.8


def test_a_rerun_writes_the_same_files(tmp_path):
    make_fake_data(tmp_path / "a", ["cifar10", "tiny-imagenet"])
    make_fake_data(tmp_path / "b", ["cifar10", "tiny-imagenet"])
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    make_fake_data(tmp_path / "a", ["cifar10"])  # its own folder: replaced in place
    assert (tmp_path / "a" / MARKER).is_file()


def test_it_never_writes_beside_real_data(tmp_path, capsys):
    real = tmp_path / "datasets"
    (real / "cifar-10-batches-py").mkdir(parents=True)
    (real / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"the real one")
    assert main(["fake-data", "--out", str(real)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err and MARKER in err
    assert (real / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"the real one"
    assert sorted(p.name for p in real.iterdir()) == ["cifar-10-batches-py"]


def test_an_unknown_format_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "fake"
    assert main(["fake-data", "--out", str(out), "--datasets", "cifar10,mnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mnist" in err and "tiny-imagenet" in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["--train-per-class", "0"], ["--classes", "x"], ["--seed", "-1"]])
def test_bad_sizes_are_refused_by_the_parser(tmp_path, capsys, argv):
    out = tmp_path / "fake"
    with pytest.raises(SystemExit) as e:
        main(["fake-data", "--out", str(out), *argv])
    assert e.value.code == 2 and argv[0] in capsys.readouterr().err
    assert not out.exists()
