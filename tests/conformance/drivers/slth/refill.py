"""Golden fixtures for Structure-LTH's refill (pruning_utils.py: prune_model_custom_fillback, lines 77-198).

Run from the repository root (DIR holds released/slth; writes DIR/fixtures/slth/<case>):
    python tests/conformance/drivers/slth/refill.py --work DIR --case refill_vgg16_0.33_0.0   (and the 7 others below)
    python tests/conformance/drivers/slth/refill.py --work DIR --case refill_integer_budget
    python tests/conformance/drivers/slth/refill.py --work DIR --case refill_remain_ties
    python tests/conformance/drivers/slth/refill.py --work DIR --case refill_activation_l1
    (or --case all)

The released call is made as main_eval_fillback.py:load_ticket makes it (line 332), with return_mask_only=True:
    prune_model_custom_fillback(model, current_mask, criteria=..., train_loader=loader,
                                trained_weight=copy.deepcopy(<pruned model state_dict>), fillback_rate=rho,
                                return_mask_only=True)
where `model` is a freshly built, *unpruned* model (as in load_ticket) and the trained state dict is that of a model
pruned by the released pruning_model (so it holds weight_orig / weight_mask, and the released function's except
branch, lines 82-88, turns each pruned conv's entry into weight_orig * weight_mask before loading it).
train_loader is a one-element list [(images, labels)] (the function only calls next(iter(train_loader))).
Every case that starts from a released pruning_model mask (refill_<net>_*, and each net of refill_activation_l1)
also records expected[...]["starting_mask"]: threshold |w|, removed count, per-layer kept counts and digests, and the
list of every selected-conv weight whose |w| equals the threshold with whether torch.topk removed it, so a test can
rebuild the released starting mask exactly (asserted here from that record alone).
The driver copies nothing from the released function; the per-layer numbers it records beside the released masks
(num_channel, int_channel, the k-th smallest score) are independent checks, asserted against the released masks.
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


DRIVER = "tests/conformance/drivers/slth/refill.py"
WEIGHT_SEED = 0
BATCH_SEED = 11
BATCH_SIZE = 4
TORCH_SEED = 0
DENSITY_PX = {"0.33": 0.67, "0.11": 0.89}  # px handed to pruning_model (fraction removed, one shot)

REFILL_CASES = {f"refill_{net}_{d}_{rho}": (net, d, float(rho))
                for net in ("vgg16", "resnet18") for d in ("0.33", "0.11") for rho in ("0.0", "0.1")}
CASES = list(REFILL_CASES) + ["refill_integer_budget", "refill_remain_ties", "refill_activation_l1"]

FUNC_LINES = ("pruning_utils.py:prune_model_custom_fillback (lines 77-198): trained_weight load / mask->weight "
              "conversion 80-88; forward hooks on every selected conv + one forward on next(iter(train_loader)) "
              "89-101; per layer 104-192: count = row sums of the mask viewed (C, -1) 107-109, num_channel = "
              "count.sum().float() / mask.shape[1] 111, int_channel = int(num_channel + (C - num_channel) * "
              "fillback_rate) 117; criteria 'remain' 121-131 (kthvalue(count, max(C - int_channel, 1))), "
              "'magnitude' 133-146 (count = l1 of trained_weight rows; kthvalue(count, C - int_channel) if > 0 else all "
              "ones), 'l1' 148-159 (count from feature_maps[counter], counter never incremented); rows with count > "
              "threshold set to 1, count < threshold set to 0, ONE of the rows with count == threshold (torch.randperm) "
              "set to 1; masks[name] = mask when return_mask_only 191-192, returned 197-198")


def released_ticket(rel, net, px):
    """A model pruned by the released pruning_model (synth seed WEIGHT_SEED conv weights), its state dict and masks."""
    pu = rel.pu
    model = C.build(rel, net)
    shapes = C.conv_shapes(model)
    w = synth.weights(WEIGHT_SEED, shapes)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for n in C.conv_names(model):
            modules[n].weight.copy_(torch.from_numpy(w[n + ".weight"]))
    pu.pruning_model(model, px, conv1=False)
    trained = copy.deepcopy(model.state_dict())
    masks = {k: v.detach().clone() for k, v in pu.extract_mask(model.state_dict()).items()}
    return model, shapes, w, trained, masks


STARTING_TIES_FORMAT = ("[layer, flat index (C order within that layer's weight), removed?] for EVERY selected-conv "
                        "weight with |w| == threshold_abs (layers in module order, indices ascending); which of them "
                        "the released pruning_model removes is torch.topk's (implementation-defined) choice. The "
                        "starting mask is exactly (|w| > threshold_abs) everywhere else (one shot: the previous mask "
                        "is all ones), so mask = (|w| > threshold_abs) OR (|w| == threshold_abs AND NOT removed?)")


def starting_mask_record(names, w, masks, px):
    """Independent description of the released one-shot starting mask + the positions torch.topk decided.

    Asserts that (|w| > thr AND previous, previous = all ones) with the tie list applied reproduces the released mask.
    """
    total = sum(int(w[n + ".weight"].size) for n in names)
    k = int(round(px * total))  # torch.nn.utils.prune._compute_nparams_toprune: round(amount * n)
    vec = np.concatenate([np.abs(w[n + ".weight"]).reshape(-1) for n in names])
    srt = np.sort(vec, kind="stable")
    thr = float(srt[k - 1])  # the k-th smallest |w| over the selected convs (removed)
    released = {}
    for n in names:
        m = masks[n + ".weight_mask"].numpy()
        assert set(np.unique(m).tolist()) <= {0.0, 1.0}, n
        released[n] = m.astype(bool)
    kept_per_layer = {n + ".weight": int(released[n].sum()) for n in names}
    removed = total - sum(kept_per_layer.values())
    assert removed == k, (removed, k)
    ties = []
    for n in names:
        a = np.abs(w[n + ".weight"])
        prev = np.ones(a.shape, dtype=bool)  # one shot: nothing pruned before
        at = (a == thr) & prev
        assert np.array_equal(released[n] & ~at, (a > thr) & prev), n
        flat = released[n].reshape(-1)
        ties.extend([n + ".weight", int(i), bool(not flat[i])] for i in np.flatnonzero(at.reshape(-1)))
    # rebuild from the record alone and compare with the released mask, layer by layer
    removed_at = {}
    for name, i, rem in ties:
        removed_at.setdefault(name, []).append((i, rem))
    for n in names:
        a = np.abs(w[n + ".weight"])
        rebuilt = ((a > thr) & np.ones(a.shape, dtype=bool)).reshape(-1)
        for i, rem in removed_at.get(n + ".weight", []):
            rebuilt[i] = not rem
        assert np.array_equal(rebuilt.reshape(a.shape), released[n]), n
    below = int(np.count_nonzero(vec < thr))
    removed_at_thr = sum(1 for t in ties if t[2])
    assert removed_at_thr == k - below, (removed_at_thr, k, below)
    return {
        "px": px,
        "total_selected_weights": total,
        "k_removed_round_px_times_total": k,
        "removed": removed,
        "threshold_abs": thr,
        "threshold_abs_is": "the k-th smallest |w| over the selected convs (float32 value, k = removed)",
        "values_equal_to_threshold": len(ties),
        "removed_below_threshold": below,
        "removed_at_threshold": removed_at_thr,
        "threshold_ties": ties,
        "threshold_ties_format": STARTING_TIES_FORMAT,
        "kept_per_layer": kept_per_layer,
        "mask_digests": synth.digests({n + ".weight": released[n] for n in names}),
    }


def loader():
    x, y = C.synth_images(BATCH_SEED, BATCH_SIZE)
    return [(x, y)]


def row_state(m2d: np.ndarray) -> np.ndarray:
    """0 = all-zero row, 1 = all-ones row, 2 = partial row."""
    full = m2d.all(1)
    empty = ~m2d.any(1)
    return np.where(full, 1, np.where(empty, 0, 2)).astype(np.int8)


def layer_numbers(mask4d: torch.Tensor, rho: float):
    """Independent restatement of lines 108-117 (checks only)."""
    m = mask4d.view(mask4d.shape[0], -1)
    count = torch.sum(m, 1)
    num_channel = (count.sum().float() / m.shape[1]).item()
    int_channel = int(num_channel + (m.shape[0] - num_channel) * rho)
    return count, num_channel, int_channel


def summarize(names, masks_in, out, scores, rho, criterion):
    """Per-layer record of a released refill result + independent checks."""
    layers, tensors = [], {}
    for n in names:
        key = n + ".weight_mask"
        m_in = masks_in[key]
        c = m_in.shape[0]
        _, num_channel, int_channel = layer_numbers(m_in, rho)
        res = out[n].reshape(c, -1).numpy()
        assert set(np.unique(res).tolist()) <= {0.0, 1.0}
        res = res.astype(bool)
        src = m_in.reshape(c, -1).numpy().astype(bool)
        st = row_state(res)
        full = np.flatnonzero(st == 1)
        partial = np.flatnonzero(st == 2)
        zero = np.flatnonzero(st == 0)
        for i in partial:  # a partial row is always the input row, untouched
            assert np.array_equal(res[i], src[i]), (n, i)
        s = scores[n]
        k = c - int_channel
        kk = max(k, 1) if criterion == "remain" else k
        rec = {
            "layer": n + ".weight", "C_out": c, "row_size": int(res.shape[1]),
            "input_kept": int(src.sum()), "num_channel": num_channel, "int_channel": int_channel,
            "kthvalue_k": kk if kk > 0 else None,
            "full_rows": full.tolist(), "n_full": int(full.size),
            "partial_rows": partial.tolist(), "n_zero": int(zero.size),
            "refilled_digest": synth.digest(res),
        }
        if kk > 0:
            thr = torch.kthvalue(s, kk)[0].item()
            gt = np.flatnonzero(s.numpy() > thr)
            eq = np.flatnonzero(s.numpy() == thr)
            lt = np.flatnonzero(s.numpy() < thr)
            assert set(gt.tolist()) <= set(full.tolist())
            assert set(lt.tolist()).isdisjoint(full.tolist())
            filled_from_tie = sorted(set(full.tolist()) & set(eq.tolist()))
            assert len(filled_from_tie) == 1 or (len(eq) > 1 and all(src[i].all() for i in eq)), (n, filled_from_tie)
            for i in lt:
                assert not res[i].any()
            for i in eq:
                if i not in filled_from_tie:
                    assert np.array_equal(res[i], src[i])
            unfilled = [int(i) for i in eq if i not in filled_from_tie]
            rec.update({"threshold": thr, "n_above": int(gt.size), "n_below": int(lt.size),
                        "tied_at_threshold": eq.tolist(), "tie_row_filled": filled_from_tie,
                        "tied_rows_not_filled_keep_input_mask": all(np.array_equal(res[i], src[i]) for i in unfilled),
                        "tied_rows_not_filled_that_were_partial": [i for i in unfilled if src[i].any()]})
        else:
            assert res.all()
            rec.update({"threshold": None, "all_ones_because_C_minus_int_channel_le_0": True})
        layers.append(rec)
        tensors[f"row_state/{n}.weight"] = st
        tensors[f"score/{n}.weight"] = s.numpy().astype(np.float32)
    return layers, tensors


def run_refill(case, rel):
    net, d, rho = REFILL_CASES[case]
    pu = rel.pu
    px = DENSITY_PX[d]
    _, shapes, w, trained, masks = released_ticket(rel, net, px)
    masks_in = {k: v.clone() for k, v in masks.items()}
    model = C.build(rel, net)  # unpruned, as in main_eval_fillback.load_ticket
    layers = C.layer_list(model)
    sel = set(C.released_selection(rel, net))
    names = [n for n in C.conv_names(model) if n in sel]
    start = starting_mask_record(names, w, masks_in, px)
    skipped = [n for n in C.conv_names(model) if n not in sel]
    mask_arg = {k: v.clone() for k, v in masks.items()}
    torch.manual_seed(TORCH_SEED)
    out = pu.prune_model_custom_fillback(model, mask_arg, criteria="magnitude", train_loader=loader(),
                                         trained_weight=copy.deepcopy(trained), return_mask_only=True,
                                         fillback_rate=rho)
    assert sorted(out) == sorted(names)
    mutated = all(out[n].data_ptr() == mask_arg[n + ".weight_mask"].data_ptr() for n in names)
    out_shapes = {n: list(out[n].shape) for n in names}
    # independent: the magnitude score the released code uses (trained weight_orig * weight_mask, l1 per row)
    scores = {n: (trained[n + ".weight_orig"] * trained[n + ".weight_mask"]).reshape(shapes[n + ".weight"][0], -1)
              .abs().sum(1) for n in names}
    per_layer, tensors = summarize(names, masks_in, out, scores, rho, "magnitude")
    total_in = sum(int(masks_in[n + ".weight_mask"].sum()) for n in names)
    total = sum(int(np.prod(shapes[n + ".weight"])) for n in names)
    total_out = sum(L["refilled_digest"]["kept"] for L in per_layer)
    payload = {
        "repository": C.REPOSITORY, "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", case), "driver": DRIVER,
        "released_function": FUNC_LINES + "; starting mask: pruning_utils.py:pruning_model (6-22) + extract_mask (53-59)",
        "shims": C.SHIMS, "environment": C.environment(),
        "inputs": {
            "net": net,
            "constructor": C.CONSTRUCTOR_CALL[net] + " + model.normalize = NormalizeByChannelMeanStd(cifar10)",
            "weights": f"synth.weights(seed={WEIGHT_SEED}, synth_shapes, levels=None): stream i = i-th Conv2d weight "
                       "in module order, the skipped stem 'conv1' included (loaded, never pruned)",
            "synth_shapes": [[k, list(v)] for k, v in shapes.items()],
            "starting_mask": f"pruning_model(model, px={px}, conv1=False) once on those weights: global magnitude over "
                             "the selected convs, k = round(px * total) smallest |w| removed",
            "target_density": float(d), "px": px,
            "trained_weight": "deepcopy of that pruned model's state_dict (weight_orig + weight_mask per pruned conv); "
                              "the released function converts each to weight_orig * weight_mask (lines 82-88), so the "
                              "magnitude score of a row is the l1 of its REMAINING trained weights",
            "criteria": "magnitude", "fillback_rate": rho, "return_mask_only": True, "conv1": False,
            "train_loader": f"[(synth.values({BATCH_SEED}, 0, ({BATCH_SIZE}, 3, 32, 32)), "
                            f"synth.labels({BATCH_SEED}, 1, {BATCH_SIZE}, 10))] (one forward; unused by 'magnitude')",
            "torch_manual_seed_before_call": TORCH_SEED,
        },
        "expected": {
            "layers": layers,
            "refilled_layers": [n + ".weight" for n in names],
            "skipped_convs": [n + ".weight" for n in skipped],
            "total_selected_weights": total, "input_kept": total_in, "input_density": total_in / total,
            "output_kept": total_out, "output_density": total_out / total,
            "returned_mask_shapes": out_shapes,
            "returned_masks_are_the_input_mask_dict_tensors_mutated_in_place": mutated,
            "per_layer": per_layer,
            "full_rows_equals_int_channel_plus_1_capped": all(
                L["n_full"] == min(L["C_out"], L["int_channel"] + 1) for L in per_layer),
            "starting_mask": start,
        },
        "tensors": "expected.tensors.json: row_state/<layer> int8[C] (0 all-zero row, 1 all-ones row, 2 partial row "
                   "left as the input mask), score/<layer> float32[C] (l1 of weight_orig*weight_mask per output "
                   "channel, computed by the driver the way line 135 sees it)",
        "notes": (
            "criteria='magnitude': score = per-output-channel l1 of trained_weight[name.weight] (here the masked "
            "trained weights). num_channel = kept/row_size (float32), int_channel = int(num_channel + (C - "
            "num_channel) * rho) (truncation), k = C - int_channel; if k <= 0 every row is set to 1, else threshold "
            "= kthvalue(score, k) (k-th smallest, 1-based), rows with score > threshold -> all ones, < threshold -> "
            "all zeros, and one random row among those == threshold -> all ones (others tied stay as they were, "
            "partial). With distinct scores the k-th smallest row itself is filled, so min(C, int_channel + 1) rows "
            "are kept and C - int_channel - 1 emptied. The returned masks are the input mask_dict tensors, mutated "
            "in place, with the conv weight's 4-D shape. Only Conv2d modules not named exactly 'conv1' are refilled "
            "(the resnet stem keeps no mask and stays dense; vgg16's features.0 is refilled); Linear is never "
            "touched. The function always loads trained_weight into the model and runs one forward on the first "
            "batch (train mode here: BatchNorm running stats of that model change), even for 'magnitude'."),
    }
    C.write_case(case, payload, tensors)


def constructed_tie_mask(names, shapes, mask_seed, levels=4):
    """Row c of layer i keeps its first (q+1)*P//(2*levels) weights (C order), q = synth.labels(mask_seed, i, C, levels)."""
    masks = {}
    recipe = []
    for i, n in enumerate(names):
        shp = shapes[n + ".weight"]
        c, p = shp[0], int(np.prod(shp[1:]))
        q = synth.labels(mask_seed, i, c, levels)
        counts = (q + 1) * p // (2 * levels)
        m = (np.arange(p)[None, :] < counts[:, None]).astype(np.float32).reshape(shp)
        masks[n + ".weight_mask"] = torch.from_numpy(m)
        recipe.append([n + ".weight", i])
    return masks, recipe


