"""``ticketbench structure``: IMP-Refill, Refill+ and IMP-Regroup over the rounds of an IMP run.

Each round's unstructured IMP mask becomes a structured one, the ticket is rewound and retrained
like any IMP round, and its real speed is measured: refilled tickets are physically slimmed
(:mod:`ticketbench.methods.structure.slim`), regrouped ones run with block-sparse convolutions
(:mod:`ticketbench.methods.structure.blocksparse`); both against the dense model in the same process.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping

import torch

from ... import artifacts, paths, storage
from ...data import make_loader
from ...errors import ArtifactError, ConfigError
from ...hparams import Hparams, TrainHparams, hp, int_list
from ...masks import Mask, coverage, prunable_names
from ...models import classifier_names
from ...stage import STAGES, add_input
from ...timing import NOISY, TimedRatio, for_inference, paired_until_tight, saving_metrics
from ..registry import STRUCTURE_METHODS
from ..common import (MethodStage, Pretrained, Run, check_source, load_mask_from, round_dir, train_round, write_round,
                      write_summary)
from .blocksparse import MAX_WORK, MIN_MACS
from .refill import (CHANNEL_SCORES, REFILL_RULES, batchnorm_after, batchnorm_mask, channel_sparsity,
                     group_norm_mask, joint_choice, refill, refill_released)
from .units import UnitGroup, unit_groups
from .regroup import PRESETS, RELEASED, RegroupConstants, RegroupResult

#: structure.scratch's values: off, Scratch-E, Scratch-B (Liu et al., ICLR 2019).
SCRATCH = ("", "e", "b")
#: The fresh initialisation of round r's scratch model is drawn from seed + SCRATCH_SEED + r (the reinit ablation's
#: tickets draw from seed + 10_000 + r).
SCRATCH_SEED = 20_000

#: StructureHparams field -> RegroupConstants field, for the constants a regroup preset fixes.
_REGROUP_KEYS = {"parts": "parts", "fixed_parts": "adaptive_parts", "row_threshold": "row_threshold",
                 "granularity": "granularity", "column_factor": "column_factor", "imbalance": "imbalance"}


@dataclass(frozen=True)
class StructureHparams(Hparams):
    """Structured tickets from IMP masks: channel-wise (Refill, Refill+) or group-wise (Regroup)."""

    section: ClassVar[str] = "structure"
    method: str = hp("refill", "a registered structure method (ticketbench.methods.registry or an installed "
                               "package's; `ticketbench structure --help` lists them)")
    criterion: str = hp("l1", "refill channel score: l1 (of trained weights; the paper), remain (the released code), "
                              "act_l1, act_l2 or saliency; released_stale_act_l1 reproduces the released activation "
                              "l1 with its bugs (every layer scored from the first layer's output)")
    refill_rule: str = hp("exact", "refill's channel choice per layer: exact (the budget's top scores, ties to the lower "
                                   "index, every channel whole or empty) or released (the released code: int(x) + 1 "
                                   "channels, one random channel of a tie filled and the other tied ones left "
                                   "partial; needs coupled per_layer)")
    refill_batchnorm: str = hp("zero", "BatchNorm of channels refill empties: zero (scale and shift zeroed and frozen, so "
                                       "the channel can be removed) or released (left trainable, as the released code: "
                                       "the channel outputs a constant and slimming cannot remove it)")
    coupled: str = hp("joint", "refill where channels are coupled (residual streams, depthwise and grouped convs, "
                               "squeeze-excite): joint (the coupled layers choose together, so the channels can be "
                               "removed; a deviation the report lists) or per_layer (the paper's Alg. 2 everywhere)")
    rho: float = hp(0.1, "refill_plus: extra fraction of the emptied channels to re-activate (paper value unknown)")
    reinit: bool = hp(False, "ablation: retrain each structured ticket from a fresh random initialisation instead "
                             "of the IMP run's rewind weights (Structure-LTH Tables A3, A4: random tickets)")
    scratch: str = hp("", "ablation (Liu et al., ICLR 2019, Rethinking the Value of Network Pruning): train each round's "
                          "slimmed architecture from a fresh initialisation at its own shapes instead of the ticket: "
                          "e (Scratch-E: the recipe's epochs) or b (Scratch-B: epochs scaled by dense / slimmed MACs, "
                          "capped by scratch_b_max_factor); empty: off. Methods that slim their tickets only")
    scratch_b_max_factor: float = hp(2.0, "Scratch-B: the most its epochs may grow, as a factor of Scratch-E's (2: Liu "
                                           "et al.'s cap on ImageNet, 180 of 90 epochs in their main_B.py; 0: no cap, "
                                           "as their CIFAR code)")
    round_to: int = hp(1, "refill: round each layer's channel count up to a multiple of this (1: the paper's rule; "
                          "8 suits CPU/GPU conv kernels)")
    parts: int = hp(8, "regroup: hypergraph parts per layer (at most; see --fixed-parts)")
    fixed_parts: bool = hp(False, "regroup: always use --parts parts, as the paper and the released code; by default "
                                  "a layer gets min(parts, C_out // (row_threshold + 1)) so narrow layers can still "
                                  "form blocks")
    row_threshold: int = hp(15, "regroup: a part forms a block only if it has MORE rows than this (the released "
                                "code: 16; the default 15 admits the single 16-row part of a 16-channel layer)")
    granularity: int = hp(32, "regroup: row granularity of a block")
    column_factor: float = hp(1.5, "regroup: column growth factor")
    imbalance: float = hp(0.1, "regroup: partition imbalance allowed")
    regroup_preset: str = hp("adaptive", "regroup constants: adaptive (parts, fixed_parts, row_threshold, "
                                         "granularity, column_factor and imbalance as set) or released (the released "
                                         "code's: 8 fixed parts, more than 16 rows, 32-row chunks, column factor 1.5, "
                                         "imbalance 0.1 and its column loop; those six keys then stay at their "
                                         "defaults; KaHyPar still partitions)")
    blocksparse_max_work: float = hp(MAX_WORK, "regroup: a layer runs block-sparse only if its blocks gather at most this "
                                           "fraction of the dense multiply-adds (0.55: measured on CPU, see "
                                           "ticketbench.methods.structure.blocksparse)")
    blocksparse_min_macs: int = hp(MIN_MACS, "regroup: a layer runs block-sparse only if it does at least this many "
                                          "dense multiply-adds per output position, C_out*C_in*kh*kw (36864 = a "
                                          "64->64 3x3 conv, the smallest layer measured faster on the reference CPU); "
                                          "a stored setting, never timed at run time: "
                                          "tests/benchmarks/test_bench_blocksparse.py prints a device's value")
    rounds: str = hp("", "comma-separated IMP rounds to structure (default: all)")
    timing_batch: int = hp(64, "batch size of the latency measurement")
    timing_rounds: int = hp(10, "timed forward passes per model per batch; batches repeat until the 95% interval of "
                                "the time ratio is narrower than timing_width")
    timing_width: float = hp(0.05, "timing stops once the 95% interval of the ticket/dense time ratio is narrower than "
                                   "this (0.05: 5 points of time saving); otherwise the saving is marked noisy")
    timing_max_seconds: float = hp(30.0, "timing of one ticket stops after this many seconds, tight or not (then noisy)")

    def check(self) -> None:
        self._require("method", self.method in STRUCTURE_METHODS, f"one of {', '.join(STRUCTURE_METHODS.names())}")
        self._require("coupled", self.coupled in ("joint", "per_layer"), "joint or per_layer")
        self._require("refill_rule", self.refill_rule in REFILL_RULES, f"one of {', '.join(REFILL_RULES)}")
        self._require("coupled", self.refill_rule == "exact" or self.coupled == "per_layer",
                      "per_layer with refill_rule released (the released code chooses per layer)")
        self._require("refill_batchnorm", self.refill_batchnorm in ("zero", "released"), "zero or released")
        self._require("criterion", self.criterion in CHANNEL_SCORES, f"one of {', '.join(CHANNEL_SCORES.names())}")
        self._require("rho", 0 <= self.rho < 1, "a fraction in [0, 1)")
        self._require("scratch", self.scratch in SCRATCH, "e (Scratch-E), b (Scratch-B) or empty (off)")
        slimming = [m for m in STRUCTURE_METHODS.names() if STRUCTURE_METHODS.spec(m).channels]
        self._require("scratch", not self.scratch or STRUCTURE_METHODS.spec(self.method).channels,
                      f"empty with method {self.method}: Scratch-E/B train a slimmed architecture, which only "
                      f"{', '.join(slimming)} build")
        self._require("scratch", not (self.scratch and self.reinit), "empty with reinit: both retrain from a fresh "
                      "initialisation, reinit the masked ticket and scratch its slimmed architecture; choose one")
        self._require("scratch_b_max_factor", self.scratch_b_max_factor == 0 or self.scratch_b_max_factor >= 1,
                      "a factor >= 1, or 0 for no cap")
        self._require("timing_width", 0 < self.timing_width <= 1, "a ratio width in (0, 1], e.g. 0.05")
        self._require("timing_max_seconds", self.timing_max_seconds > 0, "a positive number of seconds")
        for key in ("round_to", "parts", "granularity", "timing_batch", "timing_rounds"):
            self._require(key, getattr(self, key) > 0, "a positive integer")
        for key in ("row_threshold", "blocksparse_min_macs"):
            self._require(key, getattr(self, key) >= 0, "a non-negative integer")
        self._require("column_factor", self.column_factor > 0, "a positive factor")
        self._require("imbalance", self.imbalance >= 0, "a non-negative number (KaHyPar's epsilon, e.g. 0.1)")
        self._require("blocksparse_max_work", self.blocksparse_max_work >= 0, "a non-negative fraction (e.g. 0.55)")
        self._require("regroup_preset", self.regroup_preset in PRESETS, f"one of {', '.join(PRESETS)}")
        if self.regroup_preset == "released":
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for key, const in _REGROUP_KEYS.items():
                released = getattr(RELEASED, const)
                released = not released if key == "fixed_parts" else released
                # The field's own default is accepted too: it is what a config that never names the key holds.
                allowed = f"{released!r}" + (f" or its default {defaults[key]!r}" if defaults[key] != released else "")
                self._require(key, getattr(self, key) in (defaults[key], released),
                              f"{allowed} with regroup_preset=released, which fixes the regroup constants "
                              f"(set regroup_preset=adaptive to change them)")

    def regroup_constants(self) -> RegroupConstants:
        """The constants :func:`regroup_with` partitions with: the preset's, or the fields for ``adaptive``."""
        if self.regroup_preset != "adaptive":
            return PRESETS[self.regroup_preset]
        values = {const: getattr(self, key) for key, const in _REGROUP_KEYS.items()}
        values["adaptive_parts"] = not self.fixed_parts
        return RegroupConstants(**values)


