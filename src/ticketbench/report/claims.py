"""Each paper's headline claims, tested as the paper states them, on whatever the grid ran.

A claim is decided on the interval of the quantity it is about (``stats.decide``): ``holds``, ``does not hold``
or ``inconclusive`` when the interval straddles the claim's threshold. Each row names its test and shows the
interval; a verdict resting on one seed says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from ..artifacts import unpack_bits
from . import stats
from .grid import NO_STRUCTURE, saving_cell, timed_rows
from .matching import (AT_LEAST_DENSE, CAPPED, WITHIN_1_OF_DENSE, Extreme, capped_verdict, mean_extreme,
                       round_by_seed, seed_extremes)
from .results import Cell, Results, overlap_init
from .stats import FAILS, HOLDS, INCONCLUSIVE, Estimate, decide


@dataclass(frozen=True)
class Finding:
    measured: str  # the quantity and its interval
    verdict: str  # holds / does not hold / inconclusive
    test: str  # the statistic, its interval and the threshold
    seeds: int


@dataclass(frozen=True)
class Claim:
    paper: str
    text: str
    paper_value: str
    phase: str
    judge: Callable[[Results, Cell], Finding | None]  # None: the grid did not run it for this cell


CLAIMS: list[Claim] = []

# Published PrAC set sizes (% of the training set) per dataset: PrAC paper, Table A2 and section 4.1.
PRAC_SET_RANGE = {"cifar10": (0.3532, 0.3707), "cifar100": (0.6955, 0.7819), "tiny-imagenet": (0.6823, 0.7510)}
PRAC_SAVING_RANGE = (0.6354, 0.9277)  # PrAC paper, section 4.1, across networks and datasets
MATCH_TOL = 0.01  # PrAC's savings rule with one seed, which gives no standard deviation: 1 point


def claim(paper: str, text: str, paper_value: str, phase: str):
    def deco(fn):
        CLAIMS.append(Claim(paper, text, paper_value, phase, fn))
        return fn
    return deco


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _bits(rows: list[dict]) -> list | None:
    """Per-seed test correctness of ``rows``, or None when a row lacks it (results written before it was stored)."""
    if not rows or any(not r.get("test_correct") for r in rows):
        return None
    return [unpack_bits(r["test_correct"]) for r in rows]


def paired_vs(a: dict[int, dict], b: dict[int, dict], level: float = stats.LEVEL) -> Estimate | None:
    """Accuracy of ``a`` minus ``b`` over their common seeds, paired per test example; None without the bits."""
    seeds = sorted(set(a) & set(b))
    xa, xb = _bits([a[s] for s in seeds]), _bits([b[s] for s in seeds])
    if not seeds or xa is None or xb is None:
        return None
    return stats.paired_difference(xa, xb, level)


NO_BITS = "the runs hold no per-example test correctness (written before it was stored): re-run them to decide"


def _diff(est: Estimate) -> str:
    lo, hi = ("-", "-") if est.lo is None else (f"{100 * est.lo:+.2f}", f"{100 * est.hi:+.2f}")
    return f"{100 * est.mean:+.2f} points [{lo}, {hi}]"


# --- PrAC (Zhang et al., ICML 2021) -------------------------------------------------------------------------------

@claim("PrAC", "PrAC-IMP finds matching tickets with far fewer training iterations than full-data IMP",
       "63.54-92.77% of the iterations saved across networks (83.93% ResNet-20, CIFAR-10)", "prac")
def _prac_saving(res: Results, cell: Cell) -> Finding | None:
    s = res.savings(cell)
    if s is None:
        return None
    seeds = range(s["seeds"])
    tol = ("one std of full-data IMP over seeds" if len(seeds) > 1
           else f"{100 * MATCH_TOL:g} point, since one seed gives no std")
    test = (f"saving up to the highest sparsity where PrAC-IMP's mean accuracy is within {tol}; t interval over "
            f"seeds; holds above the paper's lowest saving ({_pct(PRAC_SAVING_RANGE[0])})")
    if s["saving"] is None:
        # The matching rule is a point rule on seed means: with no matching sparsity the saving is undefined, which
        # an interval-free reading must not turn into a decided verdict.
        return Finding("no sparsity where the PrAC ticket matches full-data IMP, so no saving to measure",
                       INCONCLUSIVE, test, len(seeds))
    est = stats.seed_interval(s["seed_savings"])
    lo, hi = PRAC_SAVING_RANGE
    where = "inside" if lo <= est.mean <= hi else ("below" if est.mean < lo else "above")
    note = f"; {CAPPED}" if s["capped"] else ""
    return Finding(f"{est.fmt(unit='%')} saved up to sparsity {_pct(s['matched_sparsity'])} ({where} the paper's "
                   f"range){note}", capped_verdict(decide(est, lo), claimant_capped=s["capped"]), test, len(seeds))


@claim("PrAC", "The PrAC set's share of the training set lies in the paper's range for the dataset",
       "CIFAR-10 35.32-37.07%, CIFAR-100 69.55-78.19%, Tiny-ImageNet 68.23-75.10%", "prac")
def _prac_size(res: Results, cell: Cell) -> Finding | None:
    runs = res.get("prac", cell)
    per_seed = []
    for m in runs:
        fr = [r["prac_trained_fraction"] for r in m.get("rounds", []) if r.get("prac_trained_fraction") is not None]
        if fr:
            per_seed.append(sum(fr) / len(fr))
    est = stats.seed_interval(per_seed)
    if est is None:
        return None
    measured = f"{est.fmt(unit='%')} of the training set, averaged over rounds"
    test = "mean over rounds per seed, t interval over seeds; holds when the interval lies inside the paper's range"
    rng = PRAC_SET_RANGE.get(cell[0])
    if rng is None:
        return Finding(f"{measured}; the papers publish no range for {cell[0]}", INCONCLUSIVE, test, est.n)
    below, above = decide(est, rng[0]), decide(est, rng[1], above=False)
    verdict = (HOLDS if below == HOLDS and above == HOLDS else
               FAILS if below == FAILS or above == FAILS else INCONCLUSIVE)
    return Finding(f"{measured} vs {_pct(rng[0])}-{_pct(rng[1])}", verdict, test, est.n)


def _vs_baseline(baseline: str, name: str):
    def judge(res: Results, cell: Cell) -> Finding | None:
        imp, base = res.by_seed("imp", cell, "full"), res.by_seed("imp", cell, baseline)
        seeds = sorted(set(imp) & set(base))
        if not seeds:
            return None
        test = (f"IMP ticket minus {name} at the IMP ticket's extreme matching sparsity (PrAC's rule: the highest "
                f"sparsity whose seed-mean accuracy is {WITHIN_1_OF_DENSE.name}), paired by seed and test example; "
                f"holds when the interval is above 0")
        found = mean_extreme(res, cell, "imp", "full", WITHIN_1_OF_DENSE, seeds)
        if found is None:
            return Finding("no dense model for these seeds: the matching rule has no reference", INCONCLUSIVE, test,
                           len(seeds))
        ext = found.extreme
        if ext.point is None:
            return Finding(f"IMP tickets are within 1 point of dense at no sparsity the grid ran (up to "
                           f"{_pct(ext.top)}): there is no matching sparsity to compare at", INCONCLUSIVE, test,
                           len(found.seeds))
        r = ext.point.round
        a = round_by_seed(res, "imp", cell, "full", r)
        b = round_by_seed(res, "imp", cell, baseline, r)
        common = [s for s in found.seeds if s in a and s in b]
        a, b = {s: a[s] for s in common}, {s: b[s] for s in common}
        if not a:
            return Finding(f"{name} did not run round {r}, the IMP ticket's extreme matching round", INCONCLUSIVE,
                           test, 0)
        est = paired_vs(a, b)
        if est is None:
            return Finding(NO_BITS, INCONCLUSIVE, test, len(a))
        note = f"; {CAPPED}" if ext.capped else ""
        return Finding(f"at the IMP ticket's extreme matching sparsity {ext.describe()}: IMP minus {name} "
                       f"{_diff(est)}{note}", capped_verdict(decide(est, 0.0), claimant_capped=ext.capped), test,
                       est.n)
    return judge


for _baseline, _name in (("random_prune", "random pruning"), ("random_reinit", "random re-initialisation")):
    claim("PrAC", f"At high sparsity, IMP tickets are more accurate than {_name}",
          "LTH's basic finding; PrAC Fig. 4 separates them beyond 48.80% sparsity (CIFAR-10)", "imp")(
        _vs_baseline(_baseline, _name))


def _capped_note(kind: str, ext: dict[int, Extreme], seeds: list[int]) -> str:
    n = sum(ext[s].capped for s in seeds)
    return f"; {kind} capped on {n} of {len(seeds)} seeds (the rule still holds at the highest sparsity run)" \
        if n else ""


TICKET_KINDS = {"PrAC tickets": ("prac", ""), "IMP tickets": ("imp", "full")}
RANDOM_KINDS = {"random pruning": ("imp", "random_prune"), "random tickets": ("imp", "random_reinit")}


def _extreme_vs_random(ticket: str):
    def judge(res: Results, cell: Cell) -> Finding | None:
        kinds = {ticket: TICKET_KINDS[ticket], **RANDOM_KINDS}
        ext = {k: seed_extremes(res, cell, *pv, WITHIN_1_OF_DENSE) for k, pv in kinds.items()}
        ext = {k: v for k, v in ext.items() if v}
        randoms = [k for k in RANDOM_KINDS if k in ext]
        if ticket not in ext or not randoms:
            return None
        seeds = sorted(set.intersection(*(set(ext[k]) for k in [ticket, *randoms])))
        # Against the stronger baseline on each seed: the ticket must beat both.
        gaps = [ext[ticket][s].sparsity - max(ext[b][s].sparsity for b in randoms) for s in seeds]
        est = stats.seed_interval(gaps)
        if est is None:
            return None
        shown = ", ".join(f"{k} {stats.value_cell((e[s].sparsity for s in seeds), unit='%')}" for k, e in ext.items())
        notes = _capped_note(ticket, ext[ticket], seeds) + "".join(_capped_note(b, ext[b], seeds) for b in randoms)
        # A higher sparsity might separate them (ticket capped) or close the gap (a baseline capped).
        verdict = capped_verdict(decide(est, 0.0), claimant_capped=any(ext[ticket][s].capped for s in seeds),
                                 baseline_capped=any(ext[b][s].capped for b in randoms for s in seeds))
        return Finding(f"{shown}; gap {est.fmt(unit=' points')}{notes}", verdict,
                       f"per seed: the ticket's extreme matching sparsity minus the stronger baseline's (PrAC's rule: "
                       f"the highest sparsity whose accuracy is {WITHIN_1_OF_DENSE.name}, the seed's own); t "
                       f"interval over seeds; holds when above 0", est.n)
    return judge


for _kind in TICKET_KINDS:
    claim("PrAC", f"{_kind} stay within 1% of dense to a higher sparsity than both random baselines",
          "extreme matching sparsity: PrAC tickets 79.03% vs 48.80% for random pruning and random tickets (CIFAR-10)",
          "imp")(_extreme_vs_random(_kind))


# --- Structure-LTH (Chen et al., ICML 2022) -----------------------------------------------------------------------

@claim("Structure-LTH", "IMP-Refill finds channel-wise winning tickets: accuracy at least the dense model's",
       "channel-wise extreme sparsity 0-67% (CIFAR)", "structure")
def _refill_wins(res: Results, cell: Cell) -> Finding | None:
    if not res.get("structure", cell, "refill"):
        return None
    # The round is picked after looking at the data: its interval is widened to 1 - 0.05/k (Bonferroni over the k
    # rounds) so that picking does not make a verdict likelier than 5% by chance.
    k = len(res.per_round("structure", cell, "refill"))
    level = 1 - (1 - stats.LEVEL) / k
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
             f"no round reaches dense accuracy on average; at the closest (sparsity {_pct(point.sparsity)})")
    note = f"; {CAPPED}" if ext.capped else ""
    return Finding(f"extreme channel-wise sparsity per seed "
                   f"{stats.value_cell((e.sparsity for e in per_seed.values()), unit='%')}; {where}: refill minus "
                   f"dense {_diff(est)}{note}",
                   capped_verdict(decide(est, 0.0), claimant_capped=ext.capped), test, est.n)


@claim("Structure-LTH", "Group-wise (regroup) tickets stay winning to higher sparsity than channel-wise ones",
       "extreme group-wise sparsity 56-80% vs channel-wise 0-67% (CIFAR)", "structure")
def _regroup_vs_refill(res: Results, cell: Cell) -> Finding | None:
    rg = seed_extremes(res, cell, "structure", "regroup", AT_LEAST_DENSE)
    rf = seed_extremes(res, cell, "structure", "refill", AT_LEAST_DENSE)
    seeds = sorted(set(rg) & set(rf))
    if not seeds:
        return None
    a, b = [rg[s].sparsity for s in seeds], [rf[s].sparsity for s in seeds]
    est = stats.paired_seed_difference(a, b)
    notes = _capped_note("regroup", rg, seeds) + _capped_note("refill", rf, seeds)
    verdict = capped_verdict(decide(est, 0.0), claimant_capped=any(rg[s].capped for s in seeds),
                             baseline_capped=any(rf[s].capped for s in seeds))
    return Finding(f"regroup {stats.value_cell(a, unit='%')} vs refill {stats.value_cell(b, unit='%')}; gap "
                   f"{est.fmt(unit=' points')}{notes}", verdict,
                   f"per seed: the extreme sparsity by Structure-LTH's rule (the highest sparsity with accuracy "
                   f"{AT_LEAST_DENSE.name}, the seed's own), regroup minus refill; t interval over seeds; holds "
                   f"when above 0", est.n)


@claim("Structure-LTH", "Group-wise (regroup) tickets run faster than the dense model",
       "up to 64.93% inference time saved (GPU)", "structure")
def _regroup_time(res: Results, cell: Cell) -> Finding | None:
    runs = res.get("structure", cell, "regroup")
    if not any(r.get("time_saving") is not None for m in runs for r in m.get("rounds", [])):
        return None
    test = (f"time saving over dense of the regroup ticket at its extreme sparsity on the seed-mean curve "
            f"(Structure-LTH's rule: the highest sparsity with accuracy {AT_LEAST_DENSE.name}; the paper times "
            f"tickets at undamaged accuracy), t interval over seeds; holds when above 0")
    found = mean_extreme(res, cell, "structure", "regroup", AT_LEAST_DENSE)
    if found is None:
        return Finding("no dense model for these seeds: the matching rule has no reference", INCONCLUSIVE, test, 0)
    ext = found.extreme
    if ext.point is None:
        return Finding(f"no regroup round reaches dense accuracy on average (up to {_pct(ext.top)}): no ticket at "
                       f"undamaged accuracy to time", INCONCLUSIVE, test, len(found.seeds))
    by_seed = round_by_seed(res, "structure", cell, "regroup", ext.point.round)
    rows = [by_seed[s] for s in found.seeds if s in by_seed]
    counted, none = timed_rows(rows)
    if not counted and none:
        # A model that kept every FLOP and parameter cannot save time for a reason of its own: nothing to judge.
        why = "; ".join(sorted({r["no_structure_reason"] for r in none if r.get("no_structure_reason")}))
        return Finding(f"{NO_STRUCTURE} at the extreme sparsity {ext.describe()}" + (f": {why}" if why else ""),
                       INCONCLUSIVE, test, len(none))
    # Over seeds only: one run's timing interval measures the timer's noise, not the spread a claim is about.
    est = stats.seed_interval(r["time_saving"] for r in counted)
    if est is None:
        return Finding(f"round {ext.point.round}, the extreme one, has no time saving recorded", INCONCLUSIVE, test, 0)
    note = f"; {CAPPED}" if ext.capped else ""
    return Finding(f"{saving_cell(rows, unit='%')} saved at the extreme sparsity {ext.describe()}{note}",
                   capped_verdict(decide(est, 0.0), claimant_capped=ext.capped), test, est.n)


# --- Lottery Jackpots (Zhang et al., TPAMI 2023) ------------------------------------------------------------------

@claim("Lottery-Jackpots", "A 90%-sparse jackpot matches the dense model with no weight or bias changed "
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
    unchanged = all(m.get("weights_unchanged") for m in jp.values())
    verdict = decide(est, -sd) if unchanged else FAILS
    return Finding(f"jackpot minus dense {_diff(est)}; dense seed sd {100 * sd:.2f} points; weights unchanged: "
                    f"{unchanged}", verdict,
                    "at the paper's own sparsity (90%); the paper states no numeric matching rule (its full text is "
                    "not public), so ours: jackpot minus dense, paired by seed and test example; holds when the "
                    "interval is above minus the dense model's seed standard deviation (0 with one seed) and no "
                    "weight changed", est.n)


@claim("Lottery-Jackpots", "Of the pruning criteria, magnitude pruning overlaps most with the jackpot mask "
       "(of a random-initialised search: a magnitude-initialised one starts from the magnitude mask)",
       "stated in the abstract (no table public)", "jackpot")
def _overlap(res: Results, cell: Cell) -> Finding | None:
    per_seed = {}
    for _, seed, name, v in res.extras_like("jackpot", "overlap-", cell):
        if overlap_init(name) != "random":
            continue
        rows = {r["criterion"]: r["overlap"] for r in v.get("rows", []) if not r["criterion"].startswith("imp")}
        if "magnitude" in rows and len(rows) > 1:
            per_seed.setdefault(seed, rows)
    if not per_seed:
        return None
    mags = [rows["magnitude"] for rows in per_seed.values()]
    others = [max(v for k, v in rows.items() if k != "magnitude") for rows in per_seed.values()]
    est = stats.paired_seed_difference(mags, others)
    crit = sorted(next(iter(per_seed.values())))
    shown = ", ".join(f"{c} {stats.value_cell((rows.get(c) for rows in per_seed.values()), unit='%')}" for c in crit)
    return Finding(f"{shown}; magnitude minus the runner-up {est.fmt(unit=' points')}", decide(est, 0.0),
                    "per seed: magnitude's overlap minus the best other criterion's; t interval over seeds; holds "
                    "when above 0", est.n)


@claim("Lottery-Jackpots", "Magnitude initialisation makes the search at least 3x cheaper than random initialisation",
       ">= 3x lower search cost", "jackpot")
def _cost(res: Results, cell: Cell) -> Finding | None:
    found = [v for _, _, _, v in res.extras_like("jackpot", "cost-s", cell)]
    if not found:
        return None
    test = "epochs random init needs to reach its final validation accuracy over magnitude init's; t interval " \
           "over seeds; holds when above 3"
    factors = [c.get("factor") for c in found]
    if any(f is None for f in factors):
        return Finding("magnitude init never reached random init's accuracy on some seed", FAILS, test, len(found))
    est = stats.seed_interval(factors)
    return Finding(est.fmt(scale=1, unit="x"), decide(est, 3.0), test, est.n)


def evaluate(res: Results) -> list[dict]:
    """One row per claim and grid cell; claims with no run on any cell get a single 'not run' row."""
    out = []
    for c in CLAIMS:
        rows = []
        for cell in res.cells(c.phase):
            f = c.judge(res, cell)
            if f is not None:
                verdict = f.verdict + (" (one seed)" if f.seeds == 1 else "")
                rows.append({"paper": c.paper, "claim": c.text, "paper_value": c.paper_value,
                             "cell": f"{cell[0]} x {cell[1]}", "measured": f.measured, "test": f.test,
                             "seeds": f.seeds, "verdict": verdict})
        out.extend(rows or [{"paper": c.paper, "claim": c.text, "paper_value": c.paper_value, "cell": "-",
                             "measured": "not run", "test": "-", "seeds": 0, "verdict": "not run"}])
    return out
