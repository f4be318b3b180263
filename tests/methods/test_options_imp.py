"""IMP and PrAC-IMP options, each checked against what it must do: lr_resume, epoch_scaling, it<n> rewind,
no_cep and no_early_stop."""

import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ticketbench import storage, paths
from ticketbench.artifacts import load_checkpoint, read_metrics
from ticketbench.cli import main

from conftest import as_contract, pretrain_synthetic
from ticketbench.hparams import TrainHparams
from ticketbench.methods.common import scaled_hparams

EPOCHS, PER_EPOCH = 3, 4  # synthetic has 256 training samples: 4 steps of 64 per epoch
LR = 0.1


@pytest.fixture(scope="module")
def pre(tmp_path_factory):
    out = tmp_path_factory.mktemp("options_imp") / "pre"
    pretrain_synthetic(out, epochs=EPOCHS, rewind_epochs="0,1,2", extra=("--rewind-iterations", "2,4"))
    return out


@pytest.fixture
def step_lrs():
    """The learning rate of every optimiser step taken while the test runs, as the optimiser applies it."""
    lrs = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    yield lrs
    handle.remove()


def _imp(pre, out, *extra):
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", "1", "--no-progress", *extra]) == 0
    return read_metrics(paths.metrics(out))["rounds"][0]


def _cosine(step):
    return 0.5 * LR * (1 + math.cos(math.pi * step / (EPOCHS * PER_EPOCH)))


def test_lr_resume_continues_the_schedule_at_the_rewind_epoch(pre, tmp_path, step_lrs):
    restart = _imp(pre, tmp_path / "restart", "--rewind", "ep2")
    restart_lrs = list(step_lrs)
    step_lrs.clear()
    resume = _imp(pre, tmp_path / "resume", "--rewind", "ep2", "--lr-resume")
    assert restart_lrs == pytest.approx([_cosine(s) for s in range(EPOCHS * PER_EPOCH)])
    assert restart["train_iterations"] == EPOCHS * PER_EPOCH
    # Rewound to epoch 2, the round trains only the remaining epoch, on the schedule's tail.
    assert step_lrs[0] == pytest.approx(_cosine(2 * PER_EPOCH)) and step_lrs[0] < LR / 2
    assert step_lrs == pytest.approx(restart_lrs[2 * PER_EPOCH:])
    assert resume["train_iterations"] == (EPOCHS - 2) * PER_EPOCH and resume["epochs_run"] == EPOCHS - 2


def test_iteration_snapshots_are_taken_after_that_many_steps(pre):
    snap = {p: load_checkpoint(paths.rewind(pre, p))[0] for p in ("ep0", "ep1", "it2", "it4")}
    # Step 4 ends epoch 1: the two snapshots are the same state, taken by two different rules.
    assert all(torch.equal(snap["it4"][k], snap["ep1"][k]) for k in snap["ep1"])
    for other in ("ep0", "ep1"):
        assert any(not torch.equal(snap["it2"][k], snap[other][k]) for k in snap["it2"]), f"it2 equals {other}"


def test_it_rewind_restarts_from_that_snapshot_bit_for_bit(pre, tmp_path, monkeypatch):
    import ticketbench.methods.imp as imp_mod

    calls = []
    real = imp_mod.train_round

    def spy(pre_run, start, mask, hp, **kw):
        model, res = real(pre_run, start, mask, hp, **kw)
        calls.append((start, mask, kw.get("start_epoch", 0), res.snapshots["ep0"]))
        return model, res

    monkeypatch.setattr(imp_mod, "train_round", spy)
    _imp(pre, tmp_path / "it2", "--rewind", "it2")
    it2, _ = load_checkpoint(paths.rewind(pre, "it2"))
    (start, mask, start_epoch, first), = calls
    assert set(start) == set(it2) and all(torch.equal(start[k], it2[k]) for k in it2)
    # What training actually began from: the snapshot with the pruned weights zeroed, nothing else touched.
    assert all(torch.equal(first[k], it2[k] * mask[k] if k in mask else it2[k]) for k in it2)
    assert start_epoch == 0