def regroup_with(st: StructureHparams, convs: Mapping[str, torch.Tensor], seed: int) -> RegroupResult:
    """IMP-Regroup of the 4-D (conv) entries of ``convs`` with ``st``'s constants (:meth:`regroup_constants`).

    The one entry point for every caller (the ``structure`` stage, group-aware IMP), so a preset means the same
    everywhere. Entries that are not 4-D, or form no block, keep their mask and are listed in ``fallback``.
    """
    from . import regroup as regroup_mod  # looked up at call time, so tests can stand in for the partitioner

    return regroup_mod.regroup(convs, seed=seed, **dataclasses.asdict(st.regroup_constants()))


def blocksparse_ticket(model: torch.nn.Module, blocks: Mapping[str, list], st: StructureHparams,
                       example: torch.Tensor, device: torch.device | str | None = None
                       ) -> tuple[torch.nn.Module, list[dict]]:
    """The regrouped ``model`` with block-sparse convs where ``st``'s fixed rule says so, and one row per layer.

    Each row holds the rule's inputs and outcome (``blocksparse``, ``work``, ``macs``) and, for the report only,
    both paths timed on the layer's real input for ``example``: the timings never change which layers run
    block-sparse, so two runs build the same model.
    """
    from .blocksparse import layer_choices, time_layers, to_blocksparse

    blocks = {n: b for n, b in blocks.items() if b}
    fast = to_blocksparse(model, blocks, max_work=st.blocksparse_max_work, min_macs=st.blocksparse_min_macs)
    timed = time_layers(model, blocks, example, rounds=st.timing_rounds, device=device)
    return fast, [{"layer": n, **choice, **timed.get(n, {})} for n, choice in layer_choices(fast).items()]


