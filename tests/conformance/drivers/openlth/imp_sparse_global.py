"""Golden fixtures for open_lth's IMP pruning step (pruning/sparse_global.py: Strategy.prune).

Runs the *released* open_lth code (facebookresearch/open_lth @ 2ce732f, extracted to DIR/released/open_lth) on
synthetic weights from ticketbench's tests/conformance/synth.py and writes one fixture folder per case under
DIR/fixtures/openlth/<case>/ (see tests/conformance/drivers/README.md).

Run from the repository root (any directory works; DIR is the --work folder):
    python tests/conformance/drivers/openlth/imp_sparse_global.py --work DIR --case imp_resnet20
    python tests/conformance/drivers/openlth/imp_sparse_global.py --work DIR --case imp_vgg16
    python tests/conformance/drivers/openlth/imp_sparse_global.py --work DIR --case imp_ties
    (or --case all)

Nothing from open_lth is copied here: the model (models.registry.get with the model's own default_hparams), its
prunable_layer_names, the pruning hyperparameters (default_hparams().pruning_hparams) and Strategy.prune are all the
released objects. The only numbers computed here independently (k = ceil(f * n), the k-th smallest remaining |w|,
tie counts) are *checks* recorded beside the released outputs, and each is asserted against them.

Shim: under torch >= 2.x, `class DistributedDataParallel(Model, torch.nn.parallel.DistributedDataParallel)` in
models/base.py raises "Cannot create a consistent method resolution order" (torch's DDP now also derives from the
abstract class Joinable, so ABC/Module order conflicts with open_lth's `Model(abc.ABC, torch.nn.Module)`). While the
released packages are imported, torch.nn.parallel.DistributedDataParallel is temporarily replaced by a bare
torch.nn.Module subclass, then restored. DDP is never used on this path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTH_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))  # tests/conformance (synth.py)

REPOSITORY = "facebookresearch/open_lth"
COMMIT = "2ce732fe48abd5a80c10a153c45d397b048e980c"
DRIVER = "tests/conformance/drivers/openlth/imp_sparse_global.py"

# Bound by configure(--work DIR) in main(); importing this file only defines things.
RELEASED = None  # DIR/released/open_lth
FIXTURES = None  # DIR/fixtures/openlth
synth = None  # tests/conformance/synth.py


def configure(work: str) -> None:
    global RELEASED, FIXTURES, synth
    work = os.path.abspath(work)
    RELEASED = os.path.join(work, "released", "open_lth")
    FIXTURES = os.path.join(work, "fixtures", "openlth")
    if not os.path.isdir(RELEASED):
        raise SystemExit(f"{RELEASED} missing: extract open_lth @ {COMMIT} there (see drivers/README.md)")
    sys.path.insert(0, SYNTH_DIR)
    import synth as _synth
    synth = _synth

CASES = {
    # case: (model module, rounds, levels, store round masks as tensors)
    "imp_resnet20": ("cifar_resnet", 3, None, False),
    "imp_vgg16": ("cifar_vgg", 3, None, False),
    "imp_ties": ("cifar_resnet", 2, 16, False),
}


def import_released():
    """Import open_lth from the extracted checkout, with the one DDP/MRO shim (see module docstring)."""
    sys.path.insert(0, RELEASED)
    import torch.nn.parallel as tparallel

    original = tparallel.DistributedDataParallel

    class _DDPShim(torch.nn.Module):  # only so that models/base.py's class statement can be built
        pass

    tparallel.DistributedDataParallel = _DDPShim
    try:
        import models.registry  # noqa: F401  (imports models.base, lottery.desc, pruning.* in open_lth's order)
        import pruning.registry  # noqa: F401
        from models import cifar_resnet, cifar_vgg
        from pruning import sparse_global
        from pruning.mask import Mask
    finally:
        tparallel.DistributedDataParallel = original
    return {"registry": models.registry, "cifar_resnet": cifar_resnet, "cifar_vgg": cifar_vgg,
            "sparse_global": sparse_global, "Mask": Mask}


def layer_list(model):
    """[name.weight, shape, kind] for every Conv2d / Linear module, in named_modules() order."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            out.append([name + ".weight", list(module.weight.shape), "conv"])
        elif isinstance(module, torch.nn.Linear):
            out.append([name + ".weight", list(module.weight.shape), "linear"])
    return out


