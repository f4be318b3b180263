import functools
import os
import re
import sys

from ticketbench.cluster import cluster_resources
from ticketbench.recipes import RECIPES, dense_run, recipe_changes, resolve_recipe
from ticketbench.runs import (STRUCTURE_IMP, field_patterns, folder_pattern, imp_run, planned_runs, recipe_of,
                              run_changes, structure_run, structure_source)

envvars:
    "PATH",


# Jobs call the `ticketbench` of the interpreter that runs Snakemake, wherever it is installed.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

GRID = config["grid"]
RESULTS = config.get("results", "results")
THREADS = config.get("threads", 1)

# On a cluster only the jobs that run a model are submitted; these read files and write tables.
localrules:
    all,
    evaluate,
    report,
    jackpot_cost,
    prac_savings,


def resources_of(rule):
    """A rule's cluster resources (config ``cluster:``): GPUs, memory, runtime, partition, account, sbatch flags."""
    return cluster_resources(config, rule)


wildcard_constraints:
    dataset="|".join(map(re.escape, GRID["datasets"])),
    backbone="|".join(map(re.escape, GRID["backbones"])),
    seed=r"\d+",
    variant=folder_pattern("imp"),
    init=field_patterns()["init"],
    sparsity=field_patterns()["sparsity"],
    method=folder_pattern("structure", GRID["datasets"]),
    paper="|".join(RECIPES),
    ablation=folder_pattern("prac"),
    search=field_patterns()["search"],

def cell(phase, *parts):
    """``results/<phase>/{dataset}/{backbone}/seed{seed}/<parts...>`` as a Snakemake pattern."""
    return os.path.join(RESULTS, phase, "{dataset}", "{backbone}", "seed{seed}", *parts)


# Each value on a shell line is a list of arguments or a single one, written {x:q} in the command, and Snakemake
# quotes each element (shlex.quote): no config value, path or name reaches the shell as shell code. A value goes
# with its flag as one argument (--key=value), so that a value starting with "-" stays a value.
# tests/test_safe_to_share.py fails on any unquoted placeholder in a shell command.


def config_flags():
    """The config files this run merged, in Snakemake's order, as arguments of the ticketbench CLI.

    The Snakefile's ``configfile:`` comes first and ``--configfile`` files override it, although
    ``workflow.configfiles`` lists the command-line files first.
    """
    cli = [str(f) for f in workflow.overwrite_configfiles or []]
    files = [str(f) for f in workflow.configfiles if str(f) not in cli] + cli
    return [f"--config={f}" for f in files]


def data_root(wildcards):
    """Where a dataset's files live: ``data_roots`` maps dataset names to folders."""
    root = (config.get("data_roots") or {}).get(wildcards.dataset)
    return [f"--data-root={root}"] if root else []


def folder_of(name):
    """Param function: the run folder of the input ``name`` (its metrics.json's folder)."""
    return lambda wildcards, input: os.path.dirname(input[name])


@functools.cache
def _recipe_changes(paper, dataset, backbone):
    return recipe_changes(config, paper, dataset, backbone)


def _paper(paper, wildcards):
    """A rule's paper: a name, None (the grid's base recipe) or a function of the job's wildcards."""
    return paper(wildcards) if callable(paper) else paper


def _changes(wildcards, paper, run):
    """The recipe's changes for this cell, and on top of them what the job's run folder changes (an ablation)."""
    changes = _recipe_changes(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
    extra = run(wildcards) if run else {}
    return {b: {**(changes.get(b) or {}), **(extra.get(b) or {})} for b in {*changes, *extra}}


def get_recipe_flags(wildcards, blocks, paper=None, run=None):
    """The paper's recipe for this cell (``recipes:``, ``overrides:``) beyond the top-level blocks, and what the run
    folder changes, as CLI flags."""
    changes = _changes(wildcards, paper, run)
    flags = []
    for block in blocks:
        for key, value in (changes.get(block) or {}).items():
            flag = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):
                flags.extend([flag] if value else [])
            else:
                flags.append(f"{flag}={','.join(map(str, value)) if isinstance(value, list) else value}")
    return flags


def recipe_flags(*blocks, paper=None, run=None):
    return functools.partial(get_recipe_flags, blocks=blocks, paper=paper, run=run)


def get_recipe(wildcards, blocks, paper=None, run=None):
    """The config blocks a stage reads: as a rule param, editing them re-runs exactly the jobs that use them."""
    over = _changes(wildcards, paper, run)
    return {b: config.get(b) if not isinstance(config.get(b), dict) else {**config[b], **(over.get(b) or {})}
            for b in ("data", "threads", *blocks) if b in config or b in over}


def recipe(*blocks, paper=None, run=None):
    return functools.partial(get_recipe, blocks=blocks, paper=paper, run=run)


