"""Case `init`: initial scores, masks, frozen parameters and optimizer of the released search (ResNet-32, s=0.9).

Two paths:
  * `on_pretrained` -- the released functions in cifar.py:get_model's order on ONE model carrying the synth
    "pre-trained" weights (generate_pr_cfg -> set_model_prune_rate -> freeze_model_weights), then get_optimizer.
  * `literal_get_model` -- cifar.py:get_model called as released. It loads the checkpoint, computes pr_cfg, then
    builds a NEW model (`model = models.__dict__[args.arch]()`) and sets the prune rates on that freshly
    (randomly) initialised model: the masks come from random weights and the search runs on them.

Run (DIR holds released/jackpot; writes DIR/fixtures/jackpot/init):
    python tests/conformance/drivers/jackpot/init.py --work DIR
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

DRIVER = "tests/conformance/drivers/jackpot/init.py"
R = None  # the sibling _released helper, bound by _setup() in main(): importing this file only defines things


def _setup() -> None:
    """Parse --work DIR, import the sibling _released helper and bind DIR's paths."""
    global R
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _released
    R = _released
    R.configure(R.work_arg())


ARCH, S = "resnet32_cifar10", 0.9


def score_rule(model) -> dict:
    out = {}
    f099 = np.float32(0.99)
    for n, m in R.prunable(model):
        s = m.mask.detach().numpy()
        b = m.b_mask.detach().numpy().astype(bool)
        out[f"{n}.weight"] = {
            "unique_scores": sorted(float(v) for v in np.unique(s)),
            "score_equals_where_kept_1_else_0.99f": bool(np.array_equal(s, np.where(b, np.float32(1.0), f099))),
        }
    return out


def magnitude_agreement(model, weights: dict) -> dict:
    """Is b_mask the layer's own magnitude mask (prune the int(numel*rate) smallest |w|)?"""
    res = {}
    for n, m in R.prunable(model):
        w = np.abs(weights[f"{n}.weight"]).reshape(-1)
        b = m.b_mask.detach().numpy().astype(bool).reshape(-1)
        k = int((~b).sum())
        if k == 0:
            res[f"{n}.weight"] = True
            continue
        res[f"{n}.weight"] = bool(w[~b].max() <= w[b].min()) if b.any() else True
    return res


