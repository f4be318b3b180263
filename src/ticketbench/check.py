"""``ticketbench check``: accuracy-regression gate of a results folder against baselines pinned from measured spread.

Bitwise determinism holds on one CPU and one library build only: another instruction set (AVX2 vs AVX-512, AMX)
changes the last bits of a convolution, and a few epochs of SGD grow that into a different model. So a baseline is
not a value but a distribution: the mean and standard deviation of each metric over every measured run (seeds
times CPU kernel paths), and the gate asks whether this machine's seed mean is compatible with it.

The rule, per metric of a cell (a run, or one round of a multi-round run, with its seeds averaged):

* ``accuracy`` (test_acc, val_acc) fails when the seed mean falls below the baseline mean by more than
  ``allowed = z * max(sd, se_test, floor) * sqrt(1/n_seeds + 1/n_baseline)``: a drop is a regression, a gain is
  not. ``sd`` is the baseline's spread; ``se_test = sqrt(p * (1 - p) / n_test)`` is the standard error of an
  accuracy ``p`` (the baseline mean) measured on ``n_test`` test examples, the size of the test set that each
  run records with its per-example results (``test_correct``); ``floor`` is a constant. The spread of a few
  runs on one fixed test set can come out far smaller than what that test set can resolve, so the test set's
  own sampling error is the least spread the gate assumes. val_acc, and runs that predate ``test_correct``,
  have only the constant floor.
* ``outcome`` (sparsities and fractions that training decides: Structure-LTH sparsities, PrAC trained fraction)
  fails when it moves by more than ``z * max(sd, floor) * sqrt(1/n_seeds + 1/n_baseline)`` either way.
* ``exact`` (sparsities fixed by construction: IMP, PrAC-IMP, jackpot, dense) fails on any change beyond 1e-9.
* A missing cell fails, and so does a cell that lacks a seed: one the other cells of the folder ran, or one of
  the grid's ``grid.seeds`` (``--configfile``). A cell that the baselines do not know is listed as ``new``.
* Damaged results fail before any row is computed, in one line naming the file: a metrics.json outside the results
  contract (``artifacts.METRICS_SCHEMA``: an accuracy of 1.5, NaN, a string, a missing key), a round's own file
  that disagrees with its run's row, or weights that a metrics file names by ``state_hash`` and that are gone.

Cells too noisy to flag a 3-point drop on their own (a 90%-sparse jackpot judged on 179 images) keep the wide gate
their noise needs and are also gated through an aggregate: the mean of that metric over every cell of the phase,
whose noise is smaller.

The output is one table: cell, metric, baseline (mean ± sd, n), now (seed mean, n), allowed drop (and which of
sd, test set or floor set it), status (ok / FAIL / new / "better than expected: check", an accuracy above its
baseline by more than the allowance a drop has: not a failure, but a number to look at) and the gate or the reason
for a failure; then the rule, the failures by name, and a one-line summary.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from . import storage
from .errors import ArtifactError, ConfigError
from .report.results import Results
from .report.stats import TOO_GOOD
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
FAILING = {"missing", "NaN", "DROP", "DRIFT", "CHANGED"}

RULE = (f"rule: an accuracy fails when its seed mean falls below the baseline mean by more than "
        f"z*max(sd, se_test, floor)*sqrt(1/n_seeds + 1/n_baseline) with z={Z:g}, sd the baseline's spread over "
        f"seeds and CPU kernel paths, se_test = sqrt(p*(1-p)/n_test) the standard error of the baseline accuracy p "
        f"on the n_test test examples the runs record (test_acc only; none recorded: no se_test), floor "
        f"{100 * METRICS['test_acc'][1]:g} pt; a training outcome (structure sparsities, floor "
        f"{100 * METRICS['sparsity'][1]:g} pt; PrAC trained fraction, floor "
        f"{100 * METRICS['prac_trained_fraction'][1]:g} pt) fails when it "
        f"moves by more than z*max(sd, floor)*sqrt(1/n_seeds + 1/n_baseline) either way; sparsities fixed by "
        f"construction must match to {EXACT_TOL:g}; NaN, missing and damaged results fail; unknown cells are "
        f"listed as new. Noisy cells keep a wide gate and are also gated through their phase's aggregate. "
        f"Values in %, allowances in percentage points.")


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


def tested_on(res: Results) -> dict[str, int]:
    """cell -> the number of test examples its runs were scored on (the smallest over seeds); a cell is left out
    when no seed recorded its test set (``test_correct``), as runs written before it did not."""
    out: dict[str, int] = {}
    for (phase, d, b, _seed, variant), m in sorted(res.runs.items()):
        key = "/".join(p for p in (phase, d, b, variant) if p)
        rows = [(key, m)] + [(f"{key}#round{r['round']}", r) for r in m.get("rounds", [])]
        for k, row in rows:
            rec = row.get("test_correct")
            n = rec.get("n") if isinstance(rec, dict) else None
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                out[k] = min(n, out.get(k, n))
    # An aggregate averages cells scored on the same test examples, so its test-set error is no smaller than theirs.
    for k, n in list(out.items()):
        if not is_main(k):
            agg = aggregate_cell(k)
            out[agg] = min(n, out.get(agg, n))
    return out


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


def pin(sample_sets: list[dict[tuple[str, str], dict[int, float]]], sources: list[str],
        size_sets: list[dict[str, int]] | None = None) -> dict:
    """Baselines from several results folders (each seed of each folder is one sample); test_acc entries also keep
    ``n_test``, the test set's size, where the runs recorded it."""
    pooled: dict[tuple[str, str], list[float]] = defaultdict(list)
    for got in sample_sets:
        for k, by_seed in {**got, **aggregates(got)}.items():
            pooled[k].extend(by_seed[s] for s in sorted(by_seed))
    n_test: dict[str, int] = {}
    for sizes in size_sets or []:
        for k, n in sizes.items():
            n_test[k] = min(n, n_test.get(k, n))
    entries: dict[str, dict] = {}
    for (key, metric), vals in sorted(pooled.items()):
        bad = [v for v in vals if not math.isfinite(v)]
        if bad:
            raise ArtifactError(key, f"{metric} is {bad[0]} in a run to be pinned; fix the run first")
        entries[f"{key}:{metric}"] = {"kind": kind_of(key, metric), "mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                         "n": len(vals), "min": min(vals), "max": max(vals)}
        if metric == "test_acc" and key in n_test:
            entries[f"{key}:{metric}"]["n_test"] = n_test[key]
    return {"schema": SCHEMA, "z": Z, "sources": sources, "rule": RULE, "metrics": entries}


def floor_of(name: str) -> float:
    metric = name.rsplit(":", 1)[-1]
    return METRICS[metric][1]


def accuracy_se(p: float, n_test: int | None) -> float | None:
    """The standard error of an accuracy ``p`` measured on ``n_test`` examples (None when the size is unknown)."""
    if not n_test:
        return None
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n_test)


