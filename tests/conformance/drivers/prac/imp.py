"""The released PrAC-IMP pruning step on the released CIFAR-10 models, 3 successive rounds.

Per round r (= state r of main_PrAC_imp.py): the pruned layers' weights are synth.weights(seed=r, {conv weight
names in module order: shapes}), with the positions the current mask prunes zeroed, written into the model
(``weight`` in round 0, ``weight_orig`` under the pruning hook after it); one eval forward pass under no_grad
refreshes the hook's masked ``weight`` (in training, validate() runs just before the mask is taken); then the
released ``utils/pruner.py:return_current_mask(model, args.rate=0.2, pruned=state)`` gives the next mask
(``pruning_model`` = torch.nn.utils.prune.global_unstructured over every nn.Conv2d weight, L1Unstructured,
amount=0.2 of the still-unpruned weights), and the released end-of-round statements of main() (``if state:
remove_prune(model)``; ``model.load_state_dict(initalization)``; ``prune_model_custom(model, epoch_mask)``,
extracted with ``ast``) carry the mask into the next round.

Models as utils/setup.py:setup_model_dataset builds them for cifar10: res20s -> models/resnets.py
resnet20(number_class=10); vgg16_bn -> models/vgg.py vgg16_bn(num_classes=10); res18 -> models/resnet.py
resnet18(num_classes=10, imagenet=True) (7x7 stride-2 stem + max-pool, even on CIFAR).
Shims: advertorch's NormalizeByChannelMeanStd stand-in, torchvision.models.utils alias (see _common.py).

Usage: python tests/conformance/drivers/prac/imp.py --work DIR [resnet20 vgg16 resnet18 resnet18_cifarstem]
(DIR holds released/prac; writes DIR/fixtures/prac/imp_<arch>; no arch = all four)
"""

from __future__ import annotations

import argparse
import os
import sys
from copy import deepcopy

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


DRIVER = "tests/conformance/drivers/prac/imp.py"
RATE = 0.2
ROUNDS = 3
TORCH_SEED = 0


def build(arch: str) -> tuple[nn.Module, str]:
    C.install_shims()
    if arch == "resnet20":
        from models.resnets import resnet20
        return resnet20(number_class=10), "models/resnets.py:resnet20(number_class=10) (arch res20s)"
    if arch == "vgg16":
        from models.vgg import vgg16_bn
        return vgg16_bn(num_classes=10), "models/vgg.py:vgg16_bn(num_classes=10) (arch vgg16_bn)"
    if arch == "resnet18":
        from models.resnet import resnet18
        return (resnet18(num_classes=10, imagenet=True),
                "models/resnet.py:resnet18(num_classes=10, imagenet=True) (arch res18, as setup_model_dataset builds it)")
    if arch == "resnet18_cifarstem":
        from models.resnet import resnet18
        return (resnet18(num_classes=10, imagenet=False),
                "models/resnet.py:resnet18(num_classes=10, imagenet=False) (3x3 stride-1 stem, no max-pool; NOT what "
                "the released scripts build - extra case for backbones with a CIFAR stem)")
    raise ValueError(arch)


def layer_list(model: nn.Module) -> tuple[list, list]:
    pruned, other = [], []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            pruned.append([f"{name}.weight", list(m.weight.shape), "conv"])
        elif isinstance(m, nn.Linear):
            other.append([f"{name}.weight", list(m.weight.shape), "linear"])
    return pruned, other


def tie_report(scores: np.ndarray, old: np.ndarray, new: np.ndarray, names: list, sizes: list) -> dict:
    """Analysis (not released): the boundary magnitude and whether ties there decide which weights go, and whether
    the released choice equals "lowest flat index first, layers laid end to end in module order"."""
    alive = old
    dropped = old & ~new
    k = int(dropped.sum())
    tau = float(scores[dropped].max()) if k else None
    tied = int((alive & (scores == tau)).sum()) if k else 0
    tied_dropped = int((dropped & (scores == tau)).sum()) if k else 0
    idx = np.nonzero(alive)[0]
    order = idx[np.argsort(scores[idx], kind="stable")]
    ref = old.copy()
    ref[order[:k]] = False
    band = np.nonzero(alive & (scores == tau))[0] if k else np.zeros(0, dtype=np.int64)
    starts = np.cumsum([0] + sizes)
    where = lambda i: (names[int(np.searchsorted(starts, i, side="right") - 1)],  # noqa: E731
                       int(i - starts[np.searchsorted(starts, i, side="right") - 1]))
    entries = [[*where(i), bool(new[i])] for i in band]
    return {"boundary_magnitude": tau, "alive_at_boundary": tied, "dropped_at_boundary": tied_dropped,
            "boundary_tie_decides": tied > tied_dropped and tied_dropped > 0,
            "equals_lowest_index_tie_rule": bool(np.array_equal(ref, new)),
            "differs_from_lowest_index_rule": int((ref != new).sum()),
            "boundary_band": entries}


