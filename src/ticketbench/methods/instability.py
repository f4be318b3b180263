"""Instability: linear mode connectivity of a ticket's training (Frankle et al., ICML 2020).

From an IMP run's rewind point, train two copies of a round's ticket (the same mask) that differ only in their data
order and augmentation draws, then evaluate the networks on the straight line between their final weights. The
*error barrier* is the highest test error on the line minus the mean error of its two ends; a ticket is *stable*
when the barrier is under 2% (the paper's rule). Without rewinding (``init``), standard ResNet-20 and VGG-16 tickets
are unstable and no better than random pruning; rewound a little into training they become stable and match the
dense network. Round 0 is the dense network trained the same way.

Copy A trains with the IMP run's own data order, so it repeats that round's training where the recipe is the same;
copy B's order is another (seed offset :data:`SECOND_ORDER`). BatchNorm's running statistics are interpolated like
the weights by default, as the paper does; ``batchnorm: reestimate`` recomputes them at every point on training
batches instead (a declared deviation that removes the statistics' mismatch from the barrier).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import artifacts, paths
from ..errors import ConfigError
from ..hparams import Hparams, hp
from ..masks import Mask
from ..stage import STAGES, add_input
from .common import MethodStage, Pretrained, Run, check_source, load_mask_from, round_dir, train_round

#: The seed offset of copy B's data order (copy A's is the IMP round's own, 0).
SECOND_ORDER = 1
#: The error barrier under which a ticket is stable (Frankle et al.: 2%).
STABLE_BARRIER = 0.02


@dataclass(frozen=True)
class InstabilityHparams(Hparams):
    """Instability of a ticket's training: the error barrier between two copies trained from the rewind point."""

    section: ClassVar[str] = "instability"
    points: int = hp(30, "networks evaluated on the line between the two trained copies, both ends included (the "
                         "paper: 30)")
    rounds: str = hp("", "rounds of the --reference IMP run to test, comma-separated (0: the dense network from the "
                         "same rewind point); empty: 0 and every round")
    batchnorm: str = hp("interpolate", "BatchNorm statistics of an interpolated network: interpolate (like the weights, "
                                       "as the paper) or reestimate (recomputed on training batches at every point)")
    bn_batches: int = hp(50, "batchnorm reestimate: training batches (of the recipe's batch size, un-augmented) the "
                             "statistics are recomputed on")

    def check(self) -> None:
        self._require("points", 2 <= self.points <= 1000, "from 2 to 1000 points (both ends included)")
        self._require("rounds", all(p.strip().isdigit() for p in self.rounds.split(",")) if self.rounds else True,
                      "round numbers separated by commas, e.g. 0,5 (0 = the dense network), or empty for all")
        self._require("batchnorm", self.batchnorm in ("interpolate", "reestimate"), "interpolate or reestimate")
        self._require("bn_batches", self.bn_batches > 0, "a positive number of batches")

    def round_list(self, last: int) -> list[int]:
        wanted = sorted({int(p) for p in self.rounds.split(",")}) if self.rounds else list(range(last + 1))
        if wanted[-1] > last:
            raise ConfigError("instability.rounds", self.rounds, f"rounds from 0 to {last}, the reference run's last")
        return wanted