def spread(entry: dict, floor: float, n_test: int | None = None) -> tuple[float, str]:
    """The per-run standard deviation the gate assumes, and what set it: ``sd``, ``test set`` or ``floor``."""
    # p is the baseline mean, not this run's: a run that regressed towards 50% must not widen its own gate.
    se = accuracy_se(entry["mean"], n_test) if entry["kind"] == "accuracy" else None
    terms = [(entry["sd"], "sd"), (floor, "floor")] + ([(se, "test set")] if se is not None else [])
    return max(terms, key=lambda t: t[0])


def allowed(entry: dict, n_seeds: int, z: float, floor: float, n_test: int | None = None) -> float:
    if entry["kind"] == "exact":
        return EXACT_TOL
    return z * spread(entry, floor, n_test)[0] * math.sqrt(1 / n_seeds + 1 / entry["n"])


def compare(baseline: dict, got: dict[tuple[str, str], dict[int, float]],
            sizes: dict[str, int] | None = None, expected_seeds: Iterable[int] | None = None) -> list[dict]:
    """One row per pinned or observed metric; ``sizes`` (from :func:`tested_on`) gives each cell's test set size,
    else the baseline's ``n_test`` does, else test_acc has only the constant floor."""
    if baseline.get("schema") != SCHEMA:
        raise ArtifactError("baselines", f"schema {baseline.get('schema')!r} is not {SCHEMA}; re-pin with "
                            "`make accept-baselines`")
    z = float(baseline.get("z", Z))
    observed = {f"{k}:{m}": v for (k, m), v in {**got, **aggregates(got)}.items()}
    # Every seed the folder ran must be in every cell: a seed deleted from one cell, or an accuracy deleted from one
    # seed's file, would otherwise pass as a smaller n with a wider gate.
    seeds = set(expected_seeds) if expected_seeds is not None else {s for v in got.values() for s in v}
    rows = []
    for name, entry in sorted(baseline["metrics"].items()):
        by_seed = observed.get(name)
        cell, metric = name.rsplit(":", 1)
        row = {"metric": name, "cell": cell, "name": metric, "kind": entry["kind"], "expected": entry["mean"],
               "sd": entry["sd"], "n_base": entry["n"], "got": None, "n": 0, "allowed": None, "bound": "",
               "verdict": "missing", "gate": ""}
        if cell.endswith("/*"):  # a phase aggregate
            row["gate"] = "aggregate"
        if by_seed:
            vals = list(by_seed.values())
            row["n"] = len(vals)
            row["got"] = statistics.fmean(vals) if all(math.isfinite(v) for v in vals) else float("nan")
            n_test = ((sizes or {}).get(cell) or entry.get("n_test")) if metric == "test_acc" else None
            tol = allowed(entry, len(vals), z, floor_of(name), n_test)
            row["allowed"] = tol
            row["bound"] = "" if entry["kind"] == "exact" else spread(entry, floor_of(name), n_test)[1]
            lacking = sorted(seeds - set(by_seed))
            if lacking:
                row["verdict"] = "missing seed " + ",".join(map(str, lacking))
            elif not math.isfinite(row["got"]):
                row["verdict"] = "NaN"
            elif entry["kind"] == "exact":
                row["change"] = max(abs(v - entry["mean"]) for v in vals)
                row["verdict"] = "ok" if row["change"] <= tol else "CHANGED"
            elif entry["kind"] == "accuracy":
                # The mirror of a drop (MLPerf's reference convergence points flag both): a gain past the same
                # allowance is more likely a changed test set, a leak or a wrong baseline than a better model.
                row["verdict"] = ("DROP" if row["got"] < entry["mean"] - tol else
                                  TOO_GOOD if row["got"] > entry["mean"] + tol else "ok")
            else:
                row["verdict"] = "ok" if abs(row["got"] - entry["mean"]) <= tol else "DRIFT"
            if not row["gate"]:
                row["gate"] = gate_of(cell, metric, entry["kind"], tol)
        rows.append(row)
    for name in sorted(set(observed) - set(baseline["metrics"])):
        vals = list(observed[name].values())
        cell, metric = name.rsplit(":", 1)
        rows.append({"metric": name, "cell": cell, "name": metric, "kind": "", "expected": None, "sd": None,
                     "n_base": 0, "n": len(vals), "got": statistics.fmean(vals), "allowed": None, "bound": "",
                     "verdict": "new", "gate": "not pinned"})
    for row in rows:
        row["status"] = "FAIL" if row["verdict"].split()[0] in FAILING else row["verdict"]  # "missing seed 2"
    return rows