def run_case(case: str, lth) -> None:
    module_name, rounds, levels, store_tensors = CASES[case]
    torch.manual_seed(0)  # model init only; every prunable weight is overwritten below
    desc = getattr(lth[module_name], "Model").default_hparams()
    ph = desc.pruning_hparams
    model = lth["registry"].get(desc.model_hparams)
    model.eval()

    names = list(model.prunable_layer_names)
    layers = layer_list(model)
    assert [l[0] for l in layers] == names, "prunable_layer_names is not the Conv/Linear module order"
    shapes = {n: tuple(model.state_dict()[n].shape) for n in names}
    ignored = set(ph.pruning_layers_to_ignore.split(",")) if ph.pruning_layers_to_ignore else set()
    pruned_names = [n for n in names if n not in ignored]
    prune = lth["sparse_global"].Strategy.prune

    mask = None  # round 1: Strategy.prune's own default, Mask.ones_like(model)
    rounds_out, tensors = [], {}
    for r in range(1, rounds + 1):
        seed = r
        w = synth.weights(seed, shapes, levels=levels)
        cur = {n: np.ones(shapes[n], dtype=np.float32) for n in names} if mask is None else \
            {n: mask[n].cpu().numpy().astype(np.float32) for n in names}

        # Trained masked model: pruned positions are zero (PrunedModel._apply_mask), the rest are the synth values.
        sd = model.state_dict()
        for n in names:
            sd[n] = torch.from_numpy(w[n] * cur[n])
        model.load_state_dict(sd)

        new_mask = prune(ph, model, mask)
        new = {n: new_mask[n].cpu().numpy() for n in names}
        assert set(new_mask.keys()) == set(names)
        for n in names:
            assert new[n].shape == shapes[n]
            assert np.all((new[n] == 0) | (new[n] == 1))
            assert np.all(new[n] <= cur[n]), "a pruned weight came back"

        # --- independent checks (not open_lth code) ---
        n_remaining_all = int(sum(cur[n].sum() for n in names))
        n_remaining_pruned_layers = int(sum(cur[n].sum() for n in pruned_names))
        k = math.ceil(ph.pruning_fraction * n_remaining_all)
        k_if_excluding_ignored = math.ceil(ph.pruning_fraction * n_remaining_pruned_layers)
        vec = np.concatenate([np.abs(w[n][cur[n] == 1]) for n in pruned_names])
        srt = np.sort(vec)
        thr = float(srt[k])  # 0-based index k: the (k+1)-th smallest remaining |w|
        below = int(np.count_nonzero(vec < thr))
        at = int(np.count_nonzero(vec == thr))
        removed_per_layer = {n: int(cur[n].sum() - new[n].sum()) for n in names}
        removed = int(sum(removed_per_layer.values()))
        assert removed == below + at, (removed, below, at)
        for n in pruned_names:  # the new mask is exactly |w| > thr among remaining
            assert np.array_equal(new[n].astype(bool), (np.abs(w[n]) > thr) & (cur[n] == 1)), n
        for n in ignored:
            assert np.array_equal(new[n], cur[n]), n

        rounds_out.append({
            "round": r, "seed": seed, "levels": levels,
            "remaining_before": n_remaining_all,
            "remaining_before_in_pruned_layers": n_remaining_pruned_layers,
            "k_ceil_fraction_times_remaining": k,
            "k_if_n_excluded_ignored_layers": k_if_excluding_ignored,
            "threshold_abs_value": thr,
            "remaining_below_threshold": below,
            "remaining_equal_to_threshold": at,
            "removed": removed,
            "removed_minus_k": removed - k,
            "remaining_after": n_remaining_all - removed,
            "removed_per_layer": removed_per_layer,
            "mask_digests": synth.digests({n: new[n].astype(bool) for n in names}),
        })
        if store_tensors:
            for n in names:
                tensors[f"round{r}/{n}"] = np.ascontiguousarray(new[n].astype(bool))
        mask = new_mask

    total = int(sum(int(np.prod(s)) for s in shapes.values()))
    expected = {
        "layers": layers,
        "prunable_layer_names": names,
        "pruning_layers_to_ignore": sorted(ignored),
        "layers_actually_pruned": pruned_names,
        "total_prunable_weights": total,
        "rounds": rounds_out,
    }
    if case == "imp_vgg16":
        fc_total = int(np.prod(shapes["fc.weight"]))
        expected["fc_weight_pruned"] = any(r["removed_per_layer"]["fc.weight"] for r in rounds_out)
        expected["fc_weight_kept_after_each_round"] = [r["mask_digests"]["fc.weight"]["kept"] for r in rounds_out]
        expected["fc_weight_size"] = fc_total
        # The released threshold index k must fall inside the tie group of the threshold value
        # (below <= k < below + at); check which n (with / without the ignored fc.weight) makes that true.
        def _fits(r, key):
            return r["remaining_below_threshold"] <= r[key] < r["remaining_below_threshold"] + \
                r["remaining_equal_to_threshold"]
        incl = all(_fits(r, "k_ceil_fraction_times_remaining") for r in rounds_out)
        excl = all(_fits(r, "k_if_n_excluded_ignored_layers") for r in rounds_out)
        assert incl and not excl, (incl, excl)
        expected["count_to_prune_includes_ignored_layer"] = incl
        expected["current_mask_covers_all_prunable_layer_names"] = True  # asserted: keys(new_mask) == names

    inputs = {
        "model_name": desc.model_hparams.model_name,
        "weights": "synth.weights(seed=round, {name: shape for name in prunable_layer_names (module order)}, "
                   f"levels={levels}) -- stream i = i-th prunable layer, fc.weight included",
        "seeds": [r["seed"] for r in rounds_out],
        "levels": levels,
        "rounds": rounds,
        "shapes": [[n, list(shapes[n])] for n in names],
        "hyperparameters": {"pruning_strategy": ph.pruning_strategy,
                            "pruning_fraction": ph.pruning_fraction,
                            "pruning_layers_to_ignore": ph.pruning_layers_to_ignore},
        "loading": "round r: every prunable weight = synth value * current mask (pruned positions zero, as a "
                   "trained PrunedModel saves them); round 1 passes current_mask=None (prune's default "
                   "Mask.ones_like), later rounds pass the Mask returned by the previous round. Non-prunable "
                   "tensors (biases, BN) are left at open_lth's init (torch.manual_seed(0)); prune never reads them.",
    }
    notes = (
        "Strategy.prune: n = sum of current_mask over ALL prunable_layer_names (ignored layers included); "
        "k = ceil(pruning_fraction * n); weight_vector = |w| of remaining (mask==1) entries of the non-ignored "
        "prunable layers, concatenated; threshold = np.sort(weight_vector)[k] (0-based, i.e. the (k+1)-th "
        "smallest); new mask keeps |w| > threshold (and mask==1). So removed = #(remaining |w| <= threshold) "
        ">= k+1: exactly k+1 without ties (off by one from the nominal ceil(f*n)); every weight tied with the "
        "threshold value is also removed. Ignored layers copy their current mask. No torch randomness involved."
    )
    if case == "imp_vgg16":
        notes += (" VGG-16 default_hparams ignore fc.weight: it is never pruned, but its 5120 weights still count "
                  "in n, so k = ceil(0.2 * n_all) is taken from the conv layers only (conv layers lose more "
                  "than 20% of their own remaining weights per round).")
    if case.startswith("imp_resnet") or case == "imp_ties":
        notes += (" ResNet-20 default_hparams ignore nothing: all 19 3x3 convs, the two 1x1 stride-2 projection "
                  "shortcut convs (blocks.3.shortcut.0.weight, blocks.6.shortcut.0.weight) and fc.weight are pruned "
                  "globally.")
    if case == "imp_ties":
        notes += (" levels=16: each layer's values are (j+0.5)/8-1 times 1/sqrt(fan_in), so |w| takes 8 "
                  "values per layer and layers of equal fan-in share them; the threshold value is shared by many "
                  "weights and all of them go, so removed far exceeds k+1.")

    out_dir = os.path.join(FIXTURES, case)
    os.makedirs(out_dir, exist_ok=True)
    case_json = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": f"python {DRIVER} --work <DIR> --case {case}",
        "driver": DRIVER,
        "released_function": "pruning/sparse_global.py:Strategy.prune (lines 32-58: n/k at 36-38, ignored "
                             "layers at 41-43, threshold at 50-51, keep |w| > threshold at 53-54, ignored "
                             "layers' masks copied at 55-57); models/base.py:Model.prunable_layer_names "
                             "(lines 36-45); models/" + module_name + ".py:Model.default_hparams",
        "shims": "torch.nn.parallel.DistributedDataParallel temporarily replaced by a bare nn.Module subclass while "
                 "importing open_lth (MRO conflict of models/base.py's DDP wrapper class under torch 2.14); "
                 "unused on this path.",
        "environment": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "inputs": inputs,
        "expected": expected,
        "notes": notes,
    }
    if store_tensors:
        case_json["expected_tensors"] = ("expected.tensors.json: bool masks 'round{r}/{layer name}' after round r, "
                                         "for every prunable layer")
        __import__("tensorjson").save(os.path.join(out_dir, "expected.tensors.json"), tensors)
    elif os.path.exists(os.path.join(out_dir, "expected.tensors.json")):
        os.remove(os.path.join(out_dir, "expected.tensors.json"))
    with open(os.path.join(out_dir, "case.json"), "w") as f:
        json.dump(case_json, f, indent=1)
        f.write("\n")
    print(case, [(r["remaining_before"], r["k_ceil_fraction_times_remaining"], r["removed"]) for r in rounds_out])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/open_lth; fixtures go to fixtures/openlth")
    ap.add_argument("--case", choices=list(CASES) + ["all"], required=True)
    args = ap.parse_args()
    configure(args.work)
    torch.set_num_threads(1)
    lth = import_released()
    for case in (list(CASES) if args.case == "all" else [args.case]):
        run_case(case, lth)


if __name__ == "__main__":
    main()
