"""Scratch-E and Scratch-B (Liu et al., ICLR 2019) of structured tickets: the slimmed architecture, fresh weights."""

import dataclasses

import pytest
import torch

from ticketbench import paths, storage
from ticketbench.artifacts import CORE_KEYS, read_metrics
from ticketbench.cli import main
from ticketbench.config import check_config, load_config_files
from ticketbench.errors import ConfigError
from ticketbench.hparams import TrainHparams
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.structure import scratch as sc
from ticketbench.methods.structure.slim import apply_plan, load_slim
from ticketbench.methods.structure.stage import SCRATCH_SEED, StructureHparams, structure_round

from conftest import pretrain_synthetic

FAST = ("--timing-max-seconds", "1", "--timing-rounds", "2", "--no-progress")
EXAMPLE = torch.zeros(1, 3, 16, 16)


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A pretrain run, Structure-LTH's IMP (1 round), its refill run and refill-scratch_e / refill-scratch_b."""
    root = tmp_path_factory.mktemp("scratch")
    pre, imp = root / "pre", root / "imp"
    pretrain_synthetic(pre, epochs=2)
    assert main(["imp", "--pretrain", str(pre), "--out", str(imp), "--rounds", "1", "--policy", "structure_lth",
                 "--no-progress"]) == 0
    base = ["structure", *FAST, "--pretrain", str(pre), "--imp", str(imp), "--method", "refill", "--epochs", "1"]
    for name, extra in (("refill", ()), ("refill-scratch_e", ("--scratch", "e")),
                        ("refill-scratch_b", ("--scratch", "b", "--scratch-b-max-factor", "3", "--epochs", "4"))):
        assert main([*base, *extra, "--out", str(root / name)]) == 0
    return root, pre, imp


def test_scratch_runs_keep_the_structure_run_contract(runs):
    root, pre, imp = runs
    refill = read_metrics(root / "refill" / "round1" / "metrics.json")
    for budget in ("e", "b"):
        out = root / f"refill-scratch_{budget}"
        m = read_metrics(paths.metrics(out))
        assert set(CORE_KEYS) <= set(m) and m["method"] == "refill" and len(m["rounds"]) == 1
        assert storage.read_json(paths.hparams(out))["settings"]["structure"]["scratch"] == budget
        row = read_metrics(out / "round1" / "metrics.json")
        assert row["method"] == "refill" and row["scratch"] == budget and row["round"] == 1
        for f in ("mask.safetensors", "model.safetensors", "final.safetensors", "slim.safetensors", "metrics.json"):
            assert (out / "round1" / f).is_file(), f
        # The same structured ticket as the refill run: its mask, its slimmed shapes and FLOPs.
        mine, ticket = (Mask.load(d / "round1" / "mask.safetensors")[0] for d in (out, root / "refill"))
        assert mine.keys() == ticket.keys() and all(torch.equal(mine[n], ticket[n]) for n in mine)
        assert row["sparsity"] == refill["sparsity"] and row["flops_fraction"] == refill["flops_fraction"]
        assert row["params_fraction"] == refill["params_fraction"] and 0 < row["flops_fraction"] < 1
        slim, meta = load_slim(out / "round1" / "slim.safetensors")
        assert meta["scratch"] == budget and row["scratch_params"] == sum(p.numel() for p in slim.parameters())
        assert _shapes(slim) == _shapes(load_slim(root / "refill" / "round1" / "slim.safetensors")[0])
        assert row["scratch_seed"] == load_pretrained(pre).seed + SCRATCH_SEED + 1
        assert row["scratch_init"] == "ResNet.init_weights"  # timm's own init, at the slimmed shapes
        assert 0 <= row["test_acc"] <= 1 and 0 <= row["val_acc"] <= 1 and "max_abs_diff" not in row
        assert row["scratch_macs"] / row["dense_macs"] == pytest.approx(row["flops_fraction"])
    e = read_metrics(root / "refill-scratch_e" / "round1" / "metrics.json")
    b = read_metrics(root / "refill-scratch_b" / "round1" / "metrics.json")
    assert e["scratch_epochs"] == e["epochs_run"] == 1 and e["scratch_epoch_factor"] == 1
    # Scratch-B of a 4-epoch recipe: 4 times dense / slimmed MACs, capped at 3 here, truncated (Liu et al.'s main_B.py).
    factor = min(3.0, b["dense_macs"] / b["scratch_macs"])
    assert b["scratch_epoch_factor"] == pytest.approx(factor) and factor > 1 and b["scratch_max_factor"] == 3
    assert b["scratch_epochs"] == b["epochs_run"] == int(4 * factor) > 4


