"""The released PrAC early-stop rule (Early-Bird mask distance + FIFO queue) on 2000 synthetic distance sequences.

Runs, unmodified, the ``if epoch: ... else: ...`` statement of ``main_PrAC_imp.py:main()``'s epoch loop (the
"Early Bird Tickets" check right after ``epoch_mask = return_current_mask(...)``), extracted with ``ast``, once per
epoch, with the released ``utils/pruner.py:FIFO``. ``calculate_hamming_distance`` is replaced by a feeder that
returns the synthetic distance of that epoch as a 0-dim float32 tensor, which is what the released function returns
(checked below on real masks). State starts as main() sets it per round: distance_queue = torch.ones(queue_length),
start_record = False, last_mask = None; args.warmup = 0 (default, and int(0 * ratio) = 0 in later rounds).

Usage: python tests/conformance/drivers/prac/early_stop.py --work DIR   (DIR holds released/prac; writes
DIR/fixtures/prac/early_stop)
"""

from __future__ import annotations

import argparse
import os
import sys
from copy import deepcopy

import numpy as np
import torch

C = synth = None  # bound by _setup() in main(): importing this file only defines things


def _setup(work: str) -> None:
    """Import the sibling _common helper and bind the --work folder's paths (and synth)."""
    global C, synth
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common
    _common.configure(work)
    C, synth = _common, _common.synth


DRIVER = "tests/conformance/drivers/prac/early_stop.py"
COMMAND = f"python {DRIVER} --work <DIR>"
SEED = 300
N = 2000
MAXLEN = 40
CONFIGS = [(0.07, 5), (0.08, 5)]


