"""open_lth (2ce732f) `sparse_global` IMP step against ours, on the fixtures of drivers/openlth."""

from __future__ import annotations

import pytest

from ticketbench.masks import magnitude_prune, prunable_names
from ticketbench.models import conv_linear_layers, create_model

from . import synth
from .common import as_tensor, case, declared, differing, digests, layer_map

NETWORKS = {  # fixture -> our network of the same layers, and the policy naming open_lth's layer choice
    "imp_resnet20": (dict(name="cifar_resnet20", shortcut="B"), "openlth"),  # open_lth's shortcuts are projections
    "imp_ties": (dict(name="cifar_resnet20", shortcut="B"), "openlth"),
    "imp_vgg16": (dict(name="cifar_vgg16_bn"), "openlth_vgg"),
}


def _rounds(name: str, rule: str):
    c = case("openlth", name)
    kwargs, policy = NETWORKS[name]
    model = create_model(num_classes=10, **kwargs)
    to_released = layer_map(model, c["expected"]["layers"])
    names = prunable_names(model, policy)
    assert sorted(to_released[n] for n in names) == sorted(c["expected"]["layers_actually_pruned"])
    uncounted = sum(m.weight.numel() for n, m in conv_linear_layers(model).items() if f"{n}.weight" not in names)
    shapes = {t: shape for t, shape, *_ in c["expected"]["layers"]}
    mask = None
    for r in c["expected"]["rounds"]:
        raw = synth.weights(r["seed"], shapes, levels=r["levels"])
        weights = {n: as_tensor(raw[to_released[n]]) * (mask[n] if mask else 1) for n in names}
        before = mask.kept if mask else sum(w.numel() for w in weights.values())
        mask = magnitude_prune(weights, 0.2, mask, rule=rule, uncounted=uncounted)
        ours = digests({to_released[n]: m for n, m in mask.items()})
        expected = {n: d for n, d in r["mask_digests"].items() if n in ours}
        yield r, before, before - mask.kept, differing(ours, expected)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_openlth_rule_reproduces_the_released_step(name):
    for r, _, removed, diff in _rounds(name, "openlth"):
        assert diff == [] and removed == r["removed"], f"round {r['round']}"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_default_rule_differs_only_by_the_declared_count_and_ties(name):
    for r, before, removed, diff in _rounds(name, "exact"):
        # Ours removes round(0.2 n) of the pruned layers' weights; open_lth ceil(0.2 n) + 1 of all, plus ties.
        assert removed == round(0.2 * before)
        assert removed != r["removed"] and diff
    declared("openlth-prune-count")
