"""PrAC-set selection of the released PrAC-LTH code on synthetic training dynamics and predictions.

Runs, unmodified, the statements of ``main_PrAC_imp.py:main()`` that build the next round's training sequence
("# construct PrAC sets": np.concatenate of the per-epoch records, utils/setup.py:sorted_examples, and for a
later round prune_aware_example + np.load(split)[pie_index] + concate_sequence), extracted with ``ast`` at run
time. The per-sample forgetting counts come from exec-ing the first statements of ``sorted_examples`` (the
counting loop over utils/setup.py:forget_times).

prune_aware_example runs for real on CPU with: setup_model_dataset_PIE replaced by a stand-in returning a
"logit table" model (a module whose output for input position i is row i of a stored [train_number, classes]
table, plus one 1x1 conv so the released prune_model_custom/extract_mask/check_sparsity have a conv to act on) and a
DataLoader-like list of (positions, labels) batches in position order (as cifar10_dataloaders_val's
shuffle=False loader); torch.load forced to map_location='cpu'; Tensor.cuda/Module.cuda as identity. The
checkpoints '0model_SA_best.pth.tar' (dense logits) and '<state>model_SA_best.pth.tar' (sparse logits, with
weight_orig/weight_mask) are real torch.save files in a temp folder. validate_PIE, accuracy, AverageMeter run
as released.

Usage: python tests/conformance/drivers/prac/sets.py --work DIR   (DIR holds released/prac; writes DIR/fixtures/prac)
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

C = synth = None  # bound by _setup() in main(): importing this file only defines things


def _setup(work: str) -> None:
    """Import the sibling _common helper and bind the --work folder's paths (and synth)."""
    global C, synth
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _common
    _common.configure(work)
    C, synth = _common, _common.synth


DRIVER = "tests/conformance/drivers/prac/sets.py"
COMMAND = f"python {DRIVER} --work <DIR>"


# ----------------------------------------------------------------------------------------------------------------
# synthetic inputs


def records(seed: int, n_all: int, epochs: int, trained_ids: np.ndarray, mode: str = "mixed") -> np.ndarray:
    """int8 [n_all, epochs] of 1 (right) / 0 (wrong) / -1 (not trained this round), per-sample biased.

    Category from h0 = uniform_ints(seed, 0, n_all) % 100: <20 always right; <35 never right; <50 learned at
    epoch t = uniform_ints(seed, 1, n_all) % epochs and right from then on; else right with probability
    p = (uniform_ints(seed, 1, n_all) % 9 + 1) / 10, epoch e right iff uniform_ints(seed, 2 + e, n_all) % 1000 < 1000 p.
    mode "stable": categories <35 and >=50 become "always right" / "learned at t" (no forgetting, none never-learned).
    """
    h0 = (synth.uniform_ints(seed, 0, n_all) % np.uint64(100)).astype(np.int64)
    h1 = synth.uniform_ints(seed, 1, n_all)
    t = (h1 % np.uint64(epochs)).astype(np.int64)
    p = ((h1 % np.uint64(9)).astype(np.int64) + 1) / 10
    rec = np.zeros((n_all, epochs), dtype=np.int8)
    for e in range(epochs):
        u = (synth.uniform_ints(seed, 2 + e, n_all) % np.uint64(1000)).astype(np.int64)
        if mode == "stable":
            rec[:, e] = np.where(h0 < 50, (h0 < 35) | (e >= t), e >= t)
        else:
            rec[:, e] = np.where(h0 < 20, 1, np.where(h0 < 35, 0, np.where(h0 < 50, e >= t, u < 1000 * p)))
    out = -np.ones((n_all, epochs), dtype=np.int8)
    out[trained_ids] = rec[trained_ids]
    return out


def split_perm(seed: int, n_all: int, identity: bool) -> np.ndarray:
    if identity:
        return np.arange(n_all, dtype=np.int32)  # as npy_files/cifar10-train-val.npy (arange(50000), int32)
    return np.argsort(synth.uniform_ints(seed, 50, n_all), kind="stable").astype(np.int32)


def per_epoch_list(rec: np.ndarray) -> list[np.ndarray]:
    """What train() appends per epoch: a float64 [n_all, 1] array of -1 / 0 / 1."""
    return [rec[:, e:e + 1].astype(np.float64) for e in range(rec.shape[1])]


# ----------------------------------------------------------------------------------------------------------------
# released code


