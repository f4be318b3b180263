"""The paper grid in miniature (`make paper-mini`, config/paper-mini.yaml layered on config/paper.yaml).

Dry, always: the miniature's DAG has every job kind (rule x run folder, numbers folded), every dataset and every
backbone of the paper grid's DAG, as Snakemake plans them; every model job's SLURM request, planned through the
profile, is what the config's `cluster:` block asks for; docs/paper-mini.md lists exactly the paper-table cells
the miniature leaves out.

On its results, where `make paper-mini` has run (`.ci/run` runs it first and sets TICKETBENCH_REQUIRE_PAPER_MINI=1,
which turns the skip into a failure): Snakemake has nothing left to do, every run meets the results contract, and
the report fills every paper-table cell the miniature maps, so that no cell reads "not run" but the listed ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from ticketbench.cluster import cluster_resources
from ticketbench.config import load_config_files
from ticketbench.runs import job_kind

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{BIN}:{os.environ['PATH']}"}
PAPER = ["config/paper.yaml"]
MINI = ["config/paper.yaml", "config/paper-mini.yaml"]
RESULTS = ROOT / "results" / "paper-mini"
TABLES = ROOT / "config" / "paper_tables"
LEFT_OUT = ROOT / "docs" / "paper-mini.md"


def _config(files: list[str]) -> dict:
    return load_config_files([str(ROOT / "config" / "config.yaml"), *(str(ROOT / f) for f in files)])


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=600)


def jobs(log: str) -> list[tuple[str, str, dict[str, str]]]:
    """(rule, first output, resources) of every job a dry run prints."""
    out = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", log):
        m = re.match(r"(?:local)?rule (\w+):\n", block)
        if not m:
            continue
        output = re.search(r"^\s+output: ([^,\n]+)", block, re.M)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        out.append((m.group(1), output.group(1).strip() if output else "", pairs))
    return out


@lru_cache(maxsize=None)
def dry_run(files: tuple[str, ...], *extra: str) -> str:
    """The log of `snakemake -n -p --forceall`: every job of the DAG with its shell command."""
    r = _snakemake("-n", "-p", "--forceall", *extra, "--configfile", *files)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout + r.stderr


def dag(files: tuple[str, ...], *extra: str) -> list[tuple[str, str, dict[str, str]]]:
    found = jobs(dry_run(files, *extra))
    assert found, dry_run(files, *extra)[-3000:]
    return found


def kinds(files: tuple[str, ...]) -> dict[str, list[str]]:
    root = _config(list(files)).get("results", "results")
    out: dict[str, list[str]] = {}
    for rule, output, _ in dag(files):
        out.setdefault(job_kind(rule, output, root) if output else rule, []).append(output)
    return out


def cells(files: tuple[str, ...]) -> set[tuple[str, str]]:
    root = _config(list(files)).get("results", "results")
    parts = (os.path.relpath(output, root).split(os.sep) for _, output, _ in dag(files) if output)
    return {(p[1], p[2]) for p in parts if len(p) > 3 and p[3].startswith("seed")}


def test_the_miniature_runs_every_job_kind_dataset_and_backbone_of_the_paper_grid():
    paper, mini = kinds(tuple(PAPER)), kinds(tuple(MINI))
    assert len(paper) >= 60, sorted(paper)  # the paper grid's ~62 kinds, evaluate and report included
    assert sorted(set(paper) - set(mini)) == [], "job kinds of the paper grid that the miniature never runs"
    assert set(mini) == set(paper)
    assert {d for d, _ in cells(tuple(MINI))} == {d for d, _ in cells(tuple(PAPER))} == {
        "cifar10", "cifar100", "tiny-imagenet", "imagenet"}
    assert {b for _, b in cells(tuple(MINI))} == {b for _, b in cells(tuple(PAPER))}
    # The miniature is the fewest jobs that do this, not the grid: one seed, three full cells.
    assert sum(map(len, mini.values())) < 130 and _config(MINI)["grid"]["seeds"] == [0]


def test_every_model_job_asks_slurm_for_what_the_config_says():
    """Planned through the SLURM profile (no cluster needed for a dry run): the resources of every job that runs a
    model, per rule, are those of the config's cluster block (docs/cluster.md "On a SLURM cluster")."""
    config = _config(MINI)
    planned = dag(tuple(MINI), "--profile", "workflow/profiles/slurm")
    model_rules = {"pretrain", "pretrain_paper", "prac", "prac_ablation", "imp", "instability", "jackpot",
                   "jackpot_search",
                   "jackpot_overlap", "structure", "timing"}
    seen = set()
    for rule, output, res in planned:
        if rule not in model_rules:
            continue
        # pretrain_paper, prac_ablation and jackpot_search are `use rule` copies: they ask what their parent asks.
        parent = {"pretrain_paper": "pretrain", "prac_ablation": "prac", "jackpot_search": "jackpot"}.get(rule, rule)
        want = cluster_resources(config, parent)
        for key, value in want.items():
            assert str(res.get(key)) == str(value), (rule, output, key, res.get(key), value)
        seen.add(rule)
    assert seen == model_rules


