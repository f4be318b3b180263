"""Lottery Jackpots (Zhang et al., TPAMI 2023): its README tables (config/paper_tables/jackpot.yaml), its claims
rows and its headline claims, on our runs."""

from __future__ import annotations

import statistics
from typing import Callable, Iterable

from .. import stats
from ...runs import folder as run_folder
from ..needs import Need, PaperTable, Reading, Run, cell_named, cell_of
from ..results import Cell, Results, overlap_init
from ..stats import FAILS, INCONCLUSIVE, Decision, value_cell
from .framework import (NO_BITS, Finding, SeedMean, cells_or_unmapped, claim, claim_cells, claim_row, diff_text,
                        label, paired_vs, runs_of, seed_mean, table, unmapped_row)

PAPER = "Lottery-Jackpots"
JP_SEARCH_EPOCHS = 30  # the README's "30(S)": the released configs' search length
JP_CIFAR = [(d, n) for n in ("VGGNet-19", "ResNet-32") for d in ("CIFAR-10", "CIFAR-100")]


def _search(cell: Cell, sparsity: float, suffix: str = "") -> Run:
    """A magnitude-initialised search; without a suffix, the recipe's own, which must search 30 epochs."""
    folder = run_folder("jackpot", "{init}-s{sparsity}-{search}" if suffix else "{init}-s{sparsity}", init="magnitude",
                        sparsity=f"{sparsity:g}", search=suffix)
    needs_30 = not suffix or suffix.startswith(("t", "r"))
    return Run("jackpot", cell, folder, settings=(("jackpot", "epochs", JP_SEARCH_EPOCHS),) if needs_30 else ())


# --- the quantities both a claims row and a headline claim are about -----------------------------------------------

def weights_unchanged(searches: Iterable[dict]) -> bool:
    """Whether every seed's search left every weight and bias as the dense model had it."""
    return all(m.get("weights_unchanged") for m in searches)


def criteria_overlaps(data: dict) -> dict[str, float]:
    """One seed's overlap of each pruning criterion's mask with the jackpot's (overlap.csv); the IMP ticket's mask,
    listed beside them, is no pruning criterion."""
    return {x["criterion"]: x["overlap"] for x in data.get("rows", []) if not x["criterion"].startswith("imp")}


NEVER_REACHED = "magnitude init never reached random init's accuracy on some seed"


def search_cost(factors: list[float | None]) -> str:
    """How many times more epochs random init's search needs than magnitude init's (cost-s<sparsity>.json), over
    seeds; a seed where magnitude init never got there has no factor, and the claim cannot hold."""
    return NEVER_REACHED if None in factors else value_cell(factors, 1, 2, "x")


# --- the README's tables -----------------------------------------------------------------------------------------

def _jp_r1_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return unmapped_row(t, row)
    sp = float(row["sparsity"]) / 100
    return {"top1_30s": (_search(cell, sp),), "top1_160s": (_search(cell, sp, "e160"),)}


def _search_acc(runs: tuple[Run, ...], res: Results, key: str = "test_acc") -> SeedMean | None:
    found = runs[0].get(res) if runs else []
    return seed_mean((m.get(key) for m in found), runs=found if key == "test_acc" else None)


