"""Structure-LTH (8b10a76) against ours: its IMP step, Refill (per layer, ties, the activation criterion) and what
retraining does to emptied channels. Fixtures: drivers/slth (the released pruning_utils functions)."""

from __future__ import annotations

import pytest
import torch

from ticketbench.masks import Mask, magnitude_prune, prunable_names
from ticketbench.methods.structure.refill import (CHANNEL_SCORES, batchnorm_after, batchnorm_mask, refill,
                                                  refill_released)
from ticketbench.models import create_model

from . import synth
from .common import as_tensor, case, cases, declared, differing, digests, layer_map

NETWORKS = {"resnet20": "cifar_resnet20", "vgg16": "cifar_vgg16_bn", "resnet18": "cifar_resnet18"}
CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]  # the released normalize module's


def _model(net: str, layers: list, seed: int = 0, levels=None, shapes=None):
    """Our network of the released one with the fixture's conv weights, and our name -> released name."""
    model = create_model(NETWORKS[net], num_classes=10)
    to_released = layer_map(model, layers)
    shapes = shapes or [(n, s) for n, s, kind in layers if kind == "conv"]
    raw = synth.weights(seed, dict((n, tuple(s)) for n, s in shapes), levels=levels)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for ours, theirs in to_released.items():
            if theirs in raw:
                params[ours].copy_(as_tensor(raw[theirs]))
    return model, to_released


@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_imp_step_with_the_released_layer_rule(net):
    c = case("slth", f"imp_{net}")
    e = c["expected"]
    model, to_released = _model(net, e["layers"])
    names = prunable_names(model, "structure_lth_released")
    assert sorted(to_released[n] for n in names) == sorted(e["pruned_layers"])
    paper = prunable_names(model, "structure_lth")
    if set(paper) != set(names):  # VGG: our stem rule keeps features.0, the released name rule prunes it
        assert net == "vgg16" and set(names) - set(paper) == {"features.0.weight"}
        declared("slth-stem-rule")
    shapes = {n: tuple(s) for n, s, kind in e["layers"] if kind == "conv"}
    by_name = {t: o for o, t in to_released.items()}
    mask = None
    for r in e["rounds"]:
        raw = synth.weights(r["seed"], shapes)
        weights = {n: as_tensor(raw[to_released[n]]) * (mask[n] if mask else 1) for n in names}
        before = mask.kept if mask else sum(w.numel() for w in weights.values())
        mask = magnitude_prune(weights, 0.2, mask)
        assert before - mask.kept == r["removed"]
        for layer, flat, removed in r["threshold_ties"]:  # torch.topk's order among tied weights (all-magnitude-ties)
            mask[by_name[layer]].view(-1)[flat] = not removed
        if r["threshold_ties"]:
            declared("all-magnitude-ties")
        assert differing(digests({to_released[n]: m for n, m in mask.items()}), r["mask_digests"]) == []


def _row_digests(mask: Mask, to_released: dict) -> dict:
    return {to_released[n]: {k: v for k, v in synth.digest(m.reshape(m.shape[0], -1).numpy()).items() if k != "shape"}
            for n, m in mask.items()}


def _expected_rows(per_layer: list) -> dict:
    return {p["layer"]: {k: v for k, v in p["refilled_digest"].items() if k != "shape"} for p in per_layer}


def _starting_mask(model, to_released: dict, record: dict) -> Mask:
    """The released one-shot magnitude mask: above the threshold, plus the tied weights torch.topk kept."""
    params = dict(model.named_parameters())
    by_name = {t: o for o, t in to_released.items()}
    threshold = torch.tensor(record["threshold_abs"], dtype=torch.float32)
    mask = Mask({by_name[t]: params[by_name[t]].detach().abs() > threshold for t in record["kept_per_layer"]})
    for layer, flat, removed in record["threshold_ties"]:
        mask[by_name[layer]].view(-1)[flat] = not removed
    assert differing(digests({to_released[n]: m for n, m in mask.items()}), record["mask_digests"]) == []
    return mask


