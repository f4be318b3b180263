import functools
import itertools
import os
import re
import sys


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
    variant=r"full|random_prune|random_reinit|prac-from-[^/]+",
    init="magnitude|random",
    sparsity=r"0\.\d+",
    method="refill|refill_plus|regroup",


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


def override_flags(wildcards, *blocks):
    """Per-dataset recipe changes (``overrides: {cifar100: {train: {weight_decay: 2e-4}}}``) as CLI flags."""
    flags = []
    for block in blocks:
        for key, value in ((config.get("overrides") or {}).get(wildcards.dataset, {}).get(block) or {}).items():
            flag = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):
                flags.extend([flag] if value else [])
            else:
                flags.extend([flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)])
    return " ".join(flags)


def get_recipe(wildcards, blocks):
    """The config blocks a stage reads: as a rule param, editing them re-runs exactly the jobs that use them."""
    over = (config.get("overrides") or {}).get(wildcards.dataset, {})
    return {b: config.get(b) if not isinstance(config.get(b), dict) else {**config[b], **(over.get(b) or {})}
            for b in ("data", "threads", *blocks) if b in config or b in over}


def recipe(*blocks):
    return functools.partial(get_recipe, blocks=blocks)


def grid():
    """Every (dataset, backbone, seed) cell of the grid; ``grid.only`` narrows a dataset's backbones."""
    only = GRID.get("only") or {}
    for d, b, s in itertools.product(GRID["datasets"], GRID["backbones"], GRID["seeds"]):
        if b in only.get(d, [b]):
            yield d, b, s


def get_imp_reference(wildcards):
    """The random baselines follow the masks of the full-data IMP run of the same cell."""
    if wildcards.variant in ("random_prune", "random_reinit"):
        return cell("imp", "full", "metrics.json").format(**wildcards)
    return []


def get_transfer_source(wildcards):
    """prac-from-<source>: the PrAC run of the source backbone on the same dataset and seed."""
    if wildcards.variant.startswith("prac-from-"):
        src = wildcards.variant[len("prac-from-"):]
        return cell("prac", "metrics.json").format(dataset=wildcards.dataset, backbone=src, seed=wildcards.seed)
    return []


def imp_flags(wildcards, input):
    if wildcards.variant in ("random_prune", "random_reinit"):
        return f"--baseline {wildcards.variant} --reference {os.path.dirname(input.reference)}"
    if wildcards.variant.startswith("prac-from-"):
        return f"--subsets {os.path.dirname(input.subsets)} --evaluate-tickets"
    return ""


def get_final_output():
    out = []
    for d, b, s in grid():
        fmt = dict(dataset=d, backbone=b, seed=s)
        out.append(cell("pretrain", "metrics.json").format(**fmt))
        for v in ["full", *EXP.get("imp_baselines", [])]:
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
