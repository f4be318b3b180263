"""Iterative magnitude pruning with rewinding (Frankle & Carbin; OpenLTH), its variants and random baselines.

Round r: prune ``rate`` of the weights still alive (global magnitude, on the weights the previous
round ended with), rewind the survivors to a snapshot of the dense run, and retrain. The training
data of a round comes from a *data selector*: the full training split (vanilla IMP), the PrAC sets
that PrAC-IMP finds as it goes (:mod:`ticketbench.methods.prac.stage`), or PrAC sets replayed from another
run (the PrAC paper's transfer experiment).

Baselines follow the masks of another IMP run (``--reference``): the random ones copy its sparsity or mask; the
other mask sources (pruning at initialisation with SNIP, GraSP or SynFlow, one-shot magnitude pruning, ADMM) make
their own mask in every round with exactly the reference round's number of kept weights (:class:`FollowsBudget`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from .. import storage
from ..hparams import Hparams, TrainHparams, hp
from ..masks import POLICIES, PRUNE_RULES, Mask, keep_highest, magnitude_prune, policy_names
from ..models import conv_linear_layers
from ..runtime import layer_generator
from ..errors import ConfigError
from ..stage import STAGES, add_input
from ..runs import STRUCTURE_REWIND
from ..runs import folder as run_folder
from .registry import IMP_VARIANTS
from .common import (MethodStage, Pretrained, Run, check_source, finished_run, load_mask_from, round_dir,
                     scaled_hparams, train_round, write_round, write_summary)

# A stated ceiling for imp.rounds, far above any paper's schedule (20-odd rounds at rate 0.2); each round writes
# two checkpoints, so an unbounded count fills a disk long before it ends. The model-dependent bound is
# check_rounds below.
MAX_ROUNDS = 100


@dataclass(frozen=True)
class ImpHparams(Hparams):
    """Iterative magnitude pruning with rewinding."""

    section: ClassVar[str] = "imp"
    rounds: int = hp(5, "pruning rounds; sparsity after r rounds is 1 - (1 - rate)^r")
    rate: float = hp(0.2, "fraction of the remaining weights pruned each round")
    policy: str = hp("prac", "prunable layers: prac, structure_lth, openlth, jackpot or convs_only (see `ticketbench "
                             "backbones NAME`; a policy covering under 80% of a backbone's conv and linear weights is "
                             "refused, except convs_only)")
    scope: str = hp("global", "global (one threshold over all layers) or layerwise")
    prune_rule: str = hp("exact", "how many weights a round removes: exact (round(rate * remaining), ties to the "
                                  "lower index) or openlth (open_lth's released step: ceil(rate * n) + 1 and every "
                                  "tie at the threshold, n counting the conv and linear weights the policy leaves "
                                  "out too; global scope)")
    structure_policy: str = hp("structure_lth", "prunable layers of Structure-LTH's own IMP (variants structure_lth "
                                                "and group_aware): structure_lth (the paper: every conv but the stem) "
                                                "or structure_lth_released (the released code: every conv but one "
                                                "named conv1, so VGG's first conv is pruned)")
    rewind: str = hp("ep1", "rewind point from the pretrain run: init, ep<k>, it<n> or p% of its iterations")
    lr_resume: bool = hp(False, "resume the LR schedule at the rewind point (OpenLTH; it<n> resumes mid-epoch) "
                                "instead of restarting it")
    variant: str = hp("full", "which IMP: full (vanilla) or another registered variant (ticketbench.methods.registry "
                              "or an installed package's; `ticketbench imp --help` lists them)")
    structure_rewind: str = hp(STRUCTURE_REWIND, "rewind point of Structure-LTH's own IMP run (variants structure_lth "
                                                 "and group_aware); the paper rewinds to epoch 8 of 160, 5% of training")
    epoch_scaling: str = hp("linear", "training length on a subset: linear (same epochs, fewer iterations; PrAC "
                                      "paper) or quadratic (epochs scaled too; released PrAC code)")
    admm_epochs: int = hp(2, "variant admm: epochs of ADMM training from the dense final weights before each round's "
                             "mask is projected (Z and U update once per epoch)")
    admm_rho: float = hp(1e-3, "variant admm: rho of the penalty rho/2 ||W - Z + U||^2 on the prunable weights")
    admm_lr: float = hp(0.01, "variant admm: constant learning rate of the ADMM epochs (the recipe's SGD otherwise; "
                              "they start from trained weights, so not its peak rate)")

    def check(self) -> None:
        self._require("rounds", 0 < self.rounds <= MAX_ROUNDS, f"a number of rounds from 1 to {MAX_ROUNDS}")
        self._require("rate", 0 < self.rate < 1, "a fraction in (0, 1)")
        self._require("policy", self.policy in POLICIES, f"one of {', '.join(POLICIES.names())}")
        self._require("scope", self.scope in ("global", "layerwise"), "global or layerwise")
        self._require("prune_rule", self.prune_rule in PRUNE_RULES, f"one of {', '.join(PRUNE_RULES)}")
        self._require("scope", self.prune_rule != "openlth" or self.scope == "global",
                      "global with prune_rule openlth (open_lth prunes globally)")
        self._require("structure_policy", self.structure_policy in ("structure_lth", "structure_lth_released"),
                      "structure_lth or structure_lth_released")
        for key in ("rewind", "structure_rewind"):
            self._require(key, is_rewind_point(getattr(self, key)), "init, ep<k>, it<n> or p% (0 < p <= 100)")
        self._require("variant", self.variant in IMP_VARIANTS, f"one of {', '.join(IMP_VARIANTS.names())}")
        self._require("epoch_scaling", self.epoch_scaling in ("linear", "quadratic"), "linear or quadratic")
        self._require("admm_epochs", self.admm_epochs > 0, "a positive number of epochs")
        self._require("admm_rho", self.admm_rho >= 0, "a non-negative penalty weight")
        self._require("admm_lr", self.admm_lr > 0, "a positive learning rate")


def is_rewind_point(point: str) -> bool:
    """``100%`` is the dense run's last step, its final weights: rewinding there is fine-tuning (Structure-LTH's
    rewinding ablation runs 5% to 100%)."""
    if point == "init" or (point[:2] in ("ep", "it") and point[2:].isdigit()):
        return True
    try:
        return point.endswith("%") and 0 < float(point[:-1]) <= 100
    except ValueError:
        return False


def remaining_after(alive: int, rate: float, rounds: int) -> int:
    """Weights left of ``alive`` after ``rounds`` rounds, with the rounding magnitude_prune uses."""
    from ..masks import _prune_count

    for _ in range(rounds):
        alive -= _prune_count(alive, rate)
    return alive


def check_rounds(imp: "ImpHparams", sizes: dict[str, int]) -> None:
    """Refuse a schedule with rounds that prune nothing or leave fewer weights than one per prunable layer.

    ``sizes`` maps each prunable weight to its number of entries; with a layerwise scope the smallest
    layer decides. Rounding stalls pruning once few weights are left (20% of 2 rounds to 0), so without
    this bound a huge ``imp.rounds`` trains and writes checkpoints of a model that no longer changes.
    """
    if imp.scope == "layerwise":
        smallest = min(sizes, key=sizes.get)
        alive, floor, where = sizes[smallest], 1, f"in layer {smallest}"
    else:
        alive, floor, where = sum(sizes.values()), len(sizes), f"for {len(sizes)} prunable layers"
    most = 0
    while most < imp.rounds:
        after = remaining_after(alive, imp.rate, 1)
        if after == alive or after < floor:
            break
        alive, most = after, most + 1
    if most < imp.rounds:
        raise ConfigError("imp.rounds", imp.rounds, f"at most {most} rounds at rate {imp.rate} for this model; "
                          f"later rounds would prune nothing or leave too few weights {where}")


def check_inputs(pre: Pretrained, imp: "ImpHparams", *, reference: str | Path | None = None,
                 subsets: str | Path | None = None, train_hp: TrainHparams | None = None) -> None:
    """Everything an IMP-style run reads, checked before its output folder is claimed."""
    model = pre.new_model()
    params = dict(model.named_parameters())
    names, _ = policy_names(model, imp.policy, "imp.policy", pre.model_hp.backbone)
    check_rounds(imp, {n: params[n].numel() for n in names})
    pre.rewind_state(imp.rewind)  # read and its hash checked before the folder is claimed
    if train_hp is not None and imp.lr_resume and pre.resume_epoch(imp.rewind) >= train_hp.epochs:
        raise ConfigError("imp.lr_resume", True, f"false when imp.rewind={imp.rewind!r} is at or past the end of the "
                          f"{train_hp.epochs}-epoch schedule (resuming there leaves nothing to train)")
    for folder, name, what in ((reference, "mask.safetensors", "reference"), (subsets, "prac_set.safetensors", "subsets")):
        if folder is None:
            continue
        if what == "reference":
            check_source(what, folder, pre)
        else:  # PrAC sets found with another backbone (the transfer) must still index this dataset
            _, found = finished_run(what, folder)
            if found["dataset"] != pre.data_hp.dataset:
                raise ConfigError(what, str(folder), f"a PrAC run on {pre.data_hp.dataset!r}, the pretrain run's "
                                  f"dataset; its metrics.json records {found['dataset']!r}")
        missing = [r for r in range(1, imp.rounds + 1) if not (round_dir(folder, r) / name).is_file()]
        if missing:
            raise ConfigError(what, str(folder), f"a finished run with {name} in round1..round{imp.rounds} "
                              f"(missing in round{missing[0]})")
        if what == "reference":
            for r in range(1, imp.rounds + 1):
                load_mask_from(round_dir(folder, r) / name, pre)
    variant = IMP_VARIANTS.get(imp.variant)
    if isinstance(variant, FollowsBudget) and reference is not None:
        ref, _ = Mask.load(round_dir(reference, 1) / "mask.safetensors")
        if sorted(ref) != sorted(names):
            raise ConfigError("reference", str(reference), f"an IMP run over the layers of policy {imp.policy!r} "
                              f"({len(names)} layers; its masks cover {len(ref)}): pass the reference run's --policy")
        if train_hp is not None:
            variant.check_train(train_hp)
    if reference is not None:
        variant.check_reference(Path(reference))


class FullData:
    """Vanilla IMP: every round trains on the whole training split."""

    early_stop = False

    def ids(self, r: int) -> torch.Tensor | None:
        return None

    def after_round(self, r: int, model, res) -> dict[str, Any]:
        return {}


class ReplayedSubsets(FullData):
    """Each round trains on the PrAC set that another PrAC run used in the same round (transfer)."""

    def __init__(self, source: str | Path):
        self.source = Path(source)

    def ids(self, r: int) -> torch.Tensor:
        path = round_dir(self.source, r) / "prac_set.safetensors"
        tensors, _ = storage.load_tensors(path)
        return tensors["trained_on"]


def random_like(mask: Mask, seed: int) -> Mask:
    """A random mask with exactly the same number of kept weights in every layer.

    Each layer draws from its own generator, keyed by the seed and the layer's name: a mask loaded
    from safetensors lists its layers in a different order in every process, and one generator shared
    across layers in that order gave each process a different mask.
    """
    out = Mask()
    for name in sorted(mask):
        m = mask[name]
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=layer_generator(seed, name))[: int(m.sum())]] = True
        out[name] = flat.view_as(m)
    return out


def random_global(mask: Mask, seed: int) -> Mask:
    """A random mask with the same total number of kept weights as ``mask``, drawn over all its layers at once.

    Every weight is equally likely to survive, so each layer keeps about the global density: the PrAC paper's
    random pruning. Layers are laid end to end in name order, so the result does not depend on the order in
    which the mask lists them.
    """
    names = sorted(mask)
    sizes = [mask[n].numel() for n in names]
    flat = torch.zeros(sum(sizes), dtype=torch.bool)
    flat[torch.randperm(len(flat), generator=layer_generator(seed, "<all layers>"))[: mask.kept]] = True
    return Mask({n: part.view_as(mask[n]).clone() for n, part in zip(names, flat.split(sizes))})


@dataclass
class RoundInputs:
    """What a variant sees when it makes round ``r``'s mask."""

    pre: Pretrained
    imp: ImpHparams
    r: int
    weights: dict[str, torch.Tensor]  # the prunable weights the previous round ended with
    previous: Mask | None
    reference: Path | None
    config: dict
    device: torch.device = torch.device("cpu")  # where a variant that computes (scores, ADMM) works
    train_hp: TrainHparams | None = None  # the rounds' recipe
    progress: bool = False
    uncounted: int = 0  # prune_rule openlth: conv and linear weights outside the policy, which open_lth counts

    def reference_mask(self) -> Mask:
        mask, _ = Mask.load(round_dir(self.reference, self.r) / "mask.safetensors")
        return mask


