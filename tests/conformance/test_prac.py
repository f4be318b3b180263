"""PrAC-LTH (c65fd67) against ours: PrAC set selection in round 0 and later rounds, the early stop, the IMP step.

Fixtures: drivers/prac (the released main()'s own lines, run on synthetic records, logits and distances)."""

from __future__ import annotations

import pytest
import torch

from ticketbench.masks import magnitude_prune, prunable_names
from ticketbench.methods.prac.critical_sets import critical_for_pruning, critical_for_training
from ticketbench.methods.prac.early_stop import EarlyStop
from ticketbench.models import create_model

from . import synth
from .common import as_tensor, case, cases, declared, differing, digests, layer_map, tensors


def _expected_set(name: str):
    c, t = case("prac", name), tensors("prac", name)
    e = dict(c["expected"])
    if not isinstance(e["selected"], list):  # large sets live in the tensors file
        e["selected"] = t["selected"].tolist()
    return c, t, e


@pytest.mark.parametrize("name", cases("prac", "sets_round0_"))
def test_round0_set_is_the_released_one(name):
    c, t, e = _expected_set(name)
    record = t["record"]  # [samples, epochs]: 1 right, 0 wrong, -1 not trained
    ours = critical_for_training(record.t().contiguous(), c["inputs"]["threshold"])
    if e["selected_all_rows"]:
        # No sample qualifies: the released argsort(...)[-0:] selects every row, validation ids included.
        assert len(ours) == 0 and len(e["selected"]) == c["inputs"]["n_all"]
        declared("prac-empty-set")
    else:
        assert ours.tolist() == e["selected"]


@pytest.mark.parametrize("name", cases("prac", "sets_later_"))
def test_later_round_set_is_the_released_one(name):
    c, t, e = _expected_set(name)
    n = c["inputs"]["train_number"]
    ids = t["split"][:n].long()  # dataset id of each training position
    cep = critical_for_pruning(t["dense_logits"].argmax(1), t["sparse_logits"].argmax(1), ids)
    cet = critical_for_training(t["record"].t().contiguous(), c["inputs"]["threshold"])
    assert len(cep) == e["cep_size"]
    if e["cet_size"] == c["inputs"]["n_all"] and len(cet) == 0:
        # No sample qualifies: the released empty slice selects every row (see the round-0 test).
        declared("prac-empty-set")
        return
    assert len(cet) == e["cet_size"]
    assert torch.unique(torch.cat([cet, cep])).tolist() == e["selected"]


def test_early_stop_decides_every_sequence_as_the_released_code():
    c, t = case("prac", "early_stop"), tensors("prac", "early_stop")
    distances, lengths = t["distances"], t["lengths"]
    for cfg in c["inputs"]["configs"]:
        key = f"stop_epoch_eps{cfg['eps']}_q{cfg['queue_length']}"
        expected = t[key].tolist()
        ours = []
        for s in range(len(lengths)):
            stop = EarlyStop(cfg["eps"], cfg["queue_length"])
            at = next((i + 1 for i in range(int(lengths[s])) if stop.update(float(distances[s, i]))), -1)
            ours.append(at)
        assert ours == expected, cfg


@pytest.mark.parametrize("name,network", [("imp_resnet20", "cifar_resnet20"), ("imp_vgg16", "cifar_vgg16_bn"),
                                          ("imp_resnet18_cifarstem", "cifar_resnet18")])
def test_imp_step_is_the_released_one_but_for_the_order_of_tied_weights(name, network):
    c = case("prac", name)
    model = create_model(network, num_classes=10)
    to_released = layer_map(model, c["inputs"]["layers"] + c["inputs"]["not_pruned_weight_layers"])
    names = prunable_names(model, "prac")
    assert sorted(to_released[n] for n in names) == sorted(c["expected"]["pruned_layers"])
    shapes = {t: s for t, s, *_ in c["inputs"]["layers"]}
    mask = None
    for r in c["expected"]["rounds"]:
        raw = synth.weights(r["round"], shapes)
        weights = {n: as_tensor(raw[to_released[n]]) * (mask[n] if mask else 1) for n in names}
        mask = magnitude_prune(weights, 0.2, mask)
        assert r["kept_before"] - mask.kept == r["removed"]
        # Tied weights at the threshold: the released torch.topk keeps them in its own (unspecified) order, ours
        # drops the lower index first. Take the released choice there, then every layer must be identical.
        band = r["ties"]["boundary_band"]
        by_name = {t: o for o, t in to_released.items()}
        for layer, flat, kept in band:
            mask[by_name[layer]].view(-1)[flat] = kept
        if band and not r["ties"]["equals_lowest_index_tie_rule"]:
            declared("all-magnitude-ties")
        ours = digests({to_released[n]: m for n, m in mask.items()})
        assert differing(ours, r["digests"]) == [], f"round {r['round']}"
