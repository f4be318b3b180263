"""Channel units from Torch-Pruning's dependency graph: which groups can lose channels, that removing zero units
changes no output, joint refill choices in coupled groups, policy cover, and `ticketbench backbones`."""

import copy
import re

import pytest
import torch
from torch import nn

from ticketbench.cli import main
from ticketbench.errors import ConfigError
from ticketbench.masks import MIN_COVERAGE, POLICIES, LayerPolicy, Mask, coverage, policy_names, prunable_names
from ticketbench.methods.structure.refill import joint_budget, joint_choice, l1_of_weights, refill
from ticketbench.methods.structure.units import (_GroupedConvPruner, prune, removable_units, safe_plan, same_function,
                                                unit_groups)
from ticketbench.models import create_model

EXAMPLE = torch.zeros(1, 3, 32, 32)


def _model(name):
    torch.manual_seed(0)
    return create_model(name, num_classes=10, in_chans=3).eval()


@pytest.mark.parametrize("name", ["test_resnet", "test_convnext", "test_vit", "mobilenetv3_small_050", "regnetx_002",
                                  "test_efficientnet", "cifar_resnet20"])
def test_removing_zero_units_changes_no_output(name):
    model = _model(name)
    groups = unit_groups(model, EXAMPLE)
    modules = dict(model.named_modules())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in modules.values():  # BatchNorm statistics away from 0/1, so a zero channel is not zero by accident
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1, generator=g)
                m.running_var.uniform_(0.5, 2, generator=g)
        for grp in groups:
            if not grp.removable:
                continue
            drop = [u for u in range(grp.units) if float(torch.rand((), generator=g)) < 0.4]
            channels = [c for u in drop for c in range(u * grp.width, (u + 1) * grp.width)]
            for n in grp.producers + grp.norms:
                modules[n].weight[channels] = 0
                if getattr(modules[n], "bias", None) is not None:
                    modules[n].bias[channels] = 0
    plan, unsafe = safe_plan(model, EXAMPLE)
    assert not unsafe
    slim = prune(copy.deepcopy(model), EXAMPLE, plan)
    assert plan, f"{name}: nothing removed"
    x = torch.randn(4, 3, 32, 32, generator=g)
    with torch.no_grad():
        assert float((model.double()(x.double()) - slim.double()(x.double())).abs().max()) <= 1e-10
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in model.parameters())
    replayed = _model(name)
    prune(replayed, EXAMPLE, plan)
    assert [p.shape for p in replayed.parameters()] == [p.shape for p in slim.parameters()]


def test_the_groups_say_what_cannot_lose_a_channel():
    vit = {g.root: g for g in unit_groups(_model("test_vit"), EXAMPLE)}
    assert all(vit[f"blocks.{i}.mlp.fc1"].removable for i in range(6))
    assert all("split" in vit[f"blocks.{i}.attn.qkv"].blocker for i in range(6))
    assert "LayerNorm" in vit["patch_embed.proj"].blocker and "pos_embed" in vit["patch_embed.proj"].blocker
    assert vit["head"].blocker == "head is the classifier"
    resnet20 = unit_groups(_model("cifar_resnet20"), EXAMPLE)
    assert any(g.blocker and "padding" in g.blocker for g in resnet20)
    regnet = unit_groups(_model("regnetx_002"), EXAMPLE)
    grouped = [g for g in regnet if g.width > 1]
    assert grouped and all(g.width == 8 and g.removable and len(g.producers) == 2 for g in grouped)


def test_a_grouped_conv_loses_whole_groups_only():
    conv = nn.Conv2d(16, 16, 3, groups=2)
    with pytest.raises(ValueError, match="loses whole groups of 8 channels"):
        _GroupedConvPruner().prune_out_channels(conv, [0, 1])
    _GroupedConvPruner().prune_out_channels(conv, list(range(8, 16)))
    assert (conv.in_channels, conv.out_channels, conv.groups, tuple(conv.weight.shape)) == (8, 8, 1, (8, 8, 3, 3))


def test_coupled_layers_choose_their_channels_together():
    model = _model("mobilenetv3_small_050")
    groups = unit_groups(model, EXAMPLE)
    names = prunable_names(model, "structure_lth")
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(0)
    mask = Mask({n: torch.rand(params[n].shape, generator=g) > 0.4 for n in names})
    out, _ = refill(mask, l1_of_weights(model, mask), groups=groups)
    coupled = [grp for grp in groups if joint_choice(grp, mask)]
    assert len(coupled) >= 10  # the stem's group is not one: the stem is outside the policy
    for grp in coupled:
        alive = [out[w].flatten(1).any(1) for w in grp.weights()]
        assert all(torch.equal(a, alive[0]) for a in alive)
        assert int(alive[0].sum()) == joint_budget([mask[w] for w in grp.weights()], grp.width)
    # With the emptied channels zero (and their BatchNorms), every coupled group loses them.
    with torch.no_grad():
        out.apply_(model)
        for grp in coupled:
            for n in grp.norms:
                keep = out[grp.weights()[0]].flatten(1).any(1)
                mod = dict(model.named_modules())[n]
                mod.weight.mul_(keep)
                mod.bias.mul_(keep)
            for p in grp.producers:
                bias = dict(model.named_modules())[p].bias
                if bias is not None:
                    bias.mul_(out[f"{p}.weight"].flatten(1).any(1))
    assert all(removable_units(model, grp) for grp in coupled)


