"""``ticketbench check``: accuracy-regression check of a results folder against pinned baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import io
from .errors import ArtifactError
from .report.results import Results
from .stage import STAGES, Stage

# What is pinned, with its default absolute tolerance. Latency is not pinned: it is a property of the
# machine, and its targets live in the pytest-benchmark suite as ratios.
TOLERANCES = {"test_acc": 0.03, "val_acc": 0.03, "sparsity": 1e-6, "prac_trained_fraction": 0.05,
              "channel_sparsity": 1e-6}


def observed(res: Results) -> dict[str, dict[str, float]]:
    """Every pinnable metric of every run (and of every round of multi-round runs), keyed by run path."""
    out: dict[str, dict[str, float]] = {}
    for (phase, d, b, seed, variant), m in sorted(res.runs.items()):
        key = "/".join(p for p in (phase, d, b, f"seed{seed}", variant) if p)
        rows = [(key, m)] + [(f"{key}#round{r['round']}", r) for r in m.get("rounds", [])]
        for k, row in rows:
            vals = {name: float(row[name]) for name in TOLERANCES if isinstance(row.get(name), (int, float))}
            if vals:
                out[k] = vals
    return out


def compare(baseline: dict, got: dict[str, dict[str, float]]) -> list[dict]:
    rows = []
    for key, metrics in sorted(baseline["metrics"].items()):
        for name, spec in sorted(metrics.items()):
            expected, tol = spec["value"], spec.get("tol", TOLERANCES.get(name, 0.0))
            value = got.get(key, {}).get(name)
            ok = value is not None and abs(value - expected) <= tol
            rows.append({"metric": f"{key}:{name}", "expected": expected, "got": value, "tolerance": tol,
                         "verdict": "ok" if ok else ("missing" if value is None else "DRIFT")})
    return rows


def render(rows: list[dict]) -> str:
    width = max([len("metric")] + [len(r["metric"]) for r in rows])
    lines = [f"{'metric':<{width}}  {'expected':>10}  {'got':>10}  {'tolerance':>9}  verdict"]
    for r in rows:
        got = "-" if r["got"] is None else f"{r['got']:.6f}"
        lines.append(f"{r['metric']:<{width}}  {r['expected']:>10.6f}  {got:>10}  {r['tolerance']:>9.2g}  {r['verdict']}")
    return "\n".join(lines)


@STAGES.register("check")
class Check(Stage):
    name = "check"
    help = "compare a results folder with pinned baseline metrics; exit 1 past tolerance (--accept re-pins)"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", default="results", metavar="DIR")
        parser.add_argument("--baselines", default="tests/baselines/smoke.json", metavar="FILE")
        parser.add_argument("--accept", action="store_true", help="write the current metrics as the new baselines")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        got = observed(Results.scan(args.results))
        if args.accept:
            if not got:
                raise ArtifactError(args.results, "holds no runs to pin")
            io.write_json(args.baselines, {"schema": 1, "results": str(args.results),
                                           "metrics": {k: {n: {"value": v, "tol": TOLERANCES[n]} for n, v in m.items()}
                                                       for k, m in got.items()}})
            print(f"pinned {sum(len(m) for m in got.values())} metrics of {len(got)} runs -> {args.baselines}")
            return 0
        if not Path(args.baselines).is_file():
            raise ArtifactError(args.baselines, "no baselines file; create one with `ticketbench check --accept`")
        rows = compare(io.read_json(args.baselines), got)
        print(render(rows))
        bad = [r for r in rows if r["verdict"] != "ok"]
        print(f"{len(rows) - len(bad)} passed, {len(bad)} failed")
        return 1 if bad else 0


