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
MATCH_TOL = 0.01  # "within 1% of dense": the PrAC paper's extreme-sparsity rule (Fig. 4)


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


def _dense_acc(res: Results, cell: Cell) -> dict[int, float]:
    """The dense model's test accuracy per seed: the reference of every "within x of dense" rule."""
    return {s: m["test_acc"] for s, m in res.by_seed("pretrain", cell).items() if m.get("test_acc") is not None}


def _round_by_seed(res: Results, phase: str, cell: Cell, variant: str, r: int) -> dict[int, dict]:
    out = {}
    for seed, m in res.by_seed(phase, cell, variant).items():
        row = next((x for x in m.get("rounds", []) if x["round"] == r), None)
        if row is not None:
            out[seed] = row
    return out


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
        return Finding("no sparsity where the PrAC ticket matches full-data IMP", FAILS, test, len(seeds))
    est = stats.seed_interval(s["seed_savings"])
    lo, hi = PRAC_SAVING_RANGE
    where = "inside" if lo <= est.mean <= hi else ("below" if est.mean < lo else "above")
    return Finding(f"{est.fmt(unit='%')} saved up to sparsity {_pct(s['matched_sparsity'])} ({where} the paper's range)",
                    decide(est, lo), test, len(seeds))


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


def _last_common_round(res: Results, cell: Cell, variants: list[str]) -> int | None:
    rounds = [set(res.per_round("imp", cell, v)) for v in variants]
    common = set.intersection(*rounds) if rounds else set()
    return max(common) if common else None


def _vs_baseline(baseline: str, name: str):
    def judge(res: Results, cell: Cell) -> Finding | None:
        r = _last_common_round(res, cell, ["full", baseline])
        if r is None:
            return None
        imp, base = _round_by_seed(res, "imp", cell, "full", r), _round_by_seed(res, "imp", cell, baseline, r)
        est = paired_vs(imp, base)
        if est is None:
            return Finding(NO_BITS, INCONCLUSIVE, "paired bootstrap over test examples", len(imp))
        sparsity = next(iter(imp.values()))["sparsity"]
        return Finding(f"at sparsity {_pct(sparsity)}: IMP minus {name} {_diff(est)}", decide(est, 0.0),
                        "IMP ticket minus baseline at the grid's highest sparsity, paired by seed and test "
                        "example; holds when the interval is above 0", est.n)
    return judge


for _baseline, _name in (("random_prune", "random pruning"), ("random_reinit", "random re-initialisation")):
    claim("PrAC", f"At high sparsity, IMP tickets are more accurate than {_name}",
          "LTH's basic finding; PrAC Fig. 4 separates them beyond 48.80% sparsity (CIFAR-10)", "imp")(
        _vs_baseline(_baseline, _name))


def _extreme_sparsity(rows: list[dict], dense: float, tol: float = MATCH_TOL) -> float:
    """The highest sparsity whose accuracy is within ``tol`` of dense (0 when none is); the PrAC paper's statistic
    with the default 1%."""
    ok = [r["sparsity"] for r in rows if r.get("test_acc") is not None and r["test_acc"] >= dense - tol]
    return max(ok, default=0.0)


def _extremes(res: Results, cell: Cell, phase: str, variant: str) -> dict[int, float]:
    dense = _dense_acc(res, cell)
    return {s: _extreme_sparsity(m.get("rounds", []), dense[s])
            for s, m in res.by_seed(phase, cell, variant).items() if s in dense}


TICKET_KINDS = {"PrAC tickets": ("prac", ""), "IMP tickets": ("imp", "full")}
RANDOM_KINDS = {"random pruning": ("imp", "random_prune"), "random tickets": ("imp", "random_reinit")}


def _extreme_vs_random(ticket: str):
    def judge(res: Results, cell: Cell) -> Finding | None:
        ext = {k: _extremes(res, cell, *pv) for k, pv in {ticket: TICKET_KINDS[ticket], **RANDOM_KINDS}.items()}
        ext = {k: v for k, v in ext.items() if v}
        randoms = [k for k in RANDOM_KINDS if k in ext]
        if ticket not in ext or not randoms:
            return None
        seeds = sorted(set.intersection(*(set(ext[k]) for k in [ticket, *randoms])))
        # Against the stronger baseline on each seed: the ticket must beat both.
        gaps = [ext[ticket][s] - max(ext[b][s] for b in randoms) for s in seeds]
        est = stats.seed_interval(gaps)
        if est is None:
            return None
        phase, variant = TICKET_KINDS[ticket]
        top = max(r["sparsity"] for rows in res.per_round(phase, cell, variant).values() for r in rows)
        capped = all(ext[ticket][s] >= top for s in seeds)
        shown = ", ".join(f"{k} {stats.value_cell(ext[k].values(), unit='%')}" for k in ext)
        note = (f"; the tickets match up to the grid's highest sparsity ({_pct(top)}), so the statistic is capped "
                f"there" if capped else "")
        verdict = decide(est, 0.0)
        if capped and verdict != HOLDS:
            verdict = INCONCLUSIVE  # a higher sparsity might separate them: the grid cannot tell
        return Finding(f"{shown}; gap {est.fmt(unit=' points')}{note}", verdict,
                        "per seed: the ticket's extreme sparsity minus the stronger baseline's (highest sparsity "
                        "within 1% of that seed's dense); t interval over seeds; holds when above 0", est.n)
    return judge


