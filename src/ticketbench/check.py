"""``ticketbench check``: accuracy-regression gate of a results folder against baselines pinned from measured spread.

Bitwise determinism holds on one CPU and one library build only: another instruction set (AVX2 vs AVX-512, AMX)
changes the last bits of a convolution, and a few epochs of SGD grow that into a different model. So a baseline is
not a value but a distribution: the mean and standard deviation of each metric over every measured run (seeds
times CPU kernel paths), and the gate asks whether this machine's seed mean is compatible with it.

The rule, per metric of a cell (a run, or one round of a multi-round run, with its seeds averaged):

* ``accuracy`` (test_acc, val_acc) fails when the seed mean falls below the baseline mean by more than
  ``allowed = z * max(sd, floor) * sqrt(1/n_seeds + 1/n_baseline)``: a drop is a regression, a gain is not.
* ``outcome`` (sparsities and fractions that training decides: Structure-LTH sparsities, PrAC trained fraction)
  fails when it moves by more than ``allowed`` either way.
* ``exact`` (sparsities fixed by construction: IMP, PrAC-IMP, jackpot, dense) fails on any change beyond 1e-9.
* A NaN, a missing cell or a damaged file fails; a cell that the baselines do not know is listed as ``new``.

Cells too noisy to flag a 3-point drop on their own (a 90%-sparse jackpot judged on 179 images) keep the wide gate
their noise needs and are also gated through an aggregate: the mean of that metric over every cell of the phase,
whose noise is smaller. The output says, for every row, the smallest drop it flags and which gate it is.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

from . import io
from .errors import ArtifactError, ConfigError
from .report.results import Results
from .stage import STAGES, Stage

SCHEMA = 2
Z = 4.0  # one-sided 3e-5 per row under a normal model: a green machine stays green over ~60 rows
EXACT_TOL = 1e-9
MAIN_DROP = 0.03  # the drop every main accuracy cell must flag on its own
# Metrics the gate reads, each with its kind and the smallest standard deviation it assumes: a handful of runs can
# agree by chance (or exactly, on one machine), and a zero spread must not turn into a zero tolerance.
METRICS = {"test_acc": ("accuracy", 0.005), "val_acc": ("accuracy", 0.005), "sparsity": ("outcome", 0.002),
           "channel_sparsity": ("outcome", 0.002), "prac_trained_fraction": ("outcome", 0.01)}
# Phases whose sparsity is set by the pruning schedule, not by training.
EXACT_SPARSITY = ("pretrain", "imp", "prac", "jackpot")
# The cells that carry the suite's claims: dense models and IMP / PrAC-IMP tickets.
MAIN = ("pretrain", "imp/", "prac")

RULE = (f"rule: a cell's seed mean fails when it falls below the baseline mean by more than "
        f"z*max(sd, floor)*sqrt(1/n_seeds + 1/n_baseline) with z={Z:g} (accuracies), or moves by more than that "
        f"either way (training outcomes: structure sparsities, PrAC trained fraction); sparsities fixed by "
        f"construction must match to {EXACT_TOL:g}; NaN, missing and damaged results fail; unknown cells are "
        f"listed as new. Noisy cells keep a wide gate and are also gated through their phase's aggregate.")


def kind_of(key: str, metric: str) -> str:
    if metric == "sparsity" and key.split("/", 1)[0] in EXACT_SPARSITY:
        return "exact"
    return METRICS[metric][0]


def is_main(key: str) -> bool:
    phase_variant = key.split("#")[0]
    return phase_variant.startswith("pretrain/") or phase_variant.startswith("prac/") or (
        phase_variant.startswith("imp/") and phase_variant.endswith("/full"))


def samples(res: Results) -> dict[tuple[str, str], dict[int, float]]:
    """(cell, metric) -> {seed: value}; a cell is ``phase/dataset/backbone[/variant][#round<r>]``, seed left out."""
    out: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for (phase, d, b, seed, variant), m in sorted(res.runs.items()):
        key = "/".join(p for p in (phase, d, b, variant) if p)
        rows = [(key, m)] + [(f"{key}#round{r['round']}", r) for r in m.get("rounds", [])]
        for k, row in rows:
            for name in METRICS:
                v = row.get(name)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[(k, name)][seed] = float(v)
    return dict(out)


def aggregate_cell(key: str) -> str:
    """The pseudo-cell ``<phase>/*`` that stands for every cell of a phase."""
    return f"{key.split('/', 1)[0]}/*"


def aggregates(got: dict[tuple[str, str], dict[int, float]]) -> dict[tuple[str, str], dict[int, float]]:
    """Per phase and accuracy metric, the mean over its non-main cells, one value per seed that ran every cell."""
    groups: dict[tuple[str, str], list[dict[int, float]]] = defaultdict(list)
    for (key, metric), by_seed in got.items():
        if kind_of(key, metric) == "accuracy" and not is_main(key):
            groups[(aggregate_cell(key), metric)].append(by_seed)
    out = {}
    for agg, cells in groups.items():
        seeds = set.intersection(*(set(c) for c in cells))
        if seeds:
            out[agg] = {s: statistics.fmean(c[s] for c in cells) for s in sorted(seeds)}
    return out


def pin(sample_sets: list[dict[tuple[str, str], dict[int, float]]], sources: list[str]) -> dict:
    """Baselines from several results folders (each seed of each folder is one sample)."""
    pooled: dict[tuple[str, str], list[float]] = defaultdict(list)
    for got in sample_sets:
        for k, by_seed in {**got, **aggregates(got)}.items():
            pooled[k].extend(by_seed[s] for s in sorted(by_seed))
    entries: dict[str, dict] = {}
    for (key, metric), vals in sorted(pooled.items()):
        bad = [v for v in vals if not math.isfinite(v)]
        if bad:
            raise ArtifactError(key, f"{metric} is {bad[0]} in a run to be pinned; fix the run first")
        entries[f"{key}:{metric}"] = {"kind": kind_of(key, metric), "mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                         "n": len(vals), "min": min(vals), "max": max(vals)}
    return {"schema": SCHEMA, "z": Z, "sources": sources, "rule": RULE, "metrics": entries}


def floor_of(name: str) -> float:
    metric = name.rsplit(":", 1)[-1]
    return METRICS[metric][1]


def allowed(entry: dict, n_seeds: int, z: float, floor: float) -> float:
    if entry["kind"] == "exact":
        return EXACT_TOL
    return z * max(entry["sd"], floor) * math.sqrt(1 / n_seeds + 1 / entry["n"])


def compare(baseline: dict, got: dict[tuple[str, str], dict[int, float]]) -> list[dict]:
    if baseline.get("schema") != SCHEMA:
        raise ArtifactError("baselines", f"schema {baseline.get('schema')!r} is not {SCHEMA}; re-pin with "
                            "`make accept-baselines`")
    z = float(baseline.get("z", Z))
    observed = {f"{k}:{m}": v for (k, m), v in {**got, **aggregates(got)}.items()}
    rows = []
    for name, entry in sorted(baseline["metrics"].items()):
        by_seed = observed.get(name)
        cell, metric = name.rsplit(":", 1)
        row = {"metric": name, "kind": entry["kind"], "expected": entry["mean"], "sd": entry["sd"],
               "n_base": entry["n"], "got": None, "n": 0, "allowed": None, "verdict": "missing", "gate": ""}
        if cell.endswith("/*"):  # a phase aggregate
            row["gate"] = "aggregate"
        if by_seed:
            vals = list(by_seed.values())
            row["n"] = len(vals)
            row["got"] = statistics.fmean(vals) if all(math.isfinite(v) for v in vals) else float("nan")
            tol = allowed(entry, len(vals), z, floor_of(name))
            row["allowed"] = tol
            if not math.isfinite(row["got"]):
                row["verdict"] = "NaN"
            elif entry["kind"] == "exact":
                row["verdict"] = "ok" if max(abs(v - entry["mean"]) for v in vals) <= tol else "CHANGED"
            elif entry["kind"] == "accuracy":
                row["verdict"] = "ok" if row["got"] >= entry["mean"] - tol else "DROP"
            else:
                row["verdict"] = "ok" if abs(row["got"] - entry["mean"]) <= tol else "DRIFT"
            if not row["gate"]:
                row["gate"] = gate_of(cell, metric, entry["kind"], tol)
        rows.append(row)
    for name in sorted(set(observed) - set(baseline["metrics"])):
        vals = list(observed[name].values())
        rows.append({"metric": name, "kind": "", "expected": None, "sd": None, "n_base": 0, "n": len(vals),
                     "got": statistics.fmean(vals), "allowed": None, "verdict": "new", "gate": "not pinned"})
    return rows


def gate_of(cell: str, metric: str, kind: str, tol: float) -> str:
    if kind == "exact":
        return "exact"
    if kind != "accuracy":
        return "cell"
    if is_main(cell):
        return "main cell" if tol < MAIN_DROP else "MAIN CELL TOO NOISY"
    return "cell" if tol < MAIN_DROP else f"wide; aggregate {aggregate_cell(cell)}:{metric}"


def flags(row: dict) -> str:
    if row["allowed"] is None:
        return "-"
    if row["kind"] == "exact":
        return "any change"
    pts = 100 * row["allowed"]
    return f"drop > {pts:.2f} pt" if row["kind"] == "accuracy" else f"move > {pts:.2f} pt"


def render(rows: list[dict]) -> str:
    width = max([len("metric")] + [len(r["metric"]) for r in rows])
    head = f"{'metric':<{width}}  {'expected':>9}  {'got':>9}  {'seeds':>5}  {'flags':>15}  {'verdict':<7}  gate"
    lines = [RULE, "", head]
    for r in rows:
        exp = "-" if r["expected"] is None else f"{r['expected']:.4f}"
        got = "-" if r["got"] is None else f"{r['got']:.4f}"
        lines.append(f"{r['metric']:<{width}}  {exp:>9}  {got:>9}  {r['n']:>5}  {flags(r):>15}  {r['verdict']:<7}  {r['gate']}")
    return "\n".join(lines)


FAILING = {"missing", "NaN", "DROP", "DRIFT", "CHANGED"}


@STAGES.register("check")
class Check(Stage):
    name = "check"
    help = ("compare a results folder with baselines pinned from measured spread; exit 1 on a drop past what the "
            "noise allows (--accept re-pins from one or more results folders)")

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", action="append", default=[], metavar="DIR",
                            help="results folder (default: results); with --accept, repeat it to pin from several "
                            "runs, e.g. the smoke grid under each CPU kernel path")
        parser.add_argument("--baselines", default="tests/baselines/smoke.json", metavar="FILE")
        parser.add_argument("--accept", action="store_true",
                            help="write the baselines (mean and spread per metric) from the --results folders")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        folders = args.results or ["results"]
        sets = []
        for folder in folders:
            if not Path(folder).is_dir():
                raise ConfigError("results", folder, "an existing results folder")
            got = samples(Results.scan(folder))
            if not got:
                raise ArtifactError(folder, "holds no runs")
            sets.append(got)
        if args.accept:
            base = pin(sets, [str(f) for f in folders])
            io.write_json(args.baselines, base)
            rows = compare(base, sets[0])
            noisy = [r["metric"] for r in rows if r["gate"] == "MAIN CELL TOO NOISY"]
            print(f"pinned {len(base['metrics'])} metrics from {len(folders)} results folders -> {args.baselines}")
            if noisy:
                print(f"{len(noisy)} main cells cannot flag a {MAIN_DROP:.0%} drop (e.g. {noisy[0]}): run more seeds")
                return 1
            return 0
        if len(sets) > 1:
            raise ConfigError("results", folders, "one results folder to check (several only with --accept)")
        path = Path(args.baselines)
        if not path.is_file():
            raise ArtifactError(path, "no baselines file; pin one with `make accept-baselines`")
        rows = compare(io.read_json(path), sets[0])
        print(render(rows))
        bad = [r for r in rows if r["verdict"] in FAILING]
        new = sum(r["verdict"] == "new" for r in rows)
        print(f"check: {len(rows) - len(bad) - new} rows ok, {len(bad)} failing, {new} new (not pinned)")
        for r in bad[:10]:
            print(f"FAILED {r['metric']}: {r['verdict']} (expected {r['expected']:.4f}, got "
                  f"{'-' if r['got'] is None else format(r['got'], '.4f')}, flags {flags(r)})")
        return 1 if bad else 0
