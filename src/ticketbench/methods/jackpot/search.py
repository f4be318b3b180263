"""Lottery jackpots (Zhang, Lin et al., TPAMI 2023): masks learned over frozen pre-trained weights.

Every weight and bias stays frozen (BatchNorm's affine parameters too); only a real-valued score per
prunable weight trains, through a straight-through estimator: the forward pass uses ``w * mask``
and the gradient reaching the mask is handed to the scores unchanged (dL/ds = dL/dw_eff * w).
Per-layer budgets come from one global magnitude threshold and never change during the search.

Two mask updates: ``topk`` re-selects each layer's top scores at every forward pass (the 2021
code); ``swap`` keeps a stored mask and, after each step, swaps the ceil(r*c) most confident of the
c candidate revive/remove pairs (the 2023 code's budget-preserving update). The paper's "short
restriction" is described only in its abstract; the swap with a rate r < 1 is our reading of it,
see docs/jackpot.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from ... import artifacts, paths, storage
from ...hparams import Hparams, TrainHparams, hp, numerics_of
from ...errors import ConfigError
from ...masks import POLICIES, Mask, keep_highest, policy_names, prune_to_sparsity
from ...stage import STAGES
from ...train import EpochContext, train
from ..common import MethodStage, Pretrained, Run

PRUNED_SCORE = 0.99  # magnitude init: kept scores start at 1.0, pruned ones just below


class _StraightThrough(torch.autograd.Function):
    """Forward: the binary mask. Backward: the incoming gradient goes to the scores unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask.to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def topk_mask(scores: torch.Tensor, kept: int) -> torch.Tensor:
    """The ``kept`` highest scores; ties go to the lower flat index, so the result is deterministic."""
    flat = scores.detach().flatten()
    m = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    m[torch.sort(-flat, stable=True).indices[:kept]] = True
    return m.view_as(scores)


class ScoredMask(nn.Module):
    """A parametrization of a layer's weight: ``weight = original * mask(scores)``."""

    def __init__(self, scores: torch.Tensor, mask: torch.Tensor, update: str):
        super().__init__()
        self.scores = nn.Parameter(scores)
        self.register_buffer("mask", mask.clone())
        self.kept = int(mask.sum())
        self.update = update

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.update == "topk":
            with torch.no_grad():
                self.mask.copy_(topk_mask(self.scores, self.kept))
        return weight * _StraightThrough.apply(self.scores, self.mask)


@torch.no_grad()
def swap_update(scores: torch.Tensor, mask: torch.Tensor, rate: float) -> int:
    """One budget-preserving swap step on one layer; returns the number of pairs swapped.

    With k pruned weights and tau the k-th smallest score: revive candidates are pruned weights
    scoring above tau, removal candidates kept weights scoring at most tau. Only when both sets
    have the same size c > 0 (no tie at tau), the ceil(rate * c) best pairs swap (one if c = 1).
    """
    # Flat indices in logical (NCHW) order whatever the layout; a channels-last mask is written back at the end.
    s, m = scores.flatten(), mask.contiguous().view(-1)
    k = int((~m).sum())
    if k == 0 or k == m.numel():
        return 0
    tau = torch.kthvalue(s, k).values
    revive = ((~m) & (s > tau)).nonzero().flatten()
    remove = (m & (s <= tau)).nonzero().flatten()
    c = len(revive)
    if c == 0 or c != len(remove):
        return 0
    q = 1 if c == 1 else math.ceil(rate * c)
    revive = revive[torch.sort(-s[revive], stable=True).indices[:q]]
    remove = remove[torch.sort(s[remove], stable=True).indices[:q]]
    m[revive] = True
    m[remove] = False
    if m.data_ptr() != mask.data_ptr():
        mask.copy_(m.view(mask.shape))
    return q


def rate_at(schedule: str, rate: float, epoch: int, epochs: int) -> float:
    """The restriction rate in an epoch: constant, cosine decay, or the 0.9/0.6/0.3 step schedule."""
    if schedule == "cosine":
        return rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return rate * (0.9 if epoch < epochs / 3 else 0.6 if epoch < 2 * epochs / 3 else 0.3)
    return rate


