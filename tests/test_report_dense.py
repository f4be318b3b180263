"""A paper with its own recipe has its own dense run: its rules compare against that run, not the grid's base one."""

import json

from ticketbench.report.matching import WITHIN_1_OF_DENSE, dense_by_seed, seed_extremes
from ticketbench.report.results import Results
from conftest import as_contract

CELL = ("digits", "net")


def _write(folder, metrics, settings=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(as_contract(folder / "metrics.json", metrics)))
    if settings is not None:
        (folder / "hparams.json").write_text(json.dumps({"settings": settings}))


def test_rules_use_the_dense_run_the_method_started_from(tmp_path):
    seed = tmp_path / "pretrain" / CELL[0] / CELL[1] / "seed0"
    _write(seed, {"test_acc": 0.90, "state_hash": "base"})
    _write(seed / "prac", {"test_acc": 0.95, "state_hash": "own"})  # PrAC's own, longer recipe
    rounds = [{"round": 1, "sparsity": 0.5, "test_acc": 0.945}, {"round": 2, "sparsity": 0.75, "test_acc": 0.92}]
    _write(tmp_path / "prac" / CELL[0] / CELL[1] / "seed0", {"rounds": rounds}, {"pretrain": "own"})
    _write(tmp_path / "imp" / CELL[0] / CELL[1] / "seed0" / "full", {"rounds": rounds}, {"pretrain": "base"})
    res = Results.scan(tmp_path)
    assert dense_by_seed(res, CELL, "prac") == {0: 0.95}
    assert dense_by_seed(res, CELL, "imp", "full") == {0: 0.90}
    # Within 1 point of 0.95 only round 1 matches; against the base run's 0.90 both would.
    assert seed_extremes(res, CELL, "prac", "", WITHIN_1_OF_DENSE)[0].point.round == 1
    assert seed_extremes(res, CELL, "imp", "full", WITHIN_1_OF_DENSE)[0].point.round == 2