def folder_changes(phase, folder):
    """What a job's run folder changes (runs.run_changes); ``folder``: the wildcard that names it, or a function
    of the wildcards."""
    return lambda wildcards: run_changes(phase, folder(wildcards) if callable(folder) else wildcards[folder])


def search_folder(wildcards):
    """A jackpot search's folder (experiments.jackpot_searches): ``<init>-s<sparsity>-<search>``."""
    return f"{wildcards.init}-s{wildcards.sparsity}-{wildcards.search}"


@functools.cache
def _dense_run(paper, dataset, backbone):
    return dense_run(config, paper, dataset, backbone)


def overlap_imp(wildcards):
    """The full IMP run whose mask joins the jackpot's overlap table, only when it pruned the same dense network
    (PrAC's recipe may train another); masks of different weights cannot be compared weight by weight."""
    if _dense_run("jackpot", wildcards.dataset, wildcards.backbone) != _dense_run("prac", wildcards.dataset,
                                                                                   wildcards.backbone):
        return []
    return cell("imp", "full", "metrics.json").format(**wildcards)


def dense(paper):
    """Input function: the dense run a paper's stage starts from, the base one or the paper's own (docs/pipeline.md)."""

    def get(wildcards):
        name = _dense_run(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
        return cell("pretrain", *([name] if name else []), "metrics.json").format(**wildcards)

    return get


def imp_paper(wildcards):
    """Structure-LTH's own IMP runs and those following it take its recipe; full IMP, the variants that follow it
    and transfer take PrAC's, and full-<setting> PrAC's LT setting (runs.recipe_of)."""
    return recipe_of("imp", wildcards.variant)


def prac_paper(wildcards):
    """A PrAC ablation keeps PrAC's recipe; an LT setting (low, warmup) takes its own."""
    return recipe_of("prac", wildcards.ablation)


@functools.cache
def _resolved(paper, dataset, backbone):
    return resolve_recipe(config, paper, dataset, backbone)


def imp_changes(wildcards):
    """What an IMP folder changes (runs.run_changes): a variant following Structure-LTH's IMP rewinds where its
    recipe has Structure-LTH's IMP rewind."""
    resolved = _resolved(imp_paper(wildcards), wildcards.dataset, wildcards.backbone)
    return run_changes("imp", wildcards.variant, resolved)


def get_imp_reference(wildcards):
    """A variant that follows another IMP run's masks (random baselines, pruning at init, ...) reads that run of the
    same cell: full IMP, or Structure-LTH's own (runs.imp_run)."""
    reference = imp_run(wildcards.variant)[1]
    return cell("imp", reference, "metrics.json").format(**wildcards) if reference else []


def get_transfer_source(wildcards):
    """prac-from-<source>: the PrAC run of the source backbone on the same dataset and seed."""
    if wildcards.variant.startswith("prac-from-"):
        src = wildcards.variant[len("prac-from-"):]
        return cell("prac", "metrics.json").format(dataset=wildcards.dataset, backbone=src, seed=wildcards.seed)
    return []


def imp_flags(wildcards, input):
    if wildcards.variant.startswith("prac-from-"):
        return ["--subsets", os.path.dirname(input.subsets), "--evaluate-tickets"]
    variant, reference = imp_run(wildcards.variant)
    if reference:
        return ["--variant", variant, "--reference", os.path.dirname(input.reference)]
    return [] if variant == "full" else ["--variant", variant]


def get_structure_imp(wildcards):
    """The IMP run whose rounds a structure run structures: Structure-LTH's own, one rewound elsewhere or one of
    another mask source (runs.structure_source); a transfer structures the source dataset's tickets."""
    kind, source = structure_source(wildcards.method)
    folder = source if kind == "imp" else STRUCTURE_IMP
    return cell("imp", folder, "metrics.json").format(**wildcards)


def get_structure_transfer(wildcards):
    """<method>-transfer-<dataset>: the <method> run of the same backbone and seed on that dataset."""
    kind, source = structure_source(wildcards.method)
    if kind != "transfer":
        return []
    method = structure_run(wildcards.method)[0]
    return cell("structure", method, "metrics.json").format(dataset=source, backbone=wildcards.backbone,
                                                            seed=wildcards.seed)


# What a structure folder changes (an ablation of experiments.structure_ablations).
STRUCTURE_ABLATION = folder_changes("structure", "method")


def structure_overrides(wildcards):
    """The recipe's flags and, for a transfer, where its masks come from: a flag of its own in the shell command
    would change every structure job's command, which Snakemake reruns on."""
    flags = get_recipe_flags(wildcards, ("structure", "train"), paper="structure_lth", run=STRUCTURE_ABLATION)
    source = get_structure_transfer(wildcards)
    return [*flags, "--transfer-from", os.path.dirname(source)] if source else flags


def get_final_output():
    """Every run of the config (runs.planned_runs, which `ticketbench report --coverage` reads too)."""
    return list(planned_runs(config))
