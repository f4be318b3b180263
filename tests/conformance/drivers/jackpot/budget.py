"""Case `budget`: per-layer kept counts of the released layer-wise ("l1" = one global magnitude threshold) budget.

Runs cifar.py:generate_pr_cfg (global |w| threshold -> per-layer prune rates) and utils/common.py:
set_model_prune_rate -> utils/conv_type.py:PretrainConv.set_prune_rate (per-layer topk of the smallest |w|) on the
released resnet32_cifar10 and vgg19_cifar10 with synth weights, sparsity 0.9 and 0.95 (+ a tied-weights variant).

Run (DIR holds released/jackpot; writes DIR/fixtures/jackpot/budget):
    python tests/conformance/drivers/jackpot/budget.py --work DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

DRIVER = "tests/conformance/drivers/jackpot/budget.py"
R = None  # the sibling _released helper, bound by _setup() in main(): importing this file only defines things


def _setup() -> None:
    """Parse --work DIR, import the sibling _released helper and bind DIR's paths."""
    global R
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _released
    R = _released
    R.configure(R.work_arg())


CONFIGS = {"resnet32_cifar10": "configs/resnet32_cifar10/90sparsity30epoch.yaml",
           "vgg19_cifar10": "configs/vgg19_cifar10/90sparsity30epoch.yaml"}
VARIANTS = [("resnet32_cifar10", 0.9, None), ("resnet32_cifar10", 0.95, None),
            ("vgg19_cifar10", 0.9, None), ("vgg19_cifar10", 0.95, None),
            ("resnet32_cifar10", 0.9, 16)]


def analysis(weights: dict, names_masked: list, s: float, kept_released: dict) -> dict:
    """Driver-computed explanation of the released numbers (NOT released output): the global threshold and the
    counts an exact round(s*N) global magnitude budget would give (ticketbench's prune_to_sparsity rule)."""
    flat = np.concatenate([np.abs(weights[n]).reshape(-1).astype(np.float32) for n in names_masked])
    N = flat.size
    preserve = int(N * (1 - s))
    thr = np.sort(flat)[::-1][preserve - 1]
    below = {n: int((np.abs(weights[n]) < thr).sum()) for n in names_masked}
    numel = {n: int(weights[n].size) for n in names_masked}
    trunc = {n: int(numel[n] * (below[n] / numel[n])) for n in names_masked}
    # ticketbench rule: exactly round(s*N) zeros globally, ties -> lower flat index (layers end to end) pruned first
    drop = round(s * N)
    order = np.argsort(flat.astype(np.float64), kind="stable")[:drop]
    keep = np.ones(N, bool)
    keep[order] = False
    tb, off = {}, 0
    for n in names_masked:
        tb[n] = int(keep[off:off + numel[n]].sum())
        off += numel[n]
    return {
        "N_masked_excluding_classifier": N,
        "preserve_num_int_N_times_1_minus_s": preserve,
        "exact_N_times_1_minus_s": N * (1 - s),
        "threshold_abs_w": float(thr),
        "count_abs_below_threshold": below,
        "int_numel_times_rate": trunc,
        "layers_where_float_truncation_drops_one": [n for n in names_masked if trunc[n] != below[n]],
        "released_total_kept_excluding_classifier": int(sum(kept_released[n] for n in names_masked)),
        "ticketbench_rule_kept_per_layer": tb,
        "ticketbench_rule_total_kept": int(keep.sum()),
    }