def _against_dense(dense: torch.nn.Module, model: torch.nn.Module, x: torch.Tensor, rounds: int,
                   device: torch.device, width: float, max_seconds: float) -> TimedRatio:
    """Both models prepared alike (:func:`for_inference`) and timed alternately on the same batch until the interval
    of their time ratio is ``width`` wide or ``max_seconds`` have passed."""
    dense, x = for_inference(dense.to(device), x.to(device))
    model, _ = for_inference(model.to(device), x)
    with torch.inference_mode():
        return paired_until_tight(lambda: dense(x), lambda: model(x), rounds=rounds, width=width,
                                  max_seconds=max_seconds, warmup=2, device=device)


def saving_text(row: Mapping) -> str:
    """``time saving 12.3%``, marked noisy where timing stopped before its interval was tight, or the reason none is
    reported."""
    if not row.get("structure_removed", True):
        return "no structure removed"
    return f"time saving {row['time_saving']:.1%}" + (" (noisy)" if row.get("timing_verdict") == NOISY else "")


def _latency(pre: Pretrained, dense: torch.nn.Module, ticket: torch.nn.Module, st: StructureHparams,
             device: torch.device) -> dict:
    info = pre.splits.info
    x = torch.randn(st.timing_batch, info.in_chans, info.image_size, info.image_size,
                    generator=torch.Generator().manual_seed(0))
    t = _against_dense(dense, ticket, x, st.timing_rounds, device, st.timing_width, st.timing_max_seconds)
    return {"dense_ms": t.base_s * 1e3, "ticket_ms": t.test_s * 1e3, "latency_fraction": t.ratio,
            **saving_metrics(t), "timing_batch": st.timing_batch, "timing_device": str(device)}


class StructureMethod:
    """A way to turn IMP tickets into structured ones, and the faster model that structure allows.

    Its name, given by its line in :mod:`ticketbench.methods.registry`, is the run's folder and ``metrics.json``
    method. A round's structured mask comes from the IMP run's round (:meth:`structure`) or, in a transfer, from
    another dataset's run of the same method (:meth:`transfer`, given the source's mask of this model's shapes);
    :meth:`fast_model` builds the model that computes less and says what it removed. Timing reads the structure
    hparams (``timing_*``) for every method alike.
    """

    name = ""  # set from the registry
    criterion = False  # records structure.criterion (a channel score chooses its structure)
    convs_only = False  # structures 4-D (conv) weights only; a transfer keeps every other weight dense

    def structure(self, pre: Pretrained, model: torch.nn.Module, imp_mask: Mask, r: int, st: StructureHparams,
                  example: torch.Tensor, groups: list[UnitGroup]) -> tuple[Mask, dict, dict]:
        """(structured mask, BatchNorm mask entries, facts) for round ``r``'s IMP mask of the trained ``model``."""
        raise NotImplementedError

    def transfer(self, pre: Pretrained, mask: Mask, source: Path, r: int, st: StructureHparams,
                 example: torch.Tensor, groups: list[UnitGroup] | None) -> tuple[Mask, dict, dict]:
        """The same for a mask taken from another dataset's run (``source``)."""
        raise NotImplementedError

    def fast_model(self, pre: Pretrained, model: torch.nn.Module, dense: torch.nn.Module, mask: Mask, facts: dict,
                   st: StructureHparams, example: torch.Tensor, groups: list[UnitGroup], out: Path, r: int,
                   device: torch.device) -> torch.nn.Module:
        """The trained ticket as a model that computes less; sets ``facts["structure_removed"]`` and
        ``facts["no_structure_reason"]``."""
        raise NotImplementedError