def test_the_gpu_script_runs_the_miniature_s_cifar10_jobs_as_snakemake_plans_them():
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("gpu_run", ROOT / "tests" / "gpu" / "run.py")
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    planned = gpu.cifar10_jobs(dry_run(tuple(MINI)))
    committed = json.loads(gpu.JOBS_FILE.read_text())
    # The same jobs with the same commands; Snakemake's dry run may list independent jobs in another order from one
    # run to the next, so the order is checked on its own below.
    by_output = lambda jobs: sorted(jobs, key=lambda j: j["output"])  # noqa: E731
    assert by_output(committed) == by_output(planned), "stale: python tests/gpu/run.py --prepare"
    outputs = {j["output"] for j in committed}
    assert len(committed) > 40 and all(set(j["inputs"]) & {o for o in outputs} <= outputs for j in committed)
    # Every input a job reads that another listed job makes comes earlier in the list the GPU script runs.
    order = {j["output"]: k for k, j in enumerate(committed)}
    assert all(order[i] < order[j["output"]] for j in committed for i in j["inputs"] if i in order)


def _left_out_markdown() -> str:
    from ticketbench.report import left_out_markdown

    return left_out_markdown(_config(MINI), TABLES, [*MINI])


def test_docs_list_exactly_the_cells_the_miniature_leaves_out():
    assert LEFT_OUT.read_text() == _left_out_markdown(), (
        "docs/paper-mini.md is stale: ticketbench report --coverage --left-out --configfile config/paper.yaml "
        "--configfile config/paper-mini.yaml > docs/paper-mini.md")


# --- on the miniature's results ---------------------------------------------------------------------------------

def _require_results() -> None:
    if (RESULTS / "report" / "report.json").is_file():
        return
    if os.environ.get("TICKETBENCH_REQUIRE_PAPER_MINI") == "1":
        pytest.fail(f"{RESULTS} holds no finished miniature: `make paper-mini` must run first")
    pytest.skip("run `make paper-mini` first")


def test_the_miniature_finished_every_job():
    _require_results()
    r = _snakemake("-n", "--configfile", *MINI)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Nothing to be done" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    for rule, output, _ in dag(tuple(MINI)):
        assert (ROOT / output).exists(), (rule, output)


def test_the_miniature_s_results_meet_the_contract_and_fill_every_cell_it_maps():
    _require_results()
    from ticketbench.report.coverage import MAPPED, coverage, row_key
    from ticketbench.report.needs import load_tables
    from ticketbench.report.paper import ours
    from ticketbench.report.results import Results

    res = Results.scan(RESULTS)  # validates every metrics.json against the contract
    assert res.notes == []
    # PrAC's round 0 trained again under its early stop, which fired within the miniature's epochs (the code paths
    # its settings are there for)
    from ticketbench.artifacts import read_metrics

    prac = read_metrics(RESULTS / "prac" / "cifar10" / "cifar_resnet20" / "seed0" / "metrics.json")
    assert prac["round0"]["trained"] and prac["round0"]["stopped_early"], prac["round0"]
    assert {b for _, b in res.cells()} == {b for _, b in cells(tuple(PAPER))}  # every backbone has results
    tables = {t.id: t for t in load_tables(TABLES)}
    mapped = [c for c in coverage(_config(MINI), TABLES) if c.status == MAPPED]
    assert len(mapped) >= 40  # the one full cell's, at what its 2 rounds reach
    empty = []
    for c in mapped:
        t = tables[c.table]
        row = next(r for r in t.rows if row_key(t, r) == c.row)
        if ours(t, row, res).get(c.column) is None:
            empty.append(f"{c.table} | {c.row} | {c.column}")
    assert empty == [], "cells the miniature maps but its report leaves 'not run'"
