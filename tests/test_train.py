import math

import pytest
import torch

from ticketbench.hparams import TrainHparams
from ticketbench.storage import state_hash
from ticketbench.masks import prunable_names, prune_to_sparsity
from ticketbench.train import correctness, evaluate, lr_at, train

from conftest import TinyNet

CPU = torch.device("cpu")
HP = TrainHparams(epochs=3, batch_size=32, lr=0.05, rewind_epochs="0,1", rewind_iterations="5")


def _run(splits, seed=0, **kw):
    torch.manual_seed(seed)
    model = TinyNet()
    res = train(model, splits.train, splits.val, kw.pop("hp", HP), device=CPU, seed=seed, test_ds=splits.test,
                progress=False, **kw)
    return model, res


def test_bitwise_deterministic(synthetic_splits):
    _, a = _run(synthetic_splits)
    _, b = _run(synthetic_splits)
    assert state_hash(a.final_state) == state_hash(b.final_state)
    assert state_hash(a.best_state) == state_hash(b.best_state)
    assert torch.equal(a.correctness, b.correctness)
    _, c = _run(synthetic_splits, seed=1)
    assert state_hash(a.final_state) != state_hash(c.final_state)


def test_learns_and_selects_on_validation(synthetic_splits):
    model, res = _run(synthetic_splits, hp=TrainHparams(epochs=8, batch_size=32, lr=0.1))
    assert res.best_val_acc > 0.3  # chance is 0.1
    assert res.best_val_acc == max(h["val_acc"] for h in res.history)
    model.load_state_dict(res.best_state)
    assert evaluate(model, synthetic_splits.val, CPU) == pytest.approx(res.best_val_acc)
    assert res.test_acc == pytest.approx(evaluate(model, synthetic_splits.test, CPU))
    assert res.iterations == 8 * math.ceil(len(synthetic_splits.train) / 32)
    # The per-example record behind paired comparisons is the best-validation model's, in test-set order.
    assert res.test_correct.dtype == torch.bool and res.test_correct.numel() == len(synthetic_splits.test)
    assert res.test_correct.float().mean().item() == pytest.approx(res.test_acc)
    assert torch.equal(res.test_correct, correctness(model, synthetic_splits.test, CPU))


def test_snapshots_and_dynamics(synthetic_splits):
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in TinyNet().state_dict().items()}
    _, res = _run(synthetic_splits)
    assert set(res.snapshots) == {"ep0", "ep1", "it5"}
    assert all(torch.equal(res.snapshots["ep0"][k], init[k]) for k in init)
    n = synthetic_splits.train.base_size
    assert res.correctness.shape == (3, n) and res.correctness.dtype == torch.int8
    assert set(res.correctness.unique().tolist()) <= {0, 1}


def test_subset_marks_unseen_samples(synthetic_splits):
    ids = synthetic_splits.train.ids[::3]
    torch.manual_seed(0)
    res = train(TinyNet(), synthetic_splits.train.subset(ids), synthetic_splits.val, HP, device=CPU, seed=0,
                progress=False)
    seen = torch.zeros(synthetic_splits.train.base_size, dtype=torch.bool)
    seen[ids] = True
    assert (res.correctness[:, ~seen] == -1).all() and (res.correctness[:, seen] >= 0).all()


def test_masked_training_keeps_exact_sparsity(synthetic_splits):
    torch.manual_seed(0)
    model = TinyNet()
    names = prunable_names(model, "openlth")
    params = dict(model.named_parameters())
    mask = prune_to_sparsity({n: params[n] for n in names}, 0.8)
    res = train(model, synthetic_splits.train, synthetic_splits.val, HP, device=CPU, seed=0, mask=mask, progress=False)
    for state in (res.final_state, res.best_state):
        zeros = sum(int((state[n] == 0).sum()) for n in names)
        assert zeros == sum(int((~mask[n]).sum()) for n in names)


def test_callback_stops_training(synthetic_splits):
    _, res = _run(synthetic_splits, callbacks=[lambda ctx: ctx.epoch >= 2])
    assert res.stopped_early and len(res.history) == 2


def test_lr_schedules():
    hp = TrainHparams(epochs=10, lr=1.0, warmup_epochs=2)
    assert lr_at(hp, 0, 10) == pytest.approx(0.05)
    assert lr_at(hp, 19, 10) == pytest.approx(1.0)
    assert lr_at(hp, 20, 10) == pytest.approx(1.0)
    assert lr_at(hp, 99, 10) < 0.01
    ms = TrainHparams(epochs=10, lr=1.0, schedule="multistep", milestones="5,8")
    assert [lr_at(ms, e * 10, 10) for e in (0, 5, 8)] == pytest.approx([1.0, 0.1, 0.01])