class Refill(StructureMethod):
    """IMP-Refill: whole channels chosen by a channel score, physically slimmed."""

    criterion = True

    def rho(self, st: StructureHparams) -> float:
        return 0.0

    def structure(self, pre, model, imp_mask, r, st, example, groups):
        heads = {f"{n}.weight" for n in classifier_names(model)}
        layers = Mask({n: m for n, m in imp_mask.items() if n not in heads})
        others = {n: m for n, m in imp_mask.items() if n in heads}
        x, y, _ = next(iter(make_loader(pre.splits.train_eval, 64, shuffle=True, seed=pre.seed)))
        scores = CHANNEL_SCORES.get(st.criterion)(model, layers, (x, y))
        groups = groups if st.coupled == "joint" else []
        if st.refill_rule == "released":
            draws = torch.Generator().manual_seed(pre.seed * 1000 + r)
            channel_mask, _ = refill_released(layers, scores, self.rho(st), draws, st.criterion)
        else:
            channel_mask, _ = refill(layers, scores, self.rho(st), st.round_to, groups)
        bn = {}
        if st.refill_batchnorm == "zero":
            bn = batchnorm_mask(model, channel_mask, batchnorm_after(pre.new_model(), list(channel_mask), example))
            bn.update(group_norm_mask(model, channel_mask, groups))
        joint = [g.root for g in groups if joint_choice(g, layers)]
        return Mask({**channel_mask, **others}), bn, {"channel_sparsity": channel_sparsity(channel_mask),
                                                      "coupled_groups": joint}

    def transfer(self, pre, mask, source, r, st, example, groups):
        if st.refill_batchnorm == "released":
            return mask, {}, {"channel_sparsity": channel_sparsity(mask)}
        model = pre.new_model()
        bn = batchnorm_mask(model, mask, batchnorm_after(pre.new_model(), list(mask), example))
        if st.coupled == "joint":
            groups = unit_groups(pre.new_model(), example) if groups is None else groups
            bn.update(group_norm_mask(model, mask, groups))
        return mask, bn, {"channel_sparsity": channel_sparsity(mask)}

    def fast_model(self, pre, model, dense, mask, facts, st, example, groups, out, r, device):
        from . import slim as slimming

        unsafe: list[str] = []
        fast, plan = slimming.slim(model, example, unsafe)
        facts["unsafe_groups"] = unsafe
        slim_facts(pre, fast, plan, dense, mask, facts, example, groups)
        save_slim_round(pre, fast, plan, example, out, r, method=self.name)
        return fast


def slim_facts(pre: Pretrained, fast: torch.nn.Module, plan: list, dense: torch.nn.Module, mask: Mask, facts: dict,
               example: torch.Tensor, groups: list[UnitGroup]) -> None:
    """What slimming removed, into ``facts``: ``flops_fraction``, ``params_fraction``, ``units_removed`` ...,
    ``structure_removed`` and, where nothing was, ``no_structure_reason``."""
    from . import slim as slimming

    facts["flops_fraction"] = slimming.macs(fast, example) / slimming.macs(dense, example)
    facts["params_fraction"] = slimming.params(fast) / slimming.params(dense)
    facts["slim_plan_channels"] = sum(len(i) for _, i in plan)
    facts["units_removed"], facts["units_total"] = slimming.removed_channels(dense, fast)
    facts["units_removed_fraction"] = facts["units_removed"] / max(1, facts["units_total"])
    facts["structure_removed"] = facts["flops_fraction"] < 1 or facts["params_fraction"] < 1
    facts["no_structure_reason"] = None if facts["structure_removed"] else nothing_removed(
        groups, mask, pre.model_hp.backbone)


def save_slim_round(pre: Pretrained, fast: torch.nn.Module, plan: list, example: torch.Tensor, out: Path, r: int,
                    **meta) -> None:
    """Round ``r``'s slimmed model as ``slim.safetensors`` (:func:`~.slim.load_slim` rebuilds it from the plan)."""
    from . import slim as slimming

    info = pre.splits.info
    slimming.save_slim(round_dir(out, r) / "slim.safetensors", fast, plan, backbone=pre.model_hp.backbone,
                       num_classes=info.num_classes, in_chans=info.in_chans, input_size=tuple(example.shape[1:]),
                       source_hash=pre.source_hash, **meta)