@table("jp_r1", needs=_jp_r1_needs)
def _jackpot_readme(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return {col: _search_acc(runs_of(need), res) for col, need in needs.items()}


JP_R2 = {"30ep": "", "60ep": "e60", "30s10t": "t10"}


def _jp_r2_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return unmapped_row(t, row)
    # Every README version reports the same searches: each version's row maps to the same runs.
    return {c: (_search(cell, int(c[1:3]) / 100, JP_R2[c[4:]]),) for c in t.value_columns}


@table("jp_r2", needs=_jp_r2_needs)
def _jackpot_imagenet(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    # After weight tuning the reported accuracy is the tuned model's.
    return {col: _search_acc(runs_of(need), res, "tuned_test_acc" if col.endswith("t") else "test_acc")
            for col, need in needs.items()}


# --- claims rows -------------------------------------------------------------------------------------------------

@claim_row("jp_claims", "VGGNet-19, CIFAR-10: a 10%-weight jackpot",
           lambda row: cells_or_unmapped(claim_cells(row), lambda cell: [Run("pretrain", cell), _search(cell, 0.9)]))
def _jackpot_matches_dense(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    dense, jp = runs[0].by_seed(res), runs[1].by_seed(res)
    seeds = sorted(set(dense) & set(jp))
    if not seeds:
        return None
    gap = value_cell([jp[s]["test_acc"] - dense[s]["test_acc"] for s in seeds], unit=" points")
    return (f"{label(runs[0].cell, runs)}: jackpot minus dense {gap}; weights unchanged: "
            f"{'yes' if weights_unchanged(jp[s] for s in seeds) else 'no'}")


def _jp_cifar(folder: str, file: str) -> Callable[[dict], Need]:
    return lambda row: cells_or_unmapped([(f"{d} {n}", cell_named(d, n)) for d, n in JP_CIFAR],
                                         lambda cell: [Run("jackpot", cell, folder, file)])


@claim_row("jp_claims", "masks from many pruning criteria overlap", _jp_cifar("overlap-random-s0.9", "overlap.csv"))
def _overlaps(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Per cell, each criterion's mean overlap with a random-initialised search's jackpot, highest first."""
    parts = []
    for r in runs:
        per_crit: dict[str, list[float]] = {}
        for data in r.get(res):
            for c, v in criteria_overlaps(data).items():
                per_crit.setdefault(c, []).append(v)
        if per_crit:
            ranked = sorted(per_crit, key=lambda c: -statistics.fmean(per_crit[c]))
            shown = ", ".join(f"{c} {value_cell(per_crit[c], unit='%')}" for c in ranked)
            parts.append(f"{label(r.cell, runs)}: {shown}")
    return "; ".join(parts) or None


@claim_row("jp_claims", "magnitude-initialised mask gives at least", _jp_cifar("", "cost-s0.9.json"))
def _search_cost(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r in runs:
        factors = [d.get("factor") for d in r.get(res)]
        if factors:
            parts.append(f"{label(r.cell, runs)}: {search_cost(factors)}")
    return "; ".join(parts) or None


@claim_row("jp_claims", "ResNet-50, ImageNet, 90% sparsity",
           lambda row: cells_or_unmapped(claim_cells(row), lambda cell: [_search(cell, 0.9, "e10"),
                                                                         _search(cell, 0.9, "e5")]))
def _short_search(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r in runs:
        acc = _search_acc((r,), res)
        if acc is not None:
            parts.append(f"{r.folder.rsplit('-e', 1)[1]} search epochs: {acc:.2f}%")
    return f"{label(runs[0].cell, runs)} at 90%: " + "; ".join(parts) if parts else None


# Our reading of the undefined short restriction: swaps restricted to a rate r < 1 (experiments.jackpot_searches
# <init>-s<sparsity>-r<r>), beside the recipe's rate 1, on the abstract's VGGNet-19 CIFAR-10 cell at 90%.
RESTRICTION_RATES = (0.5, 0.1)
RESTRICTION_CELL = ("CIFAR-10", "VGGNet-19")


def _restriction_runs(row: dict) -> Need:
    need = cells_or_unmapped([(" ".join(RESTRICTION_CELL), cell_named(*RESTRICTION_CELL))], lambda cell: [
        _search(cell, 0.9), *(_search(cell, 0.9, f"r{r:g}") for r in RESTRICTION_RATES)])
    return Reading(need, "jp-short-restriction") if isinstance(need, tuple) else need


def _oscillation(m: dict) -> float | None:
    """Mean absolute change of the validation accuracy from one search epoch to the next."""
    vals = [e["val_acc"] for e in m.get("epochs") or [] if e.get("val_acc") is not None]
    return statistics.fmean(abs(b - a) for a, b in zip(vals, vals[1:])) if len(vals) > 1 else None


@claim_row("jp_claims", "short restriction", _restriction_runs)
def _short_restriction(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Each restriction rate's search: accuracy, the epoch of its best validation accuracy (convergence) and its
    epoch-to-epoch validation swing (oscillation), the claim's two effects."""
    parts = []
    for r in runs:
        found = r.get(res)
        if not found:
            continue
        rate = found[0].get("rate", 1.0)
        parts.append(f"rate {rate:g}: {value_cell((m['test_acc'] for m in found), unit='%')}, best epoch "
                     f"{value_cell((m.get('best_epoch') for m in found), 1, 1)}, validation swing "
                     f"{value_cell((_oscillation(m) for m in found), unit=' points')}")
    return f"{label(runs[0].cell, runs)} at 90%: " + "; ".join(parts) if parts else None


# --- headline claims ---------------------------------------------------------------------------------------------

@claim(PAPER, "A 90%-sparse jackpot matches the dense model with no weight or bias changed "
       "(BatchNorm statistics are re-estimated during the search, as in the paper's code)",
       "VGGNet-19 on CIFAR-10 at 10% of the weights reaches dense accuracy", "jackpot")
def _jackpot_matches(res: Results, cell: Cell) -> Finding | None:
    jp, dense = res.by_seed("jackpot", cell, "magnitude-s0.9"), res.dense_of("jackpot", cell, "magnitude-s0.9")
    if not jp or not dense:
        return None
    est = paired_vs(jp, dense)
    if est is None:
        return Finding(NO_BITS, INCONCLUSIVE, "paired bootstrap over test examples", len(jp))
    dense_acc = [m["test_acc"] for m in dense.values() if m.get("test_acc") is not None]
    sd = statistics.stdev(dense_acc) if len(dense_acc) > 1 else 0.0
    unchanged = weights_unchanged(jp.values())
    d = Decision(est, -sd)
    verdict = d.verdict if unchanged else FAILS
    return Finding(f"jackpot minus dense {diff_text(est)}; dense seed sd {100 * sd:.2f} points; weights unchanged: "
                   f"{unchanged}", verdict,
                   "at the paper's own sparsity (90%); the paper states no numeric matching rule (its full text is "
                   "not public), so ours: jackpot minus dense, paired by seed and test example; holds when the "
                   "interval is above minus the dense model's seed standard deviation (0 with one seed) and no "
                   "weight changed", est.n, d if unchanged else None)


@claim(PAPER, "Of the pruning criteria, magnitude pruning overlaps most with the jackpot mask "
       "(of a random-initialised search: a magnitude-initialised one starts from the magnitude mask)",
       "stated in the abstract (no table public)", "jackpot")
def _overlap(res: Results, cell: Cell) -> Finding | None:
    per_seed = {}
    for _, seed, name, v in res.extras_like("jackpot", "overlap-", cell):
        if overlap_init(name) != "random":
            continue
        rows = criteria_overlaps(v)
        if "magnitude" in rows and len(rows) > 1:
            per_seed.setdefault(seed, rows)
    if not per_seed:
        return None
    mags = [rows["magnitude"] for rows in per_seed.values()]
    others = [max(v for k, v in rows.items() if k != "magnitude") for rows in per_seed.values()]
    est = stats.paired_seed_difference(mags, others, bounds=stats.GAP)
    crit = sorted(next(iter(per_seed.values())))
    shown = ", ".join(f"{c} {value_cell((rows.get(c) for rows in per_seed.values()), unit='%')}" for c in crit)
    d = Decision(est, 0.0)
    return Finding(f"{shown}; magnitude minus the runner-up {est.fmt(unit=' points')}", d.verdict,
                   "per seed: magnitude's overlap minus the best other criterion's; t interval over seeds; holds "
                   "when above 0", est.n, d)


@claim(PAPER, "Magnitude initialisation makes the search at least 3x cheaper than random initialisation",
       ">= 3x lower search cost", "jackpot")
def _cost(res: Results, cell: Cell) -> Finding | None:
    found = [v for _, _, _, v in res.extras_like("jackpot", "cost-s", cell)]
    if not found:
        return None
    test = "epochs random init needs to reach its final validation accuracy over magnitude init's; t interval " \
           "over seeds; holds when above 3"
    factors = [c.get("factor") for c in found]
    if None in factors:
        return Finding(search_cost(factors), FAILS, test, len(found))
    est = stats.seed_interval(factors)
    d = Decision(est, 3.0)
    return Finding(search_cost(factors), d.verdict, test, est.n, d)
