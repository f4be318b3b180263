"""Structure-LTH (Chen et al., ICML 2022): its tables (config/paper_tables/structure_lth.yaml), its claims rows and
its headline claims, on our runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from ...runs import folder as run_folder
from .. import stats
from ..grid import (NO_STRUCTURE, NOISY, ONE_SEED_TIMING, TIMING_INTERVAL, saving_cell, saving_estimate,
                    saving_marks, timed_rows)
from ..matching import (AT_LEAST_DENSE, CAPPED, Extreme, MeanExtreme, capped_verdict, mean_extreme, round_by_seed,
                        seed_extremes)
from ..needs import DATASETS, Need, PaperOnly, PaperTable, Reading, Run, Unmapped, cell_named, cell_of
from ..render import pct
from ..results import Cell, Results, mean
from ..stats import INCONCLUSIVE, Decision, Estimate, value_cell
from .framework import (NO_BITS, Finding, SeedMean, by_cell, capped_note, cells_or_unmapped, claim, claim_row,
                        diff_text, every_column, extremes_cell, label, lr_text, mean_sparsities, nearest_round,
                        no_cell, paired_vs, round_mean_gaps, runs_of, seed_mean, table, unmapped_row)

PAPER = "Structure-LTH"
SLTH_CIFAR_NETWORKS = ("WRN-32-2", "RN-18", "MBNet-v1", "VGG-16")
SLTH_CELLS = {"CIFAR": [(d, n) for d in ("CIFAR-10", "CIFAR-100") for n in SLTH_CIFAR_NETWORKS],
              "Tiny-ImageNet": [("Tiny-ImageNet", "RN-50")], "ImageNet": [("ImageNet", "RN-50")]}
ALL_SLTH = [p for pairs in SLTH_CELLS.values() for p in pairs]
RN18_C10 = ("CIFAR-10", "RN-18")  # the cell of §5's ablations and of the A2 comparisons


def _shared(values, scale: float = 100.0) -> float | SeedMean | None:
    """A number every seed shares (a sparsity set by the pruning schedule) stays plain; if seeds differ, the
    interval shows it."""
    vals = [v for v in values if v is not None]
    if vals and max(vals) - min(vals) < 1e-9:
        return scale * vals[0]
    return seed_mean(vals, scale)


class _Saving(SeedMean):
    """A time saving over seeds, written as the grid's time-saving cells are: one seed with its run's timing
    interval, and noisy timings or seeds whose model lost no structure said after the number."""

    interval: tuple[float, float] | None
    marks: str

    def __format__(self, spec: str) -> str:
        if self.interval is None:
            return super().__format__(spec) + self.marks
        lo, hi = self.interval
        return f"{format(float(self), spec)} [{format(lo, spec)}, {format(hi, spec)}] {ONE_SEED_TIMING}" + self.marks


def _saving(rows: list[dict], scale: float = 100.0) -> SeedMean | str | None:
    """Our time saving from one round's seeds: ``no structure removed`` where no seed's model lost any."""
    counted, none = timed_rows(rows)
    if not counted:
        return NO_STRUCTURE if none else None
    est = saving_estimate(counted)
    one = est.test == TIMING_INTERVAL
    # The seed interval of one seed is none; its timing interval is shown beside it, never as a seed interval.
    obj = _Saving(Estimate(est.mean, None, None, 1, est.test) if one else est, scale)
    obj.interval = (est.lo * scale, est.hi * scale) if one else None
    obj.marks = saving_marks(counted, none)
    return obj if one or obj.marks else SeedMean(est, scale)


# --- the time saving at the extreme sparsity: claims rows and a headline claim read this one -----------------------

@dataclass(frozen=True)
class AtExtreme:
    """A structure run at its extreme sparsity by Structure-LTH's rule on the seed-mean curve: the rows there of the
    seeds the curve rests on (none where no round reaches dense accuracy), split into those whose time saving counts
    and those whose ticket lost no FLOPs or parameters (a time saving there would not be one)."""

    found: MeanExtreme
    rows: list[dict]
    counted: list[dict]
    none: list[dict]

    @property
    def extreme(self) -> Extreme:
        return self.found.extreme

    @property
    def saving(self) -> float | None:
        return mean(r["time_saving"] for r in self.counted)

    @property
    def removed_nothing(self) -> bool:
        return not self.counted and bool(self.none)

    @property
    def noisy(self) -> bool:
        return any(r.get("timing_verdict") == NOISY for r in self.counted)

    @property
    def marks(self) -> str:
        return saving_marks(self.counted, self.none)


def at_extreme(res: Results, cell: Cell, method: str) -> AtExtreme | None:
    """None when the run is missing, has no dense model or its seeds share no round."""
    found = mean_extreme(res, cell, "structure", method, AT_LEAST_DENSE)
    if found is None:
        return None
    point = found.extreme.point
    by_seed = round_by_seed(res, "structure", cell, method, point.round) if point else {}
    rows = [by_seed[s] for s in found.seeds if s in by_seed]
    return AtExtreme(found, rows, *timed_rows(rows))


# --- Table 1: the recipe; Table A2: transfer; Tables A3-A7: rounds -----------------------------------------------

def _slth_1_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    run: Need = (Run("imp", cell, "structure_lth"),) if cell else no_cell(t, row)
    return {**{c: run for c in t.value_columns},
            "model_size": PaperOnly("a property of the network definition, not of a run (tests/test_models.py "
                                    "checks our networks' sizes)")}


@table("slth_1", needs=_slth_1_needs)
def _slth_recipe(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    """Structure-LTH's recipe as its own IMP run of the cell used it."""
    runs = runs_of(needs["batch_size"])
    h = runs[0].hparams(res) if runs else None
    if not h or "train" not in h:
        return {}
    tr = h["train"]
    return {"batch_size": tr["batch_size"], "weight_decay": f"{tr['weight_decay']:g}", "learning_rate": lr_text(tr),
            "optimizer": f"SGD momentum {tr['momentum']:g}" + (", Nesterov" if tr.get("nesterov") else "")}