class Variant:
    """An IMP branch, as OpenLTH calls them: what a round does differently from vanilla IMP.

    A variant makes each round's mask and chooses the weights the round starts from; it may fix the
    prunable layers and the rewind point. Its name, given by its line in :mod:`ticketbench.methods.registry`, is
    the run's folder under ``results/imp/...`` and, unless the class says otherwise, its ``metrics.json`` method.
    A new variant is a subclass in a file of its own plus that line.
    """

    name = ""  # set from the registry
    help = ""
    reference = False  # follows the masks of another IMP run, given with --reference

    @property
    def method(self) -> str:
        return self.name

    @property
    def ranks(self) -> bool:
        """Whether the variant ranks weights by a score of its own (:meth:`scores`)."""
        return type(self).scores is not Variant.scores

    def settings(self, imp: ImpHparams) -> ImpHparams:
        return imp

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return magnitude_prune(x.weights, x.imp.rate, x.previous, x.imp.scope, x.imp.prune_rule, x.uncounted), {}

    def start(self, pre: Pretrained, rewind: dict, r: int) -> dict:
        return rewind

    def settings_of_run(self, pre: Pretrained, config: dict) -> dict:
        """More settings the run records in hparams.json, checked here before anything is written."""
        return {}

    def check_reference(self, reference: Path) -> None:
        """Refuse a --reference run this variant cannot follow, before anything is written."""

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor] | None:
        """How this variant ranks the weights it keeps (highest kept), where it ranks them at all: what the
        inverted-mask control turns around. None for a variant that draws its mask at random or copies one."""
        return None


