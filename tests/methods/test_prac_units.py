"""PrAC's building blocks on hand-made inputs: forgetting events, CET, CEP, the early stop, savings."""

import math

import pytest
import torch

from ticketbench.methods.prac.critical_sets import critical_for_pruning, critical_for_training, forgetting_counts
from ticketbench.methods.prac.early_stop import EarlyStop
from ticketbench.methods.prac.savings import savings


def _record(*rows):
    return torch.tensor(rows, dtype=torch.int8)


def test_forgetting_counts_by_hand():
    # columns: learned-and-kept, forgotten once, forgotten twice, never learned, never trained on,
    # only seen some epochs (-1 gaps are skipped: 1, -1, 0 is one forgetting event)
    rec = _record([0, 1, 1, 0, -1, 1],
                  [1, 0, 0, 0, -1, -1],
                  [1, 1, 1, 0, -1, 0],
                  [1, 1, 0, 0, -1, -1])
    c = forgetting_counts(rec)
    assert c[:3].tolist() == [0.0, 1.0, 2.0]
    assert c[3] == math.inf
    assert math.isnan(c[4])
    assert c[5] == 1.0


def test_first_epoch_wrong_is_not_a_forgetting_event():
    assert forgetting_counts(_record([0], [0], [1], [1])).tolist() == [0.0]


def test_cet_thresholds():
    rec = _record([1, 1, 1, 0, -1], [0, 1, 0, 0, -1], [1, 1, 1, 0, -1], [0, 1, 0, 0, -1])
    # counts: 2, 0, 2, inf, nan
    assert critical_for_training(rec, 0).tolist() == [0, 2, 3]
    assert critical_for_training(rec, 2).tolist() == [3]


def test_cep_is_the_disagreement():
    ids = torch.tensor([10, 11, 12, 13])
    dense = torch.tensor([1, 2, 3, 4])
    sparse = torch.tensor([1, 0, 3, 0])
    assert critical_for_pruning(dense, sparse, ids).tolist() == [11, 13]
    assert critical_for_pruning(dense, dense, ids).tolist() == []


def test_early_stop_waits_for_movement_then_patience():
    es = EarlyStop(eps=0.1, patience=3)
    # Small distances before anything moved are not recorded.
    assert [es.update(d) for d in (0.01, 0.02)] == [False, False]
    assert not es.recording
    assert es.update(0.5) is False and es.recording
    assert [es.update(d) for d in (0.05, 0.04)] == [False, False]  # queue still holds 0.5
    assert es.update(0.03) is True


def test_early_stop_resets_on_a_jump():
    es = EarlyStop(eps=0.1, patience=2)
    for d in (0.3, 0.05):
        assert not es.update(d)
    assert not es.update(0.2)
    assert not es.update(0.01)
    assert es.update(0.02)


def _rows(accs, finds, sparsities=(0.2, 0.36, 0.488)):
    return [{"round": i + 1, "sparsity": s, "test_acc": a, "find_iterations": f}
            for i, (a, f, s) in enumerate(zip(accs, finds, sparsities))]


def test_savings_up_to_highest_matching_sparsity():
    full = [_rows([0.95, 0.95, 0.95], [100, 200, 300])]
    prac = [_rows([0.95, 0.90, 0.945], [100, 130, 160])]
    res = savings(full, prac, tolerance=0.01)
    assert [r["within"] for r in res["rows"]] == [True, False, True]
    assert res["matched_round"] == 3
    assert res["saving"] == pytest.approx(1 - 160 / 300)


def test_savings_uses_seed_std_when_available():
    full = [_rows([0.90], [100], (0.2,)), _rows([0.94], [100], (0.2,))]
    prac = [_rows([0.905], [40], (0.2,)), _rows([0.905], [40], (0.2,))]
    res = savings(full, prac, tolerance=0.0)
    assert res["rows"][0]["tolerance"] == pytest.approx(0.0282842712)
    assert res["saving"] == pytest.approx(0.6)
    assert savings([_rows([0.9], [1], (0.2,))], [_rows([0.5], [1], (0.2,))])["saving"] is None