@dataclass(frozen=True)
class JackpotHparams(Hparams):
    """Lottery-jackpot mask search over frozen pre-trained weights."""

    section: ClassVar[str] = "jackpot"
    sparsity: float = hp(0.9, "fraction of the prunable weights to remove")
    layerwise: str = hp("global", "per-layer budgets: global (one magnitude threshold, the paper) or uniform")
    policy: str = hp("jackpot", "prunable layers (default: every conv and linear except the classifier; see "
                                "`ticketbench backbones NAME`)")
    init: str = hp("magnitude", "score init: magnitude (first mask = magnitude mask) or random (edge-popup style)")
    update: str = hp("swap", "mask update: swap (budget-preserving, 2023 code) or topk (every forward, 2021 code)")
    rate: float = hp(1.0, "swap restriction rate r: at most ceil(r*c) of c candidate pairs swap per step")
    rate_schedule: str = hp("constant", "rate schedule over the search: constant, cosine or step")
    epochs: int = hp(10, "search epochs")
    batch_size: int = hp(128, "search minibatch size")
    lr: float = hp(0.1, "score learning rate (cosine schedule)")
    lr_schedule: str = hp("cosine", "cosine annealing of the score learning rate: cosine (every iteration) or "
                                    "cosine_epoch (once per epoch, the released code's CosineAnnealingLR)")
    budget_rounding: str = hp("exact", "per-layer budgets: exact (round(sparsity * N) weights pruned over all N "
                                       "prunable weights) or released (the released code: kept int(N * (1 - "
                                       "sparsity)) weights at or above a global threshold, then int(rate * n) pruned "
                                       "per layer; layerwise global only)")
    weight_decay: float = hp(5e-4, "weight decay on the scores")
    tune_epochs: int = hp(0, "optional weight tuning after the search, mask fixed (the paper's '(T)' rows)")
    tune_lr: float = hp(0.01, "weight-tuning learning rate (cosine, no weight decay)")

    def check(self) -> None:
        self._require("sparsity", 0 < self.sparsity < 1, "a fraction in (0, 1)")
        self._require("layerwise", self.layerwise in ("global", "uniform"), "global or uniform")
        self._require("policy", self.policy in POLICIES, f"one of {', '.join(POLICIES.names())}")
        self._require("init", self.init in ("magnitude", "random"), "magnitude or random")
        self._require("update", self.update in ("swap", "topk"), "swap or topk")
        self._require("rate", 0 < self.rate <= 1, "a fraction in (0, 1]")
        self._require("rate_schedule", self.rate_schedule in ("constant", "cosine", "step"), "constant, cosine or step")
        for key in ("epochs", "batch_size"):
            self._require(key, getattr(self, key) > 0, "a positive integer")
        self._require("lr", self.lr > 0, "a positive learning rate")
        self._require("lr_schedule", self.lr_schedule in ("cosine", "cosine_epoch"), "cosine or cosine_epoch")
        self._require("budget_rounding", self.budget_rounding in ("exact", "released"), "exact or released")
        self._require("layerwise", self.budget_rounding == "exact" or self.layerwise == "global",
                      "global with budget_rounding released")
        self._require("tune_epochs", self.tune_epochs >= 0, "0 or more epochs")


def released_budget(weights: dict[str, torch.Tensor], sparsity: float) -> Mask:
    """Per-layer budgets as the released code computes them (``cifar.py:generate_pr_cfg`` at 1b802ea).

    ``int(N * (1 - sparsity))`` weights are preserved globally (a float product truncated, so one fewer where
    ``1 - sparsity`` rounds down); the threshold is the magnitude of the last of them, and each layer prunes
    ``int(n * rate)`` of its ``n`` weights, ``rate`` the share of its magnitudes strictly below the threshold: every
    weight tied with the threshold is kept, and the float product can prune one weight fewer.
    """
    flat = torch.cat([w.detach().abs().flatten().float().cpu() for w in weights.values()])
    preserve = int(flat.numel() * (1 - sparsity))
    if preserve < 1:
        raise ConfigError("jackpot.sparsity", sparsity, f"a sparsity that keeps at least one of {flat.numel()} weights")
    threshold = torch.topk(flat, preserve).values[preserve - 1]
    kept = {}
    for n, w in weights.items():
        a = w.detach().abs().flatten().float().cpu()
        rate = int(torch.lt(a, threshold).sum()) / a.numel()
        kept[n] = a.numel() - int(a.numel() * rate)
    return keep_highest({n: w.detach().abs().cpu() for n, w in weights.items()}, kept)


