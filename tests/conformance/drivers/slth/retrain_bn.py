"""Golden fixture: what retraining after a released refill does to the emptied channels' BatchNorm (resnet18).

Run from the repository root (DIR holds released/slth; writes DIR/fixtures/slth/refill_retrain_bn):
    python tests/conformance/drivers/slth/retrain_bn.py --work DIR --case refill_retrain_bn

What the released scripts do after a refill (checked here, recorded in the fixture):
- main_imp_fillback.py:243 and main_imp.py:244 (--fillback) call
  prune_model_custom_fillback(model, current_mask[, criteria=...], train_loader=train_loader) without trained_weight
  or init_weight: the call itself raises (load_state_dict(None) -> except branch -> None.keys()). The driver makes
  exactly that call and records the exception.
- main_eval_fillback.py (the README's "Retrain Networks with Refill" command) calls it with init_weight /
  trained_weight from the checkpoint (load_ticket, line 332) and then hits `assert False` (line 335) before the
  optimizer (lines 129-131) and train() are reached. Both facts are read from the released files with `ast`.
So no released path retrains a refilled model. This fixture records what the released *function* leaves behind
(return_mask_only=False) and what the released scripts' next lines (SGD over model.parameters(), lr 0.1, momentum
0.9, weight_decay 1e-4 = main_eval_fillback.py defaults and README flags; train() = model.train(); forward; CE;
zero_grad; backward; step) would do in one step on a fixed synthetic batch.
"""

from __future__ import annotations

import argparse
import ast
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


DRIVER = "tests/conformance/drivers/slth/retrain_bn.py"
CASE = "refill_retrain_bn"
NET = "resnet18"
TRAINED_CONV_SEED = 0
INIT_CONV_SEED = 1
OTHER_SEED = 100  # BatchNorm / fc "trained" values
PX = 0.67
BATCH_SEED = 11
STEP_BATCH_SEED = 12
BATCH_SIZE = 4
TORCH_SEED = 0
LR, MOMENTUM, WD = 0.1, 0.9, 1e-4


def script_facts():
    """Read (not run) the released scripts: the refill calls' keywords and what follows them."""
    facts = {}
    for fname in ("main_imp_fillback.py", "main_imp.py", "main_eval_fillback.py"):
        src = open(os.path.join(C.RELEASED, fname)).read()
        tree = ast.parse(src)
        calls = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "prune_model_custom_fillback":
                calls.append({"line": node.lineno, "positional": len(node.args),
                              "keywords": [k.arg for k in node.keywords]})
        asserts_false = []
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef):
                asserts_false += [[n.lineno, fn.name] for n in ast.walk(fn) if isinstance(n, ast.Assert)
                                  and isinstance(n.test, ast.Constant) and n.test.value is False]
        facts[fname] = {"prune_model_custom_fillback_calls": calls, "assert_False_lines_and_function": sorted(asserts_false)}
    return facts


