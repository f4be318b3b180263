"""The two studies behind the jackpot paper's claims: mask overlap across criteria, and search cost.

Neither table of the paper is public (see docs/jackpot.md), so both metrics are ours and stated:
overlap = share of the jackpot's kept weights that a criterion also keeps, at the jackpot's own
per-layer budgets; cost factor = epochs random init needed to reach its final accuracy divided by
the epochs magnitude init needed to reach that same accuracy (validation accuracy throughout).
"""

from __future__ import annotations

import argparse
import csv
import io as _io
from pathlib import Path


from ... import storage, paths
from ...artifacts import read_metrics
from ...criteria import CRITERIA, mask_with_budget
from ...data import make_loader
from ...errors import ConfigError
from ...masks import Mask
from ...stage import STAGES, Stage, add_input
from ..common import MethodStage, Run, check_source, load_mask_from, round_dir

STUDY_CRITERIA = ("magnitude", "random", "snip", "grasp", "synflow")


def overlap(jackpot: Mask, other: Mask) -> tuple[float, float, dict[str, float]]:
    """(share of the jackpot's kept weights also kept by ``other``, IoU, per-layer share), on common layers."""
    names = [n for n in jackpot if n in other]
    if not names:
        raise ConfigError("mask", "no common layer", "masks over the same backbone")
    inter = {n: int((jackpot[n] & other[n]).sum()) for n in names}
    kept = sum(int(jackpot[n].sum()) for n in names)
    union = sum(int((jackpot[n] | other[n]).sum()) for n in names)
    per_layer = {n: inter[n] / max(1, int(jackpot[n].sum())) for n in names}
    return sum(inter.values()) / max(1, kept), sum(inter.values()) / max(1, union), per_layer


def closest_imp_round(imp_dir: str | Path, sparsity: float) -> tuple[Mask, float, int]:
    rounds = read_metrics(paths.metrics(imp_dir))["rounds"]
    best = min(rounds, key=lambda r: abs(r["sparsity"] - sparsity))
    mask, _ = Mask.load(round_dir(imp_dir, best["round"]) / "mask.safetensors")
    return mask, best["sparsity"], best["round"]


RANDOM_CRITERION_SEED_OFFSET = 7919


