"""``ticketbench decide``: add seeds where a claim is undecided and could be decided, within a time budget.

Each round reads the report's claims (decided at the plan's level, :mod:`.sequential`), asks every undecided claim
how many seeds would decide it (``seeds needed``), and gives each grid cell the most its claims ask for, capped by
``--max-seeds``. The extra seeds run through Snakemake, the same rules as any run, with a config overlay listing them
(``<results>/decide.yaml``) and the new seeds' outputs of those cells as targets, so nothing else of the grid is
touched. A round costs what the cell's seeds cost so far, read from the jobs' own benchmark files
(``benchmarks/...``, Snakemake's ``benchmark:``), else from each run's ``wall_seconds``; seeds are added one per
cell in turn until the next would overrun what is left of the budget. The report is then regenerated and looked at
again, until every claim is decided, no undecided claim can gain from more seeds, the plan's looks are spent, or the
budget is.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import sequential, storage
from .config import DEFAULT_CONFIG, load_config_files
from .errors import ConfigError
from .report.stats import HOLDS, FAILS, INCONCLUSIVE, LEVEL
from .runs import planned_runs
from .stage import STAGES, Stage

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$")
Cell = tuple[str, str]


def parse_budget(text: str) -> float:
    """``90s``, ``60m``, ``1.5h`` or plain seconds, as seconds."""
    m = DURATION.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError("budget", text, "a positive duration such as 3600, 90s, 60m or 1.5h")
    return float(m.group(1)) * {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def _cell(text: str) -> Cell:
    d, b = text.split(" x ")
    return d, b


def seeds_of(results: Path, cell: Cell) -> list[int]:
    """The seeds a cell has dense runs for: every claim of the cell reads them."""
    folder = results / "pretrain" / cell[0] / cell[1]
    return sorted(int(p.name[4:]) for p in folder.glob("seed*") if p.name[4:].isdigit() and
                  (p / "metrics.json").is_file())


def seed_cost(results: Path, benchmarks: Path, cell: Cell) -> tuple[float, str]:
    """Seconds one more seed of ``cell`` costs on one core: the mean over its seeds of the summed job times, from
    the benchmark files Snakemake wrote, else from the runs' own ``wall_seconds``."""
    d, b = cell
    per_seed = []
    for s in seeds_of(results, cell):
        files = [*benchmarks.glob(f"*/{d}/{b}/seed{s}.tsv"), *benchmarks.glob(f"*/{d}/{b}/seed{s}.*.tsv"),
                 *benchmarks.glob(f"*/{d}/{b}/seed{s}/**/*.tsv")]
        total = 0.0
        for f in files:
            with f.open() as fh:
                total += sum(float(row["s"]) for row in csv.DictReader(fh, delimiter="\t") if row.get("s"))
        if total:
            per_seed.append(total)
    if per_seed:
        return statistics.fmean(per_seed), "benchmark files"
    for s in seeds_of(results, cell):
        walls = [storage.read_json(p).get("wall_seconds") or 0.0
                 for p in results.glob(f"*/{d}/{b}/seed{s}/**/metrics.json") if "round" not in p.parent.name]
        if walls:
            per_seed.append(float(sum(walls)))
    return (statistics.fmean(per_seed), "the runs' wall_seconds") if per_seed else (math.nan, "nothing recorded")


@dataclass
class Round:
    added: dict[Cell, list[int]]  # the seeds each cell gets
    seconds: float  # the estimated wall time


def plan_round(want: dict[Cell, int], have: dict[Cell, list[int]], cost: dict[Cell, float], left: float,
               cores: int) -> Round:
    """Seeds to add, one per cell in turn (cells needing the most first), while the estimate fits in ``left``
    seconds: each cell's jobs run ``cores`` at a time, so a round takes about its summed cost over the cores."""
    added: dict[Cell, list[int]] = {c: [] for c in want}
    spent = 0.0
    order = sorted(want, key=lambda c: (len(have[c]) - want[c], c))
    progress = True
    while progress:
        progress = False
        for c in order:
            if len(have[c]) + len(added[c]) >= want[c]:
                continue
            step = cost[c] / cores
            if spent + step > left:
                continue
            taken = set(have[c]) | set(added[c])
            added[c].append(next(s for s in range(10 ** 6) if s not in taken))
            spent += step
            progress = True
    return Round({c: s for c, s in added.items() if s}, spent)


