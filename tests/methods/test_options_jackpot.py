"""Lottery-jackpot options, each checked against what it must do: rate_schedule, layerwise=uniform, tune_epochs."""

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ticketbench import paths
from ticketbench.artifacts import load_checkpoint, read_metrics
from ticketbench.cli import main

from conftest import pretrain_synthetic
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.jackpot.search import JackpotHparams, search

CPU = torch.device("cpu")
STEPS_PER_EPOCH = 2  # 256 synthetic training samples in batches of 128


@pytest.fixture(scope="module")
def pre_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("options_jp") / "pre"
    return pretrain_synthetic(out, epochs=2)


# Factor on --rate in each of 3 epochs: cosine decays from 1 over the search, step is the 0.9/0.6/0.3 thirds.
FACTORS = {"constant": [1.0, 1.0, 1.0], "cosine": [1.0, 0.75, 0.25], "step": [0.9, 0.6, 0.3]}


@pytest.mark.parametrize("schedule", list(FACTORS))
def test_rate_schedule_sets_each_epochs_swap_rate(pre_dir, monkeypatch, schedule):
    import ticketbench.methods.jackpot.search as jackpot

    rates = []
    real = jackpot.swap_update

    def spy(scores, mask, rate):
        rates.append(rate)
        return real(scores, mask, rate)

    monkeypatch.setattr(jackpot, "swap_update", spy)
    pre = load_pretrained(pre_dir)
    jp = JackpotHparams(sparsity=0.8, epochs=3, batch_size=128, rate=0.8, rate_schedule=schedule)
    s = search(pre, jp, device=CPU, progress=False)
    layers = len(s["mask"])
    assert len(rates) == 3 * STEPS_PER_EPOCH * layers  # one call per layer and step
    per_step = [rates[i * layers:(i + 1) * layers] for i in range(3 * STEPS_PER_EPOCH)]
    assert all(len(set(step)) == 1 for step in per_step), "every layer of a step swaps at the same rate"
    expected = [0.8 * f for f in FACTORS[schedule] for _ in range(STEPS_PER_EPOCH)]
    assert [step[0] for step in per_step] == pytest.approx(expected)


def test_uniform_layerwise_gives_every_layer_the_same_sparsity(pre_dir):
    pre = load_pretrained(pre_dir)
    found = {}
    for layerwise in ("uniform", "global"):
        jp = JackpotHparams(sparsity=0.8, epochs=1, batch_size=128, layerwise=layerwise)
        found[layerwise] = search(pre, jp, device=CPU, progress=False)
    uniform = found["uniform"]
    for n, m in uniform["mask"].items():
        assert m.numel() - int(m.sum()) == round(0.8 * m.numel()), n  # exactly the target in every layer
        assert int(m.sum()) == int(uniform["budget"][n].sum())  # and the search kept that budget
    spread = list(found["global"]["mask"].layer_sparsity().values())
    assert max(spread) - min(spread) > 0.1, "a global threshold spreads sparsity unevenly, unlike uniform"


def test_tune_epochs_trains_the_kept_weights_under_the_fixed_mask(pre_dir, tmp_path):
    common = ["jackpot", "--pretrain", str(pre_dir), "--sparsity", "0.8", "--epochs", "1", "--batch-size", "128",
              "--no-progress"]
    plain = tmp_path / "plain"
    assert main([*common, "--out", str(plain)]) == 0
    steps = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: steps.append((opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"])))
    try:
        tuned_dir = tmp_path / "tuned"
        assert main([*common, "--tune-epochs", "2", "--tune-lr", "0.02", "--out", str(tuned_dir)]) == 0
    finally:
        handle.remove()
    m_plain, m = read_metrics(paths.metrics(plain)), read_metrics(paths.metrics(tuned_dir))
    assert not paths.final(plain).exists() and "tuned_test_acc" not in m_plain
    assert m["tune_iterations"] == 2 * STEPS_PER_EPOCH
    assert m["train_iterations"] == m_plain["train_iterations"] + m["tune_iterations"]
    # The tuning steps come last: they start at --tune-lr, without weight decay.
    tune = steps[-m["tune_iterations"]:]
    assert tune[0] == (pytest.approx(0.02), 0.0) and all(wd == 0.0 for _, wd in tune)
    mask, _ = Mask.load(paths.mask(tuned_dir))
    searched, _ = load_checkpoint(paths.model(tuned_dir))
    tuned, meta = load_checkpoint(paths.final(tuned_dir))
    assert meta["method"] == "jackpot_tuned"
    for n, keep in mask.items():
        assert torch.all(tuned[n][~keep] == 0), f"{n}: tuning revived pruned weights"
        assert not torch.equal(tuned[n][keep], searched[n][keep]), f"{n}: kept weights were not tuned"
