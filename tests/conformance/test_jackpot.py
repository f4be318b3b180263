"""Lottery jackpots (1b802ea) against ours: per-layer budgets, the initial mask, the swap update, the learning-rate
steps and 20 search steps on the released ResNet-32. Fixtures: drivers/jackpot."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ticketbench.hparams import TrainHparams
from ticketbench.masks import prunable_names, prune_to_sparsity
from ticketbench.methods.jackpot.search import (PRUNED_SCORE, attach, initial_scores, released_budget,
                                                swap_update)
from ticketbench.models import create_model
from ticketbench.train import lr_at

from . import synth
from .common import as_tensor, case, declared, differing, digests, tensors

NETWORKS = {"resnet32_cifar10": "cifar_wrn32_2a", "vgg19_cifar10": "cifar_vgg19_bn"}
HEADS = ("fc.weight", "classifier.weight")


def _convs(model) -> list[str]:
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]


def _setup(arch: str, layers: list, seed: int, levels):
    """Our network of the released one, its searched weights from the fixture's seed, and the name maps."""
    model = create_model(NETWORKS[arch], num_classes=10)
    released = [(n, s) for n, s, *_ in layers]
    raw = synth.weights(seed, dict(released), levels=levels)  # stream i = the i-th released layer, classifier too
    masked = [n for n, _ in released if n not in HEADS]
    ours = _convs(model)
    assert [tuple(dict(released)[n]) for n in masked] == [tuple(dict(model.named_parameters())[n].shape) for n in ours]
    assert prunable_names(model, "jackpot") == ours  # the released budget's layers: every conv, no classifier
    to_released = dict(zip(ours, masked))
    weights = {n: as_tensor(raw[to_released[n]]) for n in ours}
    return model, weights, to_released, raw


@pytest.mark.parametrize("key", ["resnet32_cifar10_s0.9", "resnet32_cifar10_s0.95", "vgg19_cifar10_s0.9",
                                 "vgg19_cifar10_s0.95", "resnet32_cifar10_s0.9_levels16"])
def test_released_budget_rounding_reproduces_the_released_budgets(key):
    e = case("jackpot", "budget")["expected"][key]
    _, weights, to_released, _ = _setup(e["arch"], e["layers"], e["weights_seed"], e["weights_levels"])
    budget = released_budget(weights, e["sparsity"])
    expected = {n: d for n, d in e["mask_digests"].items() if n not in HEADS}
    assert differing(digests({to_released[n]: m for n, m in budget.items()}), expected) == []
    # Ours by default: exactly round(s N) pruned over all layers, ties to the lower index. Equal where nothing ties
    # at the threshold and N (1 - s) is whole; otherwise the declared deviation.
    exact = prune_to_sparsity(weights, e["sparsity"])
    assert exact.total - exact.kept == round(e["sparsity"] * exact.total)
    if exact.kept != e["total_kept_excluding_classifier"]:
        declared("jp-budget-rounding")


def test_initial_scores_and_mask_are_the_released_ones():
    c, t = case("jackpot", "init"), tensors("jackpot", "init")
    w = c["inputs"]["weights"]
    _, weights, to_released, _ = _setup("resnet32_cifar10", c["expected"]["layers"], w["seed"], w["levels"])
    budget = released_budget(weights, c["inputs"]["prune_rate"])
    scores = initial_scores(weights, budget, "magnitude", seed=0)
    for ours, theirs in to_released.items():
        if f"on_pretrained.{theirs.removesuffix('.weight')}.b_mask" in t:
            key = f"on_pretrained.{theirs.removesuffix('.weight')}"
            assert torch.equal(budget[ours], t[f"{key}.b_mask"].bool())
            assert torch.equal(scores[ours], t[f"{key}.score"])  # 1.0 kept, float32 0.99 pruned
    assert float(torch.tensor(PRUNED_SCORE, dtype=torch.float32)) == 0.9900000095367432
    expected = {n: d for n, d in c["expected"]["on_pretrained"]["mask_digests"].items() if n not in HEADS}
    assert differing(digests({to_released[n]: m for n, m in budget.items()}), expected) == []


def test_swap_update_is_the_released_one():
    c = case("jackpot", "swap_unit")
    for name, *_ in c["inputs"]["scenarios"]:
        e = c["expected"][name]
        i = e["inputs"]
        seed = int(i["scores"].split("(")[1].split(",")[0])
        levels = i["scores"].split("levels=")[1].rstrip(")") if "levels=" in i["scores"] else "None"
        scores = as_tensor(synth.values(seed, 0, (i["n"],), None if levels == "None" else int(levels)))
        mask = torch.tensor(e["mask_before"], dtype=torch.bool)
        q = swap_update(scores, mask, i["rate"])
        if name in ("one_kept", "one_pruned"):
            # Released: a single revive/remove candidate is a 0-d tensor there, and the layer never swaps.
            assert e["returned"] == 0 and q == 1
            declared("jp-swap-single")
            continue
        assert (q, mask.int().tolist()) == (e["returned"], e["mask_after"]), name


