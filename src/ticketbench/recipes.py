"""The papers' recipes: what each paper's pipeline layers on the config's top-level blocks, per dataset and backbone.

Torch-free: the planner inside every Snakemake start reads it, and so do the stages that record a recipe.
"""

from __future__ import annotations

from typing import Any

from .hparams import DataHparams, Hparams, TrainHparams

# The papers a grid reproduces, each with its own recipe (`recipes:`). The order decides which paper names a dense
# run that two of them share.
PAPERS = ("prac", "structure_lth", "jackpot")
# Recipes that layer on a paper's own: PrAC Table 1's "Low" and "Warmup" LT settings (experiments.prac_settings).
# They come after PAPERS, so a dense run they share with a paper keeps the paper's name.
RECIPE_VARIANTS = {"prac_low": "prac", "prac_warmup": "prac"}
RECIPES = (*PAPERS, *RECIPE_VARIANTS)
#: PrAC's LT settings by their folder names (``low``, ``warmup``).
PRAC_SETTINGS = tuple(v.removeprefix("prac_") for v in RECIPE_VARIANTS)
RECIPE_BLOCKS = ("data", "train", "imp", "prac", "jackpot", "structure")
# The blocks a dense run is trained with: papers whose recipes agree on them share one run.
DENSE_BLOCKS = ("data", "train")


def recipe_layers(config: dict[str, Any], paper: str | None, dataset: str,
                  backbone: str) -> list[tuple[str, dict[str, Any]]]:
    """What a recipe stacks on the top-level blocks, lowest first, each as (its config key, {block: values}).

    ``paper=None`` is the grid's base recipe: the top-level blocks and ``overrides.<dataset>`` alone.
    """
    if paper in RECIPE_VARIANTS:
        # A variant is its paper's recipe with a few settings changed: it inherits every layer of the paper's.
        return recipe_layers(config, RECIPE_VARIANTS[paper], dataset, backbone) + \
            _own_layers(config, paper, dataset, backbone)
    layers = [(f"overrides.{dataset}", (config.get("overrides") or {}).get(dataset) or {})]
    if paper is not None:
        layers += _own_layers(config, paper, dataset, backbone)
    return layers


def _own_layers(config: dict[str, Any], paper: str, dataset: str, backbone: str) -> list[tuple[str, dict[str, Any]]]:
    recipe = (config.get("recipes") or {}).get(paper) or {}
    over = recipe.get("overrides") or {}
    return [(f"recipes.{paper}", {b: v for b, v in recipe.items() if b != "overrides"}),
            (f"recipes.{paper}.overrides.{dataset}", over.get(dataset) or {}),
            (f"recipes.{paper}.overrides.{dataset}/{backbone}", over.get(f"{dataset}/{backbone}") or {})]


def recipe_changes(config: dict[str, Any], paper: str | None, dataset: str, backbone: str) -> dict[str, dict]:
    """What a paper's recipe of one cell changes on top of the top-level blocks, block by block.

    The stages read the top-level blocks from the config files and get these as flags, so a config without
    ``recipes:`` passes exactly its ``overrides.<dataset>``.
    """
    changes: dict[str, dict] = {}
    for _, layer in recipe_layers(config, paper, dataset, backbone):
        for block, values in layer.items():
            changes.setdefault(block, {}).update(values or {})
    return changes


def resolve_recipe(config: dict[str, Any], paper: str | None, dataset: str, backbone: str) -> dict[str, dict]:
    """A paper's recipe for one (dataset, backbone): every recipe block as the stages of its pipeline see it."""
    changes = recipe_changes(config, paper, dataset, backbone)
    return {b: {**(config.get(b) or {}), **changes.get(b, {})} for b in RECIPE_BLOCKS}


def dense_run(config: dict[str, Any], paper: str, dataset: str, backbone: str) -> str:
    """The dense run a paper's pipeline starts from: "" for the grid's base run, else the name of its folder
    under the base run, the first recipe of RECIPES whose dense recipe equals this paper's."""
    mine = _dense_recipe(config, paper, dataset, backbone)
    if mine == _dense_recipe(config, None, dataset, backbone):
        return ""
    return next(p for p in RECIPES if _dense_recipe(config, p, dataset, backbone) == mine)


def _dense_recipe(config: dict[str, Any], paper: str | None, dataset: str, backbone: str) -> dict[str, dict]:
    # Through the dataclasses, so that a value spelt two ways ([80, 120] and "80,120", 1 and 1.0) or a default
    # written out is still the same recipe.
    resolved = resolve_recipe(config, paper, dataset, backbone)
    classes: dict[str, type[Hparams]] = {"data": DataHparams, "train": TrainHparams}
    # Unchecked: the config check validates every recipe, and the planner that calls this must not import torch.
    return {b: classes[b].from_dict(resolved[b], check=False).to_dict() for b in DENSE_BLOCKS}