def main() -> None:
    _setup()
    out = R.ROOT / "fixtures" / "jackpot" / "budget"
    torch.manual_seed(0)
    R.deterministic(torch)
    ns = R.load()
    expected, inputs = {}, []
    for arch, s, levels in VARIANTS:
        R.apply_config(ns, CONFIGS[arch])
        with R.quiet():
            shell = ns["models"].__dict__[arch]()
        sd, shapes = R.pretrained_state(shell, seed=0, levels=levels)
        model, pr_cfg = R.build_on_pretrained(ns, arch, sd, s, freeze=False)
        layers = R.layer_list(model)
        bm = R.b_masks(model)
        kept = {n: int(m.sum()) for n, m in bm.items()}
        classifier = layers[-1][0]
        masked = [n for n, _, _ in layers if n != classifier]
        weights = {k: v.numpy() for k, v in sd.items() if k.endswith(".weight")}
        key = f"{arch}_s{s}" + (f"_levels{levels}" if levels else "")
        # layerwise='uniform' with the released arch names: cfg_len is keyed 'vgg'/'resnet32' -> KeyError.
        args = ns["args"]
        args.layerwise = "uniform"
        try:
            with R.quiet():
                ns["generate_pr_cfg"](model)
            uniform_err = None
        except KeyError as e:
            uniform_err = f"KeyError: {e}"
        saved_arch = args.arch
        args.arch = "resnet32" if arch.startswith("resnet32") else "vgg"
        with R.quiet():
            uni = ns["generate_pr_cfg"](model)
        args.arch, args.layerwise = saved_arch, "l1"
        uni_kept = {n: int(np.prod(shp)) - int(int(np.prod(shp)) * r) for (n, shp, _), r in zip(layers, uni)}
        expected[key] = {
            "arch": arch, "sparsity": s, "weights_seed": 0, "weights_levels": levels,
            "layers": layers,
            "masked_by_budget": {n: (n != classifier) for n, _, _ in layers},
            "pr_cfg": [float(r) for r in pr_cfg],
            "pr_cfg_repr": [repr(r) for r in pr_cfg],
            "kept": kept,
            "pruned": {n: int(m.size - m.sum()) for n, m in bm.items()},
            "total_kept_excluding_classifier": int(sum(kept[n] for n in masked)),
            "total_excluding_classifier": int(sum(bm[n].size for n in masked)),
            "mask_digests": R.synth().digests(bm),
            "uniform": {"with_released_arch_name": uniform_err,
                        "with_cfg_len_key": "resnet32" if arch.startswith("resnet32") else "vgg",
                        "pr_cfg": [float(r) for r in uni], "kept": uni_kept},
            "analysis_not_released_output": analysis(weights, masked, s, kept),
        }
        inputs.append({"key": key, "arch": arch, "config": CONFIGS[arch], "prune_rate": s,
                       "weights": {"seed": 0, "levels": levels, "names_shapes_in_order": [[k, list(v)] for k, v in shapes.items()],
                                   "classifier_bias": "zeros"},
                       "batchnorm": "module defaults (weight 1, bias 0, running_mean 0, running_var 1); not in checkpoint"})
    case = {
        "repository": R.REPO, "commit": R.COMMIT,
        "command": R.command(DRIVER),
        "driver": DRIVER,
        "released_function": ("cifar.py:generate_pr_cfg (lines 127-154: layerwise 'l1' global threshold, "
                              "classifier excluded, pr_cfg.append(0)); utils/common.py:set_model_prune_rate; "
                              "utils/conv_type.py:PretrainConv.set_prune_rate (lines 138-151: topk(|w|, "
                              "int(numel*rate), largest=False) -> b_mask 0, score 0.99)"),
        "inputs": {"variants": inputs, "torch_manual_seed": 0, "layerwise": "l1 (default of utils/options.py; the "
                   "yaml configs do not set it)", "shims": R.SHIMS,
                   "glue": ("_released.build_on_pretrained: construct -> load_state_dict(synth, strict=False) -> "
                            "generate_pr_cfg -> set_model_prune_rate on the SAME model (cifar.py:get_model would "
                            "re-instantiate the model between these; see case init)")},
        "expected": expected,
        "notes": ("Budget = one global magnitude threshold over every PretrainConv except the one named fc/classifier: "
                  "preserve_num = int(N*(1-s)) (float product, truncated); thr = the preserve_num-th largest |w| "
                  "(torch.topk); per layer pr = count(|w| < thr)/numel (strict <, ties at thr are kept); the layer then "
                  "prunes int(numel*pr) smallest |w| (torch.topk largest=False), which can be one fewer than the count "
                  "below thr because of float rounding. The classifier gets rate 0 (dense, never swaps). The stem conv "
                  "is masked. The uniform option crashes for the released arch names (cfg_len keyed 'resnet32'/'vgg')."),
    }
    R.write_case(out, case)
    for k, v in expected.items():
        a = v["analysis_not_released_output"]
        print(k, "kept", v["total_kept_excluding_classifier"], "/", v["total_excluding_classifier"],
              "preserve", a["preserve_num_int_N_times_1_minus_s"], "tb", a["ticketbench_rule_total_kept"],
              "trunc-drop layers", a["layers_where_float_truncation_drops_one"])


if __name__ == "__main__":
    main()