def scratch_round(pre: Pretrained, start: dict, mask: Mask, bn_mask: dict, r: int, st: StructureHparams,
                  train_hp: TrainHparams, dense: torch.nn.Module, example: torch.Tensor, groups: list[UnitGroup],
                  out: Path, *, device: torch.device, progress: bool):
    """Scratch-E or Scratch-B of round ``r`` (:mod:`.scratch`): the structured ticket's slimmed architecture, fresh
    weights at its shapes, trained from epoch 0; returns (trained model, TrainResult, facts)."""
    from ...train import train
    from . import scratch as sc
    from . import slim as slimming

    plan, unsafe = sc.ticket_plan(pre, start, Mask({**mask, **bn_mask}), example)
    seed = pre.seed + SCRATCH_SEED + r
    model, rule = sc.scratch_model(pre, plan, example, seed)
    dense_macs, slim_macs = slimming.macs(dense, example), slimming.macs(model, example)
    factor = sc.scratch_factor(dense_macs, slim_macs, st.scratch, st.scratch_b_max_factor)
    hp = sc.scratch_hparams(train_hp, factor)
    facts = {"scratch": st.scratch, "scratch_epochs": hp.epochs, "scratch_epoch_factor": factor,
             "scratch_max_factor": st.scratch_b_max_factor if st.scratch == "b" else None,
             "scratch_seed": seed, "scratch_init": rule, "scratch_params": slimming.params(model),
             "dense_macs": dense_macs, "scratch_macs": slim_macs, "unsafe_groups": unsafe}
    slim_facts(pre, model, plan, dense, mask, facts, example, groups)
    # The ticket's data order (train_round's seed): the two differ in architecture and initial weights only.
    res = train(model, pre.splits.train, pre.splits.val, hp, device=device, seed=pre.seed, test_ds=pre.splits.test,
                workers=pre.data_hp.workers, progress=progress, desc=f"{st.method} scratch_{st.scratch} round {r}")
    model.load_state_dict(res.best_state)
    model.cpu().eval()
    save_slim_round(pre, model, plan, example, out, r, method=st.method, scratch=st.scratch)
    return model, res, facts


class RefillPlus(Refill):
    """Refill+: refill, then a fraction rho of the emptied channels re-activated."""

    def rho(self, st: StructureHparams) -> float:
        return st.rho


class Regroup(StructureMethod):
    """IMP-Regroup: dense blocks of each conv's kept weights, run with block-sparse convolutions."""

    convs_only = True

    def structure(self, pre, model, imp_mask, r, st, example, groups):
        convs = Mask({n: m for n, m in imp_mask.items() if m.dim() == 4})
        others = {n: m for n, m in imp_mask.items() if m.dim() != 4}
        res = regroup_with(st, convs, pre.seed)
        return Mask({**res.mask, **others}), {}, {"group_sparsity": res.group_sparsity(), "regroup": res.to_json(),
                                                   "fallback_layers": res.fallback, "_blocks": res.blocks}

    def transfer(self, pre, mask, source, r, st, example, groups):
        from .regroup import blocks_from_json

        recorded = artifacts.read_metrics(round_dir(source, r) / "metrics.json").get("regroup", {}).get("blocks", {})
        blocks = {n: b for n, b in blocks_from_json(recorded).items() if n in mask}
        return mask, {}, {"group_sparsity": {n: 1.0 - int(m.sum()) / m.numel() for n, m in mask.items()},
                          "fallback_layers": sorted(n for n in mask if not blocks.get(n)), "_blocks": blocks}

    def fast_model(self, pre, model, dense, mask, facts, st, example, groups, out, r, device):
        blocks = facts.pop("_blocks")
        x = torch.randn(st.timing_batch, *example.shape[1:], generator=torch.Generator().manual_seed(0))
        fast, facts["blocksparse_layers"] = blocksparse_ticket(model, blocks, st, x, device)
        facts["structure_removed"] = any(row["blocksparse"] for row in facts["blocksparse_layers"])
        facts["no_structure_reason"] = None if facts["structure_removed"] else (
            "no regrouped layer passes the block-sparse rule (blocksparse_max_work, blocksparse_min_macs), so "
            "every layer runs dense" if blocks else
            f"regroup's block-sparse kernels are convolutions, and none of {pre.model_hp.backbone}'s pruned "
            f"layers is one")
        return fast


def structure_round(pre: Pretrained, imp_dir: Path, r: int, st: StructureHparams, example: torch.Tensor,
                    groups: list[UnitGroup] | None = None):
    """The structured mask (plus BatchNorm entries for refill) for IMP round ``r`` and facts about it.

    Refill structures every masked conv and linear but the classifier (whose outputs are the classes); coupled
    channels choose together (``groups``). Regroup's block-sparse kernels are convolutions, so it regroups the 4-D
    entries and every other entry keeps its IMP mask.
    """
    imp_mask, _ = Mask.load(round_dir(imp_dir, r) / "mask.safetensors")
    trained, _ = artifacts.load_checkpoint(round_dir(imp_dir, r) / "model.safetensors")
    groups = unit_groups(pre.new_model(), example) if groups is None else groups
    return STRUCTURE_METHODS.get(st.method).structure(pre, pre.model_from(trained), imp_mask, r, st, example, groups)


def nothing_removed(groups: list[UnitGroup], mask: Mapping[str, torch.Tensor], backbone: str) -> str:
    """One line on why slimming removed no channel: the architecture's blocked groups, or no empty unit."""
    touched = [g for g in groups if any(n in mask for n in g.weights())]
    blocked: dict[str, int] = {}
    for g in touched:
        if g.blocker:
            blocked[g.blocker] = blocked.get(g.blocker, 0) + 1
    if not blocked:
        return f"no channel of {backbone} was empty in every layer that produces it"
    reasons = "; ".join(f"{why} ({k} group{'s' * (k > 1)})" for why, k in sorted(blocked.items(), key=lambda kv: -kv[1]))
    free = sum(1 for g in touched if g.removable)
    return (f"{sum(blocked.values())} of {len(touched)} channel "
            f"groups of {backbone} cannot lose a channel without changing its outputs: {reasons}"
            + (f"; the other {free} had no channel empty in every producer" if free else ""))


