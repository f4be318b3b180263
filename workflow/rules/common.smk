import functools
import itertools
import os
import re
import sys

from ticketbench.pipeline import PAPERS, dense_run, recipe_changes


envvars:
    "PATH",


# Jobs call the `ticketbench` of the interpreter that runs Snakemake, wherever it is installed.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

GRID = config["grid"]
RESULTS = config.get("results", "results")
EXP = config.get("experiments") or {}
THREADS = config.get("threads", 1)
GPU = config.get("gpu", 0)
TRANSFER = [(t["source"], t["target"]) for t in EXP.get("transfer", [])]


wildcard_constraints:
    dataset="|".join(map(re.escape, GRID["datasets"])),
    backbone="|".join(map(re.escape, GRID["backbones"])),
    seed=r"\d+",
    variant=r"full|structure_lth|group_aware|random_prune|random_prune_layerwise|random_reinit|prac-from-[^/]+",
    init="magnitude|random",
    sparsity=r"0\.\d+",
    method="refill|refill_plus|regroup",
    paper="|".join(PAPERS),


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


def get_recipe_flags(wildcards, blocks, paper=None):
    """The paper's recipe for this cell (``recipes:``, ``overrides:``) beyond the top-level blocks, as CLI flags."""
    changes = _recipe_changes(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
    flags = []
    for block in blocks:
        for key, value in (changes.get(block) or {}).items():
            flag = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):
                flags.extend([flag] if value else [])
            else:
                flags.extend([flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)])
    return " ".join(flags)


def recipe_flags(*blocks, paper=None):
    return functools.partial(get_recipe_flags, blocks=blocks, paper=paper)


def get_recipe(wildcards, blocks, paper=None):
    """The config blocks a stage reads: as a rule param, editing them re-runs exactly the jobs that use them."""
    over = _recipe_changes(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
    return {b: config.get(b) if not isinstance(config.get(b), dict) else {**config[b], **(over.get(b) or {})}
            for b in ("data", "threads", *blocks) if b in config or b in over}


def recipe(*blocks, paper=None):
    return functools.partial(get_recipe, blocks=blocks, paper=paper)


@functools.cache
def _dense_run(paper, dataset, backbone):
    return dense_run(config, paper, dataset, backbone)


def dense(paper):
    """Input function: the dense run a paper's stage starts from, the base one or the paper's own (README)."""

    def get(wildcards):
        name = _dense_run(_paper(paper, wildcards), wildcards.dataset, wildcards.backbone)
        return cell("pretrain", *([name] if name else []), "metrics.json").format(**wildcards)

    return get


def grid():
    """Every (dataset, backbone, seed) cell of the grid; ``grid.only`` narrows a dataset's backbones."""
    only = GRID.get("only") or {}
    for d, b, s in itertools.product(GRID["datasets"], GRID["backbones"], GRID["seeds"]):
        if b in only.get(d, [b]):
            yield d, b, s


BASELINES = ("random_prune", "random_prune_layerwise", "random_reinit")
# Structure-LTH runs its own IMP (its policy and rewind point); refill, refill+, regroup and timing read it.
STRUCTURE_IMP = "structure_lth"
STRUCTURE_VARIANTS = (STRUCTURE_IMP, "group_aware")


def imp_paper(wildcards):
    """Structure-LTH's own IMP runs take its recipe; full IMP, its random baselines and transfer take PrAC's."""
    return "structure_lth" if wildcards.variant in STRUCTURE_VARIANTS else "prac"


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
    out = []
    for d, b, s in grid():
        fmt = dict(dataset=d, backbone=b, seed=s)
        # The base dense run even where every paper trains its own: the report's dense accuracy of a cell is its.
        out.append(cell("pretrain", "metrics.json").format(**fmt))
        variants = ["full", *EXP.get("imp_baselines", []), *EXP.get("imp_variants", [])]
        if EXP.get("structure_methods"):
            variants.append(STRUCTURE_IMP)
        for v in variants:
            out.append(cell("imp", v, "metrics.json").format(**fmt))
        for src, tgt in TRANSFER:
            if tgt == b:
                out.append(cell("imp", f"prac-from-{src}", "metrics.json").format(**fmt))
        if EXP.get("prac", True):
            out.append(cell("prac", "savings.json").format(**fmt))
        for sp in EXP.get("jackpot_sparsities", []):
            out.append(cell("jackpot", f"magnitude-s{sp}", "metrics.json").format(**fmt))
        for sp in EXP.get("jackpot_random_sparsities", []):
            out.append(cell("jackpot", f"cost-s{sp}.json").format(**fmt))
            for init in ("random", "magnitude"):
                out.append(cell("jackpot", f"overlap-{init}-s{sp}", "overlap.csv").format(**fmt))
        for m in EXP.get("structure_methods", []):
            out.append(cell("structure", m, "metrics.json").format(**fmt))
        if {"refill", "regroup"} <= set(EXP.get("structure_methods", [])):
            out.append(cell("structure", "timing", "timing.json").format(**fmt))
    return out