def test_cosine_epoch_schedule_is_the_released_learning_rate_at_every_step():
    e = case("jackpot", "search20")["expected"]
    hp = TrainHparams(epochs=30, lr=0.1, schedule="cosine_epoch", warmup_epochs=0)
    for variant in ("ipe391", "ipe4"):
        per_epoch = e[variant]["iterations_per_epoch"]
        ours = [lr_at(hp, it, per_epoch) for it in range(20)]
        assert ours == pytest.approx(e[variant]["lr_per_step"], abs=1e-15)
    # Ours by default anneals every iteration, which the released code does not.
    assert lr_at(TrainHparams(epochs=30, lr=0.1, schedule="cosine", warmup_epochs=0), 1, 4) != e["ipe4"]["lr_per_step"][1]
    declared("jp-lr-schedule")
    assert e["lr_per_epoch_CosineAnnealingLR"][:30] == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * k / 30)) for k in range(30)], abs=1e-15)


def _search_steps(variant: str = "ipe391"):
    """Our masked conv, straight-through scores, SGD on the scores and swap step, on the released network's weights
    and batches: per step the swaps per layer, and the first two layers' scores and masks after steps 1 and 20."""
    c = case("jackpot", "search20")
    i = c["inputs"]
    torch.manual_seed(0)
    model, weights, to_released, raw = _setup("resnet32_cifar10", c["expected"]["layers"], i["weights"]["seed"],
                                              i["weights"]["levels"])
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
        params["fc.weight"].copy_(as_tensor(raw["fc.weight"]).view(10, -1))
        params["fc.bias"].zero_()
    budget = released_budget(weights, i["prune_rate"])
    scored = attach(model, initial_scores(weights, budget, "magnitude", 0), budget, "swap")
    opt = torch.optim.SGD([pm.scores for pm in scored.values()], lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()
    swaps, snaps = [], {}
    for step in range(i["steps"]):
        x = as_tensor(synth.values(1000 + step, 0, (16, 3, 32, 32)))
        y = torch.from_numpy(synth.labels(1000 + step, 1, 16, 10))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        swaps.append([swap_update(pm.scores, pm.mask, 1.0) for pm in scored.values()])
        if step + 1 in (1, 5, 20):
            snaps[step + 1] = {to_released[n]: (pm.scores.detach().clone(), pm.mask.clone())
                               for n, pm in list(scored.items())[:2]}
            snaps[f"digests{step + 1}"] = digests({to_released[n]: pm.mask for n, pm in scored.items()})
    return c["expected"][variant], tensors("jackpot", "search20"), swaps, snaps


#: Spread measured over the native, avx2 and default CPU kernel paths (ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA):
#: step-1 scores differ by up to 1.7e-5 from the released ones; every layer swaps as the released search through
#: step 6; then a swap decided by a near-tie goes the other way and the searches drift apart (on the fixture's own
#: kernel path they stay identical to step 20): cumulative swaps within 4.2%, the first two layers' masks agree on
#: 82-100% of their weights after 20 steps. The bounds below leave a margin of about 2-3x.
SCORE_ATOL, EXACT_STEPS, SWAP_SPREAD, MASK_AGREEMENT = 5e-5, 5, 0.10, 0.70


def test_twenty_search_steps_swap_as_the_released_search():
    """Float sums differ in the last bits between our network (a linear classifier) and the released one (a 1x1
    conv), and between CPU kernel paths, so the comparison is exact as long as no swap can have gone the other way,
    and within the measured spread after that."""
    e, t, swaps, snaps = _search_steps()
    released = [s["swaps"][: len(swaps[0])] for s in e["per_step"]]
    # Steps 1-2: nothing swaps (the 0.01 gap between kept and pruned scores is wider than one step); the scores
    # moved by one SGD step equal the released ones.
    assert released[0] == swaps[0] == [0] * len(swaps[0])
    for layer, (score, mask) in snaps[1].items():
        key = f"ipe391.step1.{layer.removesuffix('.weight')}"
        assert torch.allclose(score, t[f"{key}.score"], rtol=0, atol=SCORE_ATOL)
        assert torch.equal(mask, t[f"{key}.b_mask"].bool())
    # Steps 1-5: every layer swaps as many pairs as the released search, and every mask is the released one.
    assert swaps[:EXACT_STEPS] == released[:EXACT_STEPS]
    for step in (1, EXACT_STEPS):
        expected = {n: d for n, d in e["snapshots_after_steps"][str(step)]["mask_digests"].items() if n not in HEADS}
        assert differing(snaps[f"digests{step}"], expected) == [], f"step {step}"
    # Steps 6-20: the search follows the released one to within the measured spread.
    ours, theirs = sum(map(sum, swaps)), sum(map(sum, released))
    assert abs(ours - theirs) <= SWAP_SPREAD * theirs, (ours, theirs)
    for layer, (_, mask) in snaps[20].items():
        key = f"ipe391.step20.{layer.removesuffix('.weight')}"
        assert float((mask == t[f"{key}.b_mask"].bool()).float().mean()) >= MASK_AGREEMENT
