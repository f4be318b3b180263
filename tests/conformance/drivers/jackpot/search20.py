"""Case `search20`: 20 steps of the released lottery-jackpot search on ResNet-32 (CIFAR-10 config, s=0.9).

The released cifar.py:train (model.train(); zero_grad; forward; loss_func; backward; optimizer.step();
pop_up(model, adjust_rate(epoch)) -> PretrainConv.final_pop_up on every layer) runs unchanged on a stand-in loader
that yields synthetic batches; main()'s per-epoch `scheduler.step()` (CosineAnnealingLR(optimizer, num_epochs))
runs after each *complete* epoch. Recording hooks wrap (not replace) the namespace's `pop_up` and `loss_func`.

Two variants: iterations_per_epoch=391 (CIFAR-10 at batch 128; at the config's 256 it is 196 -- either way all
20 steps are in epoch 0) and iterations_per_epoch=4 (20 steps = 5 epochs, so the per-epoch LR stepping shows).

Run (DIR holds released/jackpot; writes DIR/fixtures/jackpot/search20):
    python tests/conformance/drivers/jackpot/search20.py --work DIR
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

DRIVER = "tests/conformance/drivers/jackpot/search20.py"
R = None  # the sibling _released helper, bound by _setup() in main(): importing this file only defines things


def _setup() -> None:
    """Parse --work DIR, import the sibling _released helper and bind DIR's paths."""
    global R
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _released
    R = _released
    R.configure(R.work_arg())


ARCH, S, STEPS, BATCH, CLASSES = "resnet32_cifar10", 0.9, 20, 16, 10
SNAP = (0, 1, 5, 10, 20)
IMAGE_STREAM, LABEL_STREAM = 0, 1
DATASET_LEN = 50000  # len(trainLoader.dataset): train() uses it only for print_freq (must be >= 10*batch_size)


def batch(step: int):
    s = R.synth()
    x = s.values(1000 + step, IMAGE_STREAM, (BATCH, 3, 32, 32))
    y = s.labels(1000 + step, LABEL_STREAM, BATCH, CLASSES)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


class Loader:
    """Stand-in for the CIFAR DataLoader: yields (inputs, targets) for global steps [first, first+n)."""

    def __init__(self, first: int, n: int):
        self.first, self.n = first, n
        self.dataset = range(DATASET_LEN)

    def __iter__(self):
        for step in range(self.first, self.first + self.n):
            yield batch(step)


def topk_check(model) -> dict:
    """Analysis: does b_mask equal 'score > tau' (tau = prune_num-th smallest score)? And is there a tie at tau?"""
    out = {}
    for n, m in R.prunable(model):
        s = m.mask.detach().reshape(-1)
        b = m.b_mask.detach().reshape(-1).bool()
        k = int(m.prune_rate * m.mask.numel())
        if k == 0:
            continue
        tau = torch.sort(s).values[k - 1]
        out[f"{n}.weight"] = {"equals_topk": bool(torch.equal(b, s > tau)), "tie_at_tau": int((s == tau).sum()) > 1}
    return out


