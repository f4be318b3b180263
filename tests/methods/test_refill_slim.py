"""Refill keeps exactly its channel budget with the right channels; slimmed models equal masked ones."""

import pytest
import torch

from ticketbench.masks import Mask, prunable_names
from ticketbench.methods.structure.refill import (CHANNEL_SCORES, batchnorm_after, batchnorm_mask, channel_budget,
                                        channel_sparsity, refill)
from ticketbench.models import create_model
from ticketbench.methods.structure.slim import load_slim, macs, save_slim, slim


def test_channel_budget_formula():
    m = torch.zeros(8, 4, 3, 3, dtype=torch.bool)
    m.view(-1)[:90] = True  # 90 weights = 2.5 channels of 36
    assert channel_budget(m) == 3
    assert channel_budget(m, rho=0.5) == 6  # ceil(2.5 + 5.5 * 0.5) = ceil(5.25)
    assert channel_budget(torch.zeros_like(m)) == 0
    assert channel_budget(torch.ones_like(m)) == 8
    assert channel_budget(m, round_to=4) == 4 and channel_budget(m, round_to=16) == 8  # capped at C_out


def test_refill_keeps_budget_and_highest_channels():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(6, 2, 3, 3, generator=g) < 0.4
    scores = torch.tensor([0.5, 3.0, 1.0, 3.0, 0.1, 2.0])
    new, kept = refill(Mask({"w": m}), {"w": scores})
    budget = channel_budget(m)
    assert len(kept["w"]) == budget
    ranked = [1, 3, 5, 2, 0, 4][:budget]  # ties (3.0, 3.0) go to the lower index first
    assert kept["w"].tolist() == sorted(ranked)
    rows = new["w"].flatten(1)
    assert rows[kept["w"]].all() and not rows[[i for i in range(6) if i not in ranked]].any()


def test_l1_and_remain_scores():
    model = torch.nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 1.0]]).view(3, 2, 1, 1))
    wrapper = torch.nn.Sequential(model)
    mask = Mask({"0.weight": torch.tensor([[True, True], [False, True], [True, False]]).view(3, 2, 1, 1)})
    assert CHANNEL_SCORES.get("l1")(wrapper, mask)["0.weight"].tolist() == [3.0, 0.5, 1.0]
    assert CHANNEL_SCORES.get("remain")(wrapper, mask)["0.weight"].tolist() == [2.0, 1.0, 1.0]


def _refilled(name, fraction=0.6, seed=0, round_to=1):
    torch.manual_seed(seed)
    model = create_model(name, num_classes=10).eval()
    names = [n for n in prunable_names(model, "structure_lth") if n.endswith("weight")
             and dict(model.named_parameters())[n].dim() == 4]
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(seed)
    masks = Mask()
    for n in names:
        c = params[n].shape[0]
        k = max(1, round(c * (1 - fraction)))
        keep = torch.randperm(c, generator=g)[: min(c, round_to * -(-k // round_to))]
        m = torch.zeros(c, dtype=torch.bool)
        m[keep] = True
        masks[n] = m.view(-1, 1, 1, 1).expand_as(params[n]).clone()
    example = torch.zeros(1, 3, 32, 32)
    bn = batchnorm_mask(model, masks, batchnorm_after(model, names, example))
    Mask({**masks, **bn}).apply_(model)
    # Give BatchNorm non-trivial statistics so that a wrong removal would show.
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    return model, masks, example


@pytest.mark.parametrize("name", ["cifar_resnet20", "test_resnet", "cifar_vgg16_bn"])
def test_slimmed_model_equals_masked_model(name, tmp_path):
    model, masks, example = _refilled(name)
    assert channel_sparsity(masks) > 0.5
    small, plan = slim(model, example)
    assert plan, "nothing was removable"
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert (small(x) - model(x)).abs().max() <= 1e-4
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    assert macs(small, example) < macs(model, example)
    save_slim(tmp_path / "slim.safetensors", small, plan, backbone=name, num_classes=10, in_chans=3,
              input_size=(3, 32, 32))
    back, meta = load_slim(tmp_path / "slim.safetensors")
    with torch.no_grad():
        assert torch.equal(back(x), small(x))
    assert meta["backbone"] == name


def test_nothing_removed_when_batchnorm_still_fires():
    torch.manual_seed(0)
    model = create_model("cifar_vgg16_bn", num_classes=10).eval()
    with torch.no_grad():
        model.features[0].weight[:3].zero_()  # filter empty, but BatchNorm shift still produces output
        model.features[1].bias[:3] = 0.7
    small, plan = slim(model, torch.zeros(1, 3, 32, 32))
    assert all(name != "features.0" or not set(idxs) & {0, 1, 2} for name, idxs in plan)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (small(x) - model(x)).abs().max() <= 1e-4