def transferred_round(pre: Pretrained, source: Path, r: int, st: StructureHparams, example: torch.Tensor,
                      groups: list[UnitGroup] | None = None):
    """Round ``r``'s structured mask taken from another ``structure`` run (Structure-LTH Table A2: tickets found on
    one dataset, retrained on another), shaped like :func:`structure_round`'s result.

    Only entries whose shape this model shares are taken (for regroup: conv entries only); every other conv or linear
    weight (the classifier, a stem of another size, ...) stays dense and is listed with the reason in ``transfer_dense_layers``. Refill's
    BatchNorm entries are derived anew for this model from the channel mask; regroup's blocks come from the source
    round's record, so the block-sparse path runs the same groups.
    """
    method = STRUCTURE_METHODS.get(st.method)
    src, _ = Mask.load(round_dir(source, r) / "mask.safetensors")
    model = pre.new_model()
    params = dict(model.named_parameters())
    mask, dense = Mask(), {}
    heads = {f"{n}.weight" for n in classifier_names(model)}
    for n, m in src.items():
        if method.convs_only and m.dim() != 4:
            dense[n] = "not a conv"
        elif n in heads:
            dense[n] = "the classifier"
        elif n not in params:
            dense[n] = "no such layer here"
        elif tuple(params[n].shape) != tuple(m.shape):
            dense[n] = f"shape {list(m.shape)} in the source, {list(params[n].shape)} here"
        else:
            mask[n] = m
    for n in prunable_names(model, "openlth"):
        if n not in mask and n not in dense:
            dense[n] = "not in the source mask"
    mask, bn, facts = method.transfer(pre, mask, source, r, st, example, groups)
    return mask, bn, {"transfer_dense_layers": dict(sorted(dense.items())), **facts}


def transfer_source(pre: Pretrained, source: Path, st: StructureHparams) -> tuple[str, list[int]]:
    """The source run's dataset and rounds, once it is checked to be a finished ``structure`` run of this method on
    this backbone."""
    if not paths.metrics(source).is_file():
        raise ArtifactError(source, "is not a finished `ticketbench structure` run (no metrics.json)")
    m = artifacts.read_metrics(paths.metrics(source))
    if m.get("method") != st.method or m.get("backbone") != pre.model_hp.backbone:
        raise ConfigError("transfer_from", str(source), f"a structure run of method {st.method} on backbone "
                          f"{pre.model_hp.backbone} (it is {m.get('method')} on {m.get('backbone')})")
    return m["dataset"], [row["round"] for row in m["rounds"]]


def imp_inputs(pre: Pretrained, imp_dir: Path, st: StructureHparams,
               transfer_from: Path | None = None) -> tuple[dict, dict[int, dict], list[int]]:
    """The IMP run's settings, its rounds by number, and the rounds to structure; checked before any write.

    With ``transfer_from`` the rounds are the source run's: the IMP run then gives only the rewind point and, where
    it has the round, the IMP accuracy to compare with.
    """
    settings, imp_metrics = check_source("imp", imp_dir, pre)
    imp_settings = settings.get("imp")
    if not isinstance(imp_settings, dict) or not isinstance(imp_settings.get("rewind"), str):
        raise ConfigError("imp", str(imp_dir), "a finished `ticketbench imp` run (its hparams.json records no "
                          "imp.rewind)")
    pre.rewind_state(imp_settings["rewind"])  # read and its hash checked before the folder is claimed
    imp_rounds = {row["round"]: row for row in imp_metrics.get("rounds", [])}
    have, where = sorted(imp_rounds), f"the IMP run in {imp_dir}"
    if transfer_from is not None:
        have, where = sorted(transfer_source(pre, transfer_from, st)[1]), f"the transfer source {transfer_from}"
    wanted = int_list(st.rounds) or have
    if any(r not in have for r in wanted):
        raise ConfigError("structure.rounds", st.rounds, f"rounds of {where}: {have}")
    if transfer_from is None:
        for r in wanted:
            load_mask_from(round_dir(imp_dir, r) / "mask.safetensors", pre)
    return imp_settings, imp_rounds, wanted