def run(ns: dict, ipe: int) -> tuple[dict, dict, dict]:
    torch.manual_seed(0)
    args = ns["args"]
    R.apply_config(ns, R.DEFAULT_CONFIG)
    with R.quiet():
        shell = ns["models"].__dict__[ARCH]()
    sd, shapes = R.pretrained_state(shell, seed=0)
    model, pr_cfg = R.build_on_pretrained(ns, ARCH, sd, S, freeze=True)
    optimizer = ns["get_optimizer"](args, model)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.num_epochs)  # as cifar.py:main
    layers = R.prunable(model)
    names = [f"{n}.weight" for n, _ in layers]
    initial = {k: v.copy() for k, v in R.b_masks(model).items()}
    first_two = [n for n, _ in layers][:2]
    tensors: dict[str, np.ndarray] = {}

    per_step: list[dict] = []
    snaps: dict[str, dict] = {}
    cur = {"step": 0, "epoch": 0, "loss": None}

    def snapshot(step: int) -> None:
        bm = R.b_masks(model)
        snaps[str(step)] = {
            "mask_digests": R.synth().digests(bm),
            "kept": {n: int(bm[n].sum()) for n in names},
            "flips_vs_initial": {n: int((bm[n] != initial[n]).sum()) for n in names},
            "topk_check": topk_check(model),
        }
        if step in (1, STEPS):
            for n, m in layers[:2]:
                tensors[f"step{step}.{n}.score"] = m.mask.detach().numpy().copy()
                tensors[f"step{step}.{n}.b_mask"] = m.b_mask.detach().numpy().astype(bool)

    released_pop_up, released_loss = ns["pop_up"], ns["loss_func"]

    def pop_up_recorded(model_, rate):
        before = [m.b_mask.detach().clone() for _, m in layers]
        swaps = released_pop_up(model_, rate)
        cur["step"] += 1
        per_step.append({
            "step": cur["step"], "epoch": cur["epoch"],
            "lr": [g["lr"] for g in optimizer.param_groups][1],
            "rate": rate, "loss": cur["loss"],
            "swaps": [int(v) for v in swaps],
            "flips": [int((m.b_mask.detach() != b).sum()) for (_, m), b in zip(layers, before)],
        })
        if cur["step"] in SNAP:
            snapshot(cur["step"])
        return swaps

    def loss_recorded(output, targets):
        loss = released_loss(output, targets)
        cur["loss"] = float(loss.item())
        return loss

    ns["pop_up"], ns["loss_func"] = pop_up_recorded, loss_recorded
    snapshot(0)
    step, epoch, sched_steps = 0, 0, 0
    try:
        while step < STEPS:
            n = min(ipe, STEPS - step)
            cur["epoch"] = epoch
            with R.quiet():
                ns["train"](model, optimizer, Loader(step, n), args, epoch)
            step += n
            if n == ipe:  # a full epoch: main() runs validate() (no state change) then scheduler.step()
                scheduler.step()
                sched_steps += 1
            epoch += 1
    finally:
        ns["pop_up"], ns["loss_func"] = released_pop_up, released_loss
    bn = model.bn1
    for n, m in layers[:2]:
        tensors[f"final.{n}.score"] = m.mask.detach().numpy().copy()
    expected = {
        "iterations_per_epoch": ipe,
        "scheduler_steps_taken": sched_steps,
        "pr_cfg": [float(r) for r in pr_cfg],
        "per_step": per_step,
        "snapshots_after_steps": snaps,
        "total_swaps_per_step": [sum(p["swaps"]) for p in per_step],
        "lr_per_step": [p["lr"] for p in per_step],
        "bn1_after": {"running_mean_0_4": [float(v) for v in bn.running_mean[:4]],
                      "running_var_0_4": [float(v) for v in bn.running_var[:4]],
                      "num_batches_tracked": int(bn.num_batches_tracked),
                      "weight_0": float(bn.weight[0]), "bias_0": float(bn.bias[0])},
        "weights_unchanged": all(torch.equal(m.weight.detach(), sd[f"{n}.weight"]) for n, m in layers),
        "final_scores_first_two_layers_sha256": {n: R.sha(tensors[f"final.{n}.score"]) for n in first_two},
    }
    return expected, {f"ipe{ipe}.{k}": v for k, v in tensors.items()}, shapes


