import functools
import os
import re
import sys

from ticketbench.pipeline import (CHANNEL_CRITERION, PRAC_SETTINGS, RECIPES, STRUCTURE_VARIANTS, dense_run,
                                  planned_runs, recipe_changes, recipe_of, run_changes, structure_run)


envvars:
    "PATH",


# Jobs call the `ticketbench` of the interpreter that runs Snakemake, wherever it is installed.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

GRID = config["grid"]
RESULTS = config.get("results", "results")
THREADS = config.get("threads", 1)
GPU = config.get("gpu", 0)


wildcard_constraints:
    dataset="|".join(map(re.escape, GRID["datasets"])),
    backbone="|".join(map(re.escape, GRID["backbones"])),
    seed=r"\d+",
    variant=r"full|structure_lth|group_aware|random_prune|random_prune_layerwise|random_reinit|prac-from-[^/]+|"
    rf"full-(?:{'|'.join(PRAC_SETTINGS)})",
    init="magnitude|random",
    sparsity=r"0\.\d+",
    # a structure method, or an ablation of it (experiments.structure_ablations)
    method=rf"(?:refill|refill_plus|regroup)(?:-(?:reinit|rho0\.\d+|{CHANNEL_CRITERION}))?",
    paper="|".join(RECIPES),
    # a PrAC ablation or LT setting (experiments.prac_ablations, experiments.prac_settings)
    ablation=rf"no_cep|no_early_stop|ef\d+|{'|'.join(PRAC_SETTINGS)}",
    search=r"[et]\d+",


def cell(phase, *parts):
    """``results/<phase>/{dataset}/{backbone}/seed{seed}/<parts...>`` as a Snakemake pattern."""
    return os.path.join(RESULTS, phase, "{dataset}", "{backbone}", "seed{seed}", *parts)


def config_flags():
    """The config files this run merged, in Snakemake's order, as flags for the ticketbench CLI.

    The Snakefile's ``configfile:`` comes first and ``--configfile`` files override it, although
    ``workflow.configfiles`` lists the command-line files first.
    """
    cli = [str(f) for f in workflow.overwrite_configfiles or []]
    files = [str(f) for f in workflow.configfiles if str(f) not in cli] + cli
    return " ".join(f"--config {f}" for f in files)


def data_root(wildcards):
    """Where a dataset's files live: ``data_roots`` maps dataset names to folders."""
    root = (config.get("data_roots") or {}).get(wildcards.dataset)
    return f"--data-root {root}" if root else ""


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
                flags.extend([flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)])
    return " ".join(flags)


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
    """What a job's run folder changes (pipeline.run_changes); ``folder``: the wildcard that names it, or a function
    of the wildcards."""
    return lambda wildcards: run_changes(phase, folder(wildcards) if callable(folder) else wildcards[folder])


def search_folder(wildcards):
    """A jackpot search's folder (experiments.jackpot_searches): ``<init>-s<sparsity>-<search>``."""
    return f"{wildcards.init}-s{wildcards.sparsity}-{wildcards.search}"


@functools.cache
def _dense_run(paper, dataset, backbone):
    return dense_run(config, paper, dataset, backbone)


def dense(paper):
    """Input function: the dense run a paper's stage starts from, the base one or the paper's own (README)."""

    def get(wildcards):
        name = _dense_run(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
        return cell("pretrain", *([name] if name else []), "metrics.json").format(**wildcards)

    return get


BASELINES = ("random_prune", "random_prune_layerwise", "random_reinit")
STRUCTURE_IMP = STRUCTURE_VARIANTS[0]


def imp_paper(wildcards):
    """Structure-LTH's own IMP runs take its recipe; full IMP, its random baselines and transfer take PrAC's, and
    full-<setting> PrAC's LT setting (pipeline.recipe_of)."""
    return recipe_of("imp", wildcards.variant)


def prac_paper(wildcards):
    """A PrAC ablation keeps PrAC's recipe; an LT setting (low, warmup) takes its own."""
    return recipe_of("prac", wildcards.ablation)


def get_imp_reference(wildcards):
    """The random baselines follow the masks of the full-data IMP run of the same cell."""
    if wildcards.variant in BASELINES:
        return cell("imp", "full", "metrics.json").format(**wildcards)
    return []


def get_transfer_source(wildcards):
    """prac-from-<source>: the PrAC run of the source backbone on the same dataset and seed."""
    if wildcards.variant.startswith("prac-from-"):
        src = wildcards.variant[len("prac-from-"):]
        return cell("prac", "metrics.json").format(dataset=wildcards.dataset, backbone=src, seed=wildcards.seed)
    return []


def imp_flags(wildcards, input):
    if wildcards.variant in BASELINES:
        return f"--variant {wildcards.variant} --reference {os.path.dirname(input.reference)}"
    if wildcards.variant in STRUCTURE_VARIANTS:
        return f"--variant {wildcards.variant}"
    if wildcards.variant.startswith("prac-from-"):
        return f"--subsets {os.path.dirname(input.subsets)} --evaluate-tickets"
    return ""


def get_final_output():
    """Every run of the config (pipeline.planned_runs, which `ticketbench report --coverage` reads too)."""
    return list(planned_runs(config))
