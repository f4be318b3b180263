"""How each row of the papers' tables maps onto our results.

Every table declares, per row and value column, the runs its cell needs (:mod:`.needs`), and its resolver reads
the cell from exactly those runs: our value for each value column, or None where the grid did not run them.
``ticketbench report --coverage`` checks the same declarations against a config's planned runs. Nothing here ever
copies a paper value into our column. Our values are means over seeds with their intervals (``SeedMean``).
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from .grid import (NO_STRUCTURE, NOISY, ONE_SEED_TIMING, TIMING_INTERVAL, saving_cell, saving_estimate,
                   saving_marks, timed_rows)
from .matching import AT_LEAST_DENSE, WITHIN_1_OF_DENSE, Extreme, Rule, mean_extreme, round_by_seed, seed_extremes
from .needs import (DATASETS, NETWORKS, Need, PaperOnly, PaperTable, Reading, Run, Unmapped, cell_named, cell_of,
                    load_tables)
from .results import Cell, Results, mean
from .stats import Estimate, seed_interval, test_interval_of, value_cell

__all__ = ["DATASETS", "NETWORKS", "PaperTable", "RESOLVERS", "SPECS", "SeedMean", "cell_of", "load_tables",
           "needs_of", "ours"]

Resolver = Callable[[PaperTable, dict, Results], dict[str, Any]]


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


def _ours(values, scale: float = 100.0, runs: list[dict] | None = None) -> SeedMean | None:
    """The mean over seeds of ``values``; for a test accuracy, ``runs`` (the per-seed records) add the Wilson
    interval of the pooled test set."""
    est = seed_interval(values)
    if est is None:
        return None
    ci = test_interval_of(r.get("test_correct") for r in runs) if runs else None
    return SeedMean(est, scale, None if ci is None else scale * (ci[1] - ci[0]) / 2)


def _shared(values, scale: float = 100.0) -> float | SeedMean | None:
    """A number every seed shares (a sparsity set by the pruning schedule) stays plain; if seeds differ, the
    interval shows it."""
    vals = [v for v in values if v is not None]
    if vals and max(vals) - min(vals) < 1e-9:
        return scale * vals[0]
    return _ours(vals, scale)


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


def _nearest_round(rows: list[dict], sparsity_pct: float, tol: float = 0.5) -> dict | None:
    best = min(rows, key=lambda r: abs(100 * r["sparsity"] - sparsity_pct), default=None)
    return best if best is not None and abs(100 * best["sparsity"] - sparsity_pct) <= tol else None


def _mean_sparsities(per_round: dict[int, list[dict]]) -> list[dict]:
    """Each round of a run with its sparsity averaged over seeds, for finding the round nearest a sparsity."""
    return [{"round": r, "sparsity": statistics.fmean(x["sparsity"] for x in rows)} for r, rows in per_round.items()]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


# --- the declaration: every table's needs beside its resolver -------------------------------------------------

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


def _no_cell(t: PaperTable, row: dict) -> Unmapped:
    ctx = {**t.fixed, **row}
    network = ctx.get("network", ctx.get("model"))
    return Unmapped(f"{network} on {ctx.get('dataset')}: no backbone and dataset of ticketbench stand for them")


def _unmapped_row(t: PaperTable, row: dict) -> dict[str, Need]:
    return {c: _no_cell(t, row) for c in t.value_columns}


def _runs(need: Need) -> tuple[Run, ...]:
    return need if isinstance(need, tuple) else ()


def _every_column(runs_of: Callable[[PaperTable, dict], Need]) -> Needs:
    """Needs that give every value column of a row the same runs (or the same reason why there are none)."""
    def needs(t: PaperTable, row: dict) -> dict[str, Need]:
        need = runs_of(t, row)
        return {c: need for c in t.value_columns}
    return needs


# --- PrAC -------------------------------------------------------------------------------------------------------

# PrAC's networks per dataset (Table A2): the claims that name no network are about these.
PRAC_NETWORKS = {"CIFAR-10": ("ResNet-20", "ResNet-56", "VGG-16"), "CIFAR-100": ("ResNet-20", "ResNet-56", "VGG-16"),
                 "Tiny-ImageNet": ("ResNet-18", "VGG-16")}
# The cells §4.4 and A2.2 run the Low and Warmup LT settings on; Table 1 leaves their dataset blank.
LT_SETTING_CELLS = {"ResNet-20": "CIFAR-10", "ResNet-56": "CIFAR-100"}
LT_SETTINGS = {"Low": "low", "Warmup": "warmup"}
RN20_C10 = ("CIFAR-10", "ResNet-20")  # PrAC's headline cell, the one its ablations are stated for


@_every_column
def _prac_1_needs(t: PaperTable, row: dict) -> Need:
    setting = LT_SETTINGS.get(row.get("variant"), "")
    text = row.get("dataset") or (LT_SETTING_CELLS.get(row["network"]) if setting else None)
    cells = [cell_named(d.strip(), row["network"]) for d in str(text).split("&")] if text else []
    if not cells or None in cells:
        return Unmapped(f"{row['network']} {row.get('variant')}: no dataset to run it on")
    return tuple(Run("prac", c, setting) for c in cells)


@table("prac_1", needs=_prac_1_needs)
def _prac_recipe(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    """Settings tables: the recipe our runs of that row actually used (their hparams.json)."""
    found = [h["train"] for h in (r.hparams(res) for r in _runs(needs["batch_size"])) if h and "train" in h]
    if not found:
        return {}
    return {"batch_size": _agree(str(tr["batch_size"]) for tr in found),
            "learning_rate": _agree(f"{tr['lr']:g}" for tr in found),
            "warmup": _agree(str(tr["warmup_epochs"]) for tr in found)}


def _agree(values) -> str:
    """One value where the runs of a row agree, else each run's in order."""
    vals = list(values)
    return vals[0] if len(set(vals)) == 1 else " / ".join(vals)


@_every_column
def _prac_run(t: PaperTable, row: dict) -> Need:
    cell = cell_of(row, t)
    return (Run("prac", cell),) if cell else _no_cell(t, row)