def initial_scores(weights: dict[str, torch.Tensor], budget: Mask, init: str, seed: int) -> dict[str, torch.Tensor]:
    if init == "magnitude":
        return {n: torch.where(budget[n], 1.0, PRUNED_SCORE).to(w.dtype) for n, w in weights.items()}
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n, w in weights.items():
        bound = math.sqrt(6.0 / (w[0].numel() if w.dim() > 1 else w.numel()))  # Kaiming-uniform scale, as edge-popup
        out[n] = (torch.rand(w.shape, generator=g, dtype=w.dtype) * 2 - 1).abs() * bound
    return out


def attach(model: nn.Module, scores: dict[str, torch.Tensor], budget: Mask, update: str) -> dict[str, ScoredMask]:
    """Freeze every parameter and put a ScoredMask on each prunable weight; returns them by weight name."""
    for p in model.parameters():
        p.requires_grad_(False)
    modules = dict(model.named_modules())
    out = {}
    for name, s in scores.items():
        owner = modules[name.rsplit(".", 1)[0]]
        mask = topk_mask(s, int(budget[name].sum()))
        pm = ScoredMask(s.clone(), mask, update)
        parametrize.register_parametrization(owner, "weight", pm, unsafe=True)
        out[name] = pm
    return out


def detach(model: nn.Module, scored: dict[str, ScoredMask]) -> Mask:
    """Remove the parametrizations (weights go back to their frozen originals); returns the final mask."""
    modules = dict(model.named_modules())
    mask = Mask({n: pm.mask.detach().cpu().clone() for n, pm in scored.items()})
    for name in scored:
        parametrize.remove_parametrizations(modules[name.rsplit(".", 1)[0]], "weight", leave_parametrized=False)
    return mask


def _weights_hash(model: nn.Module) -> str:
    """Hash of every weight and bias, BatchNorm statistics left out (the search re-estimates them on purpose)."""
    return storage.state_hash({k: v for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k})


def search(pre: Pretrained, jp: JackpotHparams, *, device: torch.device, progress: bool = True) -> dict:
    """Run one search; returns the mask, the masked model's state, the train result and bookkeeping."""
    model = pre.model_from(pre.best_state)
    names, cover = policy_names(model, jp.policy, "jackpot.policy", pre.model_hp.backbone)
    params = dict(model.named_parameters())
    weights = {n: params[n].detach().cpu() for n in names}
    frozen_hash = _weights_hash(model)
    if jp.budget_rounding == "released":
        budget = released_budget(weights, jp.sparsity)
    else:
        budget = prune_to_sparsity(weights, jp.sparsity, scope="global" if jp.layerwise == "global" else "layerwise")
    scored = attach(model, initial_scores(weights, budget, jp.init, pre.seed), budget, jp.update)
    initial = Mask({n: pm.mask.clone() for n, pm in scored.items()})
    model.to(device)
    flips_per_step: list[int] = []

    def swap(iteration: int, epoch: int) -> None:
        r = rate_at(jp.rate_schedule, jp.rate, epoch, jp.epochs)
        flips_per_step.append(sum(swap_update(pm.scores, pm.mask, r) for pm in scored.values()))

    last = {n: pm.mask.clone() for n, pm in scored.items()}

    def count_flips(ctx: EpochContext) -> None:
        ctx.record["mask_flips"] = sum(int((pm.mask != last[n]).sum()) for n, pm in scored.items())
        for n, pm in scored.items():
            last[n] = pm.mask.clone()

    hp_search = TrainHparams(epochs=jp.epochs, batch_size=jp.batch_size, lr=jp.lr, weight_decay=jp.weight_decay,
                             schedule=jp.lr_schedule, rewind_epochs="", **numerics_of(pre.train_hp))
    res = train(model, pre.splits.train, pre.splits.val, hp_search, device=device, seed=pre.seed,
                test_ds=pre.splits.test, workers=pre.data_hp.workers, callbacks=[count_flips],
                step_hooks=[swap] if jp.update == "swap" else [], progress=progress, desc=f"jackpot {jp.init}")
    model.load_state_dict(res.best_state)
    mask = detach(model, scored)
    unchanged = _weights_hash(model) == frozen_hash
    mask.apply_(model)
    return {"model": model, "mask": mask, "initial": initial, "budget": budget, "result": res, "names": names,
            "policy_coverage": cover, "weights_unchanged": unchanged, "max_step_flips": max(flips_per_step, default=0)}


