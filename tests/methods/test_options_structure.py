"""Structure options, each checked against what it must do: the refill criteria act_l1, act_l2 and saliency,
and regroup's fixed_parts and regroup_preset."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ticketbench.cli import main

from conftest import pretrain_synthetic
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.structure.refill import CHANNEL_SCORES, channel_budget, refill
from ticketbench.methods.structure.regroup import RegroupResult, regroup
from ticketbench.methods.structure.stage import StructureHparams, structure_round
from ticketbench.methods.structure.units import unit_groups


def _keep_one_channel(c_out, c_in):
    """A conv mask whose remaining weights fill exactly one output channel, so refill keeps one channel."""
    m = torch.zeros(c_out, c_in, 1, 1, dtype=torch.bool)
    m.view(-1)[:c_in] = True
    return Mask({"0.weight": m})


def _refilled(criterion, model, mask, batch):
    scores = CHANNEL_SCORES.get(criterion)(model, mask, batch)
    _, kept = refill(mask, scores)
    return scores["0.weight"], kept["0.weight"].tolist()


def test_act_l1_and_act_l2_rank_channels_by_their_norm():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 0.0]]).view(3, 2, 1, 1))
    model = nn.Sequential(conv)
    # Input channel 0 is one spike of 4, channel 1 is -1.5 everywhere; output channel c copies them as weighted.
    x = torch.stack([torch.tensor([[4.0, 0.0], [0.0, 0.0]]), torch.full((2, 2), -1.5)]).unsqueeze(0)
    batch = (x, torch.tensor([0]))
    mask = _keep_one_channel(3, 2)
    l1, kept_l1 = _refilled("act_l1", model, mask, batch)
    l2, kept_l2 = _refilled("act_l2", model, mask, batch)
    assert l1.tolist() == pytest.approx([4.0, 6.0, 0.4])  # sum |a|: the spread channel wins
    assert l2.tolist() == pytest.approx([16.0, 9.0, 0.16])  # sum a^2: the spike wins
    assert kept_l1 == [1] and kept_l2 == [0]


def test_saliency_ranks_channels_by_activation_times_gradient():
    conv = nn.Conv2d(1, 2, 1, bias=False)
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 1.0]).view(2, 1, 1, 1))
        head.weight.copy_(torch.tensor([[0.0, 3.0], [0.0, 0.0]]))  # the loss ignores channel 0
    model = nn.Sequential(conv, nn.Flatten(), head)
    batch = (torch.ones(1, 1, 1, 1), torch.tensor([0]))
    # a = (2, 1), logits = (3 a1, 0); dL/da = W^T (softmax - onehot) = (0, -3 p1) with p1 = 1 / (e^3 + 1).
    expected = [0.0, 3.0 / (math.exp(3) + 1)]
    sal, kept = _refilled("saliency", model, _keep_one_channel(2, 1), batch)
    assert sal.tolist() == pytest.approx(expected)
    assert kept == [1]
    assert _refilled("act_l1", model, _keep_one_channel(2, 1), batch)[1] == [0], "a plain norm picks the other one"
    assert all(p.grad is None for p in model.parameters()), "scoring leaves no gradients behind"


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("options_structure")
    pre, imp = root / "pre", root / "imp"
    pretrain_synthetic(pre, epochs=2)
    assert main(["imp", "--pretrain", str(pre), "--out", str(imp), "--rounds", "1", "--policy", "structure_lth",
                 "--epochs", "1", "--no-progress"]) == 0
    return load_pretrained(pre), imp


def _statistics(model, names, batch):
    """Per output channel of each named conv: sum |a|, sum a^2 and sum |a * dL/da| on ``batch``, in eval mode."""
    modules = dict(model.named_modules())
    outs = {}
    handles = [modules[n.rsplit(".", 1)[0]].register_forward_hook(lambda m, i, o, n=n: outs.__setitem__(n, o))
               for n in names]
    model.eval()
    x, y = batch
    try:
        loss = F.cross_entropy(model(x), y)
    finally:
        for h in handles:
            h.remove()
    grads = dict(zip(names, torch.autograd.grad(loss, [outs[n] for n in names])))
    stats = {}
    for n in names:
        a = outs[n].detach()
        stats[n] = {"act_l1": a.abs().sum((0, 2, 3)), "act_l2": a.pow(2).sum((0, 2, 3)),
                    "saliency": (a * grads[n]).abs().sum((0, 2, 3))}
    return stats


@pytest.mark.parametrize("criterion", ["act_l1", "act_l2", "saliency"])
def test_refill_keeps_the_channels_the_criterion_ranks_highest(imp_run, monkeypatch, criterion):
    pre, imp = imp_run
    called = {}
    for name in CHANNEL_SCORES.names():
        def spy(model, mask, batch=None, name=name, real=CHANNEL_SCORES.get(name)):
            # Our own statistics first: the criterion under test may leave state (gradients) behind.
            called[name] = _statistics(model, list(mask), batch)
            return real(model, mask, batch)
        monkeypatch.setitem(CHANNEL_SCORES._items, name, spy)
    example = torch.zeros(1, 3, 16, 16)
    mask, _, facts = structure_round(pre, imp, 1, StructureHparams(criterion=criterion), example)
    assert list(called) == [criterion]
    imp_mask, _ = Mask.load(imp / "round1" / "mask.safetensors")
    # Layers of a coupled group choose jointly (tests/methods/test_structure_units.py); the rest per layer, as here.
    joint = {f"{p}.weight" for g in unit_groups(pre.new_model(), example) if g.root in facts["coupled_groups"]
             for p in g.producers}
    assert joint and set(called[criterion]) - joint
    for n, stats in called[criterion].items():
        if n in joint:
            continue
        k = channel_budget(imp_mask[n])
        top = torch.sort(-stats[criterion].double(), stable=True).indices[:k]
        assert mask[n].flatten(1).any(1).nonzero().flatten().tolist() == sorted(top.tolist()), n


def test_fixed_parts_always_partitions_into_parts():
    g = torch.Generator().manual_seed(0)
    mask = {"w": torch.rand(32, 8, 3, 3, generator=g) < 0.5}
    kw = dict(parts=8, row_threshold=7, granularity=32, imbalance=0.1, seed=0)
    adaptive = regroup(mask, adaptive_parts=True, **kw)
    fixed = regroup(mask, adaptive_parts=False, **kw)
    # Adaptive: min(8, 32 // (7 + 1)) = 4 parts of about 8 rows, more than 7, so large enough for blocks.
    blocks = adaptive.blocks["w"]
    assert blocks and len(blocks) <= 4 and all(len(b.rows) >= 8 for b in blocks) and not adaptive.fallback
    # Fixed: 8 parts of at most floor(1.1 * 32 / 8) = 4 rows, too few for a block, so the layer keeps its mask.
    assert fixed.fallback == ["w"] and fixed.blocks["w"] == [] and torch.equal(fixed.mask["w"], mask["w"])


@pytest.mark.parametrize("fixed", [False, True])
def test_fixed_parts_reaches_regroup(imp_run, monkeypatch, fixed):
    import ticketbench.methods.structure.regroup as regroup_mod

    seen = []

    def stub(mask, **kw):
        # Partitioning the real network takes seconds; what matters here is what structure asks for.
        seen.append(kw)
        return RegroupResult(Mask({n: m.clone() for n, m in mask.items()}), {n: [] for n in mask}, list(mask))

    monkeypatch.setattr(regroup_mod, "regroup", stub)
    pre, imp = imp_run
    st = StructureHparams(method="regroup", parts=5, fixed_parts=fixed)
    structure_round(pre, imp, 1, st, torch.zeros(1, 3, 16, 16))
    assert len(seen) == 1 and seen[0]["parts"] == 5 and seen[0]["adaptive_parts"] is (not fixed)
    assert seen[0]["seed"] == pre.seed and seen[0]["row_threshold"] == 15


def test_released_preset_reaches_regroup(imp_run, monkeypatch):
    import dataclasses

    import ticketbench.methods.structure.regroup as regroup_mod

    seen = []

    def stub(mask, **kw):
        seen.append(kw)
        return RegroupResult(Mask({n: m.clone() for n, m in mask.items()}), {n: [] for n in mask}, list(mask))

    monkeypatch.setattr(regroup_mod, "regroup", stub)
    pre, imp = imp_run
    structure_round(pre, imp, 1, StructureHparams(method="regroup", regroup_preset="released"),
                    torch.zeros(1, 3, 16, 16))
    assert seen == [{"seed": pre.seed, **dataclasses.asdict(regroup_mod.RELEASED)}]
    assert seen[0]["row_threshold"] == 16 and seen[0]["adaptive_parts"] is False and seen[0]["parts"] == 8


def test_coupled_per_layer_is_the_papers_choice_in_every_layer(imp_run):
    pre, imp = imp_run
    example = torch.zeros(1, 3, 16, 16)
    mask, _, facts = structure_round(pre, imp, 1, StructureHparams(coupled="per_layer"), example)
    imp_mask, _ = Mask.load(imp / "round1" / "mask.safetensors")
    assert facts["coupled_groups"] == []
    for n, m in imp_mask.items():
        assert int(mask[n].flatten(1).any(1).sum()) == channel_budget(m), n
    joint, _, facts = structure_round(pre, imp, 1, StructureHparams(), example)
    assert facts["coupled_groups"] and any(not torch.equal(joint[n], mask[n]) for n in mask)
