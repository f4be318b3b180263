"""``ticketbench prac`` and ``prac-savings``: PrAC-IMP, IMP whose rounds train on the PrAC set of the round before.

Round 0 is the dense run (early-stopped, :func:`round_zero`); after every round the next one trains on
P = CET ∪ CEP (:mod:`.critical_sets`) for proportionally fewer iterations and stops early
(:mod:`.early_stop`). The savings over full-data IMP are computed in :mod:`.savings`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ... import storage, paths
from ...artifacts import read_metrics
from ...errors import ConfigError
from ...hparams import Hparams, hp
from ...masks import Mask, policy_names
from ...runtime import layer_generator
from ...stage import STAGES, Stage, add_input
from ...train import predict
from .critical_sets import critical_for_pruning, critical_for_training
from .early_stop import MaskConvergence, can_stop_early
from ..common import MethodStage, Pretrained, Run, round_dir, train_round
from .savings import savings
from ..imp import FullData, ImpHparams, check_inputs, run_imp

@dataclass(frozen=True)
class PracHparams(Hparams):
    """PrAC-set discovery and PrAC-IMP."""

    section: ClassVar[str] = "prac"
    forget_threshold: int = hp(0, "E_F: a sample is training-critical with more than E_F forgetting events")
    eps: float = hp(0.07, "early stop: mask distance below which the mask counts as converged (paper: 0.07)")
    patience: int = hp(5, "early stop: consecutive converged epochs needed (paper: 5)")
    no_early_stop: bool = hp(False, "train every round for its full length")
    no_cep: bool = hp(False, "ablation: PrAC set = CET only")
    random_subset: bool = hp(False, "ablation: each round trains on a random subset of the training set, drawn anew "
                                    "with exactly the size its PrAC set has (the paper: random subsets of the same "
                                    "size do worse)")
    skip_ticket_eval: bool = hp(False, "do not retrain each round's ticket on the full data")

    def check(self) -> None:
        self._require("forget_threshold", self.forget_threshold >= 0, "a non-negative integer")
        self._require("eps", 0 < self.eps < 1, "a fraction in (0, 1)")
        self._require("patience", self.patience > 0, "a positive integer")


class PracSelector(FullData):
    """Finds each round's PrAC set from the previous round and records it beside the round's results."""

    def __init__(self, pre: Pretrained, prac: PracHparams, out: str | Path, device: torch.device,
                 dynamics: torch.Tensor | None = None):
        self.pre, self.prac, self.out, self.device = pre, prac, Path(out), device
        self.early_stop = not prac.no_early_stop
        dense = pre.model_from(pre.best_state).to(device)
        self.dense_preds, self.all_ids = predict(dense, pre.splits.train_eval, device)
        # Round 0's forgetting events give the first set (no CEP yet).
        cet = critical_for_training(pre.dynamics() if dynamics is None else dynamics, prac.forget_threshold)
        self.prac_sets: dict[int, torch.Tensor] = {}  # the PrAC set of each round, trained on or not
        self.sets = {1: self._train_on(1, cet)}
        self.first = {"cet_size": len(cet), "prac_size": len(cet)}

    def ids(self, r: int) -> torch.Tensor:
        return self.sets[r]

    def _train_on(self, r: int, prac_set: torch.Tensor) -> torch.Tensor:
        """What round ``r`` trains on: its PrAC set, or for the ablation a random draw of the same size.

        The draw is keyed by the seed and the round only, so it repeats across runs, and each round draws afresh from
        the whole training set. CET and CEP are still found after every round, on the model trained on the draw:
        they give the size the PrAC set would have had in that round.
        """
        self.prac_sets[r] = prac_set
        if not self.prac.random_subset:
            return prac_set
        gen = layer_generator(self.pre.seed * 1000 + r, "prac.random_subset")
        pick = torch.randperm(len(self.all_ids), generator=gen)
        return self.all_ids[pick[: len(prac_set)]].sort().values

    def after_round(self, r: int, model, res) -> dict[str, Any]:
        model.load_state_dict(res.best_state)
        preds, ids = predict(model, self.pre.splits.train_eval, self.device)
        cep = critical_for_pruning(self.dense_preds, preds, ids)
        cet = critical_for_training(res.correctness, self.prac.forget_threshold)
        # A copy: safetensors refuses to save two names (cet, next) that share memory.
        nxt = cet.clone() if self.prac.no_cep else torch.unique(torch.cat([cet, cep]))
        self.sets[r + 1] = self._train_on(r + 1, nxt)
        trained_on = self.sets[r]
        # ``next`` stays the PrAC set found after this round; under the ablation ``prac_set`` is the one this round's
        # draw stood in for.
        replaced = {"prac_set": self.prac_sets[r].clone()} if self.prac.random_subset else {}
        storage.save_tensors(round_dir(self.out, r) / "prac_set.safetensors",
                        {"trained_on": trained_on, "cet": cet, "cep": cep, "next": nxt, **replaced},
                        {"kind": "prac_set", "round": r, "dataset": self.pre.data_hp.dataset,
                         "base_size": self.pre.splits.train.base_size, "source_hash": self.pre.source_hash})
        overlap = len(set(cep.tolist()) & set(cet.tolist())) / len(cep) if len(cep) else None
        n = len(self.all_ids)
        return {"prac_trained_size": len(trained_on), "prac_trained_fraction": len(trained_on) / n,
                "cep_size": len(cep), "cet_size": len(cet), "prac_size": len(nxt), "prac_fraction": len(nxt) / n,
                "overlap_rate": overlap, "mask_distances": [h.get("mask_distance") for h in res.history],
                **({"random_subset": True} if self.prac.random_subset else {})}


def round_zero(pre: Pretrained, imp: ImpHparams, prac: PracHparams, train_hp, *, device: torch.device,
               progress: bool = True) -> tuple[Pretrained, torch.Tensor, dict[str, Any]]:
    """PrAC-IMP's round 0: the dense run, early-stopped like every later round (paper Alg. 1).

    It replays the pretrain run from its initial weights with the same seed, so up to the stop it is that run;
    its rewind snapshots are the pretrain run's. Returns the pretrain run as round 0 left it (best and last
    weights, iterations), its per-sample record and facts for metrics.json. When the early stop is off, or cannot
    fire within the schedule, round 0 is the pretrain run itself and nothing is trained.
    """
    if prac.no_early_stop or not can_stop_early(train_hp.epochs, prac.patience):
        why = "early stop off" if prac.no_early_stop else (
            f"the early stop cannot fire in {train_hp.epochs} epochs (patience {prac.patience}): round 0 is the "
            "pretrain run")
        return pre, pre.dynamics(), {"round0": {"trained": False, "why": why,
                                                "iterations": pre.metrics["train_iterations"]}}
    names, _ = policy_names(pre.new_model(), imp.policy, "imp.policy", pre.model_hp.backbone)
    dense = Mask({n: torch.ones_like(pre.final_state[n], dtype=torch.bool) for n in names})
    stop = MaskConvergence(dense, weights_of=names, rate=imp.rate, eps=prac.eps, patience=prac.patience)
    _, res = train_round(pre, pre.rewind_state("init"), dense, train_hp, device=device, callbacks=[stop],
                         progress=progress, desc="prac round 0")
    epochs = len(res.history)
    rewind_at = pre.resume_epoch(imp.rewind)
    if rewind_at > epochs:
        raise ConfigError("imp.rewind", imp.rewind, f"a point inside PrAC's early-stopped round 0 ({epochs} epochs); "
                          "rewind earlier or pass --no-early-stop")
    metrics = {**pre.metrics, "train_iterations": res.iterations, "test_acc": res.test_acc,
               "val_acc": res.best_val_acc}
    round0 = dataclasses.replace(pre, best_state=res.best_state, final_state=res.final_state, metrics=metrics)
    return round0, res.correctness, {"round0": {
        "trained": True, "iterations": res.iterations, "epochs_run": epochs, "stopped_early": res.stopped_early,
        "test_acc": res.test_acc, "val_acc": res.best_val_acc, "best_epoch": res.best_epoch,
        "mask_distances": [h.get("mask_distance") for h in res.history]}}


@STAGES.register("prac")
class Prac(MethodStage):
    name = "prac"
    help = "PrAC-IMP: IMP whose rounds train on pruning-aware critical sets, with early stop and ticket evaluation"
    hparams = (ImpHparams, PracHparams)
    retrains = True

    @classmethod
    def adjust(cls, hp, args):
        if hp["imp"].variant != "full":
            raise ConfigError("imp.variant", hp["imp"].variant, "full for PrAC-IMP (run the others with `ticketbench imp`)")
        return hp

    @classmethod
    def check_inputs(cls, pre, hp, args):
        check_inputs(pre, hp["imp"], train_hp=hp["train"])
        if not hp["prac"].no_early_stop and can_stop_early(pre.train_hp.epochs, hp["prac"].patience):
            pre.rewind_state("init")  # round 0 replays the pretrain run from its initial weights

    @classmethod
    def execute(cls, run: Run) -> int:
        imp, prac, train_hp = run.hp["imp"], run.hp["prac"], run.hp["train"]
        # Round 0 is the dense run: it replays the pretrain run's own recipe, whatever recipe the later rounds retrain with.
        dense_pre, dynamics, round0 = round_zero(run.pre, imp, prac, run.pre.train_hp, device=run.device,
                                                 progress=run.progress)
        selector = PracSelector(dense_pre, prac, run.args.out, run.device, dynamics=dynamics)

        def early(mask, *, weights_of, rate):
            return MaskConvergence(mask, weights_of=weights_of, rate=rate, eps=prac.eps, patience=prac.patience)

        m = run_imp(dense_pre, imp, train_hp, run.args.out, device=run.device, selector=selector, method="prac",
                    evaluate_tickets=not prac.skip_ticket_eval, early_stop=early, progress=run.progress,
                    config=run.resolved, summary=round0)
        for row in m["rounds"]:
            print(f"round {row['round']}: sparsity {row['sparsity']:.4f} ticket test_acc {row['test_acc']:.4f} "
                  f"PrAC {row['prac_size']} ({row['prac_fraction']:.1%}) CEP {row['cep_size']} CET {row['cet_size']} "
                  f"iterations {row['train_iterations']}")
        return 0


def load_rounds(run: str | Path) -> list[dict]:
    return read_metrics(paths.metrics(run))["rounds"]


@STAGES.register("prac-savings")
class PracSavings(Stage):
    name = "prac-savings"
    help = "compare PrAC-IMP with full-data IMP: highest matching sparsity and training iterations saved"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--full", nargs="+", required=True, help="full-data IMP runs (one per seed)")
        add_input(parser, "--prac", nargs="+", required=True, help="PrAC-IMP runs (one per seed)")
        parser.add_argument("--tolerance", type=float, default=0.01,
                            help="accuracy tolerance (fraction) when there are fewer than two seeds (default: 0.01)")
        parser.add_argument("--out", required=True, metavar="FILE", help="JSON file to write")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        if not 0 <= args.tolerance < 1:
            raise ConfigError("tolerance", args.tolerance, "a fraction in [0, 1)")
        res = savings([load_rounds(d) for d in args.full], [load_rounds(d) for d in args.prac], args.tolerance)
        storage.write_json(args.out, res)
        for row in res["rows"]:
            print(f"sparsity {row['sparsity']:.4f}: full {row['full_acc']:.4f} prac {row['prac_acc']:.4f} "
                  f"({'within' if row['within'] else 'outside'} {row['tolerance']:.4f}); iterations to find: full "
                  f"{row['full_find_iterations']:.0f} prac {row['prac_find_iterations']:.0f}")
        saving = "none matched" if res["saving"] is None else f"{res['saving']:.2%} at sparsity {res['matched_sparsity']:.4f}"
        print(f"saving: {saving}")
        return 0