@STAGES.register("jackpot")
class Jackpot(MethodStage):
    name = "jackpot"
    help = "search a lottery jackpot: a mask over frozen pre-trained weights"
    hparams = (JackpotHparams,)

    @classmethod
    def check_inputs(cls, pre, hp, args):
        policy_names(pre.new_model(), hp["jackpot"].policy, "jackpot.policy", pre.model_hp.backbone)

    @classmethod
    def execute(cls, run: Run) -> int:
        jp = run.hp["jackpot"]
        m = run_jackpot(run.pre, jp, run.args.out, device=run.device, progress=run.progress, config=run.resolved)
        print(f"jackpot {jp.init} {jp.sparsity:.0%}: test_acc {m['test_acc']:.4f} (dense {m['dense_test_acc']:.4f}), "
              f"sparsity {m['sparsity']:.4f}, weights unchanged: {m['weights_unchanged']}")
        return 0


def run_jackpot(pre: Pretrained, jp: JackpotHparams, out, *, device: torch.device, progress: bool = True,
                config: dict | None = None) -> dict:
    t0 = time.perf_counter()
    s = search(pre, jp, device=device, progress=progress)
    res, mask, model = s["result"], s["mask"], s["model"]
    mask.save(paths.mask(out), method="jackpot", source_hash=pre.source_hash, config=config or {})
    digest = artifacts.save_checkpoint(paths.model(out), {k: v.cpu() for k, v in model.state_dict().items()},
                                       method="jackpot", source_hash=pre.source_hash, sparsity=mask.sparsity(),
                                       config=config or {})
    extra = {}
    if jp.tune_epochs:
        tune = TrainHparams(epochs=jp.tune_epochs, batch_size=jp.batch_size, lr=jp.tune_lr, weight_decay=0.0,
                            rewind_epochs="", **numerics_of(pre.train_hp))
        for p in model.parameters():
            p.requires_grad_(True)
        tuned = train(model, pre.splits.train, pre.splits.val, tune, device=device, seed=pre.seed,
                      test_ds=pre.splits.test, mask=mask, workers=pre.data_hp.workers, progress=progress,
                      desc="jackpot tune")
        extra = {"tuned_test_acc": tuned.test_acc, "tuned_val_acc": tuned.best_val_acc,
                 "tune_iterations": tuned.iterations}
        artifacts.save_checkpoint(paths.final(out), tuned.best_state, method="jackpot_tuned",
                                  source_hash=pre.source_hash, sparsity=mask.sparsity(), config=config or {})
    return artifacts.write_metrics(
        paths.metrics(out), method="jackpot", dataset=pre.data_hp.dataset, backbone=pre.model_hp.backbone,
        seed=pre.seed, sparsity=mask.sparsity(), test_acc=res.test_acc, val_acc=res.best_val_acc,
        test_correct=res.test_correct, train_iterations=res.iterations + extra.get("tune_iterations", 0), wall_seconds=time.perf_counter() - t0,
        init=jp.init, update=jp.update, rate=jp.rate, rate_schedule=jp.rate_schedule, target_sparsity=jp.sparsity,
        policy=jp.policy, policy_coverage=s["policy_coverage"], dense_test_acc=pre.metrics["test_acc"], dense_val_acc=pre.metrics["val_acc"],
        best_epoch=res.best_epoch, epochs=res.history, weights_unchanged=s["weights_unchanged"],
        max_step_flips=s["max_step_flips"], layer_sparsity=mask.layer_sparsity(), state_hash=digest,
        magnitude_overlap=_overlap(mask, s["budget"]), **extra)


def _overlap(a: Mask, b: Mask) -> float:
    """Share of ``a``'s kept weights that ``b`` also keeps."""
    return sum(int((a[n] & b[n]).sum()) for n in a) / max(1, a.kept)