def sequences() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 [N, MAXLEN] distances (NaN past the length), int64 lengths, int64 kind.

    distances[s, i] is the mask distance computed at epoch i + 1 (epoch 0 has no previous mask).
    kinds: 0 decaying a*r^i + noise; 1 all small (never above eps); 2 uniform around eps; 3 decaying with exact
    float32(0.07)/float32(0.08) values planted; 4 decaying with a late bump above eps.
    """
    h = lambda stream: synth.uniform_ints(SEED, stream, N)  # noqa: E731
    kind = (h(0) % np.uint64(5)).astype(np.int64)
    length = (h(1) % np.uint64(MAXLEN - 2)).astype(np.int64) + 3
    a = 0.05 + (h(2) % np.uint64(1000)).astype(np.float64) / 1000 * 0.55
    r = 0.6 + (h(3) % np.uint64(1000)).astype(np.float64) / 1000 * 0.35
    noise = synth.values(SEED, 4, [N, MAXLEN]).astype(np.float64) * 0.02
    unif = (synth.values(SEED, 5, [N, MAXLEN]).astype(np.float64) + 1) / 2 * 0.15
    plant = (synth.uniform_ints(SEED, 6, N * MAXLEN) % np.uint64(4)).astype(np.int64).reshape(N, MAXLEN)
    bump_at = (h(7) % np.uint64(MAXLEN)).astype(np.int64)
    i = np.arange(MAXLEN)[None, :]
    decay = np.abs(a[:, None] * r[:, None] ** i + noise)
    d = np.where(kind[:, None] == 0, decay, 0.0)
    d = np.where(kind[:, None] == 1, unif * 0.4, d)
    d = np.where(kind[:, None] == 2, unif, d)
    planted = np.where(plant == 0, np.float64(np.float32(0.07)), np.where(plant == 1, np.float64(np.float32(0.08)),
                                                                          decay))
    d = np.where(kind[:, None] == 3, planted, d)
    d = np.where(kind[:, None] == 4, np.where(i == bump_at[:, None], 0.2, decay), d)
    d = d.astype(np.float32)
    d[i >= length[:, None]] = np.nan
    return d, length, kind


class Rule:
    def __init__(self):
        C.install_shims()
        import utils.pruner as pruner
        self.pruner = pruner
        _, epoch_loop, src, path = C.main_loops()
        nodes, self.l0, self.l1 = C.stmts_between(epoch_loop.body, src, "if epoch:", "if epoch:")
        self.block = C.compile_stmts(nodes, path)

    def stop_epoch(self, dist: np.ndarray, length: int, eps: float, queue: int) -> int:
        args = argparse.Namespace(eb_eps=eps, warmup=0)
        feed = lambda last, cur, remain: torch.tensor(dist[env["epoch"] - 1], dtype=torch.float32)  # noqa: E731
        env = {"args": args, "distance_queue": torch.ones(queue), "start_record": False, "last_mask": None,
               "remain_para": 1, "epoch_mask": {}, "FIFO": self.pruner.FIFO, "deepcopy": deepcopy,
               "calculate_hamming_distance": feed, "print": lambda *a, **k: None}
        for epoch in range(length + 1):
            env["epoch"] = epoch
            exec(self.block, env)
            if env["flag_break"]:
                return epoch
        return -1


def f64_stop(dist, length, eps, queue):
    """Analysis only (not released): the same rule with float64 comparisons, to flag float32-sensitive rows."""
    q, rec = [1.0] * queue, False
    for i in range(length):
        d = float(dist[i])
        rec = rec or d > eps
        if rec:
            q = [d] + q[:-1]
        if max(q) < eps:
            return i + 1
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/prac; fixtures go to fixtures/prac")
    _setup(ap.parse_args().work)
    torch.set_num_threads(1)
    rule = Rule()
    # The real calculate_hamming_distance returns a 0-dim float32 tensor (cnt_diff / remain_parameters).
    m1 = {"a.weight_mask": torch.tensor([1.0, 0.0, 1.0, 1.0])}
    m2 = {"a.weight_mask": torch.tensor([1.0, 1.0, 0.0, 1.0])}
    hd = rule.pruner.calculate_hamming_distance(m1, m2, 3)
    assert hd.dtype == torch.float32 and hd.dim() == 0 and abs(float(hd) - 2 / 3) < 1e-6
    d, length, kind = sequences()
    tensors = {"distances": d, "lengths": length, "kinds": kind}
    expected = {}
    for eps, q in CONFIGS:
        stops = np.array([rule.stop_epoch(d[s], int(length[s]), eps, q) for s in range(N)], dtype=np.int64)
        f64 = np.array([f64_stop(d[s], int(length[s]), eps, q) for s in range(N)], dtype=np.int64)
        key = f"eps{eps}_q{q}"
        tensors[f"stop_epoch_{key}"] = stops
        tensors[f"float64_differs_{key}"] = (f64 != stops)
        expected[key] = {"eps": eps, "queue_length": q, "stopped": int((stops >= 0).sum()),
                         "never": int((stops < 0).sum()), "min_stop_epoch": int(stops[stops >= 0].min()),
                         "float64_compare_differs": int((f64 != stops).sum()),
                         "stop_epoch_sum": int(stops.sum())}
        print(key, expected[key])
    C.write_case(
        "early_stop", driver=DRIVER, command=COMMAND,
        released_function=(f"main_PrAC_imp.py:main lines {rule.l0}-{rule.l1} (the `if epoch:` Early-Bird block), "
                           "utils/pruner.py:FIFO; calculate_hamming_distance fed (see notes)"),
        inputs={"seed": SEED, "n_sequences": N, "max_len": MAXLEN, "warmup": 0,
                "configs": [{"eps": e, "queue_length": q} for e, q in CONFIGS],
                "distances": "expected.tensors.json['distances'] float32 [N, 40], NaN past lengths[s]; distances[s, i] is "
                             "the distance computed at epoch i+1 (epoch 0 computes none); generator "
                             "drivers/prac/early_stop.py:sequences",
                "lengths": "expected.tensors.json['lengths']: number of distances (the round has lengths+1 epochs)"},
        expected={**expected,
                  "stop_epoch": "expected.tensors.json['stop_epoch_eps<eps>_q<q>'] int64: 0-based epoch after whose "
                                "check training breaks (= index i+1 of the last distance consumed), -1 if never"},
        notes=("Per epoch e >= 1: d = hamming(last_mask, epoch_mask) / remain_para as a 0-dim float32 tensor; "
               "start_record |= d > eps; if e > warmup and start_record: queue = [d] + queue[:-1] (FIFO, queue a float32 "
               "tensor initialised to ones(queue_length)); break iff queue.max() < eps. Both comparisons are float32 "
               "tensor vs Python float, i.e. against float32(eps): float32(0.07) = 0.0700000003 > 0.07 and "
               "float32(0.08) = 0.0799999982 < 0.08, so a distance equal to float32(eps) neither starts recording nor "
               "counts as converged. float64_differs_* flags the sequences where a float64 comparison of the same "
               "float32 distances would give another answer (all involve planted float32(eps) values). Epoch 0: no "
               "distance, no break. The queue and start_record reset every round (state). Earliest possible stop: the "
               "first recorded distance is > eps, then queue_length more < eps are needed, so stop_epoch >= "
               "queue_length + 1. The shim: calculate_hamming_distance replaced by a feeder of the synthetic distance."),
        tensors=tensors)


if __name__ == "__main__":
    main()
