"""What each job asks a cluster for: the config's ``cluster:`` block, its schema and its checks.

Torch-free: the rules read :func:`cluster_resources` inside every Snakemake start.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ConfigError

SLURM_NAME = r"^[A-Za-z0-9_.,-]*$"
# sbatch --constraint's own syntax: features joined by & | , with [] () * counts.
SLURM_CONSTRAINT = r"^[A-Za-z0-9_.,:|&*()\[\]-]*$"
# More sbatch options, each --name or --name=value (or -X value): the SLURM plugin passes them to a shell unquoted.
SLURM_OPTIONS = r"^(-[A-Za-z0-9_.,:=@%/+-]*( +[A-Za-z0-9_.,:=@%/+-]+)*)?$"
# Upper bounds a schema states as maximum (seeds and threads: in hparams): counts no job can use.
GPUS_MAX = 64

# The rules that run a model and so ask a cluster for resources; the rest (collect, report, cost) are localrules.
CLUSTER_RULES = ("pretrain", "prac", "imp", "instability", "jackpot", "jackpot_overlap", "structure", "timing")


def cluster_schema() -> dict[str, Any]:
    """What a job asks a cluster executor for (the SLURM profile in workflow/profiles/slurm)."""
    sizes = {"mem_mb": {"type": "integer", "minimum": 1, "description": "memory per job in MB"},
             "runtime": {"type": "integer", "minimum": 1, "description": "wall-time limit per job in minutes"},
             "gpu": {"type": "integer", "minimum": 0, "maximum": GPUS_MAX,
                     "description": "GPUs per job (default: the top-level gpu)"},
             "exclusive": {"type": "boolean", "description": "ask for a whole node (timing: numbers taken on a "
                           "shared node are meaningless)"},
             "extra": {"type": "string", "pattern": SLURM_OPTIONS,
                       "description": "more sbatch flags (not those the plugin sets from the other keys)"}}
    names = {"partition": {"type": "string", "pattern": SLURM_NAME,
                           "description": "SLURM partition (empty: the cluster's default)"},
             "qos": {"type": "string", "pattern": SLURM_NAME,
                     "description": "SLURM quality of service (empty: the cluster's default)"},
             "constraint": {"type": "string", "pattern": SLURM_CONSTRAINT,
                            "description": "SLURM node constraint, e.g. a100|h100 (empty: none)"},
             "account": {"type": "string", "pattern": SLURM_NAME,
                         "description": "SLURM account (empty: the plugin's guess from sacctmgr)"},
             # the SLURM plugin refuses anything else in --gpus=<model>:<n>
             "gpu_model": {"type": "string", "pattern": r"^[A-Za-z0-9_.]*$",
                           "description": "GPU model, e.g. a100 (empty: any GPU)"}}
    return {"type": "object", "additionalProperties": False,
            "description": "resources each model-running job asks a cluster for; the local executor reads only gpu",
            "properties": {**names, **sizes, "rules": {
                "type": "object", "additionalProperties": False,
                "description": "rule -> its own sizes, over the block's",
                "properties": {r: {"type": "object", "additionalProperties": False, "properties": sizes}
                               for r in CLUSTER_RULES}}}}


def cluster_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """One rule's Snakemake resources from the config's ``cluster:`` block, in the SLURM plugin's names.

    Empty names are left out, so the plugin falls back to the cluster's defaults instead of passing ``-p ''``.
    CPUs follow the rule's ``threads:`` (the plugin's ``cpus_per_task``), which the recipe fixes.
    """
    block = config.get("cluster") or {}
    sizes = {**{k: v for k, v in block.items() if k != "rules"}, **(block.get("rules") or {}).get(rule, {})}
    res: dict[str, Any] = {"gpu": int(sizes.get("gpu", config.get("gpu", 0)))}
    for key in ("mem_mb", "runtime"):
        if key in sizes:
            res[key] = int(sizes[key])
    for key, name in (("partition", "slurm_partition"), ("account", "slurm_account"), ("qos", "qos"),
                      ("constraint", "constraint")):
        if sizes.get(key):
            res[name] = str(sizes[key])
    if sizes.get("gpu_model") and res["gpu"]:
        res["gpu_model"] = str(sizes["gpu_model"])
    extra = " ".join(x for x in ("--exclusive" if sizes.get("exclusive") else "", sizes.get("extra", "")) if x)
    if extra:
        res["slurm_extra"] = extra
    return res


def check_cluster(config: dict[str, Any]) -> None:
    """sbatch flags in `extra` that the SLURM plugin sets itself would fail every submission, after the grid
    started; refuse them here, naming the key that sets them."""
    from snakemake_executor_plugin_slurm.validation import get_forbidden_slurm_options

    block = config.get("cluster") or {}
    places = {"cluster.extra": block.get("extra", "")}
    places.update({f"cluster.rules.{r}.extra": sizes.get("extra", "") for r, sizes in (block.get("rules") or {}).items()})
    for key, extra in places.items():
        for pattern, what in get_forbidden_slurm_options().items():
            if extra and re.search(pattern, extra + " "):
                raise ConfigError(key, extra, f"sbatch flags other than the {what}, which the SLURM plugin sets "
                                  "from cluster's own keys (partition, account, qos, constraint, mem_mb, runtime, "
                                  "gpu, gpu_model) and threads")