def targets(config: dict[str, Any], added: dict[Cell, list[int]]) -> list[str]:
    """The outputs of the added seeds of each cell (the grid's planned outputs, nothing else)."""
    keep = {(d, b, s) for (d, b), seeds in added.items() for s in seeds}
    root = Path(config.get("results", "results"))
    out = []
    for path in planned_runs(config):
        parts = Path(path).relative_to(root).parts
        if len(parts) >= 4 and parts[3].startswith("seed") and parts[3][4:].isdigit() and \
                (parts[1], parts[2], int(parts[3][4:])) in keep:
            out.append(path)
    return out


def snakemake(configfiles: list[str], overlay: Path, outputs: list[str], cores: int, extra: list[str]) -> int:
    """Run the outputs through the workflow's own rules; an argument list, so no value reaches a shell."""
    cmd = [sys.executable, "-m", "snakemake", *outputs, "--cores", str(cores), "--rerun-incomplete",
           "--configfile", *configfiles, str(overlay), *extra]
    # The rules call `ticketbench`: the one beside this interpreter, whatever PATH the caller had.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.call(cmd, env=env)


def look(results: Path, tables: str, plan: sequential.Plan, dry: bool = False) -> list[dict]:
    """Regenerate the report of ``results`` (its claims at the plan's level) and return the claims; ``dry``: only
    evaluate the claims, writing nothing."""
    if dry:
        from .report.paper import evaluate
        from .report.results import Results

        return evaluate(Results.scan(results), plan.level)
    from .report import build_report

    sequential.write(results, plan)  # the report reads the plan's level from here
    return build_report(results, tables, results / "report")["claims"]


def counts(rows: list[dict]) -> dict[str, int]:
    return {v: sum(r["verdict"].startswith(v) for r in rows) for v in (HOLDS, FAILS, INCONCLUSIVE)}


def wanted(rows: list[dict], have: dict[Cell, list[int]], max_seeds: int) -> dict[Cell, int]:
    """The seeds each cell should reach: the most its undecided claims ask for, capped; cells already there left
    out."""
    want: dict[Cell, int] = {}
    for r in rows:
        if r["verdict"].startswith(INCONCLUSIVE) and r.get("seeds_to_decide"):
            cell = _cell(r["cell"])
            want[cell] = max(want.get(cell, 0), min(int(r["seeds_to_decide"]), max_seeds))
    return {c: n for c, n in want.items() if n > len(have[c])}


