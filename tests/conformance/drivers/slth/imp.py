"""Golden fixtures for Structure-LTH's IMP pruning step (pruning_utils.py: pruning_model / remove_prune /
prune_model_custom / extract_mask), run as main_imp.py's pruning loop runs them (lines 234-248, no --fillback).

Run from the repository root (DIR holds released/slth; writes DIR/fixtures/slth/<case>):
    python tests/conformance/drivers/slth/imp.py --work DIR --case imp_resnet20
    python tests/conformance/drivers/slth/imp.py --work DIR --case imp_vgg16
    python tests/conformance/drivers/slth/imp.py --work DIR --case imp_resnet18
    (or --case all)

Round r (r = 1, 2, 3), as main_imp.py's `for state in range(...)` loop:
  the "trained" conv weights of round r are synth.weights(seed=r, {every Conv2d .weight in module order}); for
  r >= 2 they are written into weight_orig of the masked convs (training updates weight_orig; the effective weight is
  weight_orig * weight_mask) and into .weight of the unmasked convs; then the released calls, in main_imp.py's order:
      validate(...)  -> one eval forward                 # main_imp.py:222 "extra forward" (refreshes .weight)
      pruning_model(model, 0.2, conv1=False)        # main_imp.py:234
      current_mask = extract_mask(model.state_dict())  # :236
      remove_prune(model, conv1=False)               # :240
      model.load_state_dict(initialization)          # :242 (rewind; initialization = the unpruned start state)
      prune_model_custom(model, current_mask)        # :248
Only the per-round masks are recorded; the independent numpy checks below (k = round(0.2 * remaining), threshold)
are asserted against the released outputs, never used to produce them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

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


DRIVER = "tests/conformance/drivers/slth/imp.py"
CASES = {"imp_resnet20": "resnet20", "imp_vgg16": "vgg16", "imp_resnet18": "resnet18"}
ROUNDS = 3
RATE = 0.2
FORWARD_SEED = 7  # synthetic batch for the 'extra forward' (main_imp.py:222); its values do not matter
FORWARD_X = None


def run_case(case: str, rel) -> None:
    net = CASES[case]
    pu = rel.pu
    model = C.build(rel, net)
    model.eval()
    initialization = copy.deepcopy(model.state_dict())
    layers = C.layer_list(model)
    shapes = C.conv_shapes(model)  # synth streams: every Conv2d, module order (skipped ones included)
    all_convs = C.conv_names(model)
    sel = set(C.released_selection(rel, net))
    pruned = [n for n in all_convs if n in sel]
    skipped = [n for n in all_convs if n not in sel]
    modules = dict(model.named_modules())

    current_mask = None
    rounds_out = []
    for r in range(1, ROUNDS + 1):
        w = synth.weights(r, shapes)
        with torch.no_grad():
            for n in all_convs:
                m = modules[n]
                target = m.weight_orig if hasattr(m, "weight_orig") else m.weight
                target.copy_(torch.from_numpy(w[n + ".weight"]))
        # main_imp.py:222 `validate(val_loader, model, criterion) # extra forward`: the forward pre-hook of
        # torch.nn.utils.prune recomputes .weight = weight_orig * weight_mask, which pruning_model then scores.
        with torch.no_grad():
            model(FORWARD_X)
        cur = {n: (np.ones(shapes[n + ".weight"], dtype=bool) if current_mask is None
                   else current_mask[n + ".weight_mask"].numpy().astype(bool)) for n in pruned}

        pu.pruning_model(model, RATE, conv1=False)
        current_mask = pu.extract_mask(model.state_dict())
        current_mask = {k: v.detach().clone() for k, v in current_mask.items()}
        pu.remove_prune(model, conv1=False)
        model.load_state_dict(initialization)
        pu.prune_model_custom(model, current_mask)

        # --- the released outputs ---
        assert sorted(current_mask) == sorted(n + ".weight_mask" for n in pruned), sorted(current_mask)
        new = {n: current_mask[n + ".weight_mask"].numpy() for n in pruned}
        for n in pruned:
            assert set(np.unique(new[n]).tolist()) <= {0.0, 1.0}
            assert np.all(new[n].astype(bool) <= cur[n]), "a pruned weight came back"
        new = {n: v.astype(bool) for n, v in new.items()}

        # --- independent checks (not released code) ---
        remaining = int(sum(cur[n].sum() for n in pruned))
        k = int(round(RATE * remaining))  # torch.nn.utils.prune._compute_nparams_toprune: round(amount * n)
        vec = np.concatenate([np.abs(w[n + ".weight"][cur[n]]) for n in pruned])
        srt = np.sort(vec, kind="stable")
        thr = float(srt[k - 1])  # the k-th smallest remaining |w| (pruned), next one kept
        nxt = float(srt[k])
        removed_per_layer = {n + ".weight": int(cur[n].sum() - new[n].sum()) for n in pruned}
        removed = sum(removed_per_layer.values())
        assert removed == k, (removed, k)
        ties_at_threshold = int(np.count_nonzero(vec == thr))
        # Outside the entries whose |w| equals the threshold the mask is exactly |w| > thr among remaining; at the
        # threshold value torch.topk chooses (implementation-defined), so those positions are listed.
        tie_positions = []
        for n in pruned:
            a = np.abs(w[n + ".weight"])
            at = (a == thr) & cur[n]
            assert np.array_equal(new[n] & ~at, (a > thr) & cur[n]), n
            for i in np.flatnonzero(at.reshape(-1)):
                tie_positions.append([n + ".weight", int(i), bool(not new[n].reshape(-1)[i])])
        removed_at_threshold = sum(1 for t in tie_positions if t[2])
        assert removed_at_threshold == k - int(np.count_nonzero(vec < thr))
        rounds_out.append({
            "round": r, "seed": r,
            "remaining_before": remaining,
            "k_removed_round_0.2_times_remaining": k,
            "removed": removed,
            "remaining_after": remaining - removed,
            "threshold_abs_kth_smallest_remaining": thr,
            "next_abs_value_kept": nxt,
            "values_equal_to_threshold": ties_at_threshold,
            "removed_below_threshold": int(np.count_nonzero(vec < thr)),
            "removed_at_threshold": removed_at_threshold,
            "threshold_ties": tie_positions,
            "threshold_ties_format": "[layer, flat index (C order), removed?] for every remaining weight with "
                                     "|w| == threshold; which of them torch.topk removes is implementation-defined",
            "removed_per_layer": removed_per_layer,
            "kept_per_layer": {n + ".weight": int(new[n].sum()) for n in pruned},
            "mask_digests": synth.digests({n + ".weight": new[n] for n in pruned}),
        })

    payload = {
        "repository": C.REPOSITORY,
        "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", case),
        "driver": DRIVER,
        "released_function": (
            "pruning_utils.py:pruning_model (lines 6-22: every nn.Conv2d whose module name is not exactly 'conv1' "
            "when conv1=False, prune.global_unstructured(L1Unstructured, amount=px)); remove_prune (46-51); "
            "extract_mask (53-59); prune_model_custom (70-75); called as main_imp.py lines 234-248 "
            "(pruning_model(model, args.rate, conv1=False) ... prune_model_custom(model, current_mask))"),
        "shims": C.SHIMS,
        "environment": C.environment(),
        "inputs": {
            "net": net,
            "constructor": C.CONSTRUCTOR_CALL[net] + " then model.normalize = NormalizeByChannelMeanStd(cifar10 "
                           "mean/std), as utils.py:setup_model_dataset for --arch " + C.ARCH_OF[net],
            "weights": "round r: synth.weights(seed=r, synth_shapes, levels=None): stream i = i-th Conv2d weight in "
                       "module order, INCLUDING the skipped stem 'conv1' (its weights are loaded but never pruned); "
                       "Linear weights are not touched (not pruned, not scored)",
            "synth_shapes": [[k, list(v)] for k, v in shapes.items()],
            "seeds": [r for r in range(1, ROUNDS + 1)],
            "levels": None,
            "extra_forward_batch": f"synth.values({FORWARD_SEED}, 0, (2, 3, 32, 32)) in eval mode, no_grad (only "
                                   "refreshes .weight = weight_orig * weight_mask; its values do not matter)",
            "rounds": ROUNDS,
            "rate": RATE,
            "conv1": False,
        },
        "expected": {
            "layers": layers,
            "pruned_layers": [n + ".weight" for n in pruned],
            "skipped_convs": [n + ".weight" for n in skipped],
            "linear_pruned": False,
            "total_pruned_layer_weights": int(sum(np.prod(shapes[n + ".weight"]) for n in pruned)),
            "rounds": rounds_out,
        },
        "notes": (
            "Global magnitude pruning over every Conv2d except a module named exactly 'conv1' (the top-level stem). "
            "resnet20/resnet18: the stem 'conv1' is skipped; block convs 'layerX.Y.conv1' are pruned (their name is "
            "not exactly 'conv1'); resnet18's 1x1 'layerX.0.downsample.0' convs are pruned. vgg16_bn: there is no "
            "module named 'conv1', so the first conv 'features.0' IS pruned (nothing skipped). Linear layers "
            "(fc / classifier) are never pruned. Each round removes k = round(0.2 * remaining) weights (Python "
            "round, torch.nn.utils.prune._compute_nparams_toprune, applied by PruningContainer to the still-unpruned "
            "entries only), the k smallest |w| among remaining weights of all pruned layers together (score = "
            "|weight_orig * weight_mask|, topk(largest=False)); the new mask is ANDed with the old, so pruned "
            "positions stay pruned. When several remaining weights share the k-th smallest |w| (rounds 2-3 here), the "
            "ones removed are torch.topk's choice; 'threshold_ties' lists them so a test can compare everything else "
            "exactly. pruning_model scores the module attribute .weight, which torch.nn.utils.prune only "
            "refreshes (= weight_orig * weight_mask) in the forward pre-hook: main_imp.py's 'extra forward' "
            "(validate at line 222) right before pruning_model makes it current; without a forward after the last "
            "weight update the released code would score stale weights. Conv biases (vgg16_bn convs have bias=True) are not pruned. " +
            ("resnet20's forward does not call self.normalize (commented out); irrelevant here. " if net == "resnet20"
             else "")),
    }
    C.write_case(case, payload)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/slth; fixtures go to fixtures/slth")
    ap.add_argument("--case", required=True, choices=list(CASES) + ["all"])
    a = ap.parse_args()
    _setup(a.work)
    torch.set_num_threads(1)
    rel = C.import_released()
    global FORWARD_X
    FORWARD_X = C.synth_images(FORWARD_SEED, 2)[0]
    for case in (CASES if a.case == "all" else [a.case]):
        run_case(case, rel)


if __name__ == "__main__":
    main()