def dense_magnitudes(x: RoundInputs) -> dict[str, torch.Tensor]:
    """The magnitude ranking IMP's first round and one-shot magnitude pruning apply: the dense run's final weights."""
    return {n: x.pre.final_state[n].abs() for n in x.weights}


class Full(Variant):
    method = "imp"
    help = "vanilla IMP: prune the smallest weights of the last round, rewind, retrain"

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor]:
        return dense_magnitudes(x)


class StructureLth(Variant):
    help = ("Structure-LTH's own IMP (Alg. 1): every conv but the stem, classifier kept, rewound to "
            "imp.structure_rewind; `ticketbench structure` post-processes its rounds")

    def settings(self, imp: ImpHparams) -> ImpHparams:
        return dataclasses.replace(imp, policy=imp.structure_policy, rewind=imp.structure_rewind)

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor]:
        return dense_magnitudes(x)


class RandomPrune(Variant):
    reference = True
    help = "random pruning (PrAC's baseline): a random mask over all layers at once with --reference's sparsity"

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return random_global(x.reference_mask(), x.pre.seed * 1000 + x.r), {}


class RandomPruneLayerwise(Variant):
    reference = True
    help = "random pruning with --reference's sparsity in every layer (this suite's baseline before it followed PrAC)"

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return random_like(x.reference_mask(), x.pre.seed * 1000 + x.r), {}