for _kind in TICKET_KINDS:
    claim("PrAC", f"{_kind} stay within 1% of dense to a higher sparsity than both random baselines",
          "extreme matching sparsity: PrAC tickets 79.03% vs 48.80% for random pruning and random tickets (CIFAR-10)",
          "imp")(_extreme_vs_random(_kind))


# --- Structure-LTH (Chen et al., ICML 2022) -----------------------------------------------------------------------

def _rounds_vs_dense(res: Results, cell: Cell, method: str, level: float = stats.LEVEL
                     ) -> list[tuple[float, Estimate]]:
    """(sparsity, method ticket minus dense, paired) for every round of a structure method."""
    dense = res.by_seed("pretrain", cell)
    out = []
    for r in res.per_round("structure", cell, method):
        rows = _round_by_seed(res, "structure", cell, method, r)
        est = paired_vs(rows, dense, level)
        if est is not None:
            out.append((sum(x["sparsity"] for x in rows.values()) / len(rows), est))
    return out


@claim("Structure-LTH", "IMP-Refill finds channel-wise winning tickets: accuracy at least the dense model's",
       "channel-wise extreme sparsity 0-67% (CIFAR)", "structure")
def _refill_wins(res: Results, cell: Cell) -> Finding | None:
    if not res.get("structure", cell, "refill"):
        return None
    # The best of k rounds is picked after looking: each round's interval is widened to 1 - 0.05/k (Bonferroni) so
    # that picking does not make "holds" likelier than 5% by chance.
    k = len(res.per_round("structure", cell, "refill"))
    rows = _rounds_vs_dense(res, cell, "refill", level=1 - (1 - stats.LEVEL) / k)
    if not rows:
        return Finding(NO_BITS, INCONCLUSIVE, "paired bootstrap over test examples", 0)
    sparsity, best = max(rows, key=lambda t: t[1].mean)
    # The extreme sparsity at which refill is not significantly below dense, for comparison with the paper's.
    extreme = max((s for s, e in rows if decide(e, 0.0) != FAILS), default=None)
    return Finding(f"best round (sparsity {_pct(sparsity)}): refill minus dense {_diff(best)}; highest sparsity not "
                    f"significantly below dense: {_pct(extreme) if extreme is not None else 'none'}",
                    decide(best, 0.0),
                    f"refill ticket minus dense per round, paired (test examples and seeds), each interval at "
                    f"{1 - (1 - stats.LEVEL) / k:.1%} for the {k} rounds (Bonferroni); holds when the best round's "
                    f"interval is above 0, fails when even it is below", best.n)


@claim("Structure-LTH", "Group-wise (regroup) tickets stay winning to higher sparsity than channel-wise ones",
       "extreme group-wise sparsity 56-80% vs channel-wise 0-67% (CIFAR)", "structure")
def _regroup_vs_refill(res: Results, cell: Cell) -> Finding | None:
    dense = _dense_acc(res, cell)
    rg, rf = res.by_seed("structure", cell, "regroup"), res.by_seed("structure", cell, "refill")
    seeds = sorted(set(rg) & set(rf) & set(dense))
    if not seeds:
        return None

    def ext(m, s):  # winning = at least dense accuracy, the Structure-LTH definition
        return _extreme_sparsity(m.get("rounds", []), dense[s], tol=0.0)

    a, b = [ext(rg[s], s) for s in seeds], [ext(rf[s], s) for s in seeds]
    est = stats.paired_seed_difference(a, b)
    return Finding(f"regroup {stats.value_cell(a, unit='%')} vs refill {stats.value_cell(b, unit='%')}; gap "
                    f"{est.fmt(unit=' points')}",
                    decide(est, 0.0), "per seed: highest sparsity with accuracy at least dense, regroup minus "
                    "refill; t interval over seeds; holds when above 0", est.n)


@claim("Structure-LTH", "Group-wise (regroup) tickets run faster than the dense model",
       "up to 64.93% inference time saved (GPU)", "structure")
def _regroup_time(res: Results, cell: Cell) -> Finding | None:
    last = [m["rounds"][-1] for m in res.get("structure", cell, "regroup")
            if m.get("rounds") and m["rounds"][-1].get("time_saving") is not None]
    est = stats.seed_interval(r["time_saving"] for r in last)
    if est is None:
        return None
    sparsity = statistics.fmean(r["sparsity"] for r in last)
    return Finding(f"{est.fmt(unit='%')} saved at sparsity {_pct(sparsity)} (last round)", decide(est, 0.0),
                    "time saving of the last round's regrouped model over dense, t interval over seeds; holds when "
                    "above 0", est.n)


# --- Lottery Jackpots (Zhang et al., TPAMI 2023) ------------------------------------------------------------------

@claim("Lottery-Jackpots", "A 90%-sparse jackpot matches the dense model with no weight or bias changed "
       "(BatchNorm statistics are re-estimated during the search, as in the paper's code)",
       "VGGNet-19 on CIFAR-10 at 10% of the weights reaches dense accuracy", "jackpot")
def _jackpot_matches(res: Results, cell: Cell) -> Finding | None:
    jp, dense = res.by_seed("jackpot", cell, "magnitude-s0.9"), res.by_seed("pretrain", cell)
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
                    "paired by seed and test example; holds when the interval is above minus "
                    "the dense model's seed standard deviation (0 with one seed) and no weight changed", est.n)


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