def _fake_subsets(folder, ids):
    """A folder shaped like a PrAC run for `imp --subsets`: round 1 trains on ``ids``."""
    storage.save_tensors(folder / "round1" / "prac_set.safetensors", {"trained_on": ids}, {"kind": "prac_set"})
    storage.write_json(folder / "hparams.json", {"run_id": "fake", "settings": {}})
    storage.write_json(folder / "metrics.json", as_contract(folder / "prac" / "synthetic" / "test_resnet" / "seed0" /
                                                            "metrics.json", {"method": "prac"}))
    return folder


def test_quadratic_epoch_scaling_shrinks_epochs_with_the_data(pre, tmp_path):
    n, fraction = 256, 0.5
    subsets = _fake_subsets(tmp_path / "subsets", torch.arange(0, n, 2))
    full = _imp(pre, tmp_path / "full")
    lin = _imp(pre, tmp_path / "lin", "--subsets", str(subsets))
    quad = _imp(pre, tmp_path / "quad", "--subsets", str(subsets), "--epoch-scaling", "quadratic")
    assert lin["data_fraction"] == quad["data_fraction"] == fraction
    assert lin["epochs_planned"] == lin["epochs_run"] == EPOCHS
    assert quad["epochs_planned"] == quad["epochs_run"] == max(1, int(EPOCHS * fraction))
    steps_on_subset = math.ceil(n * fraction / 64)
    assert lin["train_iterations"] == EPOCHS * steps_on_subset
    assert quad["train_iterations"] == int(EPOCHS * fraction) * steps_on_subset
    assert full["train_iterations"] == EPOCHS * PER_EPOCH


def test_quadratic_scaling_moves_milestones_and_warmup_with_the_epochs():
    hp = TrainHparams(epochs=20, schedule="multistep", milestones="10,15", warmup_epochs=5, rewind_epochs="0,3")
    assert scaled_hparams(hp, 0.5, "linear") == hp
    q = scaled_hparams(hp, 0.5, "quadratic")
    assert (q.epochs, q.milestones, q.warmup_epochs) == (10, "5,7", 5)
    tiny = scaled_hparams(hp, 0.01, "quadratic")
    assert tiny.epochs == 1 and tiny.warmup_epochs == 0
    assert scaled_hparams(hp, 1.0, "quadratic") == hp


def _prac(pre, out, *extra):
    assert main(["prac", "--pretrain", str(pre), "--out", str(out), "--skip-ticket-eval", "--no-progress",
                 *extra]) == 0
    return read_metrics(paths.metrics(out))["rounds"]


def test_no_cep_makes_the_next_set_cet_only(pre, tmp_path):
    out = tmp_path / "no_cep"
    _prac(pre, out, "--rounds", "2", "--no-cep")
    first, _ = storage.load_tensors(out / "round1" / "prac_set.safetensors")
    second, _ = storage.load_tensors(out / "round2" / "prac_set.safetensors")
    assert set(first["cep"].tolist()) - set(first["cet"].tolist()), "CEP must add samples, or the case proves nothing"
    assert torch.equal(first["next"], first["cet"])
    assert torch.equal(second["trained_on"], first["cet"])


# After the milestone the LR is ~0, so the weights and the would-be mask stand still: a run built to converge.
CONVERGES = ["--rounds", "1", "--epochs", "6", "--schedule", "multistep", "--milestones", "2", "--gamma", "1e-6",
             "--eps", "0.001", "--patience", "1"]


def test_early_stop_ends_a_converged_round_unless_disabled(pre, tmp_path):
    (stopped,) = _prac(pre, tmp_path / "stop", *CONVERGES)
    (full,) = _prac(pre, tmp_path / "full", *CONVERGES, "--no-early-stop")
    distances = read_metrics(tmp_path / "stop" / "round1" / "metrics.json")["mask_distances"]
    # Epoch 2 moves the mask (recording starts), epoch 3 does not: with patience 1 the round stops there.
    assert distances[1] > 0.001 and distances[2] < 0.001
    assert stopped["stopped_early"] and stopped["epochs_run"] == 3 < stopped["epochs_planned"] == 6
    assert not full["stopped_early"] and full["epochs_run"] == full["epochs_planned"] == 6
    assert full["train_iterations"] == 2 * stopped["train_iterations"]
    no_distances = read_metrics(tmp_path / "full" / "round1" / "metrics.json")["mask_distances"]
    assert no_distances == [None] * 6, "without early stop the convergence callback is not attached"
