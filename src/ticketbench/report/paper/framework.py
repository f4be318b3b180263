"""The frame each paper's module fills, and the readers they share.

A paper module registers three kinds of thing, each by decorator:

* ``@table(id, ..., needs=...)``: the resolver of a paper table, beside the runs each of its cells needs
  (:mod:`..needs`). Its resolver reads the cell from exactly those runs: our value for each value column, or None
  where the grid did not run them. ``ticketbench report --coverage`` checks the same declarations against a
  config's planned runs. Nothing here ever copies a paper value into our column. Our values are means over seeds
  with their intervals (``SeedMean``).
* ``@claim_row(table_id, start, runs)``: the row of a paper's claims table whose claim starts with ``start``: the
  runs it is about and the text of our value.
* ``@claim(paper, text, paper_value, phase)``: a headline claim decided on every grid cell (the report's claims
  table, :func:`evaluate`), on the interval of the quantity it is about (``stats.decide``): ``holds``, ``does not
  hold`` or ``inconclusive`` when the interval straddles the claim's threshold. Each row names its test and shows
  the interval; a verdict resting on one seed says so.

Where a claims row and a verdict are about one quantity, the paper's module computes it in one function that both
read.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from ...artifacts import unpack_bits
from .. import stats
from ..matching import Extreme, Rule, seed_extremes
from ..needs import Need, PaperOnly, PaperTable, Run, Unmapped, cell_named
from ..results import Cell, Results
from ..stats import Estimate, seed_interval, test_interval_of, value_cell


class SeedMean(float):
    """Our mean over seeds, carrying its interval. It is a float so that the paper table formats it with the
    column's unit and subtracts the paper's value from it as before; formatting writes the interval after the
    mean: ``98.61 ± 0.52 (n=3; test ±1.21)``, or ``98.61 (n=1, no interval)`` from one seed."""

    half: float | None
    n: int
    test_half: float | None

    def __new__(cls, est: Estimate, scale: float = 100.0, test_half: float | None = None) -> "SeedMean":
        return cls._make(est.mean * scale, None if est.half is None else est.half * scale, est.n, test_half)

    @classmethod
    def _make(cls, value: float, half: float | None, n: int, test_half: float | None) -> "SeedMean":
        obj = super().__new__(cls, value)
        obj.half, obj.n, obj.test_half = half, n, test_half
        return obj

    def __format__(self, spec: str) -> str:
        m = format(float(self), spec)
        if self.half is None:
            return f"{m} (n={self.n}, no interval)"
        test = "" if self.test_half is None else f"; test ±{self.test_half:.2f}"
        return f"{m} ± {format(self.half, spec)} (n={self.n}{test})"

    def __sub__(self, other: float) -> "SeedMean":
        # ours - paper: the paper's number is a constant, so the difference keeps our interval.
        return SeedMean._make(float(self) - other, self.half, self.n, self.test_half)


def seed_mean(values, scale: float = 100.0, runs: list[dict] | None = None) -> SeedMean | None:
    """The mean over seeds of ``values``; for a test accuracy, ``runs`` (the per-seed records) add the Wilson
    interval of the pooled test set."""
    est = seed_interval(values)
    if est is None:
        return None
    ci = test_interval_of(r.get("test_correct") for r in runs) if runs else None
    return SeedMean(est, scale, None if ci is None else scale * (ci[1] - ci[0]) / 2)


# --- paper tables: every table's needs beside its resolver -------------------------------------------------------

Needs = Callable[[PaperTable, dict], dict[str, Need]]
Resolve = Callable[[PaperTable, dict, Results, dict[str, Need]], dict[str, Any]]


@dataclass(frozen=True)
class Spec:
    needs: Needs
    resolve: Resolve


SPECS: dict[str, Spec] = {}


def table(*ids: str, needs: Needs):
    """Register a resolver with the needs it reads through: ``resolve(table, row, results, needs)``."""

    def deco(fn: Resolve) -> Resolve:
        for i in ids:
            SPECS[i] = Spec(needs, fn)
        return fn
    return deco


def needs_of(t: PaperTable, row: dict) -> dict[str, Need]:
    """What each value column of ``row`` needs; a column a table's declaration leaves out is unmapped."""
    spec = SPECS.get(t.id)
    declared = spec.needs(t, row) if spec else {}
    return {c: declared.get(c, Unmapped("no runs are declared for this column")) for c in t.value_columns}


def ours(t: PaperTable, row: dict, res: Results) -> dict[str, Any]:
    spec = SPECS.get(t.id)
    return spec.resolve(t, row, res, needs_of(t, row)) if spec else {}


def no_cell(t: PaperTable, row: dict) -> Unmapped:
    ctx = {**t.fixed, **row}
    network = ctx.get("network", ctx.get("model"))
    return Unmapped(f"{network} on {ctx.get('dataset')}: no backbone and dataset of ticketbench stand for them")


def unmapped_row(t: PaperTable, row: dict) -> dict[str, Need]:
    return {c: no_cell(t, row) for c in t.value_columns}