# Table A2's network is ResNet-50 in the caption and ResNet-18 in the text; we read the caption's (Deviations:
# slth-a2-network). Its rows are read at our round whose remaining weight is nearest the paper's, within this many
# points: under half the smallest step between the paper's rows (5.2 points), so two rows never share a round.
TRANSFER_NETWORK = "ResNet-50"
TRANSFER_TOLERANCE = 2.5
TRANSFER_METHODS = {"IMP-Refill": "refill", "IMP-Regroup": "regroup"}


@every_column
def _transfer_needs(t: PaperTable, row: dict) -> Need:
    cell = cell_named(t.fixed["dataset"], TRANSFER_NETWORK)
    source = DATASETS.get(t.fixed["source_dataset"])
    method = TRANSFER_METHODS.get(row["method"])
    if cell is None or source is None or method is None:
        return Unmapped(f"{row['method']} from {t.fixed['source_dataset']}: no structure method or dataset of "
                        f"ticketbench stands for it")
    return Reading((Run("structure", cell, run_folder("structure", "{method}-transfer-{dataset}", method=method, dataset=source), sparsity=100 - float(row["remaining"])),),
                   "slth-a2-network")


@table("slth_a2", needs=_transfer_needs)
def _transfer(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    """The transferred tickets' accuracy and time saving at our round nearest the row's remaining weight."""
    runs = runs_of(needs["transfer_acc"])
    per_round = runs[0].per_round(res) if runs else {}
    near = nearest_round(mean_sparsities(per_round), 100 - float(row["remaining"]), tol=TRANSFER_TOLERANCE)
    if near is None:
        return {}
    seeds = per_round[near["round"]]
    return {"transfer_acc": seed_mean((x["test_acc"] for x in seeds), runs=seeds),
            "time_saving": _saving(seeds)}


def _vs_random_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return unmapped_row(t, row)
    method = "refill" if t.id == "slth_a3" else "regroup"
    ours_run = (Run("structure", cell, method),)
    return {"remaining": ours_run, "acc_ours": ours_run, "acc_random": (Run("structure", cell, _reinit(method)),)}


def _round_cells(row: dict, res: Results, needs: dict[str, Need], is_remaining) -> dict:
    """Each column at the paper row's round: the share of weights left (shared by the seeds) or our accuracy."""
    out = {}
    for col, need in needs.items():
        runs = runs_of(need)
        seeds = runs[0].per_round(res).get(int(row["round"])) if runs else None
        if not seeds:
            continue
        if is_remaining(col):
            out[col] = _shared(1 - x["sparsity"] for x in seeds)
        else:
            out[col] = seed_mean((x["test_acc"] for x in seeds), runs=seeds)
    return out


@table("slth_a3", "slth_a4", needs=_vs_random_needs)
def _structure_vs_random(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return _round_cells(row, res, needs, lambda col: col == "remaining")


def _rounds_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return unmapped_row(t, row)
    # Beside the structured tickets, Structure-LTH's own IMP run they come from, as the paper's tables put them.
    runs = {"imp": Run("imp", cell, "structure_lth"), "refill": Run("structure", cell, "refill"),
            "regroup": Run("structure", cell, "regroup")}
    return {c: (runs[c.split("_")[0]],) for c in t.value_columns}


@table("slth_a5", "slth_a6", "slth_a7", needs=_rounds_needs)
def _structure_rounds(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return _round_cells(row, res, needs, lambda col: col.endswith("_remaining"))


# --- claims rows -------------------------------------------------------------------------------------------------

def _structure_cells(pairs: list[tuple[str, str]], methods: tuple[str, ...]) -> Need:
    """The structure runs of ``methods`` on each (dataset, network), with the dense run the rule compares to."""
    named = [(f"{d} {n}", cell_named(d, n)) for d, n in pairs]
    return cells_or_unmapped(named, lambda cell: [Run("pretrain", cell),
                                                  *(Run("structure", cell, m) for m in methods)])


def _at_extremes(res: Results, runs: tuple[Run, ...]):
    """Each structure run of a claim with its rows at its extreme sparsity."""
    for r in runs:
        if r.phase == "structure" and (at := at_extreme(res, r.cell, r.folder)) is not None:
            yield r, at


def _best_savings(res: Results, runs: tuple[Run, ...]) -> dict[str, tuple[AtExtreme, str]]:
    """Per dataset, the largest time saving at an extreme sparsity over the structure runs listed, and where."""
    best: dict[str, tuple[AtExtreme, str]] = {}
    for r, at in _at_extremes(res, runs):
        if at.saving is not None and (r.cell[0] not in best or at.saving > best[r.cell[0]][0].saving):
            best[r.cell[0]] = (at, f"{r.cell[1]} {r.folder}")
    return best


@claim_row("slth_claims", "Abstract headline", lambda row: _structure_cells(ALL_SLTH, ("refill", "regroup")))
def _headline(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    return "; ".join(f"{d}: up to {pct(at.saving)}{at.marks} at {pct(at.extreme.sparsity)}"
                     f"{' (capped)' if at.extreme.capped else ''} ({where})"
                     for d, (at, where) in _best_savings(res, runs).items()) or None


@claim_row("slth_claims", "Contribution summary", lambda row: _structure_cells(ALL_SLTH, ("refill", "regroup")))
def _summary(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    timed = [at for _, at in _at_extremes(res, runs)]
    found = [at for at in timed if at.saving is not None]
    if not found:
        return None
    savings, sparsities = [at.saving for at in found], [at.extreme.sparsity for at in found]
    noisy = sum(at.noisy for at in found)
    empty = sum(at.removed_nothing for at in timed)
    return (f"{pct(min(savings))}-{pct(max(savings))} time savings at {pct(min(sparsities))}-"
            f"{pct(max(sparsities))} sparsity ({len(found)} runs at their extreme sparsity"
            + (f"; timing noisy in {noisy}" if noisy else "")
            + (f"; {empty} more with {NO_STRUCTURE}" if empty else "") + ")")


def _per_method(res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = [f"{r.folder}: extreme sparsity {at.extreme.describe()}" +
             (f", {pct(at.saving)}{at.marks} time saving" if at.saving is not None else
              f", {NO_STRUCTURE}" if at.removed_nothing else "") for r, at in _at_extremes(res, runs)]
    return f"{label(runs[0].cell, runs)}: " + "; ".join(parts) if parts else None


claim_row("slth_claims", "Tiny RN-50",
          lambda row: _structure_cells([("Tiny-ImageNet", "RN-50")], ("refill", "regroup")))(
    lambda row, res, runs: _per_method(res, runs))
claim_row("slth_claims", "ImageNet RN-50",
          lambda row: _structure_cells([("ImageNet", "RN-50")], ("refill", "refill_plus", "regroup")))(
    lambda row, res, runs: _per_method(res, runs))


def _named_structure(methods: tuple[str, ...]) -> Callable[[dict], Need]:
    return lambda row: _structure_cells([(d, n) for d in row.get("datasets") or [] for n in row.get("networks") or []],
                                        methods)


def _extremes(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Extreme sparsities with Structure-LTH's 'at least dense accuracy' rule."""
    parts = []
    for cell, found in by_cell(runs).items():
        methods = {f: ("structure", f) for p, f in found if p == "structure"}
        shown = extremes_cell(res, cell, methods, AT_LEAST_DENSE)
        if shown:
            parts.append(f"{label(cell, runs)}: {shown}")
    return "; ".join(parts) or None


claim_row("slth_claims", "CIFAR extreme channel-wise", _named_structure(("refill", "refill_plus")))(_extremes)
claim_row("slth_claims", "CIFAR extreme group-wise", _named_structure(("regroup",)))(_extremes)


@claim_row("slth_claims", "Group-wise time savings at undamaged accuracy", _named_structure(("regroup", "refill")))
def _group_savings(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r, at in _at_extremes(res, runs):
        if at.extreme.point is None:
            parts.append(f"{label(r.cell, runs)} {r.folder}: no round at dense accuracy")
            continue
        saving = saving_cell(at.rows, unit="%", missing="-")
        parts.append(f"{label(r.cell, runs)} {r.folder}: {saving} at sparsity {at.extreme.describe()}")
    return "; ".join(parts) or None


@claim_row("slth_claims", "Layer-wise speedup",
           lambda row: cells_or_unmapped([("CIFAR-10 VGG-16", cell_named("CIFAR-10", "VGG-16"))],
                                         lambda cell: [Run("structure", cell, "timing", "timing.json")]))
def _layer_speedup(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """The largest per-layer speedup over dense of each seed's timing, and the layer it is on."""
    best = []
    for data in runs[0].get(res):
        top = max(((v, row_["layer"], k[: -len("_speedup")]) for row_ in data.get("layers") or []
                   for k, v in row_.items() if k.endswith("_speedup") and v is not None), default=None)
        if top:
            best.append(top)
    if not best:
        return None
    where = sorted({f"{layer} ({model})" for _, layer, model in best})
    return f"up to {value_cell([b[0] for b in best], 1, 2, 'x')} per seed, on {', '.join(where)}"


@claim_row("slth_claims", "FLOPs (VGG-16 C10",
           lambda row: _structure_cells([("CIFAR-10", "VGG-16")], ("refill", "refill_plus", "regroup")))
def _flops(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """The FLOPs of slimmed tickets as a share of dense, at the round nearest the sparsity the paper states."""
    nums = row.get("numbers") or {}
    parts = []
    for r in runs:
        if r.phase != "structure":
            continue
        target = nums.get(f"{r.folder}_sparsity")
        per_round = r.per_round(res)
        near = nearest_round(mean_sparsities(per_round), float(target), tol=100) if target is not None else None
        if near is None:
            continue
        seeds = per_round[near["round"]]
        flops = [x.get("flops_fraction") for x in seeds]
        shown = (f"{value_cell(flops, unit='%')} of dense FLOPs" if any(f is not None for f in flops)
                 else "no FLOPs count (block-sparse tickets are timed, not counted)")
        parts.append(f"{r.folder} at {pct(near['sparsity'])}: {shown}")
    return "; ".join(parts) or None


def _rn18_c10(methods: tuple[str, ...]) -> Callable[[dict], Need]:
    # The appendix's comparisons with other pruners are on RN-18 CIFAR-10, the network of Tables A3 and A4.
    return lambda row: _structure_cells([RN18_C10], methods)


def _acc_near(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Our tickets' accuracy at the round nearest the sparsity the comparison is made at (the other pruner's
    number is the paper's: it is not run here)."""
    target = float(row["numbers"]["sparsity"])
    parts = []
    for r in runs:
        if r.phase != "structure":
            continue
        per_round = r.per_round(res)
        near = nearest_round(mean_sparsities(per_round), target, tol=100)
        if near is not None:
            seeds = per_round[near["round"]]
            parts.append(f"{r.folder} {value_cell((x['test_acc'] for x in seeds), unit='%')} at "
                         f"{pct(near['sparsity'])}")
    return f"{label(runs[0].cell, runs)}: " + "; ".join(parts) + " (the other pruner is not run)" if parts else None


claim_row("slth_claims", "vs ABC pruner", _rn18_c10(("refill",)))(_acc_near)
claim_row("slth_claims", "vs SCOP", _rn18_c10(("refill", "regroup")))(_acc_near)


def _seed_means(res: Results, cell: Cell, folder: str, rounds: set[int]) -> list[float]:
    """Each seed's test accuracy of a structure run, averaged over ``rounds``."""
    out = []
    for m in res.get("structure", cell, folder):
        accs = [x["test_acc"] for x in m.get("rounds", []) if x["round"] in rounds]
        if accs:
            out.append(statistics.fmean(accs))
    return out


def _common_rounds(res: Results, cell: Cell, folders: list[str]) -> set[int]:
    """The rounds every seed of every listed structure run that ran has: a mean over them compares like with like."""
    found = [set(x["round"] for x in m.get("rounds", [])) for f in folders for m in res.get("structure", cell, f)]
    return set.intersection(*found) if found else set()


def _ranked(res: Results, cell: Cell, runs: dict[str, str]) -> list[tuple[str, list[float]]]:
    """(label, per-seed means over the rounds all of them ran) of the runs that ran, best mean first."""
    ran = {name: f for name, f in runs.items() if res.seeds("structure", cell, f)}
    rounds = _common_rounds(res, cell, list(ran.values()))
    means = [(name, _seed_means(res, cell, f, rounds)) for name, f in ran.items()]
    return sorted(((name, m) for name, m in means if m), key=lambda lm: -statistics.fmean(lm[1]))


# §5's rewind points, in percent of training: 5% is the recipe's own rewind point (epoch 8 of 160, the paper's),
# the others Structure-LTH's IMP run rewound there (experiments.structure_ablations <method>-rw<p>).
SLTH_REWINDS = (5, 10, 20, 50, 100)
REWIND_METHODS = ("refill", "regroup")


def _rewound(method: str, percent: int) -> str:
    return method if percent == 5 else run_folder("structure", "{method}-rw{percent}", method=method, percent=percent)


def _reinit(method: str) -> str:
    return run_folder("structure", "{method}-reinit", method=method)
REINIT_BEYOND = 0.30  # "all beat random re-init beyond 30% sparsity"


@claim_row("slth_claims", "Rewinding ablation",
           lambda row: cells_or_unmapped([(" ".join(RN18_C10), cell_named(*RN18_C10))], lambda cell: [
               Run("structure", cell, f) for m in REWIND_METHODS
               for f in (*(_rewound(m, p) for p in SLTH_REWINDS), _reinit(m))]))
def _rewind_points(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Per method, each rewind point's tickets (mean accuracy over the rounds all points ran), best first, and each
    minus the random re-initialisation of the same round on the rounds beyond 30% sparsity."""
    cell = runs[0].cell
    parts = []
    for m in REWIND_METHODS:
        points = {f"{p}%": _rewound(m, p) for p in SLTH_REWINDS}
        ranked = _ranked(res, cell, points)
        if not ranked:
            continue
        text = ", ".join(f"{name} {value_cell(means, unit='%')}" for name, means in ranked)
        reinit = res.by_seed("structure", cell, _reinit(m))
        gaps = [(name, round_mean_gaps(res.by_seed("structure", cell, points[name]), reinit,
                                       lambda x: x["sparsity"] > REINIT_BEYOND)) for name, _ in ranked]
        shown = ", ".join(f"{name} {value_cell(g, unit=' points')}" for name, g in gaps if g)
        parts.append(f"{m}: best {ranked[0][0]}; {text} (test accuracy, mean over rounds)" +
                     (f"; minus random re-init beyond {REINIT_BEYOND:.0%} sparsity: {shown}" if shown else ""))
    return f"{label(cell, runs)}: " + "; ".join(parts) if parts else None


# §5's mask sources of regrouped tickets, as the claim names them; IMP's are the recipe's own regroup run, the others
# the regrouped rounds of an IMP variant that follows Structure-LTH's IMP (experiments.structure_ablations).
MASK_SOURCES = {"IMP": "regroup", **{name: run_folder("structure", "{method}-from-{source_variant}", method="regroup",
                                                     source_variant=variant)
                                    for name, variant in (("OMP", "omp"), ("RP", "random_prune"), ("SNIP", "snip"),
                                                          ("GraSP", "grasp"), ("SynFlow", "synflow"), ("ADMM", "admm"))}}


@claim_row("slth_claims", "Mask-source ablation",
           lambda row: cells_or_unmapped([(" ".join(RN18_C10), cell_named(*RN18_C10))],
                                         lambda cell: [Run("structure", cell, f) for f in MASK_SOURCES.values()]))
def _mask_sources(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Regrouped tickets of each mask source, best first by accuracy over the rounds all sources ran."""
    ranked = _ranked(res, runs[0].cell, MASK_SOURCES)
    if not ranked:
        return None
    text = ", ".join(f"{name} {value_cell(means, unit='%')}" for name, means in ranked)
    return f"{label(runs[0].cell, runs)}: regrouped tickets by mask source, best first: {text} (test accuracy, " \
           f"mean over rounds)"


# --- headline claims ---------------------------------------------------------------------------------------------

@claim(PAPER, "IMP-Refill finds channel-wise winning tickets: accuracy at least the dense model's",
       "channel-wise extreme sparsity 0-67% (CIFAR)", "structure")
def _refill_wins(res: Results, cell: Cell) -> Finding | None:
    if not res.get("structure", cell, "refill"):
        return None
    # The round is picked after looking at the data: its interval is widened to 1 - 0.05/k (Bonferroni over the k
    # rounds) so that picking does not make a verdict likelier than 5% by chance.
    k = len(res.per_round("structure", cell, "refill"))
    level = 1 - (1 - stats.level()) / k
    test = (f"Structure-LTH's rule ({AT_LEAST_DENSE.name}): refill ticket minus dense at the refill ticket's extreme "
            f"sparsity on the seed-mean curve (the highest sparsity where the rule holds; where it holds nowhere, the "
            f"round closest to dense), paired by seed and test example, each interval at {level:.1%} for the {k} "
            f"rounds (Bonferroni); holds when above 0, fails when below")
    found = mean_extreme(res, cell, "structure", "refill", AT_LEAST_DENSE)
    if found is None:
        return Finding("no seed with both a refill run and its dense model, or no round common to the seeds",
                       INCONCLUSIVE, test, 0)
    ext = found.extreme
    point = ext.point or found.closest()
    rows = round_by_seed(res, "structure", cell, "refill", point.round)
    est = paired_vs({s: rows[s] for s in found.seeds if s in rows}, res.dense_of("structure", cell, "refill"), level)
    if est is None:
        return Finding(NO_BITS, INCONCLUSIVE, test, len(found.seeds))
    per_seed = seed_extremes(res, cell, "structure", "refill", AT_LEAST_DENSE)
    where = (f"at the seed-mean extreme sparsity {ext.describe()}" if ext.point is not None else
             f"no round reaches dense accuracy on average; at the closest (sparsity {pct(point.sparsity)})")
    note = f"; {CAPPED}" if ext.capped else ""
    d = Decision(est, 0.0, level=level)
    return Finding(f"extreme channel-wise sparsity per seed "
                   f"{value_cell((e.sparsity for e in per_seed.values()), unit='%')}; {where}: refill minus "
                   f"dense {diff_text(est)}{note}",
                   capped_verdict(d.verdict, claimant_capped=ext.capped), test, est.n, d)


@claim(PAPER, "Group-wise (regroup) tickets stay winning to higher sparsity than channel-wise ones",
       "extreme group-wise sparsity 56-80% vs channel-wise 0-67% (CIFAR)", "structure")
def _regroup_vs_refill(res: Results, cell: Cell) -> Finding | None:
    rg = seed_extremes(res, cell, "structure", "regroup", AT_LEAST_DENSE)
    rf = seed_extremes(res, cell, "structure", "refill", AT_LEAST_DENSE)
    seeds = sorted(set(rg) & set(rf))
    if not seeds:
        return None
    a, b = [rg[s].sparsity for s in seeds], [rf[s].sparsity for s in seeds]
    est = stats.paired_seed_difference(a, b, bounds=stats.GAP)
    notes = capped_note("regroup", rg, seeds) + capped_note("refill", rf, seeds)
    d = Decision(est, 0.0)
    verdict = capped_verdict(d.verdict, claimant_capped=any(rg[s].capped for s in seeds),
                             baseline_capped=any(rf[s].capped for s in seeds))
    return Finding(f"regroup {value_cell(a, unit='%')} vs refill {value_cell(b, unit='%')}; gap "
                   f"{est.fmt(unit=' points')}{notes}", verdict,
                   f"per seed: the extreme sparsity by Structure-LTH's rule (the highest sparsity with accuracy "
                   f"{AT_LEAST_DENSE.name}, the seed's own), regroup minus refill; t interval over seeds; holds "
                   f"when above 0", est.n, d)


@claim(PAPER, "Group-wise (regroup) tickets run faster than the dense model",
       "up to 64.93% inference time saved (GPU)", "structure")
def _regroup_time(res: Results, cell: Cell) -> Finding | None:
    runs = res.get("structure", cell, "regroup")
    if not any(r.get("time_saving") is not None for m in runs for r in m.get("rounds", [])):
        return None
    test = (f"time saving over dense of the regroup ticket at its extreme sparsity on the seed-mean curve "
            f"(Structure-LTH's rule: the highest sparsity with accuracy {AT_LEAST_DENSE.name}; the paper times "
            f"tickets at undamaged accuracy), t interval over seeds; holds when above 0")
    at = at_extreme(res, cell, "regroup")
    if at is None:
        return Finding("no dense model for these seeds: the matching rule has no reference", INCONCLUSIVE, test, 0)
    ext = at.extreme
    if ext.point is None:
        return Finding(f"no regroup round reaches dense accuracy on average (up to {pct(ext.top)}): no ticket at "
                       f"undamaged accuracy to time", INCONCLUSIVE, test, len(at.found.seeds))
    if at.removed_nothing:
        # A model that kept every FLOP and parameter cannot save time for a reason of its own: nothing to judge.
        why = "; ".join(sorted({r["no_structure_reason"] for r in at.none if r.get("no_structure_reason")}))
        return Finding(f"{NO_STRUCTURE} at the extreme sparsity {ext.describe()}" + (f": {why}" if why else ""),
                       INCONCLUSIVE, test, len(at.none))
    # Over seeds only: one run's timing interval measures the timer's noise, not the spread a claim is about.
    est = stats.seed_interval(r["time_saving"] for r in at.counted)
    if est is None:
        return Finding(f"round {ext.point.round}, the extreme one, has no time saving recorded", INCONCLUSIVE, test, 0)
    note = f"; {CAPPED}" if ext.capped else ""
    d = Decision(est, 0.0)
    return Finding(f"{saving_cell(at.rows, unit='%')} saved at the extreme sparsity {ext.describe()}{note}",
                   capped_verdict(d.verdict, claimant_capped=ext.capped), test, est.n, d)