def test_resume_from_rewind_point_continues_schedule(synthetic_splits):
    _, res = _run(synthetic_splits, start_epoch=1)
    assert [h["epoch"] for h in res.history] == [2, 3]
    per_epoch = math.ceil(len(synthetic_splits.train) / HP.batch_size)
    assert res.iterations == 2 * per_epoch


def test_resume_from_an_iteration_continues_inside_its_epoch(synthetic_splits):
    """An ``it<n>`` rewind with the schedule resumed (OpenLTH): training picks up at step n, mid-epoch."""
    per_epoch = math.ceil(len(synthetic_splits.train) / HP.batch_size)
    seen = []
    _, res = _run(synthetic_splits, start_epoch=5 / per_epoch, step_hooks=[lambda it, ep: seen.append((it, ep))])
    assert seen[0] == (6, 0) and seen[-1] == (HP.epochs * per_epoch, HP.epochs - 1)
    assert res.iterations == HP.epochs * per_epoch - 5
    assert [h["epoch"] for h in res.history] == [1, 2, 3] and res.history[0]["iterations"] == per_epoch
    # The samples of the skipped steps were not trained on in the partial first epoch.
    assert (res.correctness[0] == -1).sum() == 5 * HP.batch_size
    assert (res.correctness[1] >= 0).all()


class PooledBN(torch.nn.Module):
    """BatchNorm after global pooling, as in backbones whose last stage reaches 1x1: one value per channel
    per sample, so a training batch of one sample cannot be normalised."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x).mean((2, 3), keepdim=True))).flatten(1))


@pytest.mark.parametrize("n", [33, 65])
def test_a_subset_of_k_batches_plus_one_trains_every_sample(synthetic_splits, n):
    """k*batch+1 samples used to end each epoch with a batch of one, which BatchNorm refuses in training."""
    data = synthetic_splits.train.subset(synthetic_splits.train.ids[:n])
    torch.manual_seed(0)
    res = train(PooledBN(), data, synthetic_splits.val, TrainHparams(epochs=2, batch_size=32, lr=0.05), device=CPU,
                seed=0, progress=False)
    assert res.iterations == 2 * (n // 32)  # the single sample joined the last full batch
    trained = res.correctness[:, data.ids] >= 0
    assert bool(trained.all()), "every sample of the subset is trained on, and its dynamics recorded, each epoch"
    assert int((res.correctness >= 0).sum()) == 2 * n


def test_training_batches_equal_torchs_shuffle_when_no_sample_is_alone(synthetic_splits):
    """The guard against single-sample batches must not change the order of ordinary runs (and their results)."""
    from torch.utils.data import DataLoader

    from ticketbench.data import make_loader

    ds = synthetic_splits.train  # 256 samples: no remainder of one
    ours = make_loader(ds, 48, shuffle=True, seed=7)
    plain = DataLoader(ds, batch_size=48, shuffle=True, generator=torch.Generator().manual_seed(7))
    for _ in range(3):  # every epoch, not only the first
        assert [ids.tolist() for _, _, ids in ours] == [ids.tolist() for _, _, ids in plain]
    odd = ds.subset(ds.ids[:97])
    batches = [ids.tolist() for _, _, ids in make_loader(odd, 48, shuffle=True, seed=7)]
    assert [len(b) for b in batches] == [48, 49]
    assert sorted(sum(batches, [])) == sorted(odd.ids.tolist())


def test_a_timm_backbone_trains_on_a_prac_sized_subset_of_129():
    """The reported crash: PrAC picked 129 digits for test_efficientnet, whose head normalises a 1x1 map."""
    from ticketbench.data import load_splits
    from ticketbench.models import create_model

    splits = load_splits("digits")
    data = splits.train.subset(splits.train.ids[:129])
    torch.manual_seed(0)
    model = create_model("test_efficientnet", num_classes=10, in_chans=splits.info.in_chans)
    res = train(model, data, splits.val, TrainHparams(epochs=1, batch_size=64, lr=0.05), device=CPU, seed=0,
                progress=False)
    assert res.iterations == 2 and int((res.correctness >= 0).sum()) == 129


def test_a_percentage_that_names_the_start_saves_the_start(synthetic_splits):
    """5% of a 3-step run is iteration 0: the initial weights, saved as it0 (a stage asking for 5% reads it0)."""
    hp = TrainHparams(epochs=1, batch_size=128, lr=0.05, rewind_epochs="1", rewind_iterations="5%,0")
    torch.manual_seed(0)
    model = TinyNet()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    res = train(model, synthetic_splits.train, synthetic_splits.val, hp, device=CPU, seed=0, progress=False)
    assert set(res.snapshots) == {"it0", "ep1"}
    assert state_hash(res.snapshots["it0"]) == state_hash(init)
