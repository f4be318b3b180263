"""PrAC-IMP's training-iteration savings over full-data IMP, as the PrAC paper defines them.

Torch-free: the report recomputes the savings over all seeds of a cell without importing a training stack.
"""

from __future__ import annotations

import statistics
from typing import Sequence


def savings(full_runs: Sequence[list[dict]], prac_runs: Sequence[list[dict]], tolerance: float = 0.01) -> dict:
    """Training iterations PrAC-IMP saves over full-data IMP, as the PrAC paper defines them.

    Up to the highest sparsity at which the PrAC ticket's accuracy is within one standard deviation
    of the full-data ticket's (``tolerance`` when fewer than two seeds give no deviation), compare
    the iterations each method spent finding that ticket (rounds 0 .. r-1, dense round included).
    ``capped`` says the match held at the last round both ran.
    """
    rounds = min(min(len(r) for r in full_runs), min(len(r) for r in prac_runs))
    table, matched = [], None
    for i in range(rounds):
        full_acc = [run[i]["test_acc"] for run in full_runs]
        prac_acc = [run[i]["test_acc"] for run in prac_runs]
        tol = statistics.stdev(full_acc) if len(full_acc) > 1 else tolerance
        row = {"round": full_runs[0][i]["round"], "sparsity": full_runs[0][i]["sparsity"],
               "full_acc": statistics.mean(full_acc), "prac_acc": statistics.mean(prac_acc), "tolerance": tol,
               "full_find_iterations": statistics.mean(r[i]["find_iterations"] for r in full_runs),
               "prac_find_iterations": statistics.mean(r[i]["find_iterations"] for r in prac_runs),
               "prac_fraction": statistics.mean(r[i].get("prac_trained_fraction", 1.0) for r in prac_runs)}
        # 1e-9: means over seeds of tied accuracies differ in their last bits, and a tie matches.
        row["within"] = row["prac_acc"] >= row["full_acc"] - tol - 1e-9
        table.append(row)
        if row["within"]:
            matched = row
    out = {"rows": table, "tolerance": tolerance, "seeds": len(full_runs), "capped": False}
    if matched is None:
        return out | {"matched_round": None, "saving": None, "seed_savings": []}
    i = table.index(matched)
    # Matching at the last round both ran: the saving at a higher matching sparsity, beyond the grid, is unknown.
    out["capped"] = i == len(table) - 1
    # Seed k's PrAC run is paired with seed k's full-data run: the spread of these is the saving's seed interval.
    per_seed = [1.0 - p[i]["find_iterations"] / f[i]["find_iterations"] for f, p in zip(full_runs, prac_runs)]
    return out | {"matched_round": matched["round"], "matched_sparsity": matched["sparsity"],
                  "saving": 1.0 - matched["prac_find_iterations"] / matched["full_find_iterations"],
                  "seed_savings": per_seed}
