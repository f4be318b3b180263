"""Batches gathered on the device: the same pixels as the per-item path, every sample once, no host syncs."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from ticketbench.data import DatasetInfo, DeviceBatches, load_splits, make_batches
from ticketbench.data.inmemory import TensorIndexedDataset
from ticketbench.hparams import TrainHparams
from ticketbench.models import create_model
from ticketbench.train import train


def uint8_set(n=20, pad=2, flip=True, augment=True, size=8):
    info = DatasetInfo("toy", 10, 3, size, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return TensorIndexedDataset(info, images, torch.arange(n) % 10, scale=1 / 255, pad=pad, flip=flip,
                                augment=augment)


def reference(ds, sid, dy, dx, flip):
    """The per-item path with given offsets: pad with zeros, crop the original size at (dy, dx), then mirror."""
    img = ds._images[sid]
    p, (h, w) = ds.pad, img.shape[-2:]
    crop = F.pad(img, (p, p, p, p))[:, p + dy:p + dy + h, p + dx:p + dx + w]
    if flip:
        crop = crop.flip(-1)
    x = crop.to(torch.float32) * ds._scale
    return (x.expand(ds.info.in_chans, -1, -1) - ds._mean) / ds._std


def test_unaugmented_batch_equals_per_item_loads():
    for ds in (uint8_set(augment=False), load_splits("digits", augment=False).test):
        ids = ds.ids[torch.randperm(len(ds), generator=torch.Generator().manual_seed(1))[:17]]
        got = ds.batch(ids)
        want = torch.stack([ds[int((ds.ids == i).nonzero())][0] for i in ids])
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)


def test_every_translation_and_flip_matches_the_per_item_definition():
    ds = uint8_set(n=4, pad=2)
    offsets = list(itertools.product(range(-2, 3), range(-2, 3), (False, True)))
    sids = torch.tensor([k % 4 for k in range(len(offsets))])
    shifts = torch.tensor([[dy, dx] for dy, dx, _ in offsets])
    flips = torch.tensor([f for _, _, f in offsets])
    got = ds.batch(sids, shifts=shifts, flips=flips)
    for k, (dy, dx, f) in enumerate(offsets):
        torch.testing.assert_close(got[k], reference(ds, int(sids[k]), dy, dx, f), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("n,batch", [(41, 8), (40, 8), (7, 8), (9, 8)])
def test_an_epoch_serves_every_sample_once_without_a_batch_of_one(n, batch):
    ds = uint8_set(n=n)
    batches = DeviceBatches(ds, batch, shuffle=True, seed=3)
    for _ in range(2):
        seen = [(x, y, i) for x, y, i in batches]
        assert len(seen) == len(batches)
        ids = torch.cat([i for _, _, i in seen])
        assert sorted(ids.tolist()) == list(range(n))
        assert all(len(i) > 1 for _, _, i in seen) or n == 1
        assert all(torch.equal(y, ds._labels[i]) for _, y, i in seen)
        assert all(x.shape == (len(i), 3, 8, 8) and x.dtype == torch.float32 for x, _, i in seen)


def test_order_and_augmentation_follow_the_seed_and_change_between_epochs():
    ds = uint8_set(n=32)

    def epochs(seed, k=2):
        it = DeviceBatches(ds, 8, shuffle=True, seed=seed)
        return [[(x.clone(), i.clone()) for x, _, i in it] for _ in range(k)]

    a, b, c = epochs(5), epochs(5), epochs(6)
    same = lambda e, f: all(torch.equal(x, y) and torch.equal(i, j) for (x, i), (y, j) in zip(e, f))  # noqa: E731
    assert same(a[0], b[0]) and same(a[1], b[1])
    assert not same(a[0], c[0])
    assert not same(a[0], a[1])


def test_unshuffled_batches_keep_the_view_order_and_subsets_stay_inside():
    ds = uint8_set(n=30, augment=False)
    view = ds.subset([29, 3, 17, 4, 8])
    got = torch.cat([i for _, _, i in make_batches(view, 2, shuffle=False)])
    assert got.tolist() == [29, 3, 17, 4, 8]
    shuffled = torch.cat([i for _, _, i in make_batches(view.with_augment(True), 2, shuffle=True, seed=0)])
    assert sorted(shuffled.tolist()) == [3, 4, 8, 17, 29]


def _syncs(n_train: int) -> int:
    """Calls that copy a device scalar to the host during a one-epoch training run."""
    splits = load_splits("synthetic", augment=True, n_train=n_train, n_val=32, n_test=32)
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=10)
    hp = TrainHparams(epochs=1, batch_size=16, lr=0.05, rewind_epochs="")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        train(model, splits.train, splits.val, hp, device=torch.device("cpu"), seed=0, progress=False)
    names = ("aten::item", "aten::_local_scalar_dense")
    return sum(e.count for e in prof.key_averages() if e.key in names)


def test_host_syncs_do_not_grow_with_the_number_of_steps():
    # 4 and 16 steps per epoch: a per-step .item() or .cpu() of a scalar would add 12 or more calls.
    assert _syncs(64) == _syncs(256)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_loop_never_synchronises():
    from test_cuda_paths import StrictSteps  # batches served with sync debugging on

    splits = load_splits("synthetic", augment=True, n_train=128, n_val=32, n_test=32)
    model = create_model("test_resnet", num_classes=10).cuda()
    hp = TrainHparams(epochs=1, batch_size=16, lr=0.05, rewind_epochs="", precision="bf16")
    import ticketbench.train as train_mod

    real = train_mod.make_batches
    train_mod.make_batches = lambda *a, **k: StrictSteps(real(*a, **k)) if k.get("shuffle") else real(*a, **k)
    try:
        train(model, splits.train, splits.val, hp, device=torch.device("cuda"), seed=0, progress=False)
    finally:
        train_mod.make_batches = real