@STAGES.register("jackpot-overlap")
class JackpotOverlap(MethodStage):
    name = "jackpot-overlap"
    help = "overlap of a jackpot mask with magnitude, random, SNIP, GraSP, SynFlow (and IMP) masks"
    claims_out = False  # --out gets overlap.csv, overlap_layers.csv (heatmap-ready) and overlap.json
    pretrain_help = "the pretrain run the jackpot searched on"

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--jackpot", required=True, help="a `ticketbench jackpot` run")
        add_input(parser, "--imp", help="an IMP run: its round closest in sparsity joins the table")
        parser.add_argument("--batches", type=int, default=4, help="training batches of 64 for SNIP/GraSP (default 4)")

    @classmethod
    def adjust(cls, hp, args):
        if args.batches < 1:
            raise ConfigError("batches", args.batches, "a positive number of batches")
        return hp

    @classmethod
    def check_inputs(cls, pre, hp, args):
        # Masks of two different dense networks share no meaning weight by weight: the IMP run and the jackpot must
        # start from the same pretrain run.
        for flag, folder in (("jackpot", args.jackpot), ("imp", args.imp)):
            if folder is not None:
                check_source(flag, folder, pre)
        load_mask_from(paths.mask(args.jackpot), pre)

    @classmethod
    def execute(cls, run: Run) -> int:
        args, pre, device = run.args, run.pre, run.device
        jackpot, meta = Mask.load(paths.mask(args.jackpot))
        kept = {n: int(m.sum()) for n, m in jackpot.items()}
        model = pre.model_from(pre.best_state).to(device)
        batches = []
        for x, y, _ in make_loader(pre.splits.train_eval, 64, shuffle=True, seed=pre.seed):
            batches.append((x.to(device), y.to(device)))
            if len(batches) == args.batches:
                break
        rows, layers = [], {}
        for name in STUDY_CRITERIA:
            # A random-initialised search draws its initial scores from pre.seed: a random criterion drawn from the
            # same seed would be that initial mask, not an independent random mask.
            seed = pre.seed + RANDOM_CRITERION_SEED_OFFSET if name == "random" else pre.seed
            scores = CRITERIA.get(name)(model, list(jackpot), batches, seed=seed)
            share, iou, per_layer = overlap(jackpot, mask_with_budget(scores, kept))
            rows.append({"criterion": name, "sparsity": jackpot.sparsity(), "overlap": share, "iou": iou})
            layers[name] = per_layer
        if args.imp:
            imp_mask, sp, r = closest_imp_round(args.imp, jackpot.sparsity())
            share, iou, per_layer = overlap(jackpot, imp_mask)
            rows.append({"criterion": f"imp (round {r})", "sparsity": sp, "overlap": share, "iou": iou})
            layers["imp"] = per_layer
        out = Path(args.out)
        storage.write_text(out / "overlap.csv", _csv(rows, ["criterion", "sparsity", "overlap", "iou"]))
        names = list(jackpot)
        storage.write_text(out / "overlap_layers.csv", _csv(
            [{"layer": n, **{c: layers[c].get(n) for c in layers}} for n in names], ["layer", *layers]))
        storage.write_json(out / "overlap.json", {"jackpot": str(args.jackpot), "jackpot_sparsity": jackpot.sparsity(),
                                             "init": meta.get("config", {}).get("jackpot", {}).get("init"),
                                             "metric": "share of the jackpot's kept weights also kept",
                                             "rows": rows, "layers": layers})
        for row in rows:
            print(f"{row['criterion']:>16}: overlap {row['overlap']:.4f}  IoU {row['iou']:.4f}  (sparsity {row['sparsity']:.4f})")
        return 0


def _csv(rows: list[dict], fields: list[str]) -> str:
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def search_cost(magnitude_epochs: list[dict], random_epochs: list[dict]) -> dict:
    """Epochs each init needs to reach random init's final (best validation) accuracy, and their ratio."""
    target = max(e["val_acc"] for e in random_epochs)
    random_needs = next(e["epoch"] for e in random_epochs if e["val_acc"] >= target)
    magnitude_needs = next((e["epoch"] for e in magnitude_epochs if e["val_acc"] >= target), None)
    return {"target_val_acc": target, "random_epochs": random_needs, "magnitude_epochs": magnitude_needs,
            "factor": random_needs / magnitude_needs if magnitude_needs else None,
            "magnitude_curve": [e["val_acc"] for e in magnitude_epochs],
            "random_curve": [e["val_acc"] for e in random_epochs]}


@STAGES.register("jackpot-cost")
class JackpotCost(Stage):
    name = "jackpot-cost"
    help = "search-cost reduction of magnitude init over random init (the paper's '>= 3x cheaper' claim)"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_input(parser, "--magnitude", required=True, help="a jackpot run with --init magnitude")
        add_input(parser, "--random", required=True, help="the same search with --init random")
        parser.add_argument("--out", required=True, metavar="FILE", help="JSON file to write")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        mag, rnd = read_metrics(paths.metrics(args.magnitude)), read_metrics(paths.metrics(args.random))
        if (mag.get("init"), rnd.get("init")) != ("magnitude", "random"):
            raise ConfigError("magnitude/random", (mag.get("init"), rnd.get("init")),
                              "a magnitude-init run and a random-init run, in that order")
        res = search_cost(mag["epochs"], rnd["epochs"]) | {"sparsity": mag["sparsity"], "backbone": mag["backbone"],
                                                           "dataset": mag["dataset"]}
        storage.write_json(args.out, res)
        factor = "never reached" if res["factor"] is None else f"{res['factor']:.2f}x"
        print(f"random init reaches val {res['target_val_acc']:.4f} at epoch {res['random_epochs']}; magnitude init at "
              f"epoch {res['magnitude_epochs']}: cost reduction {factor}")
        return 0