class RandomReinit(Variant):
    reference = True
    help = "random re-initialisation: --reference's mask with fresh random weights (the LTH's control)"

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return x.reference_mask(), {}

    def start(self, pre: Pretrained, rewind: dict, r: int) -> dict:
        return pre.new_model(seed=pre.seed + 10_000 + r).state_dict()


# SNIP and GraSP score on a few batches; 4 of 64 is what the jackpot overlap study uses.
PAI_BATCHES, PAI_BATCH_SIZE = 4, 64
SYNFLOW_ITERATIONS = 100  # Tanaka et al.'s default number of prune-rescore steps


class FollowsBudget(Variant):
    """A mask source of its own, held to --reference's budget in each round: the reference round's total kept count
    (scope global) or its count in every layer (scope layerwise), over the same layers. Each round's mask is made
    afresh, not from the previous round's; the round then rewinds to imp.rewind and trains like any IMP round."""

    reference = True

    def budget(self, x: RoundInputs) -> int | dict[str, int]:
        ref = x.reference_mask()
        return ref.kept if x.imp.scope == "global" else {n: int(m.sum()) for n, m in ref.items()}

    def check_train(self, train_hp: TrainHparams) -> None:
        """Refuse a recipe the variant cannot train with, before anything is written."""


def score_batches(pre: Pretrained, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The data SNIP and GraSP score with: the first PAI_BATCHES shuffled batches of PAI_BATCH_SIZE un-augmented
    training samples, in the pretrain seed's order (as the jackpot overlap study draws them)."""
    from ..data import make_loader

    batches = []
    for x, y, _ in make_loader(pre.splits.train_eval, PAI_BATCH_SIZE, shuffle=True, seed=pre.seed):
        batches.append((x.to(device), y.to(device)))
        if len(batches) == PAI_BATCHES:
            break
    return batches


class PruneAtInit(FollowsBudget):
    """Pruning at initialisation with a registered criterion (:mod:`ticketbench.criteria`).

    Scores are computed on the weights of the run's rewind point (imp.rewind), the weights the round then trains
    from: with imp.rewind=init this is pruning at initialisation proper; with a later point it is the same
    criterion applied where the IMP tickets it is compared with start. BatchNorm is in eval mode while scoring, as
    the criteria do and as SynFlow's reference code scores by default.
    """

    def __init__(self, criterion: str, help: str):  # noqa: A002 - the registry's word
        self.criterion = criterion
        self.help = help

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor]:
        """The criterion's one-shot scores at the rewind point (SynFlow's too: inverting its iterative pruning has
        no single ranking to turn around)."""
        from ..criteria import CRITERIA

        model = x.pre.model_from(x.pre.rewind_state(x.imp.rewind)).to(x.device)
        batches = [] if self.criterion == "synflow" else score_batches(x.pre, x.device)
        return CRITERIA.get(self.criterion)(model, list(x.weights), batches, seed=x.pre.seed)

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        from ..criteria import CRITERIA, synflow_iterative

        model = x.pre.model_from(x.pre.rewind_state(x.imp.rewind)).to(x.device)
        names = list(x.weights)
        budget = self.budget(x)
        facts = {"criterion": self.criterion, "scored_at": x.imp.rewind}
        if self.criterion == "synflow":
            info = x.pre.splits.info
            mask = synflow_iterative(model, names, budget, (info.in_chans, info.image_size, info.image_size),
                                     SYNFLOW_ITERATIONS)
            return mask, {**facts, "synflow_iterations": SYNFLOW_ITERATIONS}
        scores = CRITERIA.get(self.criterion)(model, names, score_batches(x.pre, x.device), seed=x.pre.seed)
        return keep_highest(scores, budget), {**facts, "score_batches": PAI_BATCHES, "score_batch_size": PAI_BATCH_SIZE}