def interpolate(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) a + alpha b for every floating tensor of a state dict; counters (BatchNorm's batch count) are
    a's. Weights a mask removed are zero in both, so they stay zero on the whole line."""
    return {k: torch.lerp(v, b[k], alpha) if v.is_floating_point() else v.clone() for k, v in a.items()}


@torch.no_grad()
def reestimate_batchnorm(model: torch.nn.Module, pre: Pretrained, batch_size: int, batches: int,
                         device: torch.device) -> None:
    """Recompute every BatchNorm layer's running statistics as the plain average over ``batches`` batches of the
    un-augmented training set, in the pretrain seed's order."""
    from ..data import make_loader

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i, (x, _, _) in enumerate(make_loader(pre.splits.train_eval, batch_size, shuffle=True, seed=pre.seed)):
        if i == batches:
            break
        model(x.to(device))
    model.eval()


def error_curve(pre: Pretrained, a: dict, b: dict, ih: InstabilityHparams, device: torch.device,
                batch_size: int) -> list[float]:
    """Test accuracy of the network at each of ``ih.points`` evenly spaced points from ``a`` (alpha 0) to ``b``."""
    from ..train import evaluate

    model = pre.new_model().to(device)
    out = []
    for alpha in torch.linspace(0, 1, ih.points).tolist():
        model.load_state_dict(interpolate(a, b, alpha))
        if ih.batchnorm == "reestimate":
            reestimate_batchnorm(model, pre, batch_size, ih.bn_batches, device)
        out.append(evaluate(model, pre.splits.test, device))
    return out


def barrier(accuracies: list[float]) -> float:
    """The error barrier: the highest error on the line minus the mean error of its two ends (never below 0: the
    ends are on the line)."""
    errors = [1 - a for a in accuracies]
    return max(0.0, max(errors) - (errors[0] + errors[-1]) / 2)


def all_kept(mask: Mask) -> Mask:
    """The dense network's mask over the same layers: every weight kept."""
    return Mask({n: torch.ones_like(m) for n, m in mask.items()})


@STAGES.register("instability")
class Instability(MethodStage):
    name = "instability"
    help = "linear mode connectivity of an IMP run's tickets: the error barrier between two copies per round"
    hparams = (InstabilityHparams,)
    retrains = True

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--reference", required=True, help="the IMP run whose rounds' masks and rewind point are "
                  "tested (any variant: full IMP's tickets, or a control's)")

    @classmethod
    def settings(cls, pre, hp, args, config):
        return {"reference": args.reference}

    @classmethod
    def check_inputs(cls, pre, hp, args):
        _, metrics = check_source("reference", args.reference, pre)
        rounds = [row["round"] for row in metrics.get("rounds", [])]
        if not rounds or "rewind" not in metrics:
            raise ConfigError("reference", args.reference, "a finished `ticketbench imp` run (its metrics.json lists "
                              "its rounds and rewind point)")
        for r in hp["instability"].round_list(max(rounds)):
            load_mask_from(round_dir(args.reference, max(r, 1)) / "mask.safetensors", pre)
        pre.rewind_state(metrics["rewind"])

    @classmethod
    def execute(cls, run: Run) -> int:
        from .common import finished_run

        t_run = time.perf_counter()
        args, pre, ih, train_hp = run.args, run.pre, run.hp["instability"], run.hp["train"]
        settings, ref = finished_run("reference", args.reference)
        rewind_point = ref["rewind"]
        lr_resume = bool((settings.get("imp") or {}).get("lr_resume", False))
        start_epoch = pre.resume_epoch(rewind_point) if lr_resume else 0
        rewind = pre.rewind_state(rewind_point)
        rows = []
        for r in ih.round_list(max(row["round"] for row in ref["rounds"])):
            t0 = time.perf_counter()
            round_dir(args.out, r).mkdir(parents=True, exist_ok=True)
            mask = load_mask_from(round_dir(args.reference, max(r, 1)) / "mask.safetensors", pre)
            mask = all_kept(mask) if r == 0 else mask
            copies = [train_round(pre, rewind, mask, train_hp, device=run.device, start_epoch=start_epoch,
                                  progress=run.progress, desc=f"instability round {r} copy {c}",
                                  seed_offset=offset)[1] for c, offset in (("a", 0), ("b", SECOND_ORDER))]
            curve = error_curve(pre, copies[0].final_state, copies[1].final_state, ih, run.device, train_hp.batch_size)
            height = barrier(curve)
            a, b = copies
            row = artifacts.write_metrics(
                paths.metrics(round_dir(args.out, r)), method=cls.name, dataset=pre.data_hp.dataset,
                backbone=pre.model_hp.backbone, seed=pre.seed, sparsity=mask.sparsity(), test_acc=a.test_acc,
                val_acc=a.best_val_acc, train_iterations=a.iterations + b.iterations,
                wall_seconds=time.perf_counter() - t0, test_correct=a.test_correct, round=r, source=Path(
                    args.reference).name, rewind=rewind_point, copy_b_test_acc=b.test_acc, copy_b_val_acc=b.best_val_acc,
                interpolation_test_acc=curve, error_barrier=height, stable=height < STABLE_BARRIER,
                batchnorm=ih.batchnorm)
            rows.append({k: v for k, v in row.items() if k not in ("versions", "numerics", "method", "dataset",
                                                                   "backbone", "seed")})
            print(f"round {r}: sparsity {row['sparsity']:.4f} error barrier {100 * height:.2f} points "
                  f"({'stable' if row['stable'] else 'unstable'}; ends {100 * curve[0]:.2f}% and {100 * curve[-1]:.2f}%)")
        last = rows[-1]
        artifacts.write_metrics(
            paths.metrics(args.out), method=cls.name, dataset=pre.data_hp.dataset, backbone=pre.model_hp.backbone,
            seed=pre.seed, sparsity=last["sparsity"], test_acc=last["test_acc"], val_acc=last["val_acc"],
            train_iterations=sum(r["train_iterations"] for r in rows), wall_seconds=time.perf_counter() - t_run,
            rounds=rows, source=Path(args.reference).name, rewind=rewind_point, stable_barrier=STABLE_BARRIER,
            points=ih.points, batchnorm=ih.batchnorm, dense_test_acc=pre.metrics["test_acc"])
        return 0
