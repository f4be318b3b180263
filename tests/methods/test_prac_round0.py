"""PrAC-IMP's round 0 is the dense run early-stopped like every later round (PrAC Alg. 1), not the full schedule."""

import pytest
import torch

from ticketbench import paths
from ticketbench.artifacts import read_metrics
from ticketbench.cli import main
from ticketbench.hparams import TrainHparams
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.imp import ImpHparams
from ticketbench.methods.prac.early_stop import EarlyStop, can_stop_early
from ticketbench.methods.prac.stage import PracHparams, round_zero

PRE = ["--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "3", "--batch-size", "64",
       "--rewind-epochs", "0,1", "--no-progress"]


@pytest.fixture(scope="module")
def pre(tmp_path_factory):
    out = tmp_path_factory.mktemp("prac0") / "pre"
    assert main(["pretrain", *PRE, "--out", str(out)]) == 0
    return out


def test_the_stop_needs_patience_plus_two_epochs():
    # Distances start at epoch 2; the first recorded one is above eps, and `patience` more must follow it.
    assert not can_stop_early(6, 5) and can_stop_early(7, 5) and can_stop_early(3, 1)


def test_round_zero_stops_early_and_savings_count_only_its_iterations(pre, tmp_path, monkeypatch):
    monkeypatch.setattr(EarlyStop, "update", lambda self, d: True)  # converged at the first distance
    out = tmp_path / "prac"
    assert main(["prac", "--pretrain", str(pre), "--out", str(out), "--rounds", "1", "--patience", "1",
                 "--skip-ticket-eval", "--no-progress"]) == 0
    m = read_metrics(paths.metrics(out))
    per_epoch = read_metrics(paths.metrics(pre))["epochs"][0]["iterations"]
    assert m["round0"]["trained"] and m["round0"]["stopped_early"] and m["round0"]["epochs_run"] == 2
    assert m["round0"]["iterations"] == 2 * per_epoch
    # Round 1 was found after round 0's 2 epochs, not after the pretrain run's 3.
    assert m["rounds"][0]["find_iterations"] == 2 * per_epoch


def test_round_zero_replays_the_pretrain_run_until_it_stops(pre, monkeypatch):
    monkeypatch.setattr(EarlyStop, "update", lambda self, d: False)
    loaded = load_pretrained(pre)
    train_hp = TrainHparams.from_dict(loaded.train_hp.to_dict())
    dense, dynamics, facts = round_zero(loaded, ImpHparams(), PracHparams(patience=1), train_hp,
                                        device=torch.device("cpu"), progress=False)
    assert facts["round0"]["trained"] and facts["round0"]["epochs_run"] == 3
    assert all(torch.equal(dense.final_state[k], loaded.final_state[k]) for k in loaded.final_state)
    assert torch.equal(dynamics, loaded.dynamics())


def test_round_zero_is_the_pretrain_run_when_the_stop_cannot_fire(pre):
    loaded = load_pretrained(pre)
    dense, _, facts = round_zero(loaded, ImpHparams(), PracHparams(), loaded.train_hp, device=torch.device("cpu"),
                                 progress=False)
    assert dense is loaded and not facts["round0"]["trained"] and "cannot fire in 3 epochs" in facts["round0"]["why"]


def test_round_zero_replays_the_pretrain_recipe_whatever_the_rounds_use(pre, tmp_path, monkeypatch):
    """Round 0 is the dense run: with rounds retraining at another lr it still replays the pretrain run."""
    monkeypatch.setattr(EarlyStop, "update", lambda self, d: False)
    out = tmp_path / "prac"
    assert main(["prac", "--pretrain", str(pre), "--out", str(out), "--rounds", "1", "--patience", "1",
                 "--lr", "0.3", "--skip-ticket-eval", "--no-progress"]) == 0
    m = read_metrics(paths.metrics(out))
    dense = read_metrics(paths.metrics(pre))
    assert m["round0"]["trained"] and m["round0"]["iterations"] == dense["train_iterations"]
    assert m["round0"]["test_acc"] == dense["test_acc"]  # the same run, replayed bit for bit