def run_structure(pre: Pretrained, imp_dir: str | Path, st: StructureHparams, train_hp: TrainHparams, out, *,
                  device: torch.device, progress: bool = True, config: dict | None = None,
                  transfer_from: str | Path | None = None) -> dict:
    method = STRUCTURE_METHODS.get(st.method)
    imp_dir = Path(imp_dir)
    transfer_from = Path(transfer_from) if transfer_from else None
    t_run = time.perf_counter()
    imp_settings, imp_rounds, wanted = imp_inputs(pre, imp_dir, st, transfer_from)
    transfer = {}
    if transfer_from is not None:
        transfer = {"transfer_from": str(transfer_from),
                    "transfer_source_dataset": transfer_source(pre, transfer_from, st)[0]}
    rewind = pre.rewind_state(imp_settings["rewind"])
    start_epoch = pre.resume_epoch(imp_settings["rewind"]) if imp_settings.get("lr_resume") else 0
    info = pre.splits.info
    example = torch.zeros(1, info.in_chans, info.image_size, info.image_size)
    dense = pre.model_from(pre.best_state)
    groups = unit_groups(pre.new_model(), example)
    rows = []
    for r in wanted:
        t0 = time.perf_counter()
        if transfer_from is not None:
            mask, bn_mask, facts = transferred_round(pre, transfer_from, r, st, example, groups)
        else:
            mask, bn_mask, facts = structure_round(pre, imp_dir, r, st, example, groups)
        if st.scratch:
            # Scratch-E/B (Liu et al.): the ticket's slimmed architecture trained from a fresh init; it is its own
            # fast model, so there is no masked twin to compare outputs with.
            fast, res, more = scratch_round(pre, rewind, mask, bn_mask, r, st, train_hp, dense, example, groups,
                                            Path(out), device=device, progress=progress)
            facts.update(more, policy_coverage=coverage(dense, mask))
        else:
            # The random tickets of the ablation draw one init per round, as imp's random_reinit baseline does.
            start = pre.new_model(seed=pre.seed + 10_000 + r).state_dict() if st.reinit else rewind
            model, res = train_round(pre, start, Mask({**mask, **bn_mask}), train_hp, device=device,
                                     start_epoch=start_epoch, progress=progress, desc=f"{st.method} round {r}")
            model.load_state_dict(res.best_state)
            model.cpu().eval()
            facts["policy_coverage"] = coverage(model, mask)
            fast = method.fast_model(pre, model, dense, mask, facts, st, example, groups, Path(out), r, device)
        if not facts["structure_removed"]:
            print(f"{st.method} round {r}: no structure removed: {facts['no_structure_reason']}")
        if not st.scratch:
            with torch.inference_mode():
                x = next(iter(make_loader(pre.splits.test, 64, shuffle=False)))[0]
                facts["max_abs_diff"] = float((fast(x) - model(x)).abs().max())
        facts.update(_latency(pre, dense, fast, st, device))
        imp_row = imp_rounds.get(r, {})  # a transferred round this dataset's IMP run lacks has no IMP figures
        facts.update(round=r, imp_test_acc=imp_row.get("test_acc"), imp_sparsity=imp_row.get("sparsity"),
                     structure=st.method, criterion=st.criterion if method.criterion and not transfer else None,
                     **transfer)
        rows.append(write_round(round_dir(out, r), method=st.method, pre=pre, mask=mask, res=res,
                                config=config or {}, t0=t0, **facts))
    return write_summary(out, rows, method=st.method, pre=pre, t0=t_run, imp_run=str(imp_dir), **transfer)


def _doc(name: str) -> str:
    """A method's help line: the first line of its class's docstring, and where an outside package's lives."""
    spec = STRUCTURE_METHODS.spec(name)
    try:
        lines = (type(STRUCTURE_METHODS.get(name)).__doc__ or "").strip().splitlines()
    except ConfigError as e:
        return f"(from {spec.target}, which cannot be imported: {e.allowed})"
    text = lines[0] if lines else ""
    return f"{text} (from {spec.target})" if spec.outside else text


@STAGES.register("structure")
class Structure(MethodStage):
    name = "structure"
    help = "IMP-Refill, Refill+ or IMP-Regroup tickets from an IMP run, retrained and timed against dense"
    hparams = (StructureHparams,)
    retrains = True
    pretrain_help = "the pretrain run the IMP run started from"

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--imp", required=True, help="a finished `ticketbench imp` run (Structure-LTH's own: "
                  "`--variant structure_lth`); with --transfer-from, this dataset's run: it gives the rewind point "
                  "and the IMP accuracy to compare with, not the masks")
        add_input(parser, "--transfer-from", default=None,
                  help="a finished `structure` run of the same method and backbone on another dataset: each round's "
                  "structured conv masks are taken from it (Structure-LTH Table A2); layers whose shape differs and "
                  "the classifier stay dense")
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = "methods (--method):\n" + "\n".join(f"  {n}: {_doc(n)}" for n in STRUCTURE_METHODS.names())

    @classmethod
    def settings(cls, pre, hp, args, config):
        # Recorded only when given, so the settings of every other structure run stay as they were.
        return {"imp": str(args.imp), **({"transfer_from": str(args.transfer_from)} if args.transfer_from else {})}

    @classmethod
    def check_inputs(cls, pre, hp, args):
        imp_inputs(pre, Path(args.imp), hp["structure"], Path(args.transfer_from) if args.transfer_from else None)

    @classmethod
    def execute(cls, run: Run) -> int:
        m = run_structure(run.pre, run.args.imp, run.hp["structure"], run.hp["train"], run.args.out, device=run.device,
                          progress=run.progress, config=run.resolved, transfer_from=run.args.transfer_from)
        for row in m["rounds"]:
            imp_acc = "n/a" if row["imp_test_acc"] is None else f"{row['imp_test_acc']:.4f}"
            saving = saving_text(row)
            print(f"round {row['round']}: sparsity {row['sparsity']:.4f} test_acc {row['test_acc']:.4f} "
                  f"(IMP {imp_acc}) {saving}")
        return 0