def test_a_scratch_model_is_the_tickets_slimmed_architecture_with_fresh_weights(runs):
    root, pre, imp = runs
    p = load_pretrained(pre)
    st = StructureHparams.from_dict({"method": "refill"})
    mask, bn, _ = structure_round(p, imp, 1, st, EXAMPLE)
    rewind = p.rewind_state(storage.read_json(paths.hparams(imp))["settings"]["imp"]["rewind"])
    plan, unsafe = sc.ticket_plan(p, rewind, Mask({**mask, **bn}), EXAMPLE)
    assert plan and not unsafe
    model, rule = sc.scratch_model(p, plan, EXAMPLE, seed=5)
    ticket = load_slim(root / "refill" / "round1" / "slim.safetensors")[0]  # the retrained ticket, slimmed
    assert _shapes(model) == _shapes(ticket)
    assert _shapes(model) != _shapes(p.new_model())
    rewound = apply_plan(p.model_from(rewind), plan, EXAMPLE)  # the rewind weights at the same shapes
    weights = [k for k, v in model.state_dict().items() if v.dim() == 4]
    state = model.state_dict()
    for other in (ticket.state_dict(), rewound.state_dict()):
        assert not any(torch.equal(state[k], other[k]) for k in weights)
    again, _ = sc.scratch_model(p, plan, EXAMPLE, seed=5)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in state.items())
    other_seed, _ = sc.scratch_model(p, plan, EXAMPLE, seed=6)
    assert not any(torch.equal(state[k], other_seed.state_dict()[k]) for k in weights)
    # Fresh at the slimmed shapes, not the dense init cut down: Kaiming fan-out sees the slimmed width.
    cut = apply_plan(p.new_model(seed=5), plan, EXAMPLE).state_dict()
    assert not any(torch.equal(state[k], cut[k]) for k in weights)
    assert rule == "ResNet.init_weights"


def test_scratch_b_scales_scratch_e_by_the_macs_ratio():
    hp = TrainHparams(epochs=160, schedule="multistep", milestones="80,120")
    assert sc.scratch_factor(100, 40, "e", 2.0) == 1.0
    assert sc.scratch_factor(100, 40, "b", 2.0) == 2.0  # Liu et al.'s ImageNet cap
    assert sc.scratch_factor(100, 40, "b", 0) == 2.5  # no cap, as their CIFAR code
    assert sc.scratch_factor(100, 80, "b", 2.0) == 1.25
    assert sc.scratch_factor(100, 100, "b", 2.0) == 1.0
    assert sc.scratch_hparams(hp, 1.0) is hp
    b = sc.scratch_hparams(hp, 100 / 37)
    assert (b.epochs, b.milestones) == (int(160 * 100 / 37), "216,324")  # 432 epochs, decays at 50% and 75%
    assert dataclasses.replace(b, epochs=160, milestones="80,120") == hp


@pytest.mark.parametrize("flags, words", [
    (("--scratch", "x"), "structure.scratch='x' is not allowed; e (Scratch-E), b (Scratch-B) or empty"),
    (("--scratch", "e", "--method", "regroup"), "structure.scratch='e' is not allowed; empty with method regroup"),
    (("--scratch", "e", "--reinit"), "structure.scratch='e' is not allowed; empty with reinit"),
    (("--scratch", "b", "--scratch-b-max-factor", "0.5"), "structure.scratch_b_max_factor=0.5 is not allowed"),
])
def test_bad_scratch_settings_are_refused_in_one_line_with_nothing_written(runs, capsys, flags, words):
    root, pre, imp = runs
    out = root / "refused"
    assert main(["structure", "--pretrain", str(pre), "--imp", str(imp), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_the_config_check_refuses_scratch_for_a_method_that_does_not_slim():
    config = load_config_files(["config/config.yaml", "config/smoke.yaml"])
    config["experiments"]["structure_ablations"] = {"refill-scratch_e": ["digits/test_resnet"],
                                                    "refill_plus-scratch_b": ["digits/test_resnet"]}
    check_config(config, data=False)
    config["experiments"]["structure_ablations"] = {"regroup-scratch_e": ["digits/test_resnet"]}
    with pytest.raises(ConfigError) as e:
        check_config(config, data=False)
    assert e.value.key == "experiments.structure_ablations" and "refill and refill_plus" in str(e.value)