class OneShotMagnitude(FollowsBudget):
    help = ("one-shot magnitude pruning (Structure-LTH's mask source OMP): the dense run's final weights pruned "
            "straight to --reference's kept count, rewound and trained")

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor]:
        return dense_magnitudes(x)

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return keep_highest(self.scores(x), self.budget(x)), {}


class RewindMagnitude(FollowsBudget):
    help = ("magnitude pruning of the rewind-point weights (no training signal in the ranking), to --reference's "
            "kept count; the sanity control of Frankle et al. 2021")

    def scores(self, x: RoundInputs) -> dict[str, torch.Tensor]:
        rewind = x.pre.rewind_state(x.imp.rewind)
        return {n: rewind[n].abs() for n in x.weights}

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        return keep_highest(self.scores(x), self.budget(x)), {"scored_at": x.imp.rewind}


class Inverted(FollowsBudget):
    """The inverted mask (Frankle et al., ICLR 2021): the weights --reference's own criterion ranks lowest.

    The ranking is the reference variant's (:meth:`Variant.scores`): the dense run's final magnitudes for IMP and
    one-shot magnitude pruning, the criterion's scores for SNIP, GraSP and SynFlow. Each layer keeps the reference
    round's count of that layer, whatever the scope: only which weights survive within a layer changes, as with the
    layerwise shuffle (random_prune_layerwise), so the two controls differ in the ranking alone.
    """

    help = ("inverted mask: the weights --reference's criterion ranks lowest (the smallest dense magnitudes for IMP "
            "and omp; SNIP, GraSP, SynFlow scores turned around), with its kept count in every layer")

    def check_reference(self, reference: Path) -> None:
        variant = reference_variant(reference)
        if not IMP_VARIANTS.get(variant).ranks:
            ranked = [n for n in IMP_VARIANTS.names() if IMP_VARIANTS.get(n).ranks]
            raise ConfigError("reference", str(reference), f"a run whose variant ranks weights ({', '.join(ranked)}); "
                              f"{variant} draws or copies its mask, so it has no ranking to invert")

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        source = reference_variant(x.reference)
        scores = IMP_VARIANTS.get(source).scores(x)
        counts = {n: int(m.sum()) for n, m in x.reference_mask().items()}
        return keep_highest({n: -s for n, s in scores.items()}, counts), {"inverted": source}


