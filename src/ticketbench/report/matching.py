"""Each paper's matching rule, and the extreme matching sparsity it gives: where the report decides whether a
ticket "matches", so that every comparison uses its own paper's rule at the same point of the curve.

* PrAC, tickets against random baselines: a ticket matches when its accuracy is within 1 point of the dense
  model's; its extreme matching sparsity is the highest sparsity where it does (§1, §4.3: 79.03% for PrAC tickets
  vs 48.80% for random pruning and random tickets, CIFAR-10).
* PrAC, savings: a PrAC ticket matches full-data IMP when its accuracy is within one standard deviation over
  seeds of full-data IMP's at the same sparsity (§4.1); :mod:`ticketbench.methods.prac.savings` applies it.
* Structure-LTH: a winning ticket is at least as accurate as the dense model; its extreme sparsity is the highest
  sparsity where it is (§4).

The extreme is the highest sparsity at which the rule holds, whether or not every lower one holds: the papers read
it off their curves that way. When the rule still holds at the highest sparsity the grid ran, the true extreme lies
beyond the grid: the statistic is capped, and every row built on it says so.

Two readings, each where a claim needs it. Per seed (a seed's rounds against that seed's dense model) when the
extreme sparsity is itself the quantity, so that its spread over seeds is its interval. On the seed-mean curve
when two methods are compared at one sparsity, paired by seed and test example, which needs a single round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Iterable

from .render import pct
from .results import Cell, Results
from .stats import FAILS, HOLDS, INCONCLUSIVE

# A mean over seeds of accuracies that tie differs from the reference in its last bits; a tie must count as one.
EPS = 1e-9


@dataclass(frozen=True)
class Rule:
    paper: str
    name: str  # as the report states it
    tolerance: float  # how far below the reference an accuracy may be and still match (a fraction)
    reference: str = "dense"

    def holds(self, acc: float, reference: float) -> bool:
        return acc >= reference - self.tolerance - EPS


WITHIN_1_OF_DENSE = Rule("PrAC", "within 1 point of the dense model's test accuracy", 0.01)
AT_LEAST_DENSE = Rule("Structure-LTH", "at least the dense model's test accuracy", 0.0)
# Stated here for the report's list of rules; its tolerance depends on the seeds, so prac_savings applies it.
WITHIN_STD_OF_IMP = Rule("PrAC", "within one standard deviation over seeds of full-data IMP's test accuracy at the "
                                 "same sparsity (1 point with one seed)", 0.01, "full-data IMP")
RULES = (WITHIN_1_OF_DENSE, WITHIN_STD_OF_IMP, AT_LEAST_DENSE)

CAPPED = "capped: the rule still holds at the highest sparsity the grid ran, so the true extreme may lie beyond it"


@dataclass(frozen=True)
class Point:
    round: int
    sparsity: float
    acc: float


@dataclass(frozen=True)
class Extreme:
    point: Point | None  # the highest-sparsity point where the rule holds; None when it holds at none
    top: float  # the highest sparsity the curve reached

    @property
    def sparsity(self) -> float:
        """0 when the rule holds nowhere, as the papers write a missing winning ticket ("0%")."""
        return 0.0 if self.point is None else self.point.sparsity

    @property
    def capped(self) -> bool:
        return self.point is not None and self.point.sparsity >= self.top - EPS

    def describe(self) -> str:
        if self.point is None:
            return f"none (the rule holds at no sparsity up to {pct(self.top)})"
        return pct(self.sparsity) + (" (capped)" if self.capped else "")


def extreme(points: Iterable[Point], reference: float, rule: Rule) -> Extreme:
    points = list(points)
    ok = [p for p in points if rule.holds(p.acc, reference)]
    return Extreme(max(ok, key=lambda p: (p.sparsity, p.round), default=None),
                   max((p.sparsity for p in points), default=0.0))


def points(rows: Iterable[dict]) -> list[Point]:
    return [Point(r["round"], r["sparsity"], r["test_acc"]) for r in rows if r.get("test_acc") is not None]


def dense_by_seed(res: Results, cell: Cell, phase: str, variant: str = "") -> dict[int, float]:
    """Per seed, the test accuracy of the dense model this run started from: the reference of every rule against
    dense (a paper with its own recipe has its own dense run)."""
    return {s: m["test_acc"] for s, m in res.dense_of(phase, cell, variant).items() if m.get("test_acc") is not None}


def seed_extremes(res: Results, cell: Cell, phase: str, variant: str, rule: Rule) -> dict[int, Extreme]:
    """Each seed's extreme matching sparsity: its own rounds against its own dense model."""
    dense = dense_by_seed(res, cell, phase, variant)
    return {s: extreme(points(m.get("rounds", [])), dense[s], rule)
            for s, m in res.by_seed(phase, cell, variant).items() if s in dense}


def round_by_seed(res: Results, phase: str, cell: Cell, variant: str, r: int) -> dict[int, dict]:
    """Round ``r``'s row of every seed that ran it."""
    out = {}
    for seed, m in res.by_seed(phase, cell, variant).items():
        row = next((x for x in m.get("rounds", []) if x["round"] == r), None)
        if row is not None:
            out[seed] = row
    return out


@dataclass(frozen=True)
class MeanExtreme:
    """The extreme on the seed-mean curve of the seeds that ran both the method and the dense model."""

    extreme: Extreme
    curve: list[Point]
    reference: float
    seeds: list[int] = field(default_factory=list)

    def closest(self) -> Point:
        """The round nearest the reference from below when the rule holds nowhere: the best case for a claim."""
        return max(self.curve, key=lambda p: (p.acc, -p.sparsity))


def mean_extreme(res: Results, cell: Cell, phase: str, variant: str, rule: Rule,
                 seeds: Iterable[int] | None = None) -> MeanExtreme | None:
    """None when no seed has both the run and a dense model, or the seeds share no round."""
    dense = dense_by_seed(res, cell, phase, variant)
    runs = res.by_seed(phase, cell, variant)
    chosen = set(runs) & set(dense) & (set(runs) if seeds is None else set(seeds))
    seeds = sorted(chosen)
    if not seeds:
        return None
    by_round = [{r["round"]: r for r in runs[s].get("rounds", []) if r.get("test_acc") is not None} for s in seeds]
    common = sorted(set.intersection(*(set(rows) for rows in by_round)))
    if not common:
        return None
    curve = [Point(r, statistics.fmean(rows[r]["sparsity"] for rows in by_round),
                   statistics.fmean(rows[r]["test_acc"] for rows in by_round)) for r in common]
    reference = statistics.fmean(dense[s] for s in seeds)
    return MeanExtreme(extreme(curve, reference, rule), curve, reference, seeds)


def capped_verdict(verdict: str, *, claimant_capped: bool, baseline_capped: bool = False) -> str:
    """A verdict the grid's highest sparsity may have decided becomes inconclusive: a capped claimant could do
    better beyond the grid (so "does not hold" is unsafe), a capped baseline could too (so "holds" is)."""
    if (claimant_capped and verdict == FAILS) or (baseline_capped and verdict == HOLDS):
        return INCONCLUSIVE
    return verdict


def rules_text() -> str:
    return ("Matching rules, each used only for its own paper's comparisons: " +
            "; ".join(f"{r.paper}: {r.name}" for r in RULES) +
            ". A comparison is made at the extreme matching sparsity, the highest sparsity where its rule holds "
            "(never just the last round); 'capped' means the rule still holds at the highest sparsity the grid ran.")