@STAGES.register("timing")
class Timing(MethodStage):
    claims_out = False  # writes timing.json only
    name = "timing"
    # Timed as each structure run times its tickets: batch, calls, interval width and time limit are the structure
    # block's timing_* settings, stated once.
    hparams = (StructureHparams,)
    help = "end-to-end and per-layer latency of dense, IMP-masked, refill-slimmed and regroup block-sparse models"

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--imp", required=True, help="the IMP run the structured tickets came from")
        add_input(parser, "--refill", help="a `ticketbench structure --method refill` run")
        add_input(parser, "--regroup", help="a `ticketbench structure --method regroup` run")
        parser.add_argument("--round", type=int, default=0, help="IMP round to time (default: the last one)")

    @classmethod
    def check_inputs(cls, pre, hp, args):
        for flag in ("imp", "refill", "regroup"):
            if getattr(args, flag):
                check_source(flag, getattr(args, flag), pre)
        rounds = [x["round"] for x in artifacts.read_metrics(paths.metrics(args.imp)).get("rounds", [])]
        if args.round and args.round not in rounds:
            raise ConfigError("round", args.round, f"a round of {args.imp}: {rounds}")

    @classmethod
    def execute(cls, run: Run) -> int:
        from ...timing import per_layer
        from .slim import load_slim

        args, pre, device, st = run.args, run.pre, run.device, run.hp["structure"]
        r = args.round or artifacts.read_metrics(paths.metrics(args.imp))["rounds"][-1]["round"]
        info = pre.splits.info
        x = torch.randn(st.timing_batch, info.in_chans, info.image_size, info.image_size,
                        generator=torch.Generator().manual_seed(0)).to(device)
        dense, x = for_inference(pre.model_from(pre.best_state).to(device), x)
        masked = pre.model_from(pre.best_state)
        Mask.load(round_dir(args.imp, r) / "mask.safetensors")[0].apply_(masked)
        variants = {"imp_masked": masked.to(device)}
        # Only a model that computes less can save time; the masked IMP ticket computes every zero.
        changed = {"imp_masked": False}
        why_not = {"imp_masked": "an unstructured mask: the masked model computes every zero"}
        if args.refill:
            variants["refill_slim"] = load_slim(round_dir(args.refill, r) / "slim.safetensors")[0].to(device)
            refilled = artifacts.read_metrics(round_dir(args.refill, r) / "metrics.json")
            changed["refill_slim"] = refilled.get("structure_removed", True)
            why_not["refill_slim"] = refilled.get("no_structure_reason")
        rule = None
        if args.regroup:
            from .blocksparse import layer_choices, to_blocksparse
            from .regroup import blocks_from_json

            st = _blocksparse_rule(args.regroup)
            rule = {"blocksparse_max_work": st.blocksparse_max_work, "blocksparse_min_macs": st.blocksparse_min_macs}
            state, _ = artifacts.load_checkpoint(round_dir(args.regroup, r) / "model.safetensors")
            blocks = blocks_from_json(artifacts.read_metrics(round_dir(args.regroup, r) / "metrics.json")["regroup"]["blocks"])
            fast = to_blocksparse(pre.model_from(state).eval(), {n: b for n, b in blocks.items() if b},
                                  max_work=st.blocksparse_max_work, min_macs=st.blocksparse_min_macs)
            rule["blocksparse_layers"] = sorted(n for n, c in layer_choices(fast).items() if c["blocksparse"])
            variants["regroup_blocksparse"] = fast.to(device)
            changed["regroup_blocksparse"] = bool(rule["blocksparse_layers"])
            why_not["regroup_blocksparse"] = "no regrouped layer passes the block-sparse rule, so every layer runs dense"
        variants = {k: for_inference(v, x)[0] for k, v in variants.items()}
        end_to_end = {}
        for name, model in variants.items():
            t = _against_dense(dense, model, x, st.timing_rounds, device, st.timing_width, st.timing_max_seconds)
            end_to_end[name] = {"dense_ms": t.base_s * 1e3, "ms": t.test_s * 1e3, "latency_fraction": t.ratio,
                                **saving_metrics(t), "structure_removed": changed[name],
                                "no_structure_reason": None if changed[name] else why_not.get(name)}
        layers = per_layer(dense, {k: v for k, v in variants.items() if k != "imp_masked"}, x, rounds=st.timing_rounds)
        out = Path(args.out)
        storage.write_json(out / "timing.json", {"round": r, "batch": st.timing_batch, "device": str(device),
                                            "threads": torch.get_num_threads(), "end_to_end": end_to_end,
                                            "layers": layers, **({"regroup_rule": rule} if rule else {})})
        for name, e in end_to_end.items():
            saving = saving_text(e)
            print(f"{name}: {e['ms']:.1f} ms vs dense {e['dense_ms']:.1f} ms, {saving}")
        return 0


def _blocksparse_rule(regroup_dir: str | Path) -> StructureHparams:
    """The block-sparse thresholds the regroup run was made with, so the timed model is the one it built.

    Runs from before the thresholds were settings lack them and get the defaults.
    """
    settings = {}
    if paths.hparams(regroup_dir).is_file():
        settings = storage.read_json(paths.hparams(regroup_dir)).get("settings", {}).get("structure", {}) or {}
    keys = ("blocksparse_max_work", "blocksparse_min_macs")
    return StructureHparams.from_dict({k: settings[k] for k in keys if k in settings})