def _refill_inputs(c: dict, net: str, record: dict):
    model, to_released = _model(net, c["expected"]["layers"], shapes=c["inputs"]["synth_shapes"])
    start = _starting_mask(model, to_released, record)
    with torch.no_grad():
        start.apply_(model)
    return model, to_released, start


@pytest.mark.parametrize("name", cases("slth", "refill_vgg16_") + cases("slth", "refill_resnet18_"))
def test_refill_per_layer_rule(name):
    c = case("slth", name)
    net = name.split("_")[1]
    model, to_released, start = _refill_inputs(c, net, c["expected"]["starting_mask"])
    per_layer = c["expected"]["per_layer"]
    assert {to_released[n]: int(m.sum()) for n, m in start.items()} == {p["layer"]: p["input_kept"] for p in per_layer}
    rho = c["inputs"]["fillback_rate"]
    scores = CHANNEL_SCORES.get("l1")(model, start)  # the released 'magnitude': l1 of the masked trained rows
    released, _ = refill_released(start, scores, rho, torch.Generator().manual_seed(c["inputs"]["torch_manual_seed_before_call"]), "l1")
    assert differing(_row_digests(released, to_released), _expected_rows(per_layer)) == []
    # Ours: the same channels wherever the budget is not a whole number and the layer kept a weight; else declared.
    exact, kept = refill(start, scores, rho)
    for p in per_layer:
        ours = next(n for n, t in to_released.items() if t == p["layer"])
        if kept[ours].tolist() != p["full_rows"]:
            assert p["input_kept"] == 0 or float(p["num_channel"] + (p["C_out"] - p["num_channel"]) * rho).is_integer()
            declared("slth-refill-rule")


