"""Gather every job's metrics.json into one git-tracked summary (the ``evaluate`` step)."""

from __future__ import annotations

import argparse
import csv
import io as _io
from pathlib import Path

from . import storage
from .artifacts import CORE_KEYS, read_metrics
from .stage import STAGES, Stage

COLUMNS = ("phase", "variant", *CORE_KEYS[:-1])
# Per-layer detail stays in each run's own metrics.json; the git-tracked summary keeps the numbers a diff shows.
BULKY = {"regroup", "layer_sparsity", "group_sparsity", "mask_distances", "epochs", "versions", "fallback_layers"}


def collect(root: str | Path) -> list[dict]:
    """One row per run folder, sorted by path; the per-round rows of multi-round runs are kept."""
    root = Path(root)
    rows = []
    for path in sorted(root.glob("*/*/*/seed*/**/metrics.json")):
        rel = path.relative_to(root).parts
        if rel[0] in ("metrics", "report") or any(p.startswith("round") for p in rel):
            continue
        m = read_metrics(path)
        rounds = [{k: v for k, v in r.items() if k not in BULKY} for r in m.get("rounds", [])]
        rows.append({"phase": rel[0], "variant": "/".join(rel[4:-1]), "path": str(path.parent),
                     **{k: m[k] for k in CORE_KEYS if k != "versions"}, "rounds": rounds,
                     "extra": {k: v for k, v in m.items() if k not in CORE_KEYS and k not in BULKY | {"rounds"}}})
    return rows


@STAGES.register("collect")
class Collect(Stage):
    name = "collect"
    help = "gather every metrics.json under a results folder into summary.json and summary.csv"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", default="results", metavar="DIR")
        parser.add_argument("--out", default="results/metrics", metavar="DIR")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        rows = collect(args.results)
        out = Path(args.out)
        storage.write_json(out / "summary.json", {"runs": rows})
        buf = _io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        storage.write_text(out / "summary.csv", buf.getvalue())
        print(f"{len(rows)} runs -> {out}/summary.json, summary.csv")
        return 0


@STAGES.register("bench-summary")
class BenchSummary(Stage):
    name = "bench-summary"
    help = "turn a pytest-benchmark JSON into a short Markdown table of the measured ratios"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", default="results/bench/benchmarks.json", metavar="FILE")
        parser.add_argument("--out", default="results/bench/summary.md", metavar="FILE")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        data = storage.read_json(args.json)
        lines = ["| benchmark | median (ms) | measured | target |", "|---|---|---|---|"]
        for b in data.get("benchmarks", []):
            x = b.get("extra_info", {})
            measured = ", ".join(f"{k} {v:.3f}" for k, v in x.items()
                                 if k in ("ratio", "speedup", "latency_over_flops", "latency_fraction", "flops_fraction",
                                          "time_saving", "paper_s", "overhead_s", "gemm_fraction", "new_images_per_s")
                                 and isinstance(v, float))
            target = x.get("target", x.get("target_s", ""))
            lines.append(f"| {b['name']} | {1e3 * b['stats']['median']:.2f} | {measured} | {target} |")
        machine = data.get("machine_info", {})
        text = (f"# Benchmarks\n\nMachine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
                f"{machine.get('cpu', {}).get('count', '?')} cores; every ratio is against a baseline timed in the same "
                f"run (one thread).\n\n" + "\n".join(lines) + "\n")
        storage.write_text(args.out, text)
        print(text)
        return 0