def run_remain_ties(case, rel):
    pu = rel.pu
    net = "resnet18"
    mask_seed, levels = 5, 4
    model0 = C.build(rel, net)
    shapes = C.conv_shapes(model0)
    sel = set(C.released_selection(rel, net))
    names = [n for n in C.conv_names(model0) if n in sel]
    masks, _ = constructed_tie_mask(names, shapes, mask_seed, levels)
    trained = copy.deepcopy(model0.state_dict())  # any loadable state dict: 'remain' scores only the mask
    per_seed, tensors = {}, {}
    for s in (0, 1):
        model = C.build(rel, net)
        mask_arg = {k: v.clone() for k, v in masks.items()}
        torch.manual_seed(s)
        out = pu.prune_model_custom_fillback(model, mask_arg, criteria="remain", train_loader=loader(),
                                             trained_weight=copy.deepcopy(trained), return_mask_only=True,
                                             fillback_rate=0.0)
        scores = {n: masks[n + ".weight_mask"].reshape(shapes[n + ".weight"][0], -1).sum(1) for n in names}
        per_layer, t = summarize(names, masks, out, scores, 0.0, "remain")
        for L in per_layer:
            assert len(L["tie_row_filled"]) == 1
        per_seed[str(s)] = {
            "returned_mask_shapes": {n: list(out[n].shape) for n in names},
            "per_layer": per_layer,
            "tie_row_filled": {L["layer"]: L["tie_row_filled"][0] for L in per_layer},
        }
        for k, v in t.items():
            if k.startswith("row_state/"):
                tensors[f"seed{s}/{k}"] = v
    differs = [n + ".weight" for n in names
               if per_seed["0"]["tie_row_filled"][n + ".weight"] != per_seed["1"]["tie_row_filled"][n + ".weight"]]
    payload = {
        "repository": C.REPOSITORY, "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", case), "driver": DRIVER,
        "released_function": FUNC_LINES,
        "shims": C.SHIMS, "environment": C.environment(),
        "inputs": {
            "net": net, "constructor": C.CONSTRUCTOR_CALL[net] + " + model.normalize = NormalizeByChannelMeanStd",
            "mask": f"constructed, for each refilled conv i (index in refilled_layers order, i.e. module order without "
                    f"the stem): P = prod(shape[1:]), q = synth.labels({mask_seed}, i, C_out, {levels}), row c keeps "
                    f"its first (q[c] + 1) * P // {2 * levels} weights in C order (flattened (Cin, kh, kw)), the rest 0",
            "mask_seed": mask_seed, "levels": levels,
            "trained_weight": "the fresh model's own state_dict (torch.manual_seed(0) init; loads strictly, unused "
                              "by 'remain' except for the forward)",
            "criteria": "remain", "fillback_rate": 0.0, "return_mask_only": True,
            "train_loader": f"[(synth.values({BATCH_SEED}, 0, ({BATCH_SIZE}, 3, 32, 32)), "
                            f"synth.labels({BATCH_SEED}, 1, {BATCH_SIZE}, 10))]",
            "torch_manual_seed_before_call": [0, 1],
        },
        "expected": {
            "layers": C.layer_list(model0),
            "refilled_layers": [n + ".weight" for n in names],
            "by_torch_seed": per_seed,
            "layers_where_the_two_seeds_fill_a_different_tied_row": differs,
        },
        "tensors": "expected.tensors.json: seed<s>/row_state/<layer> int8[C] (0 empty, 1 full, 2 partial = input row)",
        "notes": (
            "criteria='remain': score = number of kept weights in the row (float). threshold = kthvalue(count, "
            "max(C - int_channel, 1)); count > threshold -> row all ones, count < threshold -> all zeros, and among "
            "the rows with count == threshold exactly ONE, tensor[torch.randperm(n_tied)[0]], is set to all ones; "
            "every other tied row keeps its partial input mask (neither dense nor empty), so the result is not "
            "channel-wise. The choice follows the global torch CPU generator: one randperm per layer, in module "
            "order (also when only one row ties), nothing else draws from it on this path. The returned tensors are "
            "2-D (C, Cin*kh*kw) views of the input mask_dict tensors, which are mutated in place."),
    }
    C.write_case(case, payload, tensors)