def missing_artifacts(res: Results) -> list[str]:
    """The weights each metrics file (and each round row) describes by its ``state_hash``, where the file is gone
    or holds other weights: a results folder whose checkpoints were lost must not pass on its JSON alone."""
    problems = []
    for (phase, d, b, seed, variant), m in sorted(res.runs.items()):
        folder = res.folder(phase, (d, b), seed, variant)
        described = [(folder, m.get("state_hash"))] + [(folder / f"round{r['round']}", r.get("state_hash"))
                                                       for r in m.get("rounds", [])]
        for where, digest in described:
            if digest is None:
                continue
            path = where / "model.safetensors"
            if not path.is_file():
                problems.append(f"{path}: missing (its metrics record weights with state_hash {digest[:12]})")
            elif storage.read_metadata(path).get("state_hash") != digest:
                problems.append(f"{path}: holds other weights than its metrics record (state_hash {digest[:12]})")
    return problems


def gate_of(cell: str, metric: str, kind: str, tol: float) -> str:
    if kind == "exact":
        return "exact"
    if kind != "accuracy":
        return "cell"
    if is_main(cell):
        return "main cell" if tol < MAIN_DROP else "MAIN CELL TOO NOISY"
    return "cell" if tol < MAIN_DROP else f"wide; aggregate {aggregate_cell(cell)}:{metric}"