def runs_of(need: Need) -> tuple[Run, ...]:
    return need if isinstance(need, tuple) else ()


def every_column(runs: Callable[[PaperTable, dict], Need]) -> Needs:
    """Needs that give every value column of a row the same runs (or the same reason why there are none)."""
    def needs(t: PaperTable, row: dict) -> dict[str, Need]:
        need = runs(t, row)
        return {c: need for c in t.value_columns}
    return needs


# --- claims tables: one row per claim of the paper ---------------------------------------------------------------

@dataclass(frozen=True)
class ClaimRow:
    """One claims row: the runs it is about and how our value is read from them."""

    runs: Callable[[dict], Need]
    value: Callable[[dict, Results, tuple[Run, ...]], str | None]


CLAIM_ROWS: dict[str, list[tuple[str, ClaimRow]]] = {}


def claim_row(table_id: str, start: str, runs: Callable[[dict], Need]):
    """Declare the row of the claims table ``table_id`` whose claim starts with ``start``; the first row declared
    registers the table."""

    def deco(value: Callable[[dict, Results, tuple[Run, ...]], str | None]):
        if table_id not in CLAIM_ROWS:
            table(table_id, needs=_claims_needs)(_claims)
        CLAIM_ROWS.setdefault(table_id, []).append((start, ClaimRow(runs, value)))
        return value
    return deco


def _claim_of(t: PaperTable, row: dict) -> ClaimRow | None:
    text = str(row.get("claim"))
    return next((c for start, c in CLAIM_ROWS.get(t.id, []) if text.startswith(start)), None)


def _claims_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    c = _claim_of(t, row)
    return {"value": c.runs(row) if c else Unmapped("no resolver reads this claim"),
            "where": PaperOnly("where in the paper the claim is stated")}