def run_integer_budget(case, rel):
    """kept / row_size an exact integer in every layer: shows the released '+1 row' (int() then the k-th row filled)."""
    pu = rel.pu
    net = "resnet20"
    model0 = C.build(rel, net)
    shapes = C.conv_shapes(model0)
    sel = set(C.released_selection(rel, net))
    names = [n for n in C.conv_names(model0) if n in sel]
    w = synth.weights(WEIGHT_SEED, shapes)
    masks = {}
    for n in names:
        shp = shapes[n + ".weight"]
        p = int(np.prod(shp[1:]))
        m = np.zeros((shp[0], p), dtype=np.float32)
        m[:, : p // 2] = 1.0
        masks[n + ".weight_mask"] = torch.from_numpy(m.reshape(shp))
    # trained model: synth weights + the released prune_model_custom, so trained_weight holds weight_orig/weight_mask
    tm = C.build(rel, net)
    mods = dict(tm.named_modules())
    with torch.no_grad():
        for n in C.conv_names(tm):
            mods[n].weight.copy_(torch.from_numpy(w[n + ".weight"]))
    pu.prune_model_custom(tm, {k: v.clone() for k, v in masks.items()})
    trained = copy.deepcopy(tm.state_dict())
    by_rho, tensors = {}, {}
    for rho in (0.0, 0.5):
        model = C.build(rel, net)
        mask_arg = {k: v.clone() for k, v in masks.items()}
        torch.manual_seed(TORCH_SEED)
        out = pu.prune_model_custom_fillback(model, mask_arg, criteria="magnitude", train_loader=loader(),
                                             trained_weight=copy.deepcopy(trained), return_mask_only=True,
                                             fillback_rate=rho)
        scores = {n: (trained[n + ".weight_orig"] * trained[n + ".weight_mask"]).reshape(shapes[n + ".weight"][0], -1)
                  .abs().sum(1) for n in names}
        per_layer, t = summarize(names, masks, out, scores, rho, "magnitude")
        for L in per_layer:
            c = L["C_out"]
            exact = c // 2 + (c - c // 2) * rho
            assert exact == int(exact) and L["int_channel"] == int(exact), (L["layer"], L["int_channel"], exact)
            assert L["n_full"] == min(c, L["int_channel"] + 1)
            L["exact_channel_equivalent_x"] = exact
        by_rho[str(rho)] = {"per_layer": per_layer,
                            "n_full_minus_x": {L["layer"]: L["n_full"] - int(L["exact_channel_equivalent_x"])
                                               for L in per_layer}}
        for k, v in t.items():
            tensors[f"rho{rho}/{k}"] = v
    payload = {
        "repository": C.REPOSITORY, "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", case), "driver": DRIVER,
        "released_function": FUNC_LINES + "; trained model masked with pruning_utils.py:prune_model_custom (70-75)",
        "shims": C.SHIMS, "environment": C.environment(),
        "inputs": {
            "net": net, "constructor": C.CONSTRUCTOR_CALL[net] + " + model.normalize = NormalizeByChannelMeanStd",
            "weights": f"synth.weights(seed={WEIGHT_SEED}, synth_shapes) (every Conv2d, module order, stem included)",
            "synth_shapes": [[k, list(v)] for k, v in shapes.items()],
            "mask": "constructed: every refilled conv (all but the stem 'conv1'), every output row keeps its first "
                    "P // 2 weights (C order over (Cin, kh, kw)), P = Cin*kh*kw (even for all these layers), so "
                    "kept / P = C_out / 2 exactly",
            "trained_weight": "state_dict of a model holding those weights after the released prune_model_custom(model, "
                              "mask) (weight_orig + weight_mask; converted to weight_orig * weight_mask by the function)",
            "criteria": "magnitude", "fillback_rates": [0.0, 0.5], "return_mask_only": True,
            "train_loader": f"[(synth.values({BATCH_SEED}, 0, ({BATCH_SIZE}, 3, 32, 32)), "
                            f"synth.labels({BATCH_SEED}, 1, {BATCH_SIZE}, 10))]",
            "torch_manual_seed_before_call": TORCH_SEED,
        },
        "expected": {
            "layers": C.layer_list(model0),
            "refilled_layers": [n + ".weight" for n in names],
            "by_fillback_rate": by_rho,
        },
        "tensors": "expected.tensors.json: rho<r>/row_state/<layer> int8[C] (0 empty, 1 full, 2 partial); "
                   "rho<r>/score/<layer> float32[C] (l1 of the masked trained weights per output channel)",
        "notes": (
            "When x = num_channel + (C - num_channel) * rho is an exact integer the released code keeps x + 1 "
            "channels (int(x) = x, k = C - x, and the k-th smallest row itself is filled besides the x rows above "
            "it), capped at C. A rule keeping ceil(x) channels keeps one fewer here; for non-integer x, int(x) + 1 "
            "= ceil(x) and the two agree."),
    }
    C.write_case(case, payload, tensors)


