import itertools
import os
import re

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

GRID = config["grid"]
RESULTS = config.get("results", "results")


wildcard_constraints:
    dataset="|".join(map(re.escape, GRID["datasets"])),
    backbone="|".join(map(re.escape, GRID["backbones"])),
    seed=r"\d+",


def grid():
    """Every (dataset, backbone, seed) cell of the configured grid."""
    return itertools.product(GRID["datasets"], GRID["backbones"], GRID["seeds"])


def get_final_output():
    return [f"{RESULTS}/pretrain/{d}/{b}/seed{s}/metrics.json" for d, b, s in grid()]


def config_flags():
    """The config files this run merged, in order, as flags for the ticketbench CLI."""
    return " ".join(f"--config {f}" for f in workflow.configfiles)