def _claims(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    c, runs = _claim_of(t, row), runs_of(needs["value"])
    text = c.value(row, res, runs) if c and runs else None
    return {"value": text} if text else {}


def claim_cells(row: dict) -> list[tuple[str, Cell | None]]:
    """(label, our cell) for every dataset x network a claims row names; None where we map nothing."""
    return [(f"{d} {n}", cell_named(d, n)) for d in row.get("datasets") or [] for n in row.get("networks") or []]


def cells_or_unmapped(pairs: list[tuple[str, Cell | None]], runs: Callable[[Cell], list[Run]]) -> Need:
    missing = [label for label, cell in pairs if cell is None]
    if missing or not pairs:
        return Unmapped(f"no backbone of ticketbench stands for {', '.join(missing) or 'the networks it names'}")
    return tuple(dataclasses.replace(r, label=label) for label, cell in pairs for r in runs(cell))


def by_cell(runs: tuple[Run, ...]) -> dict[Cell, dict[tuple[str, str], Run]]:
    """The runs of a claim grouped by cell, each keyed by (phase, folder)."""
    out: dict[Cell, dict[tuple[str, str], Run]] = {}
    for r in runs:
        out.setdefault(r.cell, {})[(r.phase, r.folder)] = r
    return out


def label(cell: Cell, runs: tuple[Run, ...]) -> str:
    """A cell as the paper names it where the claim's runs carry its name, else ours."""
    return next((r.label for r in runs if r.cell == cell and r.label), f"{cell[0]} {cell[1]}")


# --- readers more than one paper uses ----------------------------------------------------------------------------

def nearest_round(rows: list[dict], sparsity_pct: float, tol: float = 0.5) -> dict | None:
    best = min(rows, key=lambda r: abs(100 * r["sparsity"] - sparsity_pct), default=None)
    return best if best is not None and abs(100 * best["sparsity"] - sparsity_pct) <= tol else None


def mean_sparsities(per_round: dict[int, list[dict]]) -> list[dict]:
    """Each round of a run with its sparsity averaged over seeds, for finding the round nearest a sparsity."""
    return [{"round": r, "sparsity": statistics.fmean(x["sparsity"] for x in rows)} for r, rows in per_round.items()]


def round_mean_gaps(a: dict[int, dict], b: dict[int, dict], rounds: Callable[[dict], bool] = lambda row: True,
                    key: str = "test_acc") -> list[float]:
    """Per seed that ran both runs (``by_seed`` of each), the mean over their common rounds of a minus b; ``rounds``
    picks the rounds (by a's row)."""
    gaps = []
    for s in sorted(set(a) & set(b)):
        x = {r["round"]: r for r in a[s].get("rounds", []) if rounds(r)}
        y = {r["round"]: r[key] for r in b[s].get("rounds", [])}
        common = sorted(set(x) & set(y))
        if common:
            gaps.append(statistics.fmean(x[r][key] - y[r] for r in common))
    return gaps


def extremes_cell(res: Results, cell: Cell, runs: dict[str, tuple[str, str]], rule: Rule) -> str | None:
    """Each run's extreme matching sparsity over seeds (mean ± interval), saying how many seeds are capped."""
    parts = []
    for name, (phase, variant) in runs.items():
        ext = seed_extremes(res, cell, phase, variant, rule)
        if ext:
            capped = sum(e.capped for e in ext.values())
            parts.append(f"{name} {value_cell((e.sparsity for e in ext.values()), unit='%')}" +
                         (f" (capped on {capped} of {len(ext)} seeds)" if capped else ""))
    return ", ".join(parts) or None


def lr_text(tr: dict) -> str:
    """A learning-rate schedule as the papers print it: ``0.1; ×0.1 at 80,120 of 160 epochs``."""
    warm = f", {tr['warmup_epochs']} warm-up epochs" if tr.get("warmup_epochs") else ""
    if tr["schedule"] == "multistep":
        return f"{tr['lr']:g}; ×{tr['gamma']:g} at {tr['milestones']} of {tr['epochs']} epochs{warm}"
    return f"{tr['lr']:g}; {tr['schedule']} over {tr['epochs']} epochs{warm}"


# --- headline claims, decided on every cell the grid ran -----------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    measured: str  # the quantity and its interval
    verdict: str  # holds / does not hold / inconclusive
    test: str  # the statistic, its interval and the threshold
    seeds: int
    # The interval and threshold the verdict was read from, for the seeds an undecided claim needs; None where the
    # verdict rests on no interval (nothing to compare, a missing reference).
    decision: stats.Decision | None = None


@dataclass(frozen=True)
class Claim:
    paper: str
    text: str
    paper_value: str
    phase: str
    judge: Callable[[Results, Cell], Finding | None]  # None: the grid did not run it for this cell


CLAIMS: list[Claim] = []


def claim(paper: str, text: str, paper_value: str, phase: str):
    def deco(fn):
        CLAIMS.append(Claim(paper, text, paper_value, phase, fn))
        return fn
    return deco


def _bits(rows: list[dict]) -> list | None:
    """Per-seed test correctness of ``rows``, or None when a row lacks it (results written before it was stored)."""
    if not rows or any(not r.get("test_correct") for r in rows):
        return None
    return [unpack_bits(r["test_correct"]) for r in rows]


def paired_vs(a: dict[int, dict], b: dict[int, dict], level: float | None = None) -> Estimate | None:
    """Accuracy of ``a`` minus ``b`` over their common seeds, paired per test example; None without the bits."""
    seeds = sorted(set(a) & set(b))
    xa, xb = _bits([a[s] for s in seeds]), _bits([b[s] for s in seeds])
    if not seeds or xa is None or xb is None:
        return None
    return stats.paired_difference(xa, xb, level)


NO_BITS = "the runs hold no per-example test correctness (written before it was stored): re-run them to decide"


def diff_text(est: Estimate) -> str:
    lo, hi = ("-", "-") if est.lo is None else (f"{100 * est.lo:+.2f}", f"{100 * est.hi:+.2f}")
    return f"{100 * est.mean:+.2f} points [{lo}, {hi}]"


def capped_note(kind: str, ext: dict[int, Extreme], seeds: list[int]) -> str:
    n = sum(ext[s].capped for s in seeds)
    return f"; {kind} capped on {n} of {len(seeds)} seeds (the rule still holds at the highest sparsity run)" \
        if n else ""


def seeds_needed(f: Finding) -> stats.SeedsNeeded | None:
    """For an undecided finding, how many seeds would decide it, or why none would; None when it is decided."""
    if f.verdict != stats.INCONCLUSIVE:
        return None
    if f.decision is None:
        return stats.SeedsNeeded(None, "none: the verdict rests on no interval here (see the measured value)")
    if f.decision.verdict != stats.INCONCLUSIVE:
        # The interval decided it, and the grid's highest sparsity undid that: more rounds, not seeds, can decide.
        return stats.SeedsNeeded(None, "none: the grid's highest sparsity caps it; more rounds could decide it")
    return stats.seeds_needed(f.decision)


def evaluate(res: Results, level: float | None = None) -> list[dict]:
    """One row per claim and grid cell; claims with no run on any cell get a single 'not run' row. ``level``: the
    confidence level of every claim's interval (a correction for repeated looks), else ``stats.LEVEL``."""
    out = []
    with stats.confidence(level or stats.LEVEL):
        for c in CLAIMS:
            rows = []
            for cell in res.cells(c.phase):
                f = c.judge(res, cell)
                if f is not None:
                    verdict = f.verdict + (" (one seed)" if f.seeds == 1 else "")
                    need = seeds_needed(f)
                    rows.append({"paper": c.paper, "claim": c.text, "paper_value": c.paper_value,
                                 "cell": f"{cell[0]} x {cell[1]}", "measured": f.measured, "test": f.test,
                                 "seeds": f.seeds, "verdict": verdict,
                                 "seeds_needed": "-" if need is None else need.text,
                                 "seeds_to_decide": None if need is None else need.seeds})
            out.extend(rows or [{"paper": c.paper, "claim": c.text, "paper_value": c.paper_value, "cell": "-",
                                 "measured": "not run", "test": "-", "seeds": 0, "verdict": "not run",
                                 "seeds_needed": "-", "seeds_to_decide": None}])
    return out
