"""``ticketbench report --coverage``: for every cell of every paper table, the job that fills it.

Dry and torch-free: it needs no results, only the config, merged as `snakemake --configfile` merges it. The runs a
cell needs are the report's own declaration (:func:`.paper.needs_of`); the runs a config plans are the workflow's
own targets (:func:`ticketbench.runs.planned_runs`). A cell is

* mapped: every run it needs is planned, with the settings the paper's column assumes (where the cell stands on our
  reading of an undefined term, the detail says so and names the deviation that states it);
* recipe/config: a fact of the paper with nothing to run (a model size, where a claim is stated);
* unmapped: anything else, with the reason.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..recipes import dense_run, resolve_recipe
from ..runs import parse, planned_runs, recipe_of, run_changes, structure_source
from .needs import PaperOnly, PaperTable, Reading, Run, Unmapped, load_tables
from .paper import needs_of

MAPPED, PAPER_ONLY, UNMAPPED = "mapped", "recipe/config", "unmapped"
# How far below a cell's sparsity a plan's last round may stop and still fill it: the report reads the round
# nearest the cell's sparsity within 2.5 points at most (Table A2's transfers, whose refill moves the sparsity).
SPARSITY_TOLERANCE = 2.5


@dataclass(frozen=True)
class CellCoverage:
    table: str
    row: str
    column: str
    status: str
    detail: str


def row_key(t: PaperTable, row: dict) -> str:
    return ", ".join(f"{k}={row.get(k)}" for k in t.key_columns)


class Planner:
    """The runs one config plans, and where each needed run would be."""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.root = config.get("results", "results")
        self.seeds = list(config["grid"]["seeds"])
        self.planned = planned_runs(config)

    def paths(self, run: Run, seed: int) -> str:
        d, b = run.cell
        if run.dense:
            name = dense_run(self.config, recipe_of(run.phase, run.folder), d, b)
            return os.path.join(self.root, "pretrain", d, b, f"seed{seed}", *([name] if name else []), "metrics.json")
        return os.path.join(self.root, run.phase, d, b, f"seed{seed}", *run.parts())

    def check(self, run: Run) -> str | None:
        """None when the config plans ``run`` on every seed with the settings it needs, else why not."""
        missing = [self.paths(run, s) for s in self.seeds if self.paths(run, s) not in self.planned]
        if run.dense:  # the report finds the dense run through the run that started from it
            missing += [p for p in (self.paths(dataclasses.replace(run, dense=False), s) for s in self.seeds)
                        if p not in self.planned]
        if missing:
            return f"{_seeds(missing[0], missing)} is not planned: {self._hint(run)}"
        if run.sparsity is not None:
            reach, why = self.reach(run)
            if reach < run.sparsity - SPARSITY_TOLERANCE:
                path = self.paths(run, self.seeds[0])
                return (f"{_seeds(path, [self.paths(run, s) for s in self.seeds])} stops at {reach:.2f}% sparsity "
                        f"({why}); the cell reads the round at {run.sparsity:.2f}%")
        if run.settings:
            d, b = run.cell
            recipe = resolve_recipe(self.config, recipe_of(run.phase, run.folder), d, b)
            for block, changes in run_changes(run.phase, run.folder, recipe).items():
                recipe[block] = {**recipe.get(block, {}), **changes}
            for block, key, value in run.settings:
                got = recipe.get(block, {}).get(key)
                if got != value:
                    where = "does not set it (the stage's default applies)" if got is None else f"sets {got!r}"
                    return (f"the paper's column needs {block}.{key}={value!r} in {self.job(run)}; its recipe "
                            f"{where}")
        return None

    def job(self, run: Run) -> str:
        paths = [self.paths(run, s) for s in self.seeds]
        return f"{self.planned.get(paths[0], '?')} {_seeds(paths[0], paths)}"

    def reach(self, run: Run) -> tuple[float, str]:
        """The sparsity (percent) of a run's last round as its recipe plans it, and how: a transfer's rounds are its
        source's."""
        d, b = run.cell
        if run.phase == "structure" and structure_source(run.folder)[0] == "transfer":
            d = structure_source(run.folder)[1]
        imp = resolve_recipe(self.config, recipe_of(run.phase, run.folder), d, b)["imp"]
        rounds, rate = int(imp.get("rounds", 0)), float(imp.get("rate", 0))
        return 100 * (1 - (1 - rate) ** rounds), f"{rounds} rounds of {rate:.0%} on {d}/{b}, imp.rounds"

    def _hint(self, run: Run) -> str:
        d, b = run.cell
        grid = self.config["grid"]
        folder = run.folder
        kind, fields = parse(run.phase, folder) or (None, {})
        key = kind.key if kind else ""
        transfer = key == "structure_transfers"
        if transfer and d in grid["datasets"] and b in grid["backbones"]:  # its cells may lie outside grid.only
            return f"experiments.structure_transfers.{folder} does not list {d}/{b}"
        cells = {(dd, bb) for dd in grid["datasets"] for bb in grid["backbones"]
                 if bb in (grid.get("only") or {}).get(dd, [bb])}
        if (d, b) not in cells:
            if b in (grid.get("dense") or {}).get(d, []):
                return f"{d}/{b} runs its dense runs only (grid.dense)"
            return f"{d}/{b} is not a cell of the grid (grid.datasets, grid.backbones, grid.only)"
        if run.phase == "prac":
            return ("experiments.prac is off" if not folder else
                    f"experiments.prac_settings.{folder} or experiments.prac_ablations.{folder} does not list {d}/{b}")
        if run.phase == "imp":
            if "setting" in fields:
                return f"experiments.prac_settings.{fields['setting']} does not list {d}/{b}"
            if kind and kind.variant != "{variant}" and key == "imp_runs":
                return f"experiments.imp_runs or a structure ablation of it does not run {folder} on {d}/{b}"
            return (f"experiments.imp_baselines, imp_variants, imp_runs or structure_methods does not run {folder} "
                    f"on {d}/{b}")
        if run.phase == "structure":
            if folder == "timing":
                return "experiments.structure_methods lacks refill or regroup"
            return f"experiments.{key or 'structure_methods'} does not run {folder} on {d}/{b}"
        if run.phase == "jackpot":
            if key == "jackpot_searches":
                return f"experiments.jackpot_searches.{folder} does not list {d}/{b}"
            return "experiments.jackpot_sparsities or jackpot_random_sparsities lacks its sparsity"
        return "the grid does not run it"