def reference_variant(reference: Path) -> str:
    """The IMP variant a --reference run ran (its metrics.json's variant; full IMP's runs before that was
    recorded)."""
    return str(finished_run("reference", reference)[1].get("variant", "full"))


class Admm(FollowsBudget):
    """ADMM pruning (Zhang et al., 2018), kept compact; Structure-LTH's mask source ADMM.

    From the dense final weights W, train imp.admm_epochs epochs on f(W) + rho/2 ||W - Z + U||^2 over the prunable
    weights, where Z is W + U projected onto the round's budget (its largest magnitudes kept) and U the scaled dual;
    after every epoch Z = proj(W + U), U = U + W - Z (Z starts at proj(W), U at 0). The mask is the last Z's support.
    The penalty enters as a gradient hook on each prunable weight, so the recipe's SGD (momentum, weight decay) and
    data order apply to it as to the loss; the learning rate is the constant imp.admm_lr. fp16's loss scaling would
    scale the loss but not the hook's term, so fp16 is refused.
    """

    help = ("ADMM pruning (Structure-LTH's mask source ADMM): imp.admm_epochs of ADMM training of the dense final "
            "weights towards --reference's kept count, mask = the final projection, then rewound and trained")

    def check_train(self, train_hp: TrainHparams) -> None:
        if train_hp.precision == "fp16":
            raise ConfigError("train.precision", "fp16", "fp32 or bf16 with imp.variant=admm (its penalty gradient is "
                              "not loss-scaled)")

    def mask(self, x: RoundInputs) -> tuple[Mask, dict[str, Any]]:
        from ..train import train

        budget, rho = self.budget(x), x.imp.admm_rho
        model = x.pre.model_from(x.pre.final_state).to(x.device)
        params = {n: p for n, p in model.named_parameters() if n in x.weights}
        z: dict[str, torch.Tensor] = {}
        u = {n: torch.zeros_like(p.detach()) for n, p in params.items()}
        residuals: list[float] = []

        @torch.no_grad()
        def project() -> Mask:
            kept = keep_highest({n: (p + u[n]).abs() for n, p in params.items()}, budget)
            for n, p in params.items():
                z[n] = (p + u[n]) * kept[n].to(p.device)
            return kept

        @torch.no_grad()
        def residual() -> float:
            gap = sum(float((p - z[n]).pow(2).sum()) for n, p in params.items())
            norm = sum(float(p.pow(2).sum()) for p in params.values())
            return (gap / norm) ** 0.5 if norm else 0.0

        @torch.no_grad()
        def dual_step(ctx) -> None:
            nonlocal mask
            mask = project()
            for n, p in params.items():
                u[n] += p - z[n]
            residuals.append(residual())

        mask = project()
        residuals.append(residual())  # before any ADMM step: the share of the weights the budget cuts
        # The gradient of rho/2 ||W - Z + U||^2, added when each weight's gradient is formed.
        handles = [p.register_hook(lambda g, n=n, p=p: g + rho * (p.detach() - z[n] + u[n]))
                   for n, p in params.items()]
        hp_admm = dataclasses.replace(x.train_hp, epochs=x.imp.admm_epochs, lr=x.imp.admm_lr, schedule="constant",
                                      warmup_epochs=0, milestones="", rewind_epochs="", rewind_iterations="")
        try:
            res = train(model, x.pre.splits.train, x.pre.splits.val, hp_admm, device=x.device, seed=x.pre.seed,
                        workers=x.pre.data_hp.workers, callbacks=[dual_step], progress=x.progress,
                        desc=f"admm round {x.r}")
        finally:
            for h in handles:
                h.remove()
        # admm_residuals: ||W - Z|| / ||W|| before the first epoch and after each.
        return mask, {"admm_residuals": residuals, "admm_iterations": res.iterations, "admm_rho": rho,
                      "admm_epochs": x.imp.admm_epochs}