def run_activation_l1(case, rel):
    pu = rel.pu
    res_by_net, tensors = {}, {}
    for net in ("vgg16", "resnet18"):
        _, shapes, w, trained, masks = released_ticket(rel, net, DENSITY_PX["0.33"])
        sel = set(C.released_selection(rel, net))
        names = [n for n in C.conv_names(C.build(rel, net)) if n in sel]
        start = starting_mask_record(names, w, masks, DENSITY_PX["0.33"])
        entry = {}
        for rho in (0.0, 1.0):
            model = C.build(rel, net)
            modules = dict(model.named_modules())
            # observer hooks (driver's own, registered before the call so they fire before the released ones):
            seen = []
            hs = [modules[n].register_forward_hook(lambda m, i, o, n=n: seen.append((n, o.detach().clone())))
                  for n in names]
            mask_arg = {k: v.clone() for k, v in masks.items()}
            torch.manual_seed(TORCH_SEED)
            try:
                out = pu.prune_model_custom_fillback(model, mask_arg, criteria="l1", train_loader=loader(),
                                                     trained_weight=copy.deepcopy(trained), return_mask_only=True,
                                                     fillback_rate=rho)
                err = None
            except Exception as e:  # noqa: BLE001 - recorded
                out, err = None, f"{type(e).__name__}: {e}"
            for h in hs:
                h.remove()
            first_name, fm0 = seen[0]
            rec = {"fillback_rate": rho,
                   "feature_maps_order_first": first_name, "feature_map_0_shape": list(fm0.shape),
                   "hook_order": [n + ".weight" for n, _ in seen]}
            if err is not None:
                rec["error"] = err
                # which layer failed: the first whose C - int_channel < 1 (kthvalue k = 0)
                fails = []
                for n in names:
                    _, _, ic = layer_numbers(masks[n + ".weight_mask"], rho)
                    if masks[n + ".weight_mask"].shape[0] - ic < 1:
                        fails.append(n + ".weight")
                rec["layers_with_C_minus_int_channel_lt_1"] = fails
                rec["first_failing_layer"] = fails[0] if fails else None
                entry[str(rho)] = rec
                continue
            own = dict(seen)
            scores_fm0, per_layer_meta = {}, []
            for n in names:
                c = masks[n + ".weight_mask"].shape[0]
                sc = fm0.reshape(c, -1).abs().sum(1)
                scores_fm0[n] = sc
                own_sc = own[n].transpose(0, 1).reshape(c, -1).abs().sum(1)
                per_layer_meta.append((n, sc, own_sc))
            per_layer, t = summarize(names, masks, out, scores_fm0, rho, "l1")
            for L, (n, sc, own_sc) in zip(per_layer, per_layer_meta):
                c = L["C_out"]
                kept = set(L["full_rows"])
                top_own = set(torch.sort(-own_sc.double(), stable=True).indices[:L["n_full"]].tolist())
                L["score_source"] = (f"feature_maps[0] = output of {first_name} {list(fm0.shape)}, "
                                     f".view({c}, -1) -> rows of {fm0.numel() // c} contiguous elements")
                L["selection_matches_own_output_channel_l1_top_n_full"] = kept == top_own
            rec["per_layer"] = per_layer
            rec["all_layers_scored_from_feature_maps_0"] = True  # asserted via summarize (threshold checks)
            for k, v in t.items():
                tensors[f"{net}/rho{rho}/{k}"] = v
            entry[str(rho)] = rec
        res_by_net[net] = {"layers": C.layer_list(C.build(rel, net)),
                           "refilled_layers": [n + ".weight" for n in names], "by_fillback_rate": entry,
                           "starting_mask": start}
    payload = {
        "repository": C.REPOSITORY, "commit": C.COMMIT,
        "command": C.command(DRIVER, "--case", case), "driver": DRIVER,
        "released_function": FUNC_LINES,
        "shims": C.SHIMS, "environment": C.environment(),
        "inputs": {
            "nets": ["vgg16", "resnet18"],
            "starting_mask": f"as refill_<net>_0.33_*: synth.weights(seed={WEIGHT_SEED}, conv shapes), "
                             f"pruning_model(px={DENSITY_PX['0.33']}, conv1=False)",
            "trained_weight": "deepcopy of the pruned model's state_dict (converted to weight_orig*weight_mask)",
            "criteria": "l1", "fillback_rates": [0.0, 1.0], "return_mask_only": True,
            "batch": f"synth.values({BATCH_SEED}, 0, ({BATCH_SIZE}, 3, 32, 32)), synth.labels({BATCH_SEED}, 1, "
                     f"{BATCH_SIZE}, 10); the model is in train mode (freshly built), so BatchNorm uses batch stats",
            "batch_seed": BATCH_SEED, "torch_manual_seed_before_call": TORCH_SEED,
        },
        "expected": res_by_net,
        "tensors": "expected.tensors.json: <net>/rho0.0/row_state/<layer> int8[C]; <net>/rho0.0/score/<layer> "
                   "float32[C] = feature_maps[0].view(C, -1).abs().sum(1) (the score the released code uses)",
        "notes": (
            "criteria='l1' is activation-based: count = feature_maps[counter].view(C, -1).abs().sum(1) but `counter` "
            "is set to 0 (line 102) and never incremented, so EVERY layer is scored from feature_maps[0], the output "
            "of the first hooked conv to run (vgg16: features.0; resnet18: layer1.0.conv1 - the stem is not hooked). "
            "view(C, -1) of a (B, C0, H, W) tensor cuts the flat batch-major memory into C contiguous chunks, so "
            "even for the first layer a 'channel' score is not that channel's activation (for B > 1). On these "
            "nets B*C0*H*W is divisible by every C (powers of two), so no shape error occurs; with rho=0 every "
            "layer succeeds. With rho=1.0, int_channel = C for (nearly) every layer and kthvalue(count, 0) raises "
            "(no max(., 1) guard here, unlike 'remain', and no `> 0` branch, unlike 'magnitude'). Selection rule "
            "otherwise as 'magnitude' (> threshold full, < threshold empty, one random tied row full)."),
    }
    C.write_case(case, payload, tensors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/slth; fixtures go to fixtures/slth")
    ap.add_argument("--case", required=True, choices=CASES + ["all"])
    a = ap.parse_args()
    _setup(a.work)
    torch.set_num_threads(1)
    rel = C.import_released()
    for case in (CASES if a.case == "all" else [a.case]):
        if case in REFILL_CASES:
            run_refill(case, rel)
        elif case == "refill_integer_budget":
            run_integer_budget(case, rel)
        elif case == "refill_remain_ties":
            run_remain_ties(case, rel)
        else:
            run_activation_l1(case, rel)


if __name__ == "__main__":
    main()