@table("prac_a2", needs=_prac_run)
def _prac_fraction(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    runs = [m for r in _runs(needs["prac_fraction"]) for m in r.get(res)]
    # Each seed's mean over its rounds, as the paper averages rounds; the interval is over seeds.
    return {"prac_fraction": _ours(mean(r.get("prac_trained_fraction") for r in m.get("rounds", [])) for m in runs)}


@_every_column
def _prac_at_sparsity(t: PaperTable, row: dict) -> Need:
    cell = cell_of(row, t)
    return (Run("prac", cell, sparsity=float(row["sparsity"])),) if cell else _no_cell(t, row)


@table("prac_a3", needs=_prac_at_sparsity)
def _prac_sets(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return _round_sets(_runs(needs["cep"]), res, float(row["sparsity"]),
                       {"cep": "cep_size", "cet": "cet_size", "prac": "prac_size"}, overlap="overlap")


def _round_sets(runs: tuple[Run, ...], res: Results, sparsity_pct: float, sizes: dict[str, str], *,
                overlap: str | None = None, acc: str | None = None) -> dict:
    """A PrAC run's round nearest ``sparsity_pct``: set sizes (and the overlap rate, the ticket's accuracy)."""
    if not runs:
        return {}
    per_round = runs[0].per_round(res)
    averaged = [{"round": r, "sparsity": statistics.fmean(x["sparsity"] for x in rows)}
                for r, rows in per_round.items()]
    r = _nearest_round(averaged, sparsity_pct)
    if r is None:
        return {}
    seeds = per_round[r["round"]]
    out: dict[str, Any] = {col: _ours((x.get(key) for x in seeds), 1) for col, key in sizes.items()}
    if overlap:
        out[overlap] = _ours(x.get("overlap_rate") for x in seeds)
    if acc:
        out[acc] = _ours((x["test_acc"] for x in seeds), runs=seeds)
    return out


def _prac_a4_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    ef = int(row["ef"])
    cell = cell_of(row, t)
    # E_F = 0 is PrAC's own setting: the PrAC run itself fills that row when it ran with it.
    run = Run("prac", cell, f"ef{ef}" if ef else "", settings=(("prac", "forget_threshold", ef),),
              sparsity=100 - float(t.fixed["sparsity"]))
    return {c: (run,) for c in t.value_columns}


@table("prac_a4", needs=_prac_a4_needs)
def _forget_threshold(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    # "At sparsity 16.78%": 16.78% is 0.8^8, the weights left after 8 rounds of 20%; no round of a 20% schedule has
    # 16.78% sparsity, so the row is read at the round with 16.78% of the weights left (83.22% sparsity).
    return _round_sets(_runs(needs["accuracy"]), res, 100 - float(t.fixed["sparsity"]), {"prac_size": "prac_size"},
                       acc="accuracy")


def _claim_cells(row: dict) -> list[tuple[str, Cell | None]]:
    """(label, our cell) for every dataset x network a claims row names; None where we map nothing."""
    return [(f"{d} {n}", cell_named(d, n)) for d in row.get("datasets") or [] for n in row.get("networks") or []]


def _cells_or_unmapped(pairs: list[tuple[str, Cell | None]], runs: Callable[[Cell], list[Run]]) -> Need:
    missing = [label for label, cell in pairs if cell is None]
    if missing or not pairs:
        return Unmapped(f"no backbone of ticketbench stands for {', '.join(missing) or 'the networks it names'}")
    return tuple(dataclasses.replace(r, label=label) for label, cell in pairs for r in runs(cell))


@dataclass(frozen=True)
class ClaimRow:
    """One claims row: the runs it is about and how our value is read from them."""

    runs: Callable[[dict], Need]
    value: Callable[[dict, Results, tuple[Run, ...]], str | None]


CLAIM_ROWS: dict[str, list[tuple[str, ClaimRow]]] = {}


def claim_row(table_id: str, start: str, runs: Callable[[dict], Need]):
    """Declare the claims row of ``table_id`` whose claim starts with ``start``."""

    def deco(value: Callable[[dict, Results, tuple[Run, ...]], str | None]):
        CLAIM_ROWS.setdefault(table_id, []).append((start, ClaimRow(runs, value)))
        return value
    return deco


def unmapped_claim(table_id: str, start: str, why: str) -> None:
    CLAIM_ROWS.setdefault(table_id, []).append((start, ClaimRow(lambda row: Unmapped(why), lambda *a: None)))


def _claim_of(t: PaperTable, row: dict) -> ClaimRow | None:
    text = str(row.get("claim"))
    return next((c for start, c in CLAIM_ROWS.get(t.id, []) if text.startswith(start)), None)


def _claims_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    c = _claim_of(t, row)
    return {"value": c.runs(row) if c else Unmapped("no resolver reads this claim"),
            "where": PaperOnly("where in the paper the claim is stated")}


def _claims(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    c, runs = _claim_of(t, row), _runs(needs["value"])
    text = c.value(row, res, runs) if c and runs else None
    return {"value": text} if text else {}


for _id in ("prac_claims", "slth_claims", "jp_claims"):
    table(_id, needs=_claims_needs)(_claims)


def _by_cell(runs: tuple[Run, ...]) -> dict[Cell, dict[tuple[str, str], Run]]:
    """The runs of a claim grouped by cell, each keyed by (phase, folder)."""
    out: dict[Cell, dict[tuple[str, str], Run]] = {}
    for r in runs:
        out.setdefault(r.cell, {})[(r.phase, r.folder)] = r
    return out


def _label(cell: Cell, runs: tuple[Run, ...]) -> str:
    """A cell as the paper names it where the claim's runs carry its name, else ours."""
    return next((r.label for r in runs if r.cell == cell and r.label), f"{cell[0]} {cell[1]}")


def _saving_text(res: Results, cell: Cell, prac: str = "", full: str = "full") -> str | None:
    s = res.savings(cell, prac, full)
    if s is None:
        return None
    if s["saving"] is None:
        return "no matching sparsity"
    return (f"{value_cell(s['seed_savings'], unit='%')} up to sparsity {_pct(s['matched_sparsity'])}" +
            (" (capped)" if s["capped"] else ""))


def _savings_runs(cell: Cell, prac: str = "", full: str = "full") -> list[Run]:
    return [Run("imp", cell, full), Run("prac", cell, prac)]


def _saving_cells(row: dict) -> Need:
    return _cells_or_unmapped(_claim_cells(row), _savings_runs)


@claim_row("prac_claims", "Saving,", _saving_cells)
def _prac_saving(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Savings with PrAC's savings rule: the PrAC ticket within one std over seeds of full-data IMP's."""
    parts = [f"{_label(cell, runs)}: {text}" for cell in _by_cell(runs) if (text := _saving_text(res, cell))]
    return "; ".join(parts) or None


def _prac_networks(row: dict) -> Need:
    pairs = [(f"{d} {n}", cell_named(d, n)) for d in row.get("datasets") or [] for n in PRAC_NETWORKS.get(d, ())]
    return _cells_or_unmapped(pairs, lambda cell: [Run("prac", cell)])


@claim_row("prac_claims", "PrAC size range", _prac_networks)
def _prac_size_range(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    by_dataset: dict[str, list[tuple[float, Cell]]] = {}
    for r in runs:
        per_seed = [mean(x.get("prac_trained_fraction") for x in m.get("rounds", [])) for m in r.get(res)]
        est = seed_interval(per_seed)
        if est is not None:
            by_dataset.setdefault(r.cell[0], []).append((est.mean, r.cell))
    parts = []
    for d, found in by_dataset.items():
        lo, hi = min(found), max(found)
        parts.append(f"{d} {_pct(lo[0])}-{_pct(hi[0])} ({len(found)} networks; seed means averaged over rounds)")
    return "; ".join(parts) or None


def _rn20_c10(*runs: tuple[str, str]) -> Callable[[dict], Need]:
    return lambda row: _cells_or_unmapped([(" ".join(RN20_C10), cell_named(*RN20_C10))],
                                          lambda cell: [Run(phase, cell, folder) for phase, folder in runs])


@claim_row("prac_claims", "Iterations, ResNet-20 C10",
           _rn20_c10(("imp", "full"), ("prac", ""), ("prac", "no_early_stop")))
def _iterations(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Iterations to find the ticket at PrAC's highest matching sparsity, for each of the three runs."""
    cell = runs[0].cell
    s = res.savings(cell)
    if s is None or s["matched_round"] is None:
        return None if s is None else "PrAC tickets match full-data IMP at no sparsity"
    r = s["matched_round"]
    parts = []
    for label, (phase, folder) in (("PrAC", ("prac", "")), ("PrAC w/o early stop", ("prac", "no_early_stop")),
                                   ("vanilla LT", ("imp", "full"))):
        rows = round_by_seed(res, phase, cell, folder, r)
        if rows:
            parts.append(f"{label} {value_cell((x.get('find_iterations') for x in rows.values()), 1e-3, 1, 'k')}")
    return f"at sparsity {_pct(s['matched_sparsity'])} (PrAC's highest matching): " + "; ".join(parts)


@claim_row("prac_claims", "Early-stop ablation", _rn20_c10(("imp", "full"), ("prac", ""), ("prac", "no_early_stop")))
def _early_stop(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    cell = runs[0].cell
    parts = [f"{label} {text}" for label, folder in (("w/o early stop", "no_early_stop"), ("with early stop", ""))
             if (text := _saving_text(res, cell, folder))]
    return f"{_label(cell, runs)}: " + "; ".join(parts) if parts else None


def _lt_setting_runs(row: dict) -> Need:
    pairs = [(f"{d} {n}", cell_named(d, n)) for n, d in LT_SETTING_CELLS.items()]
    return _cells_or_unmapped(pairs, lambda cell: [r for s in LT_SETTINGS.values()
                                                   for r in _savings_runs(cell, s, f"full-{s}")])


@claim_row("prac_claims", "Low / warmup LT settings", _lt_setting_runs)
def _lt_settings(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """PrAC-IMP's cost as a share of vanilla LT's under each LT setting: the iterations not saved."""
    parts = []
    for cell in _by_cell(runs):
        for name, s in LT_SETTINGS.items():
            found = res.savings(cell, s, f"full-{s}")
            if found is None:
                continue
            text = ("no matching sparsity" if found["saving"] is None else
                    value_cell([1 - x for x in found["seed_savings"]], unit="%") +
                    f" of vanilla LT's iterations up to sparsity {_pct(found['matched_sparsity'])}")
            parts.append(f"{_label(cell, runs)} {name}: {text}")
    return "; ".join(parts) or None


def _extremes_cell(res: Results, cell: Cell, runs: dict[str, tuple[str, str]], rule: Rule) -> str | None:
    """Each run's extreme matching sparsity over seeds (mean ± interval), saying how many seeds are capped."""
    parts = []
    for label, (phase, variant) in runs.items():
        ext = seed_extremes(res, cell, phase, variant, rule)
        if ext:
            capped = sum(e.capped for e in ext.values())
            parts.append(f"{label} {value_cell((e.sparsity for e in ext.values()), unit='%')}" +
                         (f" (capped on {capped} of {len(ext)} seeds)" if capped else ""))
    return ", ".join(parts) or None


PRAC_VS_RANDOM = {"PrAC": ("prac", ""), "random pruning": ("imp", "random_prune"),
                  "random tickets": ("imp", "random_reinit")}


def _prac_dataset_networks(runs: list[tuple[str, str]]) -> Callable[[dict], Need]:
    """PrAC's networks on each dataset the row names, each with the dense run the matching rule reads."""
    def need(row: dict) -> Need:
        pairs = [(f"{d} {n}", cell_named(d, n)) for d in row.get("datasets") or ["CIFAR-10"]
                 for n in PRAC_NETWORKS.get(d, ())]
        return _cells_or_unmapped(pairs, lambda cell: [Run("pretrain", cell), *(Run(p, cell, f) for p, f in runs)])
    return need


@claim_row("prac_claims", "Matching sparsity within 1% of dense", _prac_dataset_networks(list(PRAC_VS_RANDOM.values())))
def _matching_vs_random(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """The matching-sparsity claim with PrAC's 'within 1 point of dense' rule."""
    parts = [f"{_label(cell, runs)}: {shown}" for cell in _by_cell(runs)
             if (shown := _extremes_cell(res, cell, PRAC_VS_RANDOM, WITHIN_1_OF_DENSE))]
    return "; ".join(parts) or None


@claim_row("prac_claims", "PrAC beats vanilla LT at highest sparsity",
           _prac_dataset_networks([("prac", ""), ("imp", "full")]))
def _beats_at_top(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """PrAC's ticket minus full-data IMP's at the highest round both ran, paired by seed."""
    parts = []
    for cell in _by_cell(runs):
        prac, full = res.per_round("prac", cell), res.per_round("imp", cell, "full")
        common = sorted(set(prac) & set(full))
        if not common:
            continue
        r = common[-1]
        a, b = round_by_seed(res, "prac", cell, "", r), round_by_seed(res, "imp", cell, "full", r)
        seeds = sorted(set(a) & set(b))
        diff = value_cell([a[s]["test_acc"] - b[s]["test_acc"] for s in seeds], unit=" points")
        top = _pct(statistics.fmean(a[s]["sparsity"] for s in seeds))
        parts.append(f"{_label(cell, runs)} at {top}: PrAC minus vanilla LT {diff}")
    return "; ".join(parts) or None


def _round_mean_gaps(a: dict[int, dict], b: dict[int, dict], rounds: Callable[[dict], bool] = lambda row: True,
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


@claim_row("prac_claims", "Without CEP", _rn20_c10(("prac", ""), ("prac", "no_cep")))
def _without_cep(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """CET-only tickets minus PrAC's, averaged over the rounds both ran, per seed."""
    cell = runs[0].cell
    diffs = _round_mean_gaps(res.by_seed("prac", cell, "no_cep"), res.by_seed("prac", cell))
    if not diffs:
        return None
    return f"{_label(cell, runs)}: without CEP minus PrAC {value_cell(diffs, unit=' points')} (mean over rounds)"


# The pruning-at-init baselines of §4.3, as the claim orders them, and their IMP variants (experiments.imp_runs).
PAI_BASELINES = {"SynFlow": "synflow", "SNIP": "snip", "GraSP": "grasp"}


def _pai_runs(row: dict) -> Need:
    at = float((row.get("numbers") or {}).get("sparsity", 0))
    return _cells_or_unmapped([(" ".join(RN20_C10), cell_named(*RN20_C10))], lambda cell: [
        Run(phase, cell, folder, sparsity=at) for phase, folder in (("prac", ""), *(("imp", v) for v in
                                                                                   PAI_BASELINES.values()))])


@claim_row("prac_claims", "vs pruning-at-init", _pai_runs)
def _vs_pruning_at_init(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """PrAC's ticket minus each pruning-at-init ticket at the round nearest the claim's sparsity, paired by seed: the
    variants prune to full IMP's kept count of each round, which PrAC's rounds share."""
    cell = runs[0].cell
    per_round = res.per_round("prac", cell)
    averaged = _mean_sparsities(per_round)
    near = _nearest_round(averaged, float((row.get("numbers") or {}).get("sparsity", 0)))
    if near is None:
        return None
    prac = round_by_seed(res, "prac", cell, "", near["round"])
    parts = []
    for label, variant in PAI_BASELINES.items():
        other = round_by_seed(res, "imp", cell, variant, near["round"])
        seeds = sorted(set(prac) & set(other))
        if seeds:
            gap = value_cell([prac[s]["test_acc"] - other[s]["test_acc"] for s in seeds], unit=" points")
            scored = {other[s].get("scored_at") for s in seeds} - {None}
            parts.append(f"{label} {gap}" + (f" (scored at {', '.join(sorted(scored))})" if scored else ""))
    if not parts:
        return None
    return f"{_label(cell, runs)} at {_pct(near['sparsity'])}: PrAC minus " + "; ".join(parts)


def _random_subset_runs(row: dict) -> Need:
    need = _rn20_c10(("imp", "full"), ("prac", ""), ("prac", "random_subset"))(row)
    return Reading(need, "prac-random-subsets") if isinstance(need, tuple) else need


@claim_row("prac_claims", "Random subsets needed to match PrAC", _random_subset_runs)
def _random_subsets(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """PrAC-IMP on a random subset of each round's PrAC-set size: what it saves against full-data IMP with PrAC's
    rule, and its tickets against PrAC's."""
    cell = runs[0].cell
    drawn = res.get("prac", cell, "random_subset")
    if not drawn:
        return None
    share = value_cell((mean(x.get("prac_trained_fraction") for x in m.get("rounds", [])) for m in drawn), unit="%")
    parts = [f"random subsets of the PrAC sets' size ({share} of the data, mean over rounds)"]
    for label, folder in (("random subsets", "random_subset"), ("PrAC", "")):
        text = _saving_text(res, cell, folder)
        if text:
            parts.append(f"{label} save {text}")
    gaps = _round_mean_gaps(res.by_seed("prac", cell, "random_subset"), res.by_seed("prac", cell))
    if gaps:
        parts.append(f"random-subset tickets minus PrAC's {value_cell(gaps, unit=' points')} (mean over rounds)")
    return f"{_label(cell, runs)}: " + "; ".join(parts)


# --- Structure-LTH ---------------------------------------------------------------------------------------------

SLTH_CIFAR_NETWORKS = ("WRN-32-2", "RN-18", "MBNet-v1", "VGG-16")
SLTH_CELLS = {"CIFAR": [(d, n) for d in ("CIFAR-10", "CIFAR-100") for n in SLTH_CIFAR_NETWORKS],
              "Tiny-ImageNet": [("Tiny-ImageNet", "RN-50")], "ImageNet": [("ImageNet", "RN-50")]}
RN18_C10 = ("CIFAR-10", "RN-18")  # the cell of §5's ablations and of the A2 comparisons


def _slth_1_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    run: Need = (Run("imp", cell, "structure_lth"),) if cell else _no_cell(t, row)
    return {**{c: run for c in t.value_columns},
            "model_size": PaperOnly("a property of the network definition, not of a run (tests/test_models.py "
                                    "checks our networks' sizes)")}


@table("slth_1", needs=_slth_1_needs)
def _slth_recipe(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    """Structure-LTH's recipe as its own IMP run of the cell used it."""
    runs = _runs(needs["batch_size"])
    h = runs[0].hparams(res) if runs else None
    if not h or "train" not in h:
        return {}
    tr = h["train"]
    return {"batch_size": tr["batch_size"], "weight_decay": f"{tr['weight_decay']:g}", "learning_rate": _lr(tr),
            "optimizer": f"SGD momentum {tr['momentum']:g}" + (", Nesterov" if tr.get("nesterov") else "")}


def _lr(tr: dict) -> str:
    """A learning-rate schedule as the papers print it: ``0.1; ×0.1 at 80,120 of 160 epochs``."""
    warm = f", {tr['warmup_epochs']} warm-up epochs" if tr.get("warmup_epochs") else ""
    if tr["schedule"] == "multistep":
        return f"{tr['lr']:g}; ×{tr['gamma']:g} at {tr['milestones']} of {tr['epochs']} epochs{warm}"
    return f"{tr['lr']:g}; {tr['schedule']} over {tr['epochs']} epochs{warm}"


# Table A2's network is ResNet-50 in the caption and ResNet-18 in the text; we read the caption's (Deviations:
# slth-a2-network). Its rows are read at our round whose remaining weight is nearest the paper's, within this many
# points: under half the smallest step between the paper's rows (5.2 points), so two rows never share a round.
TRANSFER_NETWORK = "ResNet-50"
TRANSFER_TOLERANCE = 2.5
TRANSFER_METHODS = {"IMP-Refill": "refill", "IMP-Regroup": "regroup"}


@_every_column
def _transfer_needs(t: PaperTable, row: dict) -> Need:
    cell = cell_named(t.fixed["dataset"], TRANSFER_NETWORK)
    source = DATASETS.get(t.fixed["source_dataset"])
    method = TRANSFER_METHODS.get(row["method"])
    if cell is None or source is None or method is None:
        return Unmapped(f"{row['method']} from {t.fixed['source_dataset']}: no structure method or dataset of "
                        f"ticketbench stands for it")
    return Reading((Run("structure", cell, f"{method}-transfer-{source}", sparsity=100 - float(row["remaining"])),),
                   "slth-a2-network")


@table("slth_a2", needs=_transfer_needs)
def _transfer(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    """The transferred tickets' accuracy and time saving at our round nearest the row's remaining weight."""
    runs = _runs(needs["transfer_acc"])
    per_round = runs[0].per_round(res) if runs else {}
    averaged = _mean_sparsities(per_round)
    near = _nearest_round(averaged, 100 - float(row["remaining"]), tol=TRANSFER_TOLERANCE)
    if near is None:
        return {}
    seeds = per_round[near["round"]]
    return {"transfer_acc": _ours((x["test_acc"] for x in seeds), runs=seeds),
            "time_saving": _saving(seeds)}


def _vs_random_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return _unmapped_row(t, row)
    method = "refill" if t.id == "slth_a3" else "regroup"
    ours_run = (Run("structure", cell, method),)
    return {"remaining": ours_run, "acc_ours": ours_run, "acc_random": (Run("structure", cell, f"{method}-reinit"),)}


def _round_cells(row: dict, res: Results, needs: dict[str, Need], is_remaining) -> dict:
    """Each column at the paper row's round: the share of weights left (shared by the seeds) or our accuracy."""
    out = {}
    for col, need in needs.items():
        runs = _runs(need)
        seeds = runs[0].per_round(res).get(int(row["round"])) if runs else None
        if not seeds:
            continue
        if is_remaining(col):
            out[col] = _shared(1 - x["sparsity"] for x in seeds)
        else:
            out[col] = _ours((x["test_acc"] for x in seeds), runs=seeds)
    return out


@table("slth_a3", "slth_a4", needs=_vs_random_needs)
def _structure_vs_random(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return _round_cells(row, res, needs, lambda col: col == "remaining")


def _rounds_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return _unmapped_row(t, row)
    # Beside the structured tickets, Structure-LTH's own IMP run they come from, as the paper's tables put them.
    runs = {"imp": Run("imp", cell, "structure_lth"), "refill": Run("structure", cell, "refill"),
            "regroup": Run("structure", cell, "regroup")}
    return {c: (runs[c.split("_")[0]],) for c in t.value_columns}


@table("slth_a5", "slth_a6", "slth_a7", needs=_rounds_needs)
def _structure_rounds(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return _round_cells(row, res, needs, lambda col: col.endswith("_remaining"))


def _structure_cells(pairs: list[tuple[str, str]], methods: tuple[str, ...]) -> Need:
    """The structure runs of ``methods`` on each (dataset, network), with the dense run the rule compares to."""
    named = [(f"{d} {n}", cell_named(d, n)) for d, n in pairs]
    return _cells_or_unmapped(named, lambda cell: [Run("pretrain", cell),
                                                   *(Run("structure", cell, m) for m in methods)])


@dataclass(frozen=True)
class _AtExtreme:
    """A structure run's timed rows at its extreme sparsity: the seeds whose saving counts, and those whose ticket
    lost no FLOPs or parameters (a time saving there would not be one)."""

    extreme: Extreme
    counted: list[dict]
    none: list[dict]

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


def _at_extreme(res: Results, cell: Cell, method: str) -> _AtExtreme | None:
    """The run's rows at the extreme sparsity by Structure-LTH's rule on the seed-mean curve, for the seeds it rests
    on; None when the run is missing or no round reaches dense accuracy."""
    found = mean_extreme(res, cell, "structure", method, AT_LEAST_DENSE)
    if found is None or found.extreme.point is None:
        return None
    rows = round_by_seed(res, "structure", cell, method, found.extreme.point.round)
    return _AtExtreme(found.extreme, *timed_rows(rows[s] for s in found.seeds if s in rows))


def _extreme_saving(res: Results, cell: Cell, method: str) -> tuple[float, float, bool, str] | None:
    """(sparsity, mean time saving, capped, marks) at the extreme sparsity; None when there is none, or when no
    seed's ticket lost structure there. ``marks`` says which savings were noisy."""
    at = _at_extreme(res, cell, method)
    if at is None or at.saving is None:
        return None
    return at.extreme.sparsity, at.saving, at.extreme.capped, at.marks


def _best_savings(res: Results, runs: tuple[Run, ...]) -> dict[str, tuple[float, float, bool, str, str]]:
    """Per dataset, the largest time saving at an extreme sparsity over the structure runs listed."""
    best: dict[str, tuple[float, float, bool, str, str]] = {}
    for r in runs:
        if r.phase != "structure":
            continue
        found = _extreme_saving(res, r.cell, r.folder)
        if found and (r.cell[0] not in best or found[1] > best[r.cell[0]][1]):
            best[r.cell[0]] = (*found, f"{r.cell[1]} {r.folder}")
    return best


def _saving_at(found: tuple[float, float, bool, str, str]) -> str:
    sparsity, saving, capped, marks, where = found
    return f"{_pct(saving)}{marks} at {_pct(sparsity)}{' (capped)' if capped else ''} ({where})"


ALL_SLTH = [p for pairs in SLTH_CELLS.values() for p in pairs]


@claim_row("slth_claims", "Abstract headline", lambda row: _structure_cells(ALL_SLTH, ("refill", "regroup")))
def _headline(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    best = _best_savings(res, runs)
    return "; ".join(f"{d}: up to {_saving_at(found)}" for d, found in best.items()) or None


@claim_row("slth_claims", "Contribution summary", lambda row: _structure_cells(ALL_SLTH, ("refill", "regroup")))
def _summary(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    timed = [at for r in runs if r.phase == "structure" and (at := _at_extreme(res, r.cell, r.folder))]
    found = [at for at in timed if at.saving is not None]
    if not found:
        return None
    savings, sparsities = [at.saving for at in found], [at.extreme.sparsity for at in found]
    noisy = sum(at.noisy for at in found)
    empty = sum(at.removed_nothing for at in timed)
    return (f"{_pct(min(savings))}-{_pct(max(savings))} time savings at {_pct(min(sparsities))}-"
            f"{_pct(max(sparsities))} sparsity ({len(found)} runs at their extreme sparsity"
            + (f"; timing noisy in {noisy}" if noisy else "")
            + (f"; {empty} more with {NO_STRUCTURE}" if empty else "") + ")")


def _structure_extremes(res: Results, runs: tuple[Run, ...]):
    """Each structure run with its extreme sparsity under Structure-LTH's 'at least dense accuracy' rule."""
    for r in runs:
        if r.phase == "structure":
            found = mean_extreme(res, r.cell, "structure", r.folder, AT_LEAST_DENSE)
            if found is not None:
                yield r, found


def _per_method(res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r, found in _structure_extremes(res, runs):
        at = _at_extreme(res, r.cell, r.folder)
        parts.append(f"{r.folder}: extreme sparsity {found.extreme.describe()}" +
                     (f", {_pct(at.saving)}{at.marks} time saving" if at and at.saving is not None else
                      f", {NO_STRUCTURE}" if at and at.removed_nothing else ""))
    return f"{_label(runs[0].cell, runs)}: " + "; ".join(parts) if parts else None


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
    for cell, found in _by_cell(runs).items():
        methods = {f: ("structure", f) for p, f in found if p == "structure"}
        shown = _extremes_cell(res, cell, methods, AT_LEAST_DENSE)
        if shown:
            parts.append(f"{_label(cell, runs)}: {shown}")
    return "; ".join(parts) or None


claim_row("slth_claims", "CIFAR extreme channel-wise", _named_structure(("refill", "refill_plus")))(_extremes)
claim_row("slth_claims", "CIFAR extreme group-wise", _named_structure(("regroup",)))(_extremes)


@claim_row("slth_claims", "Group-wise time savings at undamaged accuracy", _named_structure(("regroup", "refill")))
def _group_savings(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r, found in _structure_extremes(res, runs):
        ext = found.extreme
        if ext.point is None:
            parts.append(f"{_label(r.cell, runs)} {r.folder}: no round at dense accuracy")
            continue
        rows = round_by_seed(res, "structure", r.cell, r.folder, ext.point.round)
        saving = saving_cell((rows[s] for s in found.seeds if s in rows), unit="%", missing="-")
        parts.append(f"{_label(r.cell, runs)} {r.folder}: {saving} at sparsity {ext.describe()}")
    return "; ".join(parts) or None


@claim_row("slth_claims", "Layer-wise speedup",
           lambda row: _cells_or_unmapped([("CIFAR-10 VGG-16", cell_named("CIFAR-10", "VGG-16"))],
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
        rows = [{"round": k, "sparsity": statistics.fmean(x["sparsity"] for x in v)} for k, v in per_round.items()]
        near = _nearest_round(rows, float(target), tol=100) if target is not None else None
        if near is None:
            continue
        seeds = per_round[near["round"]]
        flops = [x.get("flops_fraction") for x in seeds]
        shown = (f"{value_cell(flops, unit='%')} of dense FLOPs" if any(f is not None for f in flops)
                 else "no FLOPs count (block-sparse tickets are timed, not counted)")
        parts.append(f"{r.folder} at {_pct(near['sparsity'])}: {shown}")
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
        rows = [{"round": k, "sparsity": statistics.fmean(x["sparsity"] for x in v)} for k, v in per_round.items()]
        near = _nearest_round(rows, target, tol=100)
        if near is not None:
            seeds = per_round[near["round"]]
            parts.append(f"{r.folder} {value_cell((x['test_acc'] for x in seeds), unit='%')} at "
                         f"{_pct(near['sparsity'])}")
    return f"{_label(runs[0].cell, runs)}: " + "; ".join(parts) + " (the other pruner is not run)" if parts else None


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
    ran = {label: f for label, f in runs.items() if res.seeds("structure", cell, f)}
    rounds = _common_rounds(res, cell, list(ran.values()))
    means = [(label, _seed_means(res, cell, f, rounds)) for label, f in ran.items()]
    return sorted(((label, m) for label, m in means if m), key=lambda lm: -statistics.fmean(lm[1]))


# §5's rewind points, in percent of training: 5% is the recipe's own rewind point (epoch 8 of 160, the paper's),
# the others Structure-LTH's IMP run rewound there (experiments.structure_ablations <method>-rw<p>).
SLTH_REWINDS = {5: "", 10: "-rw10", 20: "-rw20", 50: "-rw50", 100: "-rw100"}
REWIND_METHODS = ("refill", "regroup")
REINIT_BEYOND = 0.30  # "all beat random re-init beyond 30% sparsity"


@claim_row("slth_claims", "Rewinding ablation",
           lambda row: _cells_or_unmapped([(" ".join(RN18_C10), cell_named(*RN18_C10))], lambda cell: [
               Run("structure", cell, f"{m}{suffix}") for m in REWIND_METHODS
               for suffix in (*SLTH_REWINDS.values(), "-reinit")]))
def _rewind_points(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Per method, each rewind point's tickets (mean accuracy over the rounds all points ran), best first, and each
    minus the random re-initialisation of the same round on the rounds beyond 30% sparsity."""
    cell = runs[0].cell
    parts = []
    for m in REWIND_METHODS:
        points = {f"{p}%": f"{m}{suffix}" for p, suffix in SLTH_REWINDS.items()}
        ranked = _ranked(res, cell, points)
        if not ranked:
            continue
        text = ", ".join(f"{label} {value_cell(means, unit='%')}" for label, means in ranked)
        reinit = res.by_seed("structure", cell, f"{m}-reinit")
        gaps = [(label, _round_mean_gaps(res.by_seed("structure", cell, points[label]), reinit,
                                         lambda x: x["sparsity"] > REINIT_BEYOND)) for label, _ in ranked]
        shown = ", ".join(f"{label} {value_cell(g, unit=' points')}" for label, g in gaps if g)
        parts.append(f"{m}: best {ranked[0][0]}; {text} (test accuracy, mean over rounds)" +
                     (f"; minus random re-init beyond {REINIT_BEYOND:.0%} sparsity: {shown}" if shown else ""))
    return f"{_label(cell, runs)}: " + "; ".join(parts) if parts else None


# §5's mask sources of regrouped tickets, as the claim names them; IMP's are the recipe's own regroup run, the others
# the regrouped rounds of an IMP variant that follows Structure-LTH's IMP (experiments.structure_ablations).
MASK_SOURCES = {"IMP": "regroup", "OMP": "regroup-from-omp", "RP": "regroup-from-random_prune",
                "SNIP": "regroup-from-snip", "GraSP": "regroup-from-grasp", "SynFlow": "regroup-from-synflow",
                "ADMM": "regroup-from-admm"}


@claim_row("slth_claims", "Mask-source ablation",
           lambda row: _cells_or_unmapped([(" ".join(RN18_C10), cell_named(*RN18_C10))],
                                          lambda cell: [Run("structure", cell, f) for f in MASK_SOURCES.values()]))
def _mask_sources(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Regrouped tickets of each mask source, best first by accuracy over the rounds all sources ran."""
    ranked = _ranked(res, runs[0].cell, MASK_SOURCES)
    if not ranked:
        return None
    text = ", ".join(f"{label} {value_cell(means, unit='%')}" for label, means in ranked)
    return f"{_label(runs[0].cell, runs)}: regrouped tickets by mask source, best first: {text} (test accuracy, " \
           f"mean over rounds)"


# --- Lottery jackpots ----------------------------------------------------------------------------------------

JP_SEARCH_EPOCHS = 30  # the README's "30(S)": the released configs' search length
JP_CIFAR = [(d, n) for n in ("VGGNet-19", "ResNet-32") for d in ("CIFAR-10", "CIFAR-100")]


def _search(cell: Cell, sparsity: float, suffix: str = "") -> Run:
    """A magnitude-initialised search; without a suffix, the recipe's own, which must search 30 epochs."""
    folder = f"magnitude-s{sparsity:g}" + (f"-{suffix}" if suffix else "")
    needs_30 = not suffix or suffix.startswith(("t", "r"))
    return Run("jackpot", cell, folder, settings=(("jackpot", "epochs", JP_SEARCH_EPOCHS),) if needs_30 else ())


def _jp_r1_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return _unmapped_row(t, row)
    sp = float(row["sparsity"]) / 100
    return {"top1_30s": (_search(cell, sp),), "top1_160s": (_search(cell, sp, "e160"),)}


def _search_acc(runs: tuple[Run, ...], res: Results, key: str = "test_acc") -> SeedMean | None:
    found = runs[0].get(res) if runs else []
    return _ours((m.get(key) for m in found), runs=found if key == "test_acc" else None)


@table("jp_r1", needs=_jp_r1_needs)
def _jackpot_readme(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    return {col: _search_acc(_runs(need), res) for col, need in needs.items()}


JP_R2 = {"30ep": "", "60ep": "e60", "30s10t": "t10"}


def _jp_r2_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return _unmapped_row(t, row)
    # Every README version reports the same searches: each version's row maps to the same runs.
    return {c: (_search(cell, int(c[1:3]) / 100, JP_R2[c[4:]]),) for c in t.value_columns}


@table("jp_r2", needs=_jp_r2_needs)
def _jackpot_imagenet(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    # After weight tuning the reported accuracy is the tuned model's.
    return {col: _search_acc(_runs(need), res, "tuned_test_acc" if col.endswith("t") else "test_acc")
            for col, need in needs.items()}


@claim_row("jp_claims", "VGGNet-19, CIFAR-10: a 10%-weight jackpot",
           lambda row: _cells_or_unmapped(_claim_cells(row), lambda cell: [Run("pretrain", cell),
                                                                           _search(cell, 0.9)]))
def _jackpot_matches_dense(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    dense, jp = runs[0].by_seed(res), runs[1].by_seed(res)
    seeds = sorted(set(dense) & set(jp))
    if not seeds:
        return None
    gap = value_cell([jp[s]["test_acc"] - dense[s]["test_acc"] for s in seeds], unit=" points")
    unchanged = all(jp[s].get("weights_unchanged") for s in seeds)
    return (f"{_label(runs[0].cell, runs)}: jackpot minus dense {gap}; weights unchanged: "
            f"{'yes' if unchanged else 'no'}")


def _jp_cifar(folder: str, file: str) -> Callable[[dict], Need]:
    return lambda row: _cells_or_unmapped([(f"{d} {n}", cell_named(d, n)) for d, n in JP_CIFAR],
                                          lambda cell: [Run("jackpot", cell, folder, file)])


@claim_row("jp_claims", "masks from many pruning criteria overlap", _jp_cifar("overlap-random-s0.9", "overlap.csv"))
def _overlaps(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    """Per cell, each criterion's mean overlap with a random-initialised search's jackpot, highest first."""
    parts = []
    for r in runs:
        per_crit: dict[str, list[float]] = {}
        for data in r.get(res):
            for x in data.get("rows", []):
                if not x["criterion"].startswith("imp"):
                    per_crit.setdefault(x["criterion"], []).append(x["overlap"])
        if per_crit:
            ranked = sorted(per_crit, key=lambda c: -statistics.fmean(per_crit[c]))
            shown = ", ".join(f"{c} {value_cell(per_crit[c], unit='%')}" for c in ranked)
            parts.append(f"{_label(r.cell, runs)}: {shown}")
    return "; ".join(parts) or None


@claim_row("jp_claims", "magnitude-initialised mask gives at least", _jp_cifar("", "cost-s0.9.json"))
def _search_cost(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r in runs:
        factors = [d.get("factor") for d in r.get(res)]
        if factors:
            shown = ("magnitude init never reached random init's accuracy on some seed" if None in factors
                     else value_cell(factors, 1, 2, "x"))
            parts.append(f"{_label(r.cell, runs)}: {shown}")
    return "; ".join(parts) or None


@claim_row("jp_claims", "ResNet-50, ImageNet, 90% sparsity",
           lambda row: _cells_or_unmapped(_claim_cells(row), lambda cell: [_search(cell, 0.9, "e10"),
                                                                           _search(cell, 0.9, "e5")]))
def _short_search(row: dict, res: Results, runs: tuple[Run, ...]) -> str | None:
    parts = []
    for r in runs:
        acc = _search_acc((r,), res)
        if acc is not None:
            parts.append(f"{r.folder.rsplit('-e', 1)[1]} search epochs: {acc:.2f}%")
    return f"{_label(runs[0].cell, runs)} at 90%: " + "; ".join(parts) if parts else None


# Our reading of the undefined short restriction: swaps restricted to a rate r < 1 (experiments.jackpot_searches
# <init>-s<sparsity>-r<r>), beside the recipe's rate 1, on the abstract's VGGNet-19 CIFAR-10 cell at 90%.
RESTRICTION_RATES = (0.5, 0.1)
RESTRICTION_CELL = ("CIFAR-10", "VGGNet-19")


def _restriction_runs(row: dict) -> Need:
    need = _cells_or_unmapped([(" ".join(RESTRICTION_CELL), cell_named(*RESTRICTION_CELL))], lambda cell: [
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
    return f"{_label(runs[0].cell, runs)} at 90%: " + "; ".join(parts) if parts else None


# --- Reference IMP (OpenLTH) -----------------------------------------------------------------------------------

def _openlth_needs(t: PaperTable, row: dict) -> dict[str, Need]:
    cell = cell_of(row, t)
    if cell is None:
        return _unmapped_row(t, row)
    # The grid's vanilla IMP is the reference run the OpenLTH recipe is compared with.
    run = (Run("imp", cell, "full"),)
    return {**{c: run for c in t.value_columns}, "cifar_aug": (Run("imp", cell, "full", dense=True),),
            "init": PaperOnly("weight initialisation is the network definition's (ticketbench.models), not a "
                              "setting of the run")}


def _pruning(imp: dict) -> str:
    return (f"{imp['scope']} magnitude, {imp['rate']:.0%} of the remaining weights per round, layers: policy "
            f"{imp['policy']}")


def _rewinding(imp: dict) -> str:
    return f"to {imp['rewind']}" + ("; the LR schedule resumes there" if imp.get("lr_resume") else
                                    "; the LR schedule restarts")


@table("imp_openlth", needs=_openlth_needs)
def _openlth(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    out: dict[str, Any] = {}
    h = _runs(needs["batch_size"])[0].hparams(res) if _runs(needs["batch_size"]) else None
    if h and "train" in h and "imp" in h:
        tr, imp = h["train"], h["imp"]
        sched = _lr(tr).split("; ", 1)[1].replace(f" of {tr['epochs']} epochs", "")
        out = {"batch_size": tr["batch_size"], "optimizer": f"SGD m {tr['momentum']:g}",
               "lr_schedule": f"{tr['lr']:g}, {sched}", "epochs": tr["epochs"],
               "weight_decay": f"{tr['weight_decay']:g}", "pruning": _pruning(imp), "rewinding": _rewinding(imp),
               "levels": f"{imp['rounds']} rounds (round 0 = dense)"}
    dense = _runs(needs["cifar_aug"])[0].hparams(res) if _runs(needs["cifar_aug"]) else None
    if dense and "data" in dense:
        data = dense["data"]
        out["cifar_aug"] = (("no augmentation" if data.get("no_augment") else "the data layer's augmentation") +
                            f" (data.no_augment {str(bool(data.get('no_augment'))).lower()}), image size " +
                            (str(data["image_size"]) if data.get("image_size") else "the dataset's own"))
    return out


# Which run of the grid follows each paper's IMP conventions, on the paper's own headline cell.
CONVENTION_RUNS = {"OpenLTH": ("imp", ("CIFAR-10", "ResNet-20"), "full"), "PrAC": ("prac", RN20_C10, ""),
                   "Structure-LTH": ("imp", RN18_C10, "structure_lth")}


@_every_column
def _conventions_needs(t: PaperTable, row: dict) -> Need:
    phase, (d, n), folder = CONVENTION_RUNS[row["paper"]]
    return _cells_or_unmapped([(f"{d} {n}", cell_named(d, n))], lambda cell: [Run(phase, cell, folder)])


@table("imp_conventions", needs=_conventions_needs)
def _conventions(t: PaperTable, row: dict, res: Results, needs: dict[str, Need]) -> dict:
    runs = _runs(needs["rounds"])
    h = runs[0].hparams(res) if runs else None
    if not h or "imp" not in h or "train" not in h:
        return {}
    imp, tr, prac = h["imp"], h["train"], h.get("prac")
    epochs = f"{tr['epochs']}"
    if prac is not None:
        # PrAC trains each round on its set for proportionally fewer iterations, and stops early.
        epochs += f" × size(P)/size(D0) ({imp['epoch_scaling']})" + ("" if prac.get("no_early_stop") else
                                                                      ", plus early stop")
    return {"rate_per_round": f"{imp['rate']:.0%} {imp['scope']}", "layers_pruned": f"policy {imp['policy']}",
            "rewind_point": _rewinding(imp).removeprefix("to "), "epochs_per_round": epochs,
            "rounds": str(imp["rounds"])}


# Table id -> its resolver with its own needs: ``RESOLVERS[id](table, row, results)``.
RESOLVERS: dict[str, Resolver] = {i: ours for i in SPECS}
