"""Case `swap_unit`: the released per-layer mask update utils/conv_type.py:PretrainConv.final_pop_up on small layers.

Each scenario: a PretrainConv(1, 1, kernel_size=(1, n), bias=False) with synth weights; set_prune_rate(prune_rate)
makes the initial mask (int(n*prune_rate) smallest |w| pruned); the scores (`mask` parameter) are then replaced by
synth scores and final_pop_up(rate) is called once. Covers the general case, rate < 1 (ceil), ties at tau (which
block the whole update), and the edge cases of exactly one kept / one pruned weight / nothing pruned.

Run (DIR holds released/jackpot; writes DIR/fixtures/jackpot/swap_unit):
    python tests/conformance/drivers/jackpot/swap_unit.py --work DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

DRIVER = "tests/conformance/drivers/jackpot/swap_unit.py"
R = None  # the sibling _released helper, bound by _setup() in main(): importing this file only defines things


def _setup() -> None:
    """Parse --work DIR, import the sibling _released helper and bind DIR's paths."""
    global R
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _released
    R = _released
    R.configure(R.work_arg())


N = 64
# (name, weight seed, score seed, score levels, prune_rate, rate)
SCENARIOS = [
    ("general_r1", 1, 101, None, 0.75, 1),
    ("general_r0.5", 2, 102, None, 0.75, 0.5),
    ("general_r0.3", 3, 103, None, 0.5, 0.3),
    ("ties_levels4", 4, 104, 4, 0.75, 1),
    ("ties_levels6", 5, 105, 6, 0.5, 1),
    ("ties_levels16", 6, 106, 16, 0.75, 1),
    ("ties_not_straddling_r1", 101, 201, 16, 0.75, 1),
    ("ties_not_straddling_r0.5", 101, 201, 16, 0.75, 0.5),
    ("one_kept", 7, 107, None, 63 / 64, 1),
    ("one_pruned", 8, 108, None, 1 / 64, 1),
    ("nothing_pruned", 9, 109, None, 0.0, 1),
    ("all_pruned", 10, 110, None, 1.0, 1),
]


def stable_rule(before: np.ndarray, sc: np.ndarray, k: int, rate: float) -> np.ndarray:
    """Analysis only: the same rule with ties among candidates broken by lower flat index (ticketbench's stable sort),
    and without the released one-element edge case."""
    m = before.copy()
    if k == 0 or k == len(sc):
        return m
    tau = np.sort(sc)[k - 1]
    rev = np.flatnonzero((~m) & (sc > tau))
    rem = np.flatnonzero(m & (sc <= tau))
    c = len(rev)
    if c == 0 or c != len(rem):
        return m
    q = 1 if c == 1 else int(np.ceil(rate * c))
    m[rev[np.argsort(-sc[rev], kind="stable")[:q]]] = True
    m[rem[np.argsort(sc[rem], kind="stable")[:q]]] = False
    return m


def main() -> None:
    _setup()
    out = R.ROOT / "fixtures" / "jackpot" / "swap_unit"
    torch.manual_seed(0)
    R.deterministic(torch)
    ns = R.load()
    s = R.synth()
    PretrainConv = ns["PretrainConv"]
    expected = {}
    for name, wseed, sseed, levels, prune_rate, rate in SCENARIOS:
        w = s.values(wseed, 0, (N,))
        sc = s.values(sseed, 0, (N,), levels=levels)
        conv = PretrainConv(1, 1, kernel_size=(1, N), bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w.copy()).view(1, 1, 1, N))
        conv.set_prune_rate(prune_rate)
        before = conv.b_mask.detach().reshape(-1).numpy().astype(bool).copy()
        with torch.no_grad():
            conv.mask.copy_(torch.from_numpy(sc.copy()).view(1, 1, 1, N))
        try:
            ret = conv.final_pop_up(rate)
            err = None
        except Exception as e:  # noqa: BLE001  (record, do not hide)
            ret, err = None, f"{type(e).__name__}: {e}"
        after = conv.b_mask.detach().reshape(-1).numpy().astype(bool)
        k = int(prune_rate * N)
        srt = np.sort(sc)
        tau = float(srt[k - 1]) if k > 0 else float(srt[-1])
        expected[name] = {
            "inputs": {"n": N, "weights": f"synth.values({wseed}, 0, ({N},))",
                       "scores": f"synth.values({sseed}, 0, ({N},), levels={levels})",
                       "prune_rate": prune_rate, "rate": rate},
            "prune_num_int_rate_times_n": k,
            "mask_before": before.astype(int).tolist(),
            "returned": None if ret is None else int(ret),
            "error": err,
            "mask_after": after.astype(int).tolist(),
            "flips": int((after != before).sum()),
            "analysis_not_released_output": {
                "tau": tau,
                "count_scores_le_tau": int((sc <= tau).sum()),
                "revive_candidates": int(((~before) & (sc > tau)).sum()),
                "remove_candidates": int((before & (sc <= tau)).sum()),
                "after_equals_scores_gt_tau": bool(np.array_equal(after, sc > tau)),
                "after_equals_stable_rule": bool(np.array_equal(after, stable_rule(before, sc, k, rate))),
            },
        }
    case = {
        "repository": R.REPO, "commit": R.COMMIT,
        "command": R.command(DRIVER),
        "driver": DRIVER,
        "released_function": "utils/conv_type.py:PretrainConv.set_prune_rate (138-151), final_pop_up (89-121)",
        "inputs": {"scenarios": [list(x) for x in SCENARIOS], "n": N, "torch_manual_seed": 0,
                   "layer": "PretrainConv(1, 1, kernel_size=(1, n), bias=False); flat order = the n weights",
                   "shims": R.SHIMS},
        "expected": expected,
        "notes": ("final_pop_up: k = int(prune_rate*numel); tau = sort(scores)[k-1]; revive = pruned with score > tau, "
                  "remove = kept with score <= tau; only if both non-empty and of equal size c: swap "
                  "ceil(c*rate) (c > 1) or the single pair (c == 1), best revive (highest) with worst kept (lowest). "
                  "Equal sizes <=> exactly k scores <= tau (no tie straddling tau). Edge: a layer with exactly one "
                  "pruned or one kept weight never swaps (torch.squeeze of the 1-element index list makes a 0-d "
                  "tensor, and nonzero() on a 0-d comparison squeezes to an empty index)."),
    }
    R.write_case(out, case)
    for k, v in expected.items():
        a = v["analysis_not_released_output"]
        print(f"{k:16s} ret={v['returned']} err={v['error']} flips={v['flips']} rev={a['revive_candidates']} "
              f"rem={a['remove_candidates']} le_tau={a['count_scores_le_tau']} k={v['prune_num_int_rate_times_n']} "
              f"topk={a['after_equals_scores_gt_tau']} stable={a['after_equals_stable_rule']}")


if __name__ == "__main__":
    main()
