"""Training options, each checked against what it must do: label smoothing, Nesterov momentum, loader workers."""

import copy

import pytest
import torch
import torch.nn.functional as F

from ticketbench import paths
from ticketbench.artifacts import load_checkpoint
from ticketbench.cli import main
from ticketbench.data import load_splits, make_loader
from ticketbench.hparams import TrainHparams
from ticketbench.train import train

CPU = torch.device("cpu")
N_TRAIN = 32


@pytest.fixture(scope="module")
def one_batch():
    """Splits whose whole training set is one un-augmented batch, so a 1-epoch run is exactly one SGD step."""
    splits = load_splits("synthetic", augment=False, n_train=N_TRAIN, n_val=8, n_test=8)
    x = torch.stack([splits.train[i][0] for i in range(N_TRAIN)])
    return splits, x, splits.train.targets


def _one_step(model, splits, **train_kw):
    hp = TrainHparams(epochs=1, batch_size=N_TRAIN, lr=0.1, schedule="constant", **train_kw)
    return train(model, splits.train, splits.val, hp, device=CPU, seed=0, progress=False)


def test_label_smoothing_gives_the_smoothed_cross_entropy(tiny_net, one_batch):
    splits, x, y = one_batch
    with torch.no_grad():
        tiny_net.fc.weight.mul_(10)  # confident logits, so that smoothing changes the loss clearly
    start = copy.deepcopy(tiny_net.state_dict())
    with torch.no_grad():
        # Train-mode BatchNorm, as the training step sees the batch.
        logp = F.log_softmax(tiny_net.train()(x), dim=1)
    tiny_net.load_state_dict(start)  # that forward moved the BatchNorm running statistics
    eps, k = 0.3, splits.info.num_classes
    nll = -logp[torch.arange(len(y)), y]
    smoothed = float(((1 - eps) * nll - eps / k * logp.sum(1)).mean())
    plain = float(nll.mean())
    assert abs(smoothed - plain) > 0.01, "the case must tell the two losses apart"
    for ls, expected in ((0.0, plain), (eps, smoothed)):
        model = copy.deepcopy(tiny_net)
        res = _one_step(model, splits, label_smoothing=ls)
        assert res.history[0]["train_loss"] == pytest.approx(expected, rel=1e-5), ls


def test_nesterov_first_step_follows_torch_sgd_formula(tiny_net, one_batch):
    splits, x, y = one_batch
    mu, wd, lr = 0.9, 5e-4, 0.1
    start = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    probe = copy.deepcopy(tiny_net).train()
    names = [n for n, _ in probe.named_parameters()]
    grads = torch.autograd.grad(F.cross_entropy(probe(x), y), list(probe.parameters()))
    # torch.optim.SGD, first step (momentum buffer b = g): plain moves by lr*g, Nesterov by lr*(g + mu*b).
    d_p = {n: g + wd * start[n] for n, g in zip(names, grads)}
    for nesterov, factor in ((False, 1.0), (True, 1.0 + mu)):
        res = _one_step(copy.deepcopy(tiny_net), splits, momentum=mu, weight_decay=wd, nesterov=nesterov)
        for n in names:
            torch.testing.assert_close(res.final_state[n], start[n] - lr * factor * d_p[n], atol=1e-6, rtol=1e-5,
                                       msg=lambda m, n=n: f"nesterov={nesterov} {n}: {m}")


def _batches(ds, workers, seed, epochs=3):
    loader = make_loader(ds, 16, shuffle=True, seed=seed, workers=workers)
    return [[(x.clone(), y.clone(), i.clone()) for x, y, i in loader] for _ in range(epochs)]


def _same(a, b):
    return len(a) == len(b) and all(len(ea) == len(eb) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
        for (xa, ya, ia), (xb, yb, ib) in zip(ea, eb)) for ea, eb in zip(a, b))


def test_workers_reproduce_batches_for_a_seed():
    ds = load_splits("synthetic", augment=True, n_train=40, n_val=8, n_test=8).train
    two = _batches(ds, 2, seed=3)
    assert _same(two, _batches(ds, 2, seed=3)), "augmented batches must repeat exactly for the same seed"
    assert not _same(two, _batches(ds, 2, seed=4))
    # The sample order comes from the loader's generator, not from where items are loaded.
    zero = _batches(ds, 0, seed=3, epochs=1)
    assert [i.tolist() for _, _, i in two[0]] == [i.tolist() for _, _, i in zero[0]]


def test_workers_give_the_batches_of_the_main_process():
    ds = load_splits("synthetic", augment=False, n_train=40, n_val=8, n_test=8).train
    assert _same(_batches(ds, 2, seed=3), _batches(ds, 0, seed=3))


def test_workers_option_reaches_the_loader_and_keeps_results(tmp_path, monkeypatch):
    import ticketbench.train as train_mod

    seen = []
    real = train_mod.make_batches

    def spy(ds, batch_size, **kw):
        if kw.get("shuffle"):
            seen.append(kw.get("workers", -1))
        return real(ds, batch_size, **kw)

    monkeypatch.setattr(train_mod, "make_batches", spy)
    states = {}
    # Two epochs: from the second on, persistent workers used to shuffle in another order than the main process.
    for w in (0, 2):
        out = tmp_path / f"w{w}"
        assert main(["pretrain", "--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "2",
                     "--batch-size", "64", "--no-augment", "--workers", str(w), "--no-progress",
                     "--out", str(out)]) == 0
        states[w], _ = load_checkpoint(paths.final(out))
    assert seen == [0, 2]
    assert all(torch.equal(states[0][k], states[2][k]) for k in states[0])