def flags(row: dict) -> str:
    """The allowance in points, and what set it (sd, test set or floor); ``±`` where a move either way fails."""
    if row["allowed"] is None:
        return "-"
    if row["kind"] == "exact":
        return "exact"
    pts = f"{100 * row['allowed']:.2f}"
    return f"{pts if row['kind'] == 'accuracy' else '±' + pts} ({row['bound']})"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def note(row: dict) -> str:
    if row["status"] == "FAIL":
        return f"{row['verdict']}; {row['gate']}" if row["gate"] else row["verdict"]
    return row["gate"]


COLUMNS = ("cell", "metric", "baseline (mean ± sd, n)", "now (mean, n)", "allowed drop", "status", "gate")


def render(rows: list[dict]) -> str:
    """The table, one row per metric of a cell, then the rule."""
    table = [COLUMNS]
    for r in rows:
        base = "-" if r["expected"] is None else f"{_pct(r['expected'])} ± {_pct(r['sd'])} ({r['n_base']})"
        now = "-" if r["got"] is None else f"{_pct(r['got'])} ({r['n']})"
        table.append((r["cell"], r["name"], base, now, flags(r), r["status"], note(r)))
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS) - 1)]
    right = {2, 3}  # numbers line up on the right
    lines = ["  ".join([*(f"{v:>{w}}" if i in right else f"{v:<{w}}" for i, (v, w) in enumerate(zip(line, widths))),
                        line[-1]]).rstrip() for line in table]
    return "\n".join([*lines, "", RULE])


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
        parser.add_argument("--configfile", dest="configfiles", action="append", default=[], metavar="FILE",
                            help="the grid config the results come from, layered on config/config.yaml as `snakemake "
                            "--configfile FILE` layers it: every cell must hold each of its grid.seeds (default: "
                            "each seed found anywhere in the folder)")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        folders = args.results or ["results"]
        expected = None
        if args.configfiles:
            from .config import DEFAULT_CONFIG, load_config_files

            expected = (load_config_files([DEFAULT_CONFIG, *args.configfiles]).get("grid") or {}).get("seeds")
            if not isinstance(expected, list) or not all(isinstance(x, int) for x in expected):
                raise ConfigError("grid.seeds", expected, "a list of seeds in the --configfile files")
        sets, sizes = [], []
        for folder in folders:
            if not Path(folder).is_dir():
                raise ConfigError("results", folder, "an existing results folder")
            res = Results.scan(folder)
            for line in res.notes:
                print(f"note: {line}")
            got = samples(res)
            if not got:
                raise ArtifactError(folder, "holds no runs")
            lost = missing_artifacts(res)
            if lost:
                more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
                raise ArtifactError(folder, f"damaged results: {lost[0]}{more}")
            sets.append(got)
            sizes.append(tested_on(res))
        if args.accept:
            base = pin(sets, [str(f) for f in folders], sizes)
            storage.write_json(args.baselines, base)
            rows = compare(base, sets[0], sizes[0])
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
        rows = compare(storage.read_json(path), sets[0], sizes[0], expected)
        print(render(rows))
        bad = [r for r in rows if r["status"] == "FAIL"]
        new = sum(r["status"] == "new" for r in rows)
        good = [r for r in rows if r["status"] == TOO_GOOD]
        if bad or good:
            print()
        # Repeated by name under the rule: in a CI log of ~70 rows, the failures are what a reader scrolls for.
        for r in bad[:10]:
            change = f", largest change {r['change']:.1e}" if r.get("change") is not None else ""
            print(f"FAILED {r['metric']}: {r['verdict']} (baseline {_pct(r['expected'])}, now {_pct(r['got'])}, "
                  f"allowed {flags(r)}{change})")
        if len(bad) > 10:
            print(f"... and {len(bad) - 10} more FAIL rows in the table")
        for r in good:
            print(f"CHECK {r['metric']}: {TOO_GOOD} (baseline {_pct(r['expected'])}, now {_pct(r['got'])}, above "
                  f"the baseline by more than the {flags(r)} a drop may be)")
        print(f"check: {'FAIL' if bad else 'pass'}: {len(rows) - len(bad) - new - len(good)} ok, {len(bad)} FAIL, "
              f"{len(good)} better than expected (check them), {new} new (not pinned), of {len(rows)} rows")
        return 1 if bad else 0