def decide(*, configfiles: list[str], budget: float, looks: int, max_seeds: int, cores: int, tables: str,
           dry: bool = False, benchmarks: Path = Path("benchmarks"),
           runner: Callable[[list[str], Path, list[str], int], int] | None = None,
           clock: Callable[[], float] = time.monotonic, say: Callable[[str], None] = print) -> dict:
    """The loop of the module's docstring; returns the plan's record with why it stopped."""
    config = load_config_files([DEFAULT_CONFIG, *configfiles])
    results = Path(config.get("results", "results"))
    start = clock()
    plan = sequential.read(results)
    if plan is None:
        plan = sequential.Plan(alpha=round(1 - LEVEL, 10), max_looks=looks)
    elif plan.max_looks != looks:
        raise ConfigError("looks", looks, f"{plan.max_looks}, the number {results / sequential.PLAN_FILE} fixed "
                          f"before its first look (a correction cannot change after the data were seen)")
    if len(plan.looks) >= plan.max_looks:
        raise ConfigError("looks", looks, f"more than the {len(plan.looks)} looks already taken "
                          f"({results / sequential.PLAN_FILE}): the plan is spent")
    while True:
        rows = look(results, tables, plan, dry)
        cells = sorted({_cell(r["cell"]) for r in rows if r["cell"] != "-"})
        have = {c: seeds_of(results, c) for c in cells}
        c = counts(rows)
        plan.looks.append({"look": len(plan.looks) + 1, "elapsed_seconds": round(clock() - start, 1),
                           "seeds": {f"{d} x {b}": len(have[(d, b)]) for d, b in cells}, **c})
        say(f"look {len(plan.looks)}/{plan.max_looks} at {100 * plan.level:.2f}%: {c[HOLDS]} hold, {c[FAILS]} do "
            f"not, {c[INCONCLUSIVE]} inconclusive (" +
            ", ".join(f"{d} x {b}: {len(have[(d, b)])} seeds" for d, b in cells) + ")")
        want = wanted(rows, have, max_seeds)
        if not c[INCONCLUSIVE]:
            stop = "every claim is decided"
            break
        if not want:
            stop = f"no undecided claim can gain from more seeds (or each would need more than --max-seeds {max_seeds})"
            break
        if len(plan.looks) >= plan.max_looks:
            stop = f"the plan's {plan.max_looks} looks are spent"
            break
        cost = {c: seed_cost(results, benchmarks, c) for c in want}
        unknown = [f"{d} x {b}" for (d, b), (s, _) in cost.items() if not math.isfinite(s)]
        if unknown:
            raise ConfigError("results", str(results), f"runs whose cost is recorded (benchmark files or "
                              f"wall_seconds); none for {', '.join(unknown)}")
        left = budget - (clock() - start)
        rnd = plan_round(want, have, {c: s for c, (s, _) in cost.items()}, left, cores)
        if not rnd.added:
            cheapest = min(s for s, _ in cost.values()) / cores
            stop = (f"budget spent: the next seed (~{cheapest / 60:.1f} min) does not fit the {max(left, 0) / 60:.1f} "
                    f"min left")
            break
        say("round: " + "; ".join(f"{d} x {b} + seeds {', '.join(map(str, s))} (wants {want[(d, b)]}, "
                                  f"~{cost[(d, b)][0] / 60:.1f} core-min each from {cost[(d, b)][1]})"
                                  for (d, b), s in rnd.added.items()) +
            f"; estimated {rnd.seconds / 60:.1f} min of the {left / 60:.1f} left")
        seeds = sorted({*config["grid"]["seeds"], *(s for v in [*rnd.added.values(), *have.values()] for s in v)})
        outputs = targets({**config, "grid": {**config["grid"], "seeds": seeds}}, rnd.added)
        if dry:
            say(f"dry run: {len(outputs)} outputs, e.g. {outputs[0]}; nothing run or recorded")
            stop = "dry run"
            break
        sequential.write(results, plan)
        overlay = results / "decide.yaml"
        storage.write_text(overlay, "# Written by `ticketbench decide`: the grid's seeds with those it added; its "
                           "targets were the added seeds of the undecided cells only.\n"
                           f"grid:\n  seeds: [{', '.join(map(str, seeds))}]\n")
        code = (runner or _default_runner)(configfiles, overlay, outputs, cores)
        if code != 0:
            # No look at a partial round: the finished seeds stay, and the next call's first look reads them.
            stop = f"Snakemake failed (exit {code}); the seeds it finished are kept for the next look"
            break
    plan.looks[-1]["stopped"] = stop
    if not dry:
        sequential.write(results, plan)
    elapsed = clock() - start
    say(f"decide: stopped after {elapsed / 60:.1f} min: {stop}")
    return {**plan.to_json(), "stopped": stop, "elapsed_seconds": elapsed}


def _default_runner(configfiles: list[str], overlay: Path, outputs: list[str], cores: int) -> int:
    return snakemake(configfiles, overlay, outputs, cores, [])


@STAGES.register("decide")
class Decide(Stage):
    name = "decide"
    help = ("add seeds where a claim is undecided and could be decided, through Snakemake, and look again, within "
            "a time budget (a correction for the repeated looks)")

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--budget", required=True, metavar="TIME",
                            help="wall time the added seeds may take: 3600, 90s, 60m or 1.5h")
        parser.add_argument("--configfile", dest="configfiles", action="append", default=[], metavar="FILE",
                            help=f"a config file layered on {DEFAULT_CONFIG}, as for `snakemake --configfile`; "
                            f"repeat to layer more")
        parser.add_argument("--looks", type=int, default=3, metavar="K",
                            help="the most looks at the report, the first included, fixed before the first: every "
                            "claim is then decided at 1 - 0.05/K (default: 3)")
        parser.add_argument("--max-seeds", type=int, default=20, metavar="N",
                            help="the most seeds a cell may reach (default: 20)")
        parser.add_argument("--cores", type=int, default=None, metavar="N",
                            help="cores Snakemake may use (default: this machine's)")
        parser.add_argument("--tables", default="config/paper_tables", metavar="DIR", help="the papers' tables")
        parser.add_argument("--dry-run", action="store_true",
                            help="say what the first round would add and run, and record nothing")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        if args.looks < 1:
            raise ConfigError("looks", args.looks, "an integer of at least 1")
        if args.max_seeds < 2:
            raise ConfigError("max-seeds", args.max_seeds, "an integer of at least 2")
        cores = args.cores or os.cpu_count() or 1
        if cores < 1:
            raise ConfigError("cores", cores, "an integer of at least 1")
        decide(configfiles=args.configfiles, budget=parse_budget(args.budget), looks=args.looks,
               max_seeds=args.max_seeds, cores=cores, tables=args.tables, dry=args.dry_run)
        return 0