def _seeds(first: str, paths: list[str]) -> str:
    """``.../seed{0,1,2}/...`` for the same path over seeds."""
    seeds = [p.split(os.sep) for p in paths]
    i = next(k for k, part in enumerate(seeds[0]) if part.startswith("seed") and part[4:].isdigit())
    if len(seeds) == 1:
        return first
    return os.sep.join([*seeds[0][:i], "seed{" + ",".join(s[i][4:] for s in seeds) + "}", *seeds[0][i + 1:]])


def coverage(config: dict[str, Any], tables_dir: str | Path) -> list[CellCoverage]:
    planner = Planner(config)
    out = []
    for t in load_tables(tables_dir):
        for row in t.rows:
            for column, need in needs_of(t, row).items():
                if isinstance(need, PaperOnly):
                    out.append(CellCoverage(t.id, row_key(t, row), column, PAPER_ONLY, need.why))
                elif isinstance(need, Unmapped):
                    out.append(CellCoverage(t.id, row_key(t, row), column, UNMAPPED, need.why))
                else:
                    why = next((w for r in need if (w := planner.check(r))), None)
                    jobs = "; ".join(planner.job(r) for r in need)
                    if isinstance(need, Reading):
                        jobs = f"{reading(need)}: {jobs}"
                    out.append(CellCoverage(t.id, row_key(t, row), column, UNMAPPED if why else MAPPED, why or jobs))
    return out


def reading(need: Reading) -> str:
    return f"our reading (see Deviations: {need.deviation})"


def summary(cells: list[CellCoverage]) -> str:
    count = {s: sum(c.status == s for c in cells) for s in (MAPPED, PAPER_ONLY, UNMAPPED)}
    return (f"{len(cells)} paper table cells: {count[MAPPED]} mapped to jobs, {count[PAPER_ONLY]} recipe/config "
            f"(facts of the paper with nothing to run), {count[UNMAPPED]} unmapped")