def main() -> None:
    _setup()
    out = R.ROOT / "fixtures" / "jackpot" / "init"
    torch.manual_seed(0)
    R.deterministic(torch)
    ns = R.load()
    args = ns["args"]
    with R.quiet():
        shell = ns["models"].__dict__[ARCH]()
    sd, shapes = R.pretrained_state(shell, seed=0)
    synth_w = {k: v.numpy() for k, v in sd.items() if k.endswith(".weight")}

    # -- path 1: on the pre-trained (synth) weights
    model, pr_cfg = R.build_on_pretrained(ns, ARCH, sd, S, freeze=True)
    opt = ns["get_optimizer"](args, model)
    bm = R.b_masks(model)
    grad_names = [n for n, p in model.named_parameters() if p.requires_grad]
    pnames = {id(p): n for n, p in model.named_parameters()}
    groups = [{"n_params": len(g["params"]), "params": [pnames[id(p)] for p in g["params"]],
               **{k: g[k] for k in ("lr", "momentum", "weight_decay", "nesterov", "dampening")}}
              for g in opt.param_groups]
    bn = model.bn1
    on_pre = {
        "pr_cfg": [float(r) for r in pr_cfg],
        "kept": {n: int(m.sum()) for n, m in bm.items()},
        "mask_digests": R.synth().digests(bm),
        "score_rule": score_rule(model),
        "b_mask_is_layer_magnitude_mask": magnitude_agreement(model, synth_w),
        "weights_equal_synth": {f"{n}.weight": bool(np.array_equal(m.weight.detach().numpy(), synth_w[f"{n}.weight"]))
                                for n, m in R.prunable(model)},
        "requires_grad_after_freeze": grad_names,
        "frozen": "every module's .weight and .bias (conv weights, classifier bias, BatchNorm affine); b_mask is an "
                  "nn.Parameter with requires_grad=False",
        "optimizer": {"type": type(opt).__name__, "param_groups": groups},
        "state_dict_extra_keys": sorted({k.rsplit(".", 1)[1] for k in model.state_dict()} - {"weight", "bias"}),
        "bn": {"weight": float(bn.weight[0]), "bias": float(bn.bias[0]), "running_mean": float(bn.running_mean[0]),
               "running_var": float(bn.running_var[0]), "momentum": bn.momentum, "eps": bn.eps,
               "track_running_stats": bn.track_running_stats},
    }
    first_two = [n for n, _ in R.prunable(model)][:2]
    tensors = {f"on_pretrained.{n}.b_mask": bm[f"{n}.weight"] for n in first_two}
    tensors.update({f"on_pretrained.{n}.score": dict(R.prunable(model))[n].mask.detach().numpy().copy()
                    for n in first_two})

    # -- path 2: cifar.py:get_model exactly as released
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "resnet32_cifar10.pt"
        torch.save({"state_dict": sd}, ckpt)
        args.pretrained_model = str(ckpt)
        args.arch, args.prune_rate = ARCH, S
        torch.manual_seed(0)
        with R.quiet():
            lit, lit_cfg = ns["get_model"](args, ns["logger"])
    lbm = R.b_masks(lit)
    lit_w = {f"{n}.weight": m.weight.detach().numpy() for n, m in R.prunable(lit)}
    literal = {
        "torch_manual_seed_before_get_model": 0,
        "pr_cfg_equals_on_pretrained": [float(r) for r in lit_cfg] == on_pre["pr_cfg"],
        "weights_equal_synth": {n: bool(np.array_equal(lit_w[n], synth_w[n])) for n in lit_w},
        "kept": {n: int(m.sum()) for n, m in lbm.items()},
        "mask_digests": R.synth().digests(lbm),
        "masks_equal_on_pretrained": {n: bool(np.array_equal(lbm[n], bm[n])) for n in lbm},
        "b_mask_is_magnitude_mask_of_returned_random_weights": magnitude_agreement(lit, lit_w),
        "returned_weight_sha256_first_layer": R.sha(lit_w[first_two[0] + ".weight"]),
    }

    out.mkdir(parents=True, exist_ok=True)
    __import__('tensorjson').save(out / "expected.tensors.json", tensors)
    case = {
        "repository": R.REPO, "commit": R.COMMIT,
        "command": R.command(DRIVER),
        "driver": DRIVER,
        "released_function": ("utils/conv_type.py:PretrainConv.__init__ (mask=ones Parameter, b_mask=ones) and "
                              "set_prune_rate (lines 35-40, 138-151); cifar.py:generate_pr_cfg (127-154), get_model (lines 231-250, "
                              "incl. the re-instantiation at line 242), get_optimizer (lines 252-274); "
                              "utils/common.py:set_model_prune_rate, freeze_model_weights"),
        "inputs": {"arch": ARCH, "config": R.DEFAULT_CONFIG, "prune_rate": S, "torch_manual_seed": 0,
                   "weights": {"seed": 0, "levels": None,
                               "names_shapes_in_order": [[k, list(v)] for k, v in shapes.items()],
                               "classifier_bias": "zeros (fc.bias)"},
                   "batchnorm": "module defaults (weight 1, bias 0, running_mean 0, running_var 1); not in checkpoint",
                   "checkpoint": "{'state_dict': synth weights + fc.bias zeros} saved to a temp file for get_model",
                   "shims": R.SHIMS},
        "expected": {"layers": R.layer_list(model), "on_pretrained": on_pre, "literal_get_model": literal,
                     "tensors": ("expected.tensors.json: on_pretrained.<layer>.b_mask (bool) and .score (float32) "
                                 f"for {first_two}")},
        "notes": ("Scores (PretrainConv.mask, an nn.Parameter) start at 1.0 everywhere; set_prune_rate writes 0.99 "
                  "(float32 0.9900000095367432) at the int(numel*rate) smallest-|w| positions and b_mask 0 there. "
                  "So scores are NOT the weight magnitudes: kept=1.0, pruned=0.99. The classifier (fc) has rate 0: "
                  "b_mask all ones, scores all 1.0, but its score is still trainable (in the optimizer). "
                  "freeze_model_weights freezes every .weight/.bias incl. BatchNorm affine, so the optimizer holds "
                  "only the 32 score tensors (group 0 'bn' params is empty). cifar.py:get_model as released "
                  "re-creates the model after computing pr_cfg, so the pre-trained weights are discarded: masks are "
                  "the magnitude masks of the new random (kaiming-uniform default) weights with the per-layer rates "
                  "of the pre-trained ones, and the search runs on random weights (imagenet.py:get_model does not "
                  "do this)."),
    }
    R.write_case(out, case)
    print("kept", sum(on_pre["kept"].values()), "literal weights==synth", any(literal["weights_equal_synth"].values()),
          "literal masks==pre", sum(literal["masks_equal_on_pretrained"].values()), "grad params", len(grad_names))
    print(groups[0]["n_params"], groups[1]["n_params"], groups[1]["weight_decay"], on_pre["state_dict_extra_keys"])


if __name__ == "__main__":
    main()