def bn_after(conv_name: str) -> str:
    """resnet18 naming: conv1 -> bn1, conv2 -> bn2, downsample.0 -> downsample.1 (models/resnet.py)."""
    if conv_name.endswith("downsample.0"):
        return conv_name[:-1] + "1"
    head, last = conv_name.rsplit(".", 1) if "." in conv_name else ("", conv_name)
    bn = last.replace("conv", "bn")
    return f"{head}.{bn}" if head else bn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/slth; fixtures go to fixtures/slth")
    ap.add_argument("--case", default=CASE, choices=[CASE])
    _setup(ap.parse_args().work)
    torch.set_num_threads(1)
    rel = C.import_released()
    pu = rel.pu

    # ---- the trained, IMP-pruned model (released pruning_model) with synthetic BN / fc values ----
    trained_model = C.build(rel, NET)
    shapes = C.conv_shapes(trained_model)
    w_tr = synth.weights(TRAINED_CONV_SEED, shapes)
    other_names = [k for k, v in trained_model.state_dict().items()
                   if k + "" not in shapes and not k.startswith("normalize.") and not k.endswith("num_batches_tracked")]
    other_shapes = {k: tuple(trained_model.state_dict()[k].shape) for k in other_names}
    w_other = synth.weights(OTHER_SEED, other_shapes)
    for k in other_names:
        if k.endswith("running_var"):
            w_other[k] = np.abs(w_other[k]) + np.float32(0.5)
    sd = trained_model.state_dict()
    for k, v in list(w_tr.items()) + list(w_other.items()):
        sd[k] = torch.from_numpy(v.copy())
    trained_model.load_state_dict(sd)
    pu.pruning_model(trained_model, PX, conv1=False)
    trained_sd = copy.deepcopy(trained_model.state_dict())
    current_mask = {k: v.detach().clone() for k, v in pu.extract_mask(trained_sd).items()}

    # ---- the init (rewind) state: fresh model, conv weights synth seed INIT_CONV_SEED ----
    init_model = C.build(rel, NET, init_seed=1)
    w_init = synth.weights(INIT_CONV_SEED, shapes)
    isd = init_model.state_dict()
    for k, v in w_init.items():
        isd[k] = torch.from_numpy(v.copy())
    init_sd = copy.deepcopy(isd)

    x, y = C.synth_images(BATCH_SEED, BATCH_SIZE)
    loader = [(x, y)]

    # ---- 1. the released scripts' own call (main_imp_fillback.py:243) ----
    crash = {}
    for label, kwargs in (("main_imp_fillback.py:243", {}), ("main_imp.py:244 (--fillback --criteria magnitude)",
                                                             {"criteria": "magnitude"})):
        m = C.build(rel, NET)
        m.load_state_dict(init_sd)
        try:
            pu.prune_model_custom_fillback(m, {k: v.clone() for k, v in current_mask.items()},
                                           train_loader=loader, **kwargs)
            crash[label] = None
        except Exception as e:  # noqa: BLE001 - recorded
            crash[label] = f"{type(e).__name__}: {e}"

    # ---- 2. the function as main_eval_fillback.load_ticket calls it, without return_mask_only ----
    model = C.build(rel, NET)
    model.load_state_dict(init_sd)  # load_ticket first loads the checkpoint's init_weight (line 313)
    torch.manual_seed(TORCH_SEED)
    pu.prune_model_custom_fillback(model, {k: v.clone() for k, v in current_mask.items()}, criteria="magnitude",
                                   train_loader=loader, init_weight=copy.deepcopy(init_sd),
                                   trained_weight=copy.deepcopy(trained_sd), fillback_rate=0.0)
    modules = dict(model.named_modules())
    masked = sorted(n for n, _ in model.named_buffers() if n.endswith("weight_mask"))
    masked_params = [n[: -len("_mask")] for n in masked]
    sel = set(C.released_selection(rel, NET))
    refilled = [n for n in C.conv_names(model) if n in sel]
    assert masked == sorted(n + ".weight_mask" for n in refilled)
    param_names = [n for n, _ in model.named_parameters()]

    # Where each entry came from after the call (before any step).
    sd_after = model.state_dict()
    origin = {}
    for k, v in sd_after.items():
        base = k[:-len("_orig")] if k.endswith("_orig") else k
        if k.endswith("_mask") or k.startswith("normalize.") or k.endswith("num_batches_tracked"):
            continue
        t = trained_sd.get(k, trained_sd.get(base))
        if k not in trained_sd and base + "_orig" in trained_sd:
            t = trained_sd[base + "_orig"] * trained_sd[base + "_mask"]
        eq_init = torch.equal(v, init_sd[base])
        eq_tr = t is not None and torch.equal(v, t)
        origin[k] = "init" if eq_init and not eq_tr else ("trained" if eq_tr and not eq_init else
                                                           ("both" if eq_tr else "neither"))
    origin_summary = {}
    for k, o in origin.items():
        kind = ("refilled_conv.weight_orig" if k.endswith("weight_orig") else
                "stem conv1.weight" if k == "conv1.weight" else
                "bn." + k.rsplit(".", 1)[1] if (".bn" in k or k.startswith("bn") or "downsample.1" in k) else
                "fc." + k.rsplit(".", 1)[1] if k.startswith("fc.") else k)
        origin_summary.setdefault(kind, set()).add(o)
    origin_summary = {k: sorted(v) for k, v in origin_summary.items()}

    # ---- 3. the scripts' next lines: SGD over model.parameters(), one train() step ----
    optimizer = torch.optim.SGD(model.parameters(), LR, momentum=MOMENTUM, weight_decay=WD)
    opt_ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    bn_out = {}
    hooks = []
    for conv in refilled:
        bn = bn_after(conv)
        hooks.append(modules[bn].register_forward_hook(lambda m, i, o, bn=bn: bn_out.__setitem__(bn, o.detach().clone())))
    xs, ys = C.synth_images(STEP_BATCH_SEED, BATCH_SIZE)
    model.train()
    output = model(xs)
    loss = torch.nn.CrossEntropyLoss()(output, ys)
    optimizer.zero_grad()
    loss.backward()
    grads = {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in model.named_parameters()}
    optimizer.step()
    for h in hooks:
        h.remove()
    after = {n: p.detach().clone() for n, p in model.named_parameters()}

    per_layer = []
    for conv in refilled:
        mk = getattr(modules[conv], "weight_mask")
        c = mk.shape[0]
        rows = mk.reshape(c, -1)
        empty = torch.where(~rows.bool().any(1))[0]
        full = torch.where(rows.bool().all(1))[0]
        bn = bn_after(conv)
        g, b = modules[bn].weight, modules[bn].bias
        e = empty.tolist()
        rec = {"layer": conv + ".weight", "batchnorm": bn, "C_out": c, "n_full": int(full.numel()),
               "n_empty": len(e), "n_partial": c - len(e) - int(full.numel()), "emptied_channels": e}
        if e:
            out = bn_out[bn][:, e]  # (B, n_empty, H, W), pre-activation BN output in the train-mode step
            beta_b = before[bn + ".bias"][e]
            relu_follows = conv.endswith("conv1") and conv != "conv1"
            rec.update({
                "bn_weight_zeroed": bool((before[bn + ".weight"][e] == 0).all()),
                "bn_bias_zeroed": bool((before[bn + ".bias"][e] == 0).all()),
                "bn_weight_requires_grad": bool(g.requires_grad), "bn_bias_requires_grad": bool(b.requires_grad),
                "bn_params_in_optimizer": bool(id(g) in opt_ids and id(b) in opt_ids),
                "bn_has_mask": hasattr(modules[bn], "weight_mask") or hasattr(modules[bn], "bias_mask"),
                "bn_weight_grad_zero_on_emptied": bool((grads[bn + ".weight"][e] == 0).all()),
                "bn_bias_grad_zero_on_emptied": bool((grads[bn + ".bias"][e] == 0).all()),
                "bn_weight_changed_by_step": bool((after[bn + ".weight"][e] != before[bn + ".weight"][e]).any()),
                "bn_weight_change_is_weight_decay_only": bool(torch.allclose(
                    after[bn + ".weight"][e], before[bn + ".weight"][e] * (1 - LR * WD), rtol=0, atol=1e-7)),
                "bn_bias_changed_by_step": bool((after[bn + ".bias"][e] != before[bn + ".bias"][e]).any()),
                "bn_output_equals_bias_on_emptied": bool(torch.allclose(
                    out, beta_b[None, :, None, None].expand_as(out), rtol=0, atol=1e-6)),
                "n_emptied_with_bias_gt_0": int((beta_b > 0).sum()),
                "relu_directly_after_bn": relu_follows,
                "channel_output_nonzero_after_relu": (bool((torch.relu(out) != 0).any()) if relu_follows else None),
                "effective_weight_rows_still_zero_after_step": bool(
                    ((after[conv + ".weight_orig"] * mk).reshape(c, -1)[e] == 0).all()),
                "weight_orig_rows_changed_by_step": bool(
                    (after[conv + ".weight_orig"].reshape(c, -1)[e] != before[conv + ".weight_orig"].reshape(c, -1)[e]).any()),
            })
        per_layer.append(rec)

    def all_of(key):
        vals = [r[key] for r in per_layer if key in r and r[key] is not None]
        return {"all": all(vals), "any": any(vals), "n_layers": len(vals)}

    summary = {k: all_of(k) for k in (
        "bn_weight_zeroed", "bn_bias_zeroed", "bn_weight_requires_grad", "bn_params_in_optimizer", "bn_has_mask",
        "bn_weight_grad_zero_on_emptied", "bn_bias_grad_zero_on_emptied", "bn_weight_changed_by_step",
        "bn_weight_change_is_weight_decay_only", "bn_bias_changed_by_step", "bn_output_equals_bias_on_emptied",
        "channel_output_nonzero_after_relu", "effective_weight_rows_still_zero_after_step",
        "weight_orig_rows_changed_by_step")}

    payload = {
        "repository": C.REPOSITORY, "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", CASE), "driver": DRIVER,
        "released_function": (
            "pruning_utils.py:prune_model_custom_fillback with return_mask_only=False (lines 80-88 load trained_weight "
            "into the model; 133-146 magnitude refill; 186-190: m.weight.data = init_weight[name.weight] then "
            "prune.CustomFromMask.apply(m, 'weight', mask)); called as main_eval_fillback.py:332; then the SGD of "
            "main_eval_fillback.py:129-131 and one iteration of its train() (lines 191-235); "
            "main_imp_fillback.py:243 / main_imp.py:244 calls reproduced verbatim for the crash"),
        "shims": C.SHIMS, "environment": C.environment(),
        "inputs": {
            "net": NET, "constructor": C.CONSTRUCTOR_CALL[NET] + " + model.normalize = NormalizeByChannelMeanStd",
            "trained_conv_weights": f"synth.weights({TRAINED_CONV_SEED}, synth_shapes) (every Conv2d, module order, "
                                    "stem included)",
            "trained_other": f"synth.weights({OTHER_SEED}, other_shapes) for every BatchNorm weight/bias/running_mean/"
                             "running_var and fc weight/bias in state_dict order (running_var = |v| + 0.5)",
            "other_shapes": [[k, list(v)] for k, v in other_shapes.items()],
            "synth_shapes": [[k, list(v)] for k, v in shapes.items()],
            "ticket": f"pruning_model(trained model, px={PX}, conv1=False); trained_weight = deepcopy(its state_dict) "
                      "(weight_orig/weight_mask), current_mask = extract_mask(it)",
            "init_weight": f"fresh model (torch.manual_seed(1) init: BN weight 1, bias 0, fc default) with conv "
                           f"weights synth.weights({INIT_CONV_SEED}, synth_shapes)",
            "refill": "criteria='magnitude', fillback_rate=0.0, return_mask_only=False, conv1=False; "
                      f"torch.manual_seed({TORCH_SEED}) before; train_loader = [(synth.values({BATCH_SEED}, 0, "
                      f"({BATCH_SIZE},3,32,32)), synth.labels({BATCH_SEED}, 1, {BATCH_SIZE}, 10))]",
            "optimizer": f"torch.optim.SGD(model.parameters(), {LR}, momentum={MOMENTUM}, weight_decay={WD})",
            "step_batch": f"synth.values({STEP_BATCH_SEED}, 0, ({BATCH_SIZE},3,32,32)), "
                          f"synth.labels({STEP_BATCH_SEED}, 1, {BATCH_SIZE}, 10); model.train()",
        },
        "expected": {
            "layers": C.layer_list(model),
            "released_script_calls": script_facts(),
            "released_script_call_exceptions": crash,
            "weight_mask_carriers": masked_params,
            "parameters": param_names,
            "state_after_refill_origin": origin_summary,
            "state_after_refill_origin_format": "per kind of entry: whether its values equal init_weight ('init'), "
                                                "trained_weight ('trained'), both or neither (BN running stats: "
                                                "'neither' = moved by the function's train-mode forward)",
            "per_layer": per_layer,
            "summary": summary,
        },
        "notes": (
            "No released script retrains after a refill: main_imp_fillback.py:243 and main_imp.py:244 omit "
            "trained_weight and crash inside the function; main_eval_fillback.py stops at `assert False` right after "
            "its refill call. Taking the function's own output (return_mask_only=False) and the scripts' next lines: "
            "the model holds trained_weight for EVERYTHING except the refilled convs, whose weight_orig is set to "
            "init_weight (so the stem conv1, every BatchNorm's affine and running stats, and fc are NOT rewound); "
            "a weight_mask (forward pre-hook, weight = weight_orig * weight_mask) is put on the refilled convs only; "
            "BatchNorm is neither zeroed, masked nor frozen, and is in the optimizer. In the train-mode step an "
            "emptied channel's BN input is all zeros, so its batch mean/var are 0, x_hat = 0 and the BN output is "
            "exactly beta: gamma's gradient is 0 there (gamma only shrinks by weight decay, gamma*(1 - lr*wd)), beta "
            "gets a gradient and moves, and after conv1-bn1-ReLU the channel outputs ReLU(beta) > 0 wherever beta > 0, "
            "so emptied channels are not removable without folding beta into the next layer."),
    }
    C.write_case(CASE, payload)


if __name__ == "__main__":
    main()