SNIP = PruneAtInit("snip", "SNIP (Lee et al. 2019) on the rewind-point weights, to --reference's kept count "
                           f"(scored on {PAI_BATCHES} training batches of {PAI_BATCH_SIZE}); PrAC's and "
                           "Structure-LTH's pruning-at-init baseline")
GRASP = PruneAtInit("grasp", "GraSP (Wang et al. 2020) on the rewind-point weights, to --reference's kept count "
                             f"(scored on {PAI_BATCHES} training batches of {PAI_BATCH_SIZE})")
SYNFLOW = PruneAtInit("synflow", "SynFlow (Tanaka et al. 2020) on the rewind-point weights, data-free, "
                                 f"{SYNFLOW_ITERATIONS} prune-rescore steps down to --reference's kept count")


def run_imp(pre: Pretrained, imp: ImpHparams, train_hp: TrainHparams, out: str | Path, *, device: torch.device,
            selector: FullData | None = None, reference: str | Path | None = None, method: str | None = None,
            evaluate_tickets: bool = False, early_stop=None, progress: bool = True, config: dict | None = None,
            summary: dict | None = None) -> dict:
    """Run ``imp.rounds`` rounds of ``imp.variant`` into ``out/round<r>/``; returns the run-level metrics.

    ``imp`` holds the variant's settings already (:meth:`Variant.settings`). Callers check the inputs first
    (:func:`check_inputs`), before anything is written.
    """
    t_run = time.perf_counter()
    variant = IMP_VARIANTS.get(imp.variant)
    method = method or variant.method
    selector = selector or FullData()
    model0 = pre.new_model()
    names, cover = policy_names(model0, imp.policy, "imp.policy", pre.model_hp.backbone)
    uncounted = 0
    if imp.prune_rule == "openlth":
        uncounted = sum(m.weight.numel() for n, m in conv_linear_layers(model0).items() if f"{n}.weight" not in names)
    del model0
    rewind = pre.rewind_state(imp.rewind)
    start_epoch = pre.resume_epoch(imp.rewind) if imp.lr_resume else 0
    weights = {n: pre.final_state[n] for n in names}
    mask: Mask | None = None
    cumulative = pre.metrics["train_iterations"]  # round 0: the dense run (PrAC's is early-stopped)
    n_full = len(pre.splits.train)
    rows = []
    for r in range(1, imp.rounds + 1):
        t0 = time.perf_counter()
        mask, facts = variant.mask(RoundInputs(pre, imp, r, weights, mask, Path(reference) if reference else None,
                                               config or {}, device, train_hp, progress, uncounted))
        start = variant.start(pre, rewind, r)
        ids = selector.ids(r)
        frac = 1.0 if ids is None else len(ids) / n_full
        hp_r = scaled_hparams(train_hp, frac, imp.epoch_scaling)
        callbacks = [early_stop(mask, weights_of=names, rate=imp.rate)] if (early_stop and selector.early_stop) else []
        model, res = train_round(pre, start, mask, hp_r, device=device, ids=ids, start_epoch=start_epoch,
                                 callbacks=callbacks, progress=progress, desc=f"{method} round {r}")
        find = cumulative
        cumulative += res.iterations
        extra = {**facts, **selector.after_round(r, model, res)}
        extra.update(round=r, find_iterations=find, cumulative_iterations=cumulative, data_fraction=frac,
                     epochs_planned=hp_r.epochs, rewind=imp.rewind, policy=imp.policy, policy_coverage=cover,
                     variant=imp.variant)
        if ids is not None and evaluate_tickets:
            # A ticket found on a subset is judged like the paper does: retrained on the full data.
            _, ticket = train_round(pre, start, mask, train_hp, device=device, start_epoch=start_epoch,
                                    progress=progress, desc=f"{method} ticket {r}")
            extra.update(search_test_acc=res.test_acc, search_val_acc=res.best_val_acc,
                         ticket_iterations=ticket.iterations, train_iterations=res.iterations,
                         epochs_run=len(res.history), stopped_early=res.stopped_early)
        else:
            ticket = res
        rows.append(write_round(round_dir(out, r), method=method, pre=pre, mask=mask, res=ticket,
                                config=config or {}, t0=t0, **extra))
        weights = {n: res.final_state[n] for n in names}
    return write_summary(out, rows, method=method, pre=pre, t0=t_run, policy=imp.policy, policy_coverage=cover, rate=imp.rate,
                         rewind=imp.rewind, variant=imp.variant, **(summary or {}))


