"""The report's sanity section on hand-written runs of three seeds: which run controls which ticket, the round the
controls are read at, and the verdicts their paired intervals give."""

import numpy as np

from ticketbench.artifacts import pack_bits
from ticketbench.report.results import Results
from ticketbench.report.sanity import beaten_text, sanity_tables

from test_report import _seed_runs

CELL = ("cifar10", "cifar_resnet20")
SEEDS = (0, 1, 2)
N = 1000  # test examples


def _bits(acc: float, seed: int) -> dict:
    """Per-example correctness with exactly ``acc`` right; the examples a run gets wrong differ by seed."""
    flags = np.ones(N, dtype=bool)
    flags[np.random.default_rng(seed).permutation(N)[: round(N * (1 - acc))]] = False
    return pack_bits(flags)


def _run(root, folder, accs, phase="imp", **extra):
    _seed_runs(root, phase, CELL, folder, {s: {"method": folder or phase, "test_acc": accs[-1], "rounds": [
        {"round": r, "sparsity": 1 - 0.8 ** r, "test_acc": a, "val_acc": a, "train_iterations": 10,
         "test_correct": _bits(a, 100 * s + r), **extra} for r, a in enumerate(accs, 1)]} for s in SEEDS})


def test_controls_are_read_at_the_tickets_extreme_matching_round_with_their_verdicts(tmp_path):
    for s in SEEDS:
        _seed_runs(tmp_path, "pretrain", CELL, "", {s: {"method": "pretrain", "test_acc": 0.92, "sparsity": 0.0}})
    _run(tmp_path, "full", [0.92, 0.915, 0.91, 0.80])  # matches dense (within 1 point) up to round 3
    _run(tmp_path, "random_prune_layerwise", [0.90, 0.85, 0.70, 0.60])  # clearly worse at round 3
    _run(tmp_path, "full-low", [0.92, 0.915, 0.91, 0.80])  # the same accuracy: undecided
    _run(tmp_path, "snip", [0.90, 0.88, 0.86, 0.80])
    _run(tmp_path, "random_reinit-of-snip", [0.90, 0.88, 0.86, 0.80])
    _run(tmp_path, "full", [0.92, 0.915, 0.91, 0.80], phase="instability", error_barrier=0.001)
    res = Results.scan(tmp_path)
    (table,) = [t for t in sanity_tables(res) if t.id == "sanity_cifar10_cifar_resnet20"]
    rows = {(r[0], r[1]): r for r in table.rows}
    shuffled = rows[("full", "mask shuffled within each layer")]
    assert shuffled[3] == 3 and shuffled[4] == "48.80%"
    assert shuffled[-1].startswith("the ticket beats its mask shuffled within each layer by +21.00 points [")
    assert rows[("full", "IMP under PrAC's low setting")][-1].startswith("undecided: ticket minus IMP under PrAC's")
    # SNIP's ticket never matches dense: its controls are read at its last round, and it does not beat them.
    reinit = rows[("snip", "re-initialised weights")]
    assert reinit[3] == 4 and reinit[-1].startswith("undecided")
    assert "it beats: mask shuffled within each layer; undecided: IMP under PrAC's low setting" in \
        beaten_text(res, CELL)
    barrier = rows[("full", "instability of its training")]
    assert barrier[3] == 3 and barrier[-1] == "stable under the 2-point rule"