def test_every_policy_but_the_narrow_one_covers_a_transformer():
    vit = _model("test_vit")
    for name in POLICIES.names():
        if not POLICIES.get(name).linear and not POLICIES.get(name).narrow:
            # A released code's conv-only rule (structure_lth_released): on a transformer it is refused in one line.
            with pytest.raises(ConfigError, match=rf"imp\.policy='{name}' .*at least 80%"):
                policy_names(vit, name, "imp.policy", "test_vit")
            continue
        names, cover = policy_names(vit, name, "imp.policy", "test_vit")
        assert cover == coverage(vit, names) and (cover >= MIN_COVERAGE or POLICIES.get(name).narrow)
    assert coverage(vit, prunable_names(vit, "convs_only")) < 0.2
    with pytest.raises(ConfigError) as e:
        policy_names(vit, LayerPolicy(True, False, True, False, "convs"), "imp.policy", "test_vit")
    assert "at least 80%" in str(e.value) and "16.7%" in str(e.value) and "\n" not in str(e.value)


def test_imp_refuses_a_narrow_cover_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(POLICIES._items, "convs_plain", LayerPolicy(True, False, True, False, "convs, not narrow"))
    pre = tmp_path / "pre"
    assert main(["pretrain", "--dataset", "digits", "--backbone", "test_vit", "--epochs", "1", "--no-progress",
                 "--out", str(pre)]) == 0
    capsys.readouterr()
    assert main(["imp", "--pretrain", str(pre), "--policy", "convs_plain", "--rounds", "1", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "imp")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "imp.policy='convs_plain'" in err and "ticketbench backbones test_vit" in err
    assert not (tmp_path / "imp").exists()


def test_backbones_lists_cover_and_structure(capsys):
    assert main(["backbones", "test_vit"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^structure_lth +83\.3% ", out, re.M) and "asked for by name only" in out
    assert re.search(r"^structure_lth_released +16\.7% .*REFUSED: below 80%", out, re.M)
    assert "refill, refill_plus: 6 of 13 channel groups can lose channels" in out and "blocks.*.mlp.fc1 (6)" in out
    assert "regroup: 0 of 24 pruned layers are plain convolutions" in out


def test_a_function_that_is_not_zero_at_zero_blocks_its_channels_unless_it_gates():
    class SigmoidBetween(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.bn, self.c2 = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3)

        def forward(self, x):
            return self.c2(torch.sigmoid(self.bn(self.c1(x)))).mean((2, 3))

    groups = {g.root: g for g in unit_groups(SigmoidBetween().eval(), torch.zeros(1, 3, 16, 16))}
    assert "sigmoid that is not a gate" in groups["c1"].blocker
    # MobileNetV3's squeeze-excite gates multiply the channel they gate: those groups stay removable.
    mobilenet = unit_groups(_model("mobilenetv3_small_050"), EXAMPLE)
    assert sum(g.removable for g in mobilenet) == len(mobilenet) - 1  # all but the classifier


def test_a_group_whose_removal_would_change_the_outputs_stays_whole():
    class ChannelMean(nn.Module):
        """Subtracts the mean over channels functionally: no module the graph analysis could name."""

        def __init__(self):
            super().__init__()
            self.c1, self.bn, self.c2 = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3)

        def forward(self, x):
            y = torch.relu(self.bn(self.c1(x)))
            return self.c2(y - y.mean(1, keepdim=True)).mean((2, 3))

    model, example = ChannelMean().eval(), torch.zeros(1, 3, 16, 16)
    with torch.no_grad():
        for t in (model.c1.weight, model.c1.bias, model.bn.weight, model.bn.bias):
            t[:3] = 0
    plan, unsafe = safe_plan(model, example)
    assert unsafe == ["c1"] and plan == []
    assert same_function(model, prune(copy.deepcopy(model), example, plan), example)


def test_a_flatten_walk_past_the_bound_blocks_its_group_in_words(monkeypatch):
    """CoAtNet at 32x32 made one group's walk through Torch-Pruning's flatten mappings take 18 GB; past the bound the
    walk stops and the group is blocked (the other groups are read as before)."""
    import torch

    from ticketbench.methods.structure import units
    from ticketbench.models import create_model

    model = create_model("cifar_resnet20", num_classes=10)  # its walks pass flatten mappings
    example = torch.zeros(1, 3, 32, 32)
    free = {g.root: g for g in units.unit_groups(model, example)}
    monkeypatch.setattr(units, "MAX_MAPPED_INDICES", 0)
    bounded = {g.root: g for g in units.unit_groups(model, example)}
    assert set(bounded) >= set(free)  # a stopped walk couples nothing, so its layers report their own groups
    stopped = [r for r, g in bounded.items() if g.blocker and "flattened and reshaped" in g.blocker]
    assert stopped and not any("flattened" in (g.blocker or "") for g in free.values())