def print_rounds(m: dict) -> None:
    for row in m["rounds"]:
        print(f"round {row['round']}: sparsity {row['sparsity']:.4f} test_acc {row['test_acc']:.4f} "
              f"iterations {row['train_iterations']} (cumulative {row['cumulative_iterations']})")


def _help(name: str) -> str:
    """A variant's help line; one from an outside package that cannot be imported says so instead."""
    spec = IMP_VARIANTS.spec(name)
    try:
        text = IMP_VARIANTS.get(name).help
    except ConfigError as e:
        return f"(from {spec.target}, which cannot be imported: {e.allowed})"
    return f"{text} (from {spec.target})" if spec.outside else text


@STAGES.register("imp")
class Imp(MethodStage):
    name = "imp"
    help = "iterative magnitude pruning with rewinding, on full data or on replayed PrAC sets; random baselines"
    hparams = (ImpHparams,)
    retrains = True

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("data and baselines")
        add_input(g, "--subsets", help="a `ticketbench prac` run whose per-round PrAC sets this run trains on (the "
                  "transfer experiment: sets found with one backbone drive another)")
        add_input(g, "--reference", help="an IMP run whose masks the baselines follow: the random ones copy its "
                  "sparsity or mask; snip, grasp, synflow, omp and admm its kept count per round (over all layers, or "
                  "per layer with --scope layerwise)")
        g.add_argument("--evaluate-tickets", action="store_true",
                       help="with --subsets: also retrain each round's ticket on the full data (as PrAC reports)")
        # The variants' own words, kept as written: the default formatter would run them together.
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = "variants (--variant):\n" + "\n".join(f"  {n}: {_help(n)}" for n in IMP_VARIANTS.names())

    @classmethod
    def adjust(cls, hp, args):
        variant = IMP_VARIANTS.get(hp["imp"].variant)
        if variant.reference and not args.reference:
            raise ConfigError("reference", None, f"an IMP run folder when --variant is {variant.name}")
        return {**hp, "imp": variant.settings(hp["imp"])}

    @classmethod
    def settings(cls, pre, hp, args, config):
        extra = {"subsets": args.subsets, "reference": args.reference}
        return {**extra, **IMP_VARIANTS.get(hp["imp"].variant).settings_of_run(pre, config)}

    @classmethod
    def check_inputs(cls, pre, hp, args):
        reference = args.reference if IMP_VARIANTS.get(hp["imp"].variant).reference else None
        check_inputs(pre, hp["imp"], reference=reference, subsets=args.subsets, train_hp=hp["train"])

    @classmethod
    def execute(cls, run: Run) -> int:
        args = run.args
        selector = ReplayedSubsets(args.subsets) if args.subsets else FullData()
        method = "prac_transfer" if args.subsets else None
        variant = IMP_VARIANTS.get(run.hp["imp"].variant)
        if variant.reference and args.reference:
            source = reference_variant(Path(args.reference))
            if source != "full" and source in IMP_VARIANTS and IMP_VARIANTS.spec(source).paper == "prac":
                # A control of another variant's masks is its own method: a shuffled SNIP mask is not a shuffled
                # IMP mask, in the figures and tables alike.
                method = run_folder("imp", "{follower}-of-{source_variant}", follower=variant.method,
                                    source_variant=source)
        print_rounds(run_imp(run.pre, run.hp["imp"], run.hp["train"], args.out, device=run.device, selector=selector,
                             reference=args.reference, method=method,
                             evaluate_tickets=args.evaluate_tickets, progress=run.progress, config=run.resolved))
        return 0