def run(arch: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(TORCH_SEED)
    C.install_shims()
    import utils.pruner as pruner
    model, built = build(arch)
    model.eval()
    initalization = deepcopy(model.state_dict())
    layers, other = layer_list(model)
    names = [n for n, _, _ in layers]
    shapes = {n: s for n, s, _ in layers}
    modules = dict(model.named_modules())
    state_loop, _, src, path = C.main_loops()
    nodes, l0, l1 = C.stmts_between(state_loop.body, src, "if state:\n            remove_prune", "prune_model_custom")
    transition = C.compile_stmts(nodes, path)
    mask = {n: np.ones(s, dtype=bool) for n, s in shapes.items()}
    rounds = []
    for r in range(ROUNDS):
        w = synth.weights(r, shapes)
        with torch.no_grad():
            for n in names:
                m = modules[n[: -len(".weight")]]
                t = torch.from_numpy(w[n] * mask[n])
                (m.weight_orig if r else m.weight).copy_(t)
            model(torch.zeros(1, 3, 32, 32))  # refresh the hook's masked weight, as validate() does
        with C.quiet():
            epoch_mask = pruner.return_current_mask(model, RATE, pruned=r)
        new = {n: epoch_mask[n + "_mask"].numpy().astype(bool) for n in names}
        assert list(epoch_mask) == [n + "_mask" for n in names]
        old_kept = sum(int(mask[n].sum()) for n in names)
        new_kept = sum(int(new[n].sum()) for n in names)
        assert all(not (new[n] & ~mask[n]).any() for n in names)
        flat = lambda d: np.concatenate([d[n].reshape(-1) for n in names])  # noqa: E731
        ties = tie_report(np.abs(flat(w)), flat(mask), flat(new), names, [int(mask[n].size) for n in names])
        rounds.append({
            "round": r, "weights": f"synth.weights(seed={r}, layers, levels=None) * current mask",
            "kept_before": old_kept, "kept_after": new_kept, "removed": old_kept - new_kept,
            "removed_formula_round_half_even": round(RATE * old_kept),
            "removed_per_layer": {n: int(mask[n].sum() - new[n].sum()) for n in names},
            "digests": synth.digests(new), "ties": ties})
        print(arch, r, old_kept, "->", new_kept, ties)
        env = {"state": r, "model": model, "initalization": initalization, "epoch_mask": epoch_mask,
               "remove_prune": pruner.remove_prune, "prune_model_custom": pruner.prune_model_custom}
        with C.quiet():
            exec(transition, env)
        mask = new
    vgg_bias = " VGG convs have biases; only the conv weights are pruned." if arch == "vgg16" else ""
    stem = layers[0][0]
    shortcut = [n for n in names if "downsample" in n or "shortcut" in n]
    C.write_case(
        f"imp_{arch}", driver=DRIVER, command=f"python {DRIVER} --work <DIR> {arch}",
        released_function=("utils/pruner.py:return_current_mask -> pruning_model (torch.nn.utils.prune."
                           "global_unstructured, L1Unstructured, amount=args.rate=0.2 over every nn.Conv2d weight); "
                           f"main_PrAC_imp.py:main lines {l0}-{l1} (remove_prune / load_state_dict(init) / "
                           "prune_model_custom) between rounds"),
        inputs={"torch": torch.__version__, "model": built, "torch_seed_before_build": TORCH_SEED, "rate": RATE, "rounds": ROUNDS,
                "weights": "round r: synth.weights(seed=r, {name: shape for layers}, levels=None), positions pruned by "
                           "the current mask zeroed", "layers": layers, "not_pruned_weight_layers": other},
        expected={"rounds": rounds, "pruned_layers": names, "stem_pruned": stem,
                  "shortcut_convs_pruned": shortcut, "classifier_pruned": False},
        notes=("Global magnitude pruning of ALL nn.Conv2d weights (stem conv included; ResNet-18 downsample 1x1 "
               "convs included; ResNet-20 uses option-A parameter-free shortcuts so has none) - never the Linear "
               "classifier, BN, or biases." + vgg_bias + " Each round removes round(0.2 * alive) (Python round, "
               "half to even, torch.nn.utils.prune._compute_nparams_toprune) of the still-alive weights, scored by "
               "|weight_orig * mask| over the alive entries only, selected with torch.topk(largest=False) on the "
               "concatenation of layers in module order; ties at the boundary magnitude go whichever way CPU topk "
               "puts them (see rounds[].ties: equals_lowest_index_tie_rule compares with 'lowest flat index first'; boundary_band "
               "lists every alive weight whose |w| equals the boundary magnitude as [layer, flat index in layer, "
               "kept by the released code], so a test can compare outside the band exactly and rebuild the released "
               "mask from its own plus the band before chaining the next round). "
               "PrAC prunes the mask of the LAST epoch of the (early-stopped) round, not the best checkpoint."),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/prac; fixtures go to fixtures/prac")
    ap.add_argument("archs", nargs="*", help="resnet20 vgg16 resnet18 resnet18_cifarstem (default: all four)")
    a = ap.parse_args()
    _setup(a.work)
    for arch in (a.archs or ["resnet20", "vgg16", "resnet18", "resnet18_cifarstem"]):
        run(arch)


if __name__ == "__main__":
    main()