def main() -> None:
    _setup()
    out = R.ROOT / "fixtures" / "jackpot" / "search20"
    torch.manual_seed(0)
    R.deterministic(torch)
    ns = R.load()
    args = ns["args"]
    # The schedule as main() steps it: CosineAnnealingLR(optimizer, args.num_epochs), .step() once per epoch.
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.lr)
    sch = torch.optim.lr_scheduler.CosineAnnealingLR(dummy, args.num_epochs)
    lr_epochs = []
    for _ in range(args.num_epochs):
        lr_epochs.append(dummy.param_groups[0]["lr"])
        sch.step()
    closed = [0.5 * args.lr * (1 + math.cos(math.pi * e / args.num_epochs)) for e in range(args.num_epochs)]
    rates = [ns["adjust_rate"](e) for e in range(args.num_epochs)]

    expected, tensors = {}, {}
    shapes = None
    for ipe in (391, 4):
        e, t, shapes = run(ns, ipe)
        expected[f"ipe{ipe}"] = e
        tensors.update(t)
    expected["lr_per_epoch_CosineAnnealingLR"] = lr_epochs
    expected["lr_per_epoch_closed_form_max_abs_diff"] = max(abs(a - b) for a, b in zip(lr_epochs, closed))
    expected["adjust_rate_per_epoch"] = rates
    expected["layers"] = [[n, list(s), "linear" if n.startswith("fc") else "conv"] for n, s in shapes.items()]
    out.mkdir(parents=True, exist_ok=True)
    __import__('tensorjson').save(out / "expected.tensors.json", tensors)
    case = {
        "repository": R.REPO, "commit": R.COMMIT,
        "command": R.command(DRIVER),
        "driver": DRIVER,
        "released_function": ("cifar.py:train (lines 57-99), pop_up (46-55), adjust_rate (42-44), get_optimizer "
                              "(252-274), main's CosineAnnealingLR (179) + per-epoch scheduler.step() (190); "
                              "utils/conv_type.py:GetMask (straight-through, 24-33), PretrainConv.forward (41-47), "
                              "final_pop_up (89-121); utils/common.py:LabelSmoothing (11-33, smoothing 0.0)"),
        "inputs": {
            "arch": ARCH, "config": R.DEFAULT_CONFIG, "prune_rate": S, "steps": STEPS,
            "hyperparameters": {"optimizer": "sgd", "lr": args.lr, "momentum": args.momentum,
                                "weight_decay": args.weight_decay, "nesterov": args.nesterov,
                                "num_epochs": args.num_epochs, "label_smoothing": args.label_smoothing,
                                "no_bn_decay": args.no_bn_decay, "freeze_weights": args.freeze_weights},
            "torch_manual_seed": 0, "torch_threads": 1, "use_deterministic_algorithms": True,
            "weights": {"seed": 0, "levels": None, "names_shapes_in_order": [[k, list(v)] for k, v in shapes.items()],
                        "classifier_bias": "zeros (fc.bias)"},
            "batchnorm": "module defaults at start (weight 1, bias 0, running_mean 0, running_var 1)",
            "batches": {"batch_size": BATCH, "images": f"synth.values(1000+step, {IMAGE_STREAM}, ({BATCH},3,32,32))",
                        "labels": f"synth.labels(1000+step, {LABEL_STREAM}, {BATCH}, {CLASSES})",
                        "step": "0-based global step index 0..19", "no_augmentation_no_normalisation": True},
            "variants": {"ipe391": "iterations_per_epoch=391: all 20 steps in epoch 0, no scheduler step",
                         "ipe4": "iterations_per_epoch=4: epochs 0..4, scheduler.step() after each"},
            "stand_in_loader_dataset_len": DATASET_LEN,
            "shims": R.SHIMS,
            "glue": ("_released.build_on_pretrained (get_model's sequence on one model, without the "
                     "re-instantiation: see case init); recording wrappers around ns['pop_up'] and ns['loss_func']"),
        },
        "expected": expected,
        "notes": ("Step numbering: snapshot '0' is before any step, 'k' after k optimizer steps + pop_ups. "
                  "per_step[i].swaps = released final_pop_up return per layer (module order); flips = changed mask "
                  "entries (= 2*swaps). lr = optimizer lr used by that step. Tensors: expected.tensors.json keys "
                  "ipe<N>.step1/.step20/.final.<layer>.score (float32) and .b_mask (bool) for conv1 and "
                  "layer1.0.conv1. The scores depend on float gradients (conv/BN/loss), so a reimplementation should "
                  "compare scores with a tolerance and masks where no near-tie at tau exists."),
    }
    R.write_case(out, case)
    for key in ("ipe391", "ipe4"):
        e = expected[key]
        print(key, "swaps/step", e["total_swaps_per_step"], "lr", sorted(set(e["lr_per_step"])),
              "loss0", e["per_step"][0]["loss"], "weights_unchanged", e["weights_unchanged"])
        for st, sn in e["snapshots_after_steps"].items():
            bad = [n for n, c in sn["topk_check"].items() if not c["equals_topk"]]
            ties = [n for n, c in sn["topk_check"].items() if c["tie_at_tau"]]
            print("  after", st, "kept", sum(sn["kept"].values()), "flips_vs_init", sum(sn["flips_vs_initial"].values()),
                  "not-topk", len(bad), "ties", len(ties))
    print("rates", set(rates), "lr diff closed", expected["lr_per_epoch_closed_form_max_abs_diff"])


if __name__ == "__main__":
    main()