class LogitTable(nn.Module):
    """Stand-in for the PIE model (shim, not released code): output row i of ``table`` for input position i."""

    def __init__(self, n: int, classes: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.register_buffer("table", torch.zeros(n, classes))

    def forward(self, x):
        return self.table[x]

    def cuda(self, *a, **k):
        return self


class TorchProxy:
    """``torch`` for the released namespace, with torch.load forced onto the CPU (shim)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **kw):
        return torch.load(f, map_location="cpu", weights_only=False)


class Released:
    def __init__(self):
        C.install_shims()
        import utils.pruner as pruner
        import utils.setup as setup
        self.pruner, self.setup = pruner, setup
        ns = {"torch": TorchProxy(), "np": np, "nn": nn, "os": os}
        ns.update({k: getattr(pruner, k) for k in pruner.__all__})
        C.load_defs("main_PrAC_imp.py", ["validate_PIE", "prune_aware_example", "concate_sequence",
                                         "AverageMeter", "accuracy"], ns)
        self.ns = ns
        # The "# construct PrAC sets" statements of main()'s state loop.
        state_loop, _, src, path = C.main_loops()
        nodes, self.l0, self.l1 = C.stmts_between(state_loop.body, src, "example_wise_prediction = np.concatenate",
                                                  "prune_aware_example")
        self.block = C.compile_stmts(nodes, path)
        # The counting statements at the top of sorted_examples.
        tree, ssrc, spath = C._parse("utils/setup.py")
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "sorted_examples")
        cnodes, self.c0, self.c1 = C.stmts_between(fn.body, ssrc, "offset", "forget_times(tmp_data)")
        self.count_block = C.compile_stmts(cnodes, spath)

    def forgetting(self, rec: np.ndarray) -> np.ndarray:
        env = {"np": np, "forget_times": self.setup.forget_times,
               "example_wise_prediction": np.concatenate(per_epoch_list(rec), axis=1)}
        exec(self.count_block, env)
        return env["forgetting_events_number"]

    def construct(self, rec, state, threshold, train_number, *, split=None, dense=None, sparse=None, labels=None,
                  batch_size=128):
        with tempfile.TemporaryDirectory() as tmp:
            args = argparse.Namespace(save_dir=tmp, split_file=os.path.join(tmp, "split.npy"), data_prune="zero_out",
                                      data_rate=0.2, threshold=threshold, batch_size=batch_size, gpu=0, print_freq=50)
            if state:
                np.save(args.split_file, split)
                n, c = dense.shape
                m = LogitTable(n, c)
                m.table.copy_(torch.from_numpy(dense))
                torch.save({"state_dict": m.state_dict()}, os.path.join(tmp, "0model_SA_best.pth.tar"))
                m = LogitTable(n, c)
                with C.quiet():
                    self.pruner.prune_model_custom(m, {"conv.weight_mask": torch.ones(1, 1, 1, 1)})
                m.table.copy_(torch.from_numpy(sparse))
                torch.save({"state_dict": m.state_dict()}, os.path.join(tmp, f"{state}model_SA_best.pth.tar"))
                pos = torch.arange(n)
                tgt = torch.from_numpy(labels)
                loader = [(pos[i:i + batch_size], tgt[i:i + batch_size]) for i in range(0, n, batch_size)]
                self.ns["setup_model_dataset_PIE"] = lambda a: (LogitTable(n, c), loader)
            self.ns["args"] = args
            env_holder: dict = {}
            env = {"np": np, "os": os, "args": args, "state": state, "train_number": train_number,
                   "criterion": nn.CrossEntropyLoss(), "example_wise_prediction": per_epoch_list(rec),
                   "sorted_examples": self.setup.sorted_examples,
                   "prune_aware_example": self._spy(env_holder),
                   "concate_sequence": self._spy_concat(env_holder)}
            cuda = torch.Tensor.cuda
            torch.Tensor.cuda = lambda self, *a, **k: self  # shim: no GPU here
            try:
                with C.quiet():
                    exec(self.block, env)
            finally:
                torch.Tensor.cuda = cuda
            return env["sequence"], env_holder

    def _spy(self, holder):
        def f(*a):
            out = self.ns["prune_aware_example"](*a)
            holder["pie_index"] = out
            return out
        return f

    def _spy_concat(self, holder):
        def f(pie_sequence, main_sequence):
            holder["pie_sequence"], holder["cet"] = np.asarray(pie_sequence), np.asarray(main_sequence)
            return self.ns["concate_sequence"](pie_sequence, main_sequence)
        return f

    def argmax_preds(self, logits):
        return torch.argmax(torch.from_numpy(logits), dim=1).numpy()


# ----------------------------------------------------------------------------------------------------------------
# cases

ROUND0 = [  # n_all, train_number, epochs, threshold, identity split, mode
    (50, 45, 3, 0, True, "mixed"),
    (120, 108, 5, 0, False, "mixed"),
    (237, 213, 8, 1, True, "mixed"),
    (400, 360, 12, 2, False, "mixed"),
    (500, 450, 10, 0, True, "mixed"),
    (64, 58, 4, 0, True, "stable"),
]

LATER = [  # n_all, train_number, epochs, state, threshold, classes, logit levels, flip per-mille, set per-cent, identity, mode
    (60, 54, 3, 1, 0, 10, None, 300, 50, True, "mixed"),
    (100, 90, 5, 2, 0, 10, 3, 200, 40, False, "mixed"),
    (150, 135, 6, 1, 0, 100, 5, 500, 60, True, "mixed"),
    (200, 180, 8, 3, 1, 10, 4, 150, 30, False, "mixed"),
    (300, 270, 4, 1, 0, 10, None, 100, 80, True, "mixed"),
    (400, 360, 12, 5, 2, 100, 7, 250, 35, False, "mixed"),
    (500, 450, 7, 2, 0, 10, 2, 400, 20, True, "mixed"),
    (600, 540, 9, 4, 0, 10, None, 1000, 55, False, "mixed"),
    (80, 72, 5, 1, 0, 10, 3, 0, 50, True, "mixed"),       # sparse == dense: no CEP
    (120, 108, 6, 2, 0, 10, 4, 300, 45, False, "stable"),  # no sample forgets: rest_number == 0
]


def run_round0(rel: Released, lines: str):
    for k, (n_all, tn, epochs, thr, ident, mode) in enumerate(ROUND0):
        seed = 100 + k
        split = split_perm(seed, n_all, ident)
        trained = np.sort(split[:tn]).astype(np.int64)  # round 0 trains on np.load(split_file)[:train_number]
        rec = records(seed, n_all, epochs, trained, mode)
        forgetting = rel.forgetting(rec)
        seq, _ = rel.construct(rec, 0, thr, tn)
        sel = np.sort(np.asarray(seq)).astype(np.int64)
        fc = forgetting.astype(np.int64)
        case = f"sets_round0_{k}"
        notes = ("Round 0 (state 0, dense run): sequence = sorted_examples(record, 'zero_out', 0.2, 1, threshold, "
                 "train_number); no CEP in state 0. forgetting = -1 for a row whose first entry is -1 (not trained: "
                 "ids outside split[:train_number]), 200000 for a trained sample never right, else the number of 1->0 "
                 "transitions (entries -1 skipped). selected = argsort(forgetting)[-rest_number:] with rest_number = "
                 "#(forgetting > threshold): the set {forgetting > threshold} - EXCEPT when rest_number == 0, where "
                 "[-0:] selects every row (all n_all ids, untrained ones included).")
        if mode == "stable":
            notes += " This case has no forgetting and no never-learned sample: rest_number == 0, so ALL ids are selected."
        C.write_case(
            case, driver=DRIVER, command=COMMAND, notes=notes,
            released_function=(f"main_PrAC_imp.py:main lines {rel.l0}-{rel.l1} (construct PrAC sets, state=0); "
                               f"utils/setup.py:sorted_examples (counting lines {rel.c0}-{rel.c1}), forget_times"),
            inputs={"seed": seed, "n_all": n_all, "train_number": tn, "epochs": epochs, "threshold": threshold_doc(thr),
                    "data_prune": "zero_out", "split": "identity (int32)" if ident else
                    "argsort(synth.uniform_ints(seed, 50, n_all), stable) as int32",
                    "trained_ids": "split[:train_number]", "record_mode": mode,
                    "record": "expected.tensors.json['record'] int8 [n_all, epochs]: 1 right / 0 wrong / -1 not trained "
                              "(generator: drivers/prac/sets.py:records)"},
            expected={"selected_size": int(len(sel)), "n_never_learned": int((fc == 200000).sum()),
                      "n_untrained": int((fc == -1).sum()), "n_zero_forget": int((fc == 0).sum()),
                      "selected_all_rows": bool(len(sel) == n_all),
                      "selected": sel.tolist() if len(sel) <= 64 else "see expected.tensors.json"},
            tensors={"record": rec, "split": split, "forgetting": fc, "selected": sel})
        print(case, "selected", len(sel), "of", n_all)


def threshold_doc(t):
    return int(t)


def run_later(rel: Released):
    for k, (n_all, tn, epochs, state, thr, classes, levels, flip, pct, ident, mode) in enumerate(LATER):
        seed = 200 + k
        split = split_perm(seed, n_all, ident)
        train_pool = split[:tn].astype(np.int64)
        inset = (synth.uniform_ints(seed, 60, tn) % np.uint64(100)).astype(np.int64) < pct
        prev = np.sort(train_pool[inset])  # the sequence state `state` trained on (previous PrAC set)
        rec = records(seed, n_all, epochs, prev, mode)
        dense = synth.values(seed, 10, [tn, classes], levels=levels)
        other = synth.values(seed, 11, [tn, classes], levels=levels)
        fl = (synth.uniform_ints(seed, 12, tn) % np.uint64(1000)).astype(np.int64) < flip
        sparse = np.where(fl[:, None], other, dense).astype(np.float32)
        labels = synth.labels(seed, 13, tn, classes)
        seq, h = rel.construct(rec, state, thr, tn, split=split, dense=dense, sparse=sparse, labels=labels)
        forgetting = rel.forgetting(rec).astype(np.int64)
        sel = np.sort(np.asarray(seq)).astype(np.int64)
        cet = np.sort(h["cet"]).astype(np.int64)
        pie_index = np.asarray(h["pie_index"]).astype(np.int64)
        cep = np.sort(h["pie_sequence"]).astype(np.int64)
        dp, sp = rel.argmax_preds(dense), rel.argmax_preds(sparse)
        case = f"sets_later_{k}"
        notes = (f"Later round (state {state} >= 1): sequence = CET U CEP where CET = sorted_examples(record of this "
                 "round's epochs) (same rule as round 0; ids not trained this round have -1 rows and are excluded, "
                 "unless rest_number == 0, when all n_all rows are selected) and CEP = split[pie_index] with pie_index "
                 "= positions p in 0..train_number-1 (the PIE loader = first train_number entries of the split, "
                 "unshuffled, no augmentation) where argmax(dense logits[p]) != argmax(sparse logits[p]); dense = "
                 "best-val checkpoint of state 0 ('0model_SA_best'), sparse = best-val checkpoint of this state "
                 f"('{state}model_SA_best', under its training mask). CEP covers ALL train_number samples, not just the "
                 "current set, and compares predictions (not correctness); labels are not used. Union via "
                 "np.array(list(set(...))), set order; sizes/ids compared sorted. argmax: first maximal index on ties "
                 "(torch.argmax).")
        if flip == 0:
            notes += " Here sparse logits == dense logits: CEP is empty, the set is CET alone."
        if mode == "stable":
            notes += (" Here no trained sample forgets or is never learned: rest_number == 0, so CET = ALL n_all ids "
                      "(including never-trained ones and the validation ids outside split[:train_number]).")
        C.write_case(
            case, driver=DRIVER, command=COMMAND, notes=notes,
            released_function=(f"main_PrAC_imp.py:main lines {rel.l0}-{rel.l1} (construct PrAC sets, state>=1), "
                               "prune_aware_example, validate_PIE, concate_sequence; utils/setup.py:sorted_examples, "
                               "forget_times"),
            inputs={"seed": seed, "n_all": n_all, "train_number": tn, "epochs": epochs, "state": state,
                    "threshold": thr, "data_prune": "zero_out", "classes": classes,
                    "split": "identity (int32)" if ident else
                    "argsort(synth.uniform_ints(seed, 50, n_all), stable) as int32",
                    "previous_set": "expected.tensors.json['previous_set']: sorted split[:train_number][p] for p with "
                                    f"uniform_ints(seed, 60, train_number) % 100 < {pct}",
                    "record": "expected.tensors.json['record'] int8 [n_all, epochs] (-1 outside previous_set)",
                    "dense_logits": f"synth.values(seed, 10, [train_number, classes], levels={levels})",
                    "sparse_logits": f"where(uniform_ints(seed, 12, train_number) % 1000 < {flip}, "
                                     f"synth.values(seed, 11, [train_number, classes], levels={levels}), dense)",
                    "labels": "synth.labels(seed, 13, train_number, classes) (only feed validate_PIE's accuracy print)",
                    "logit_levels": levels, "flip_per_mille": flip, "record_mode": mode},
            expected={"cet_size": int(len(cet)), "cep_size": int(len(cep)), "selected_size": int(len(sel)),
                      "overlap": int(len(np.intersect1d(cet, cep))),
                      "selected": sel.tolist() if len(sel) <= 64 else "see expected.tensors.json"},
            tensors={"record": rec, "split": split, "previous_set": prev, "dense_logits": dense,
                     "sparse_logits": sparse, "labels": labels, "forgetting": forgetting, "dense_preds": dp,
                     "sparse_preds": sp, "cet": cet, "cep_positions": pie_index, "cep": cep, "selected": sel})
        print(case, "cet", len(cet), "cep", len(cep), "selected", len(sel), "of", n_all)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/prac; fixtures go to fixtures/prac")
    a = ap.parse_args()
    _setup(a.work)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    r = Released()
    run_round0(r, "")
    run_later(r)


if __name__ == "__main__":
    main()