def test_refill_keeps_one_channel_more_when_the_budget_is_whole():
    """Every row keeps half its weights, so each layer's budget x = C/2 (+ rho's share) is a whole number."""
    c = case("slth", "refill_integer_budget")
    model, to_released = _model("resnet20", c["expected"]["layers"], shapes=c["inputs"]["synth_shapes"])
    layers = prunable_names(model, "structure_lth_released")
    params = dict(model.named_parameters())
    mask = Mask()
    for n in layers:
        rows = torch.zeros(params[n].shape[0], params[n][0].numel(), dtype=torch.bool)
        rows[:, : rows.shape[1] // 2] = True
        mask[n] = rows.view(params[n].shape)
    with torch.no_grad():
        mask.apply_(model)
    scores = CHANNEL_SCORES.get("l1")(model, mask)
    for rho, e in c["expected"]["by_fillback_rate"].items():
        seed = c["inputs"]["torch_manual_seed_before_call"]
        released, _ = refill_released(mask, scores, float(rho), torch.Generator().manual_seed(seed), "l1")
        assert differing(_row_digests(released, to_released), _expected_rows(e["per_layer"])) == [], rho
        _, kept = refill(mask, scores, float(rho))
        assert all(len(kept[n]) + 1 == int(released[n].flatten(1).all(1).sum()) for n in layers)
    declared("slth-refill-rule")


def _remain_mask(model, layers: list[str]) -> Mask:
    params = dict(model.named_parameters())
    out = Mask()
    for i, n in enumerate(layers):
        c_out = params[n].shape[0]
        per = params[n][0].numel()
        q = synth.labels(5, i, c_out, 4)
        rows = torch.zeros(c_out, per, dtype=torch.bool)
        for row, qq in enumerate(q):
            rows[row, : (int(qq) + 1) * per // 8] = True
        out[n] = rows.view(params[n].shape)
    return out


def test_refill_remain_ties_as_the_released_draw():
    c = case("slth", "refill_remain_ties")
    model = create_model("cifar_resnet18", num_classes=10)
    to_released = layer_map(model, c["expected"]["layers"])
    layers = prunable_names(model, "structure_lth_released")
    mask = _remain_mask(model, layers)
    for seed, e in c["expected"]["by_torch_seed"].items():
        scores = CHANNEL_SCORES.get("remain")(model, mask)
        released, _ = refill_released(mask, scores, 0.0, torch.Generator().manual_seed(int(seed)), "remain")
        assert differing(_row_digests(released, to_released), _expected_rows(e["per_layer"])) == [], seed
    # Ours keeps exactly the budget, ties to the lower index, every channel whole: never the partial tied rows.
    ours, _ = refill(mask, CHANNEL_SCORES.get("remain")(model, mask))
    assert all(bool((m.flatten(1).all(1) | ~m.flatten(1).any(1)).all()) for m in ours.values())
    declared("slth-refill-rule")


@pytest.mark.parametrize("net", ["vgg16", "resnet18"])
def test_released_stale_activation_criterion_reproduces_the_released_bug(net):
    c = case("slth", "refill_activation_l1")
    e = c["expected"][net]["by_fillback_rate"]["0.0"]
    shapes = [(n, s) for n, s, kind in c["expected"][net]["layers"] if kind == "conv"]
    model, to_released = _model(net, c["expected"][net]["layers"], shapes=shapes)
    start = _starting_mask(model, to_released, c["expected"][net]["starting_mask"])
    with torch.no_grad():
        start.apply_(model)
    x = as_tensor(synth.values(c["inputs"]["batch_seed"], 0, (4, 3, 32, 32)))
    mean, std = torch.tensor(CIFAR10_MEAN), torch.tensor(CIFAR10_STD)
    x = (x - mean[None, :, None, None]) / std[None, :, None, None]  # the released model normalises inside
    scores = CHANNEL_SCORES.get("released_stale_act_l1")(model, start, (x, None))
    released, _ = refill_released(start, scores, 0.0, torch.Generator().manual_seed(0), "released_stale_act_l1")
    assert differing(_row_digests(released, to_released), _expected_rows(e["per_layer"])) == []
    declared("slth-refill-activation-counter")


def test_emptied_channels_keep_a_trainable_batchnorm_in_the_released_code_and_not_in_ours():
    """The released code masks conv weights only: an emptied channel's BatchNorm shift trains and the channel outputs
    ReLU(beta). Ours zeroes and freezes exactly those channels' scale and shift (unless refill_batchnorm released)."""
    e = case("slth", "refill_retrain_bn")["expected"]
    assert not e["summary"]["bn_bias_zeroed"]["any"] and e["summary"]["bn_bias_changed_by_step"]["all"]
    assert e["summary"]["channel_output_nonzero_after_relu"]["any"]
    assert all(".bn" not in n and not n.startswith("fc") for n in e["weight_mask_carriers"])
    model = create_model("cifar_resnet18", num_classes=10)
    to_released = layer_map(model, e["layers"])
    by_name = {r: o for o, r in to_released.items()}
    params = dict(model.named_parameters())
    mask = Mask()
    for p in e["per_layer"]:
        n = by_name[p["layer"]]
        keep = torch.ones(params[n].shape[0], dtype=torch.bool)
        keep[p["emptied_channels"]] = False
        mask[n] = keep.view(-1, 1, 1, 1).expand_as(params[n]).clone()
    bn_of = batchnorm_after(model, list(mask), torch.zeros(1, 3, 32, 32))
    bn = batchnorm_mask(model, mask, bn_of)
    for p in e["per_layer"]:
        n = by_name[p["layer"]]
        assert bn_of[n].rsplit(".", 1)[-1] == p["batchnorm"].rsplit(".", 1)[-1]  # bn1 / bn2 / shortcut's 1
        emptied = (~bn[f"{bn_of[n]}.bias"]).nonzero().flatten().tolist()
        assert emptied == p["emptied_channels"] and torch.equal(bn[f"{bn_of[n]}.weight"], bn[f"{bn_of[n]}.bias"])
    declared("slth-refill-batchnorm")
