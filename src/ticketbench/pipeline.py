"""The workflow's config: one check that fails before any job starts, and the schema it implies.

:func:`check_config` validates the shape against :func:`schema` (the JSON schema written to
``workflow/schemas/config.schema.yaml``), then what a schema cannot say (backbones that timm knows, registered
datasets, sparsities, epochs, data folders that exist), and raises one :class:`ConfigError` naming the key.
The Snakefile and ``ticketbench check-config`` both call it on the config merged the same way, so they accept
and reject the same configs with the same line. The schema is generated from the same hparams dataclasses the
CLI uses, so config, CLI and schema cannot drift apart.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .hparams import SEED_MAX, THREADS_MAX, DataHparams, Hparams, RuntimeHparams, TrainHparams
from .untrusted import read_yaml_mapping


def block_classes() -> dict[str, type[Hparams]]:
    """Config block -> its hparams class. The method modules import torch, so only a check or the schema asks."""
    from .methods.imp import ImpHparams
    from .methods.jackpot.search import JackpotHparams
    from .methods.prac.stage import PracHparams
    from .methods.structure.stage import StructureHparams

    return {"data": DataHparams, "train": TrainHparams, "imp": ImpHparams, "prac": PracHparams,
            "jackpot": JackpotHparams, "structure": StructureHparams, "runtime": RuntimeHparams}


# Keys of a block that the grid sets per job (wildcards), so the block must not fix them.
PER_JOB = {"data": {"dataset"}, "jackpot": {"sparsity", "init"}, "structure": {"method"}, "imp": {"variant"}}
INITS = ("magnitude", "random")
# The file the Snakefile's `configfile:` names: every run layers its other config files on top of it.
DEFAULT_CONFIG = "config/config.yaml"
# The papers a grid reproduces, each with its own recipe (`recipes:`). The order decides which paper names a dense
# run that two of them share.
PAPERS = ("prac", "structure_lth", "jackpot")
# Recipes that layer on a paper's own: PrAC Table 1's "Low" and "Warmup" LT settings (experiments.prac_settings).
# They come after PAPERS, so a dense run they share with a paper keeps the paper's name.
RECIPE_VARIANTS = {"prac_low": "prac", "prac_warmup": "prac"}
RECIPES = (*PAPERS, *RECIPE_VARIANTS)
RECIPE_BLOCKS = ("data", "train", "imp", "prac", "jackpot", "structure")
# The blocks a dense run is trained with: papers whose recipes agree on them share one run.
DENSE_BLOCKS = ("data", "train")


# --- values that become paths, flags or sbatch options ----------------------------------------------------------
#
# Configs travel between labs, so a value is a name, a path or an sbatch option of the shapes below, or it is refused
# before any job starts. The rules also quote every value they put on a shell line ({x:q}); these patterns keep
# names usable as folder names (no "/" or "..": no output leaves the results root) and as Snakemake wildcards, and
# refuse timm's hf-hub: and local-dir: names, which load files from outside the project.
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
# A results root: a relative or absolute path with no shell, glob or Snakemake pattern characters ({x} would become
# a wildcard of every rule).
RESULTS_PATH = r"^[A-Za-z0-9_./+@%,=-]{1,512}$"
# A data root: anything printable (hparams refuse control characters in their own string settings, hparams._coerce);
# the rules quote it.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
SLURM_NAME = r"^[A-Za-z0-9_.,-]*$"
# sbatch --constraint's own syntax: features joined by & | , with [] () * counts.
SLURM_CONSTRAINT = r"^[A-Za-z0-9_.,:|&*()\[\]-]*$"
# More sbatch options, each --name or --name=value (or -X value): the SLURM plugin passes them to a shell unquoted.
SLURM_OPTIONS = r"^(-[A-Za-z0-9_.,:=@%/+-]*( +[A-Za-z0-9_.,:=@%/+-]+)*)?$"
PATTERN_WORDS = {
    NAME: "a name of letters, digits, _ . - starting with a letter or digit, at most 128 characters (timm's hf-hub: "
          "and local-dir: names load files from outside the project and are not allowed)",
    RESULTS_PATH: "a folder path of letters, digits and _ . / + @ % , = - (no spaces, quotes, $, braces or other "
                  "shell and pattern characters)",
    PRINTABLE: "a path without control characters (newlines, tabs)",
    SLURM_NAME: "a SLURM name of letters, digits and _ . , -",
    SLURM_CONSTRAINT: "a SLURM constraint of features joined by & | , (letters, digits, _ . : * [ ] ( ) -)",
    SLURM_OPTIONS: "sbatch options like '--mail-type=FAIL --mail-user=me@lab.org': --name or --name=value, "
                   "separated by spaces, of letters, digits and _ . , : = @ % / + - (no quotes, no ; $ ` | & < > #)",
}
# Upper bounds a schema states as maximum (seeds and threads: in hparams): counts no job can use.
GPUS_MAX = 64


def error_line(e: ConfigError) -> str:
    return f"ticketbench config error: {e}"


def load_config_files(files: list[str]) -> dict[str, Any]:
    """Read YAML config files and merge them in order with Snakemake's own merge (nested mappings merge)."""
    from snakemake.utils import update_config

    merged: dict[str, Any] = {}
    for path in files:
        update_config(merged, read_yaml_mapping(path, "top-level keys such as grid:, experiments:, train:"))
    return merged


def check_workflow_config(cli_config: dict[str, Any], default_file: str = DEFAULT_CONFIG, *,
                          replace: bool = False, data: bool = True, files: list[str] = ()) -> None:
    """Check the config that Snakemake's ``configfile:`` is about to build; a bad one exits with one line.

    ``cli_config`` is Snakemake's config before that directive: the ``--configfile`` files and ``--config``
    values, which the directive layers on top of ``default_file`` (or, with ``replace``, uses alone). ``files``:
    the ``--configfile`` files, read again here with this project's reader, because Snakemake's keeps the last of
    two equal keys and accepts files of any size and depth.
    """
    from snakemake.utils import update_config

    try:
        for path in files:
            read_yaml_mapping(path, "top-level keys such as grid:, experiments:, train:")
        merged = {} if replace else load_config_files([default_file])
        update_config(merged, cli_config)
        check_config(merged, data=data)
    except ConfigError as e:
        raise SystemExit(error_line(e)) from None


def check_config(config: dict[str, Any], *, data: bool = True) -> None:
    """Raise ConfigError for the first bad setting: shape (the schema), then meaning, then (``data``) folders."""
    _check_schema(config)
    _check_meaning(config)
    if data:
        _check_data_roots(config)


def _check_meaning(config: dict[str, Any]) -> None:
    from .data import dataset_names
    from .methods.imp import VARIANTS
    from .methods.structure.stage import METHODS as STRUCTURE_METHODS
    from .models import create_model, list_backbones

    grid = config["grid"]
    for d in grid["datasets"]:
        if d not in dataset_names():
            raise ConfigError("grid.datasets", d, f"one of {', '.join(dataset_names())}")
    known = set(list_backbones())
    for b in grid["backbones"]:
        if b not in known:
            try:
                create_model(b, num_classes=10)
            except ConfigError as e:  # the model's own message has the close matches; the key is the config's
                raise ConfigError("grid.backbones", e.value, e.allowed) from None
    for dataset, backbones in (grid.get("only") or {}).items():
        for b in backbones:
            if dataset not in grid["datasets"] or b not in grid["backbones"]:
                raise ConfigError(f"grid.only.{dataset}", b, "a dataset and backbones listed in the grid")
    full = {(d, b) for d, b, _ in grid_cells(config)}
    for dataset, backbones in (grid.get("dense") or {}).items():
        for b in backbones:
            if dataset not in grid["datasets"] or b not in grid["backbones"]:
                raise ConfigError(f"grid.dense.{dataset}", b, "a dataset and backbones listed in the grid")
            if (dataset, b) in full:
                raise ConfigError(f"grid.dense.{dataset}", b, "a cell that grid.only leaves out: this one runs "
                                  "every stage already (list the dataset's backbones in grid.only)")
    classes = block_classes()
    for name, cls in classes.items():
        block = dict(config.get(name) or {})
        for key in PER_JOB.get(name, ()):
            if key in block:
                raise ConfigError(f"{name}.{key}", block[key], "no value here: the grid sets it per job "
                                  "(see experiments: in the config)")
        cls.from_dict(block)
    for dataset, blocks in (config.get("overrides") or {}).items():
        if dataset not in grid["datasets"]:
            raise ConfigError(f"overrides.{dataset}", blocks,
                              f"overrides only for datasets of grid.datasets: {', '.join(grid['datasets'])}")
        for name, block in (blocks or {}).items():
            merged = {**(config.get(name) or {}), **(block or {})}
            try:
                classes[name].from_dict(merged)
            except ConfigError as e:
                raise ConfigError(f"overrides.{dataset}.{e.key}", e.value, e.allowed) from None
    _check_recipes(config, classes)
    exp = config.get("experiments") or {}
    baselines = [n for n in VARIANTS.names() if VARIANTS.get(n).reference]
    others = [n for n in VARIANTS.names() if n not in baselines and n not in ("full", "structure_lth")]
    for key, allowed in (("imp_baselines", baselines), ("imp_variants", others)):
        for v in exp.get(key, []):
            if v not in allowed:
                raise ConfigError(f"experiments.{key}", v, f"one of {', '.join(allowed)}")
    released = [f"{m}-released" for m in STRUCTURE_METHODS]
    for m in exp.get("structure_methods", []):
        if m not in STRUCTURE_METHODS and m not in released:
            raise ConfigError("experiments.structure_methods", m,
                              f"one of {', '.join(STRUCTURE_METHODS)}, or {', '.join(released)} (the released "
                              f"code's settings)")
    for key in ("jackpot_sparsities", "jackpot_random_sparsities"):
        for s in exp.get(key, []):
            if not 0 < s < 1:
                raise ConfigError(f"experiments.{key}", s, "sparsities strictly between 0 and 1")
    for pair in exp.get("transfer", []):
        for role in ("source", "target"):
            if pair[role] not in grid["backbones"]:
                raise ConfigError(f"experiments.transfer.{role}", pair[role], "a backbone of grid.backbones")
    _check_extra_runs(config)
    _check_cluster(config)


def _check_extra_runs(config: dict[str, Any]) -> None:
    from .methods.imp import VARIANTS
    from .methods.structure.refill import CHANNEL_SCORES

    runs = {key: extra_runs(config, key) for key in EXTRA_RUNS}
    for name in runs["prac_settings"]:
        # Without its recipe the setting would silently run PrAC's standard one under another name.
        if f"prac_{name}" not in (config.get("recipes") or {}):
            raise ConfigError("experiments.prac_settings", name, f"a setting with its recipe in recipes.prac_{name} "
                              "(PrAC Table 1's learning rate, warm-up and rewind point for it)")
    followers = [n for n in VARIANTS.names() if VARIANTS.get(n).reference]

    def check_source(key: str, name: str, folder: str) -> None:
        """An IMP folder that another run reads: a variant that follows a reference, or a rewind point."""
        variant, _ = imp_run(folder)
        percent = rewind_percent(folder)
        if percent is not None and not 0 < percent <= 100:
            raise ConfigError(f"experiments.{key}", name, "a rewind point rw<p> with 0 < p <= 100 (percent of "
                              "the dense run's training)")
        if percent is None and variant not in followers:
            raise ConfigError(f"experiments.{key}", name, f"an IMP variant that follows a reference run: "
                              f"{', '.join(followers)}")

    for name in runs["imp_runs"]:
        check_source("imp_runs", name, name)
    for name in runs["structure_ablations"]:
        method, changes = structure_run(name)
        kind, source = structure_source(name)
        if kind == "imp" and source != STRUCTURE_IMP:
            check_source("structure_ablations", name, source)
            continue
        criterion = changes["structure"].get("criterion")
        if method == "regroup" and not (changes["structure"].get("reinit") or
                                        changes["structure"].get("regroup_preset")):
            raise ConfigError("experiments.structure_ablations", name, "regroup-reinit, regroup-released, "
                              "regroup-rw<p> or regroup-from-<variant>: a channel criterion or rho changes refill and "
                              "refill_plus only")
        if criterion is not None and criterion not in CHANNEL_SCORES:
            raise ConfigError("experiments.structure_ablations", name,
                              f"<method>-<criterion> with a criterion of {', '.join(CHANNEL_SCORES.names())}")
    for name, targets in runs["structure_transfers"].items():
        _, source = structure_source(name)
        for d, b in targets:
            # The source's structure run is a job of the grid: of its cell's whole pipeline, or of the runs a source
            # outside grid.only makes for the transfer alone (planned_runs).
            if source == d or source not in config["grid"]["datasets"]:
                raise ConfigError(f"experiments.structure_transfers.{name}", f"{d}/{b}",
                                  f"a cell <dataset>/<backbone> of another dataset than {source}, with {source} "
                                  f"in grid.datasets")
    for name in runs["jackpot_searches"]:
        lengths = [v for k, v in jackpot_changes(name)["jackpot"].items() if k.endswith("epochs")]
        if any(v < 1 for v in lengths):
            raise ConfigError("experiments.jackpot_searches", name, "at least 1 search or tuning epoch")
        if not 0 < jackpot_changes(name)["jackpot"].get("rate", 0.5) < 1:
            raise ConfigError("experiments.jackpot_searches", name, "a restriction rate r with 0 < r < 1")


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


# --- the runs a config plans -----------------------------------------------------------------------------------
#
# One function lists every run a config asks for (:func:`planned_runs`): the Snakefile's `all` rule takes its paths
# as targets and `ticketbench report --coverage` maps the papers' table cells onto it, so the two cannot disagree.
# It runs inside every Snakemake start, so it stays free of torch and of the hparams checks.

# experiments.<key>: {<run folder>: [<dataset>/<backbone>, ...]}, each folder a name the pattern accepts.
PRAC_ABLATION = re.compile(r"no_cep|no_early_stop|random_subset|ef(\d+)")
PRAC_SETTINGS = tuple(v.removeprefix("prac_") for v in RECIPE_VARIANTS)
# Names as the rules' wildcards accept them; the config check asks the registries (criteria, IMP variants).
CHANNEL_CRITERION = r"[a-z][a-z0-9_]*"
IMP_VARIANT = r"[a-z][a-z0-9_]*"
DATASET = r"[a-z][a-z0-9_-]*"
STRUCTURE_METHOD = r"refill|refill_plus|regroup"
# Structure-LTH's own IMP runs (its policy and rewind point); refill, refill+, regroup and timing read them.
STRUCTURE_IMP = "structure_lth"
STRUCTURE_VARIANTS = (STRUCTURE_IMP, "group_aware")
# imp.structure_rewind's default (methods/imp.py, which imports torch; tests/test_pipeline.py keeps them equal).
STRUCTURE_REWIND = "5%"
# An IMP run on a few cells: a variant following full IMP's masks (PrAC's recipe), or one of Structure-LTH's:
# rewound to p% of training, or a variant following Structure-LTH's own IMP run (its recipe, layers and rewind).
IMP_RUN = re.compile(
    rf"{STRUCTURE_IMP}-(?:rw(?P<percent>\d+)|(?P<follower>{IMP_VARIANT}))|(?P<variant>{IMP_VARIANT})")
# The rewind point, the mask source and the transfer come before the criterion: a criterion is any name.
STRUCTURE_ABLATION = re.compile(
    rf"(?P<method>{STRUCTURE_METHOD})-(?:(?P<reinit>reinit)|(?P<released>released)|rho(?P<rho>0\.\d+)|"
    rf"rw(?P<percent>\d+)|from-(?P<source>{IMP_VARIANT})|(?P<criterion>{CHANNEL_CRITERION}))")
#: ``<method>-released``: the structure settings that reproduce the released Structure-LTH code (tests/conformance).
RELEASED_STRUCTURE = {
    "regroup": {"regroup_preset": "released"},
    "refill": {"refill_rule": "released", "coupled": "per_layer", "refill_batchnorm": "released", "criterion": "remain"},
    "refill_plus": {"refill_rule": "released", "coupled": "per_layer", "refill_batchnorm": "released",
                    "criterion": "remain"},
}
STRUCTURE_TRANSFER = re.compile(rf"(?P<method>{STRUCTURE_METHOD})-transfer-(?P<dataset>{DATASET})")
JACKPOT_SEARCH = re.compile(r"(magnitude|random)-s(0\.\d+)-(?:([et])(\d+)|r(0\.\d+))")
EXTRA_RUNS = {
    "prac_ablations": (PRAC_ABLATION, "no_cep, no_early_stop, random_subset or ef<k> (PrAC-IMP with E_F = k)"),
    "prac_settings": (re.compile("|".join(PRAC_SETTINGS)), " or ".join(PRAC_SETTINGS)),
    "imp_runs": (IMP_RUN, "<variant> (follows full IMP), structure_lth-<variant> (follows Structure-LTH's IMP) or "
                 "structure_lth-rw<p> (Structure-LTH's IMP rewound to p% of training)"),
    "structure_ablations": (STRUCTURE_ABLATION, "<method>-<criterion> or <method>-rho<r> (refill, refill_plus), "
                            "or <method>-reinit, <method>-released, <method>-rw<p>, <method>-from-<variant> (refill, "
                            "refill_plus, regroup)"),
    "structure_transfers": (STRUCTURE_TRANSFER, "<method>-transfer-<dataset> (refill, refill_plus, regroup), e.g. "
                            "regroup-transfer-imagenet"),
    "jackpot_searches": (JACKPOT_SEARCH, "<init>-s<sparsity>-e<search epochs>, <init>-s<sparsity>-t<tuning "
                         "epochs> or <init>-s<sparsity>-r<rate>, e.g. magnitude-s0.9-e160"),
}
# The keys whose cells may lie outside grid.only: a transfer target needs its dense run only, not the cell's grid.
ANY_CELL = {"structure_transfers"}
EXTRA_RUNS_HELP = {
    "prac_ablations": "PrAC-IMP with one setting changed, in results/prac/<d>/<b>/seed<k>/<name>/: no_cep (CET "
                      "only), no_early_stop, random_subset (each round on a random subset of the PrAC set's size), "
                      "ef<k> (forget threshold E_F = k); name -> [<dataset>/<backbone>, ...]",
    "prac_settings": "PrAC Table 1's LT settings (low, warmup) with their recipes recipes.prac_<name>: PrAC-IMP in "
                     "results/prac/<d>/<b>/seed<k>/<name>/ and full IMP in results/imp/<d>/<b>/seed<k>/full-<name>/; "
                     "name -> cells",
    "imp_runs": "IMP runs on a few cells, in results/imp/<d>/<b>/seed<k>/<name>/: <variant> (a variant that follows "
                "full IMP's masks, e.g. snip), structure_lth-<variant> (one that follows Structure-LTH's own IMP run, "
                "with its recipe, layers and rewind point), structure_lth-rw<p> (Structure-LTH's IMP rewound to p% of "
                "training); name -> cells",
    "structure_ablations": "Structure-LTH ablations in results/structure/<d>/<b>/seed<k>/<name>/: "
                           "<method>-<criterion> (refill channel score), <method>-rho<r> (Refill+ rate), "
                           "<method>-reinit (random re-initialisation), <method>-released (the released code's "
                           "settings: regroup_preset released; refill_rule released, coupled per_layer, "
                           "refill_batchnorm released, criterion remain), <method>-rw<p> (from the IMP run "
                           "structure_lth-rw<p>), <method>-from-<variant> (from the masks of the IMP run "
                           "structure_lth-<variant>); the IMP runs they read run too; name -> cells",
    "structure_transfers": "structured tickets found on another dataset, in results/structure/<d>/<b>/seed<k>/"
                           "<method>-transfer-<source>/: round r's structured conv masks are those of the <method> "
                           "run of <source> with the same backbone, retrained on <d>; name -> cells (a cell outside "
                           "grid.only runs these, its dense run and its Structure-LTH IMP run, for the rewind point; "
                           "a source cell outside grid.only runs its dense run, that IMP run and the <method> run)",
    "jackpot_searches": "jackpot searches of another length in results/jackpot/<d>/<b>/seed<k>/<name>/: "
                        "<init>-s<sparsity>-e<epochs> (search epochs), <init>-s<sparsity>-t<epochs> (weight tuning "
                        "after the recipe's search) or <init>-s<sparsity>-r<rate> (swaps restricted to that rate, our "
                        "reading of the short restriction); name -> cells",
}


def grid_cells(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, backbone, seed) of the grid; ``grid.only`` narrows a dataset's backbones."""
    grid = config["grid"]
    only = grid.get("only") or {}
    return [(d, b, s) for d, b, s in itertools.product(grid["datasets"], grid["backbones"], grid["seeds"])
            if b in only.get(d, [b])]


def dense_cells(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, backbone, seed) of ``grid.dense``: cells that run their dense runs alone (the base one and
    each paper's own), outside grid.only."""
    grid = config["grid"]
    return [(d, b, s) for d, backbones in (grid.get("dense") or {}).items() for b in backbones
            for s in grid["seeds"]]


def extra_runs(config: dict[str, Any], key: str) -> dict[str, list[tuple[str, str]]]:
    """``experiments.<key>`` as {run folder: [(dataset, backbone), ...]}, each cell one of the grid's."""
    pattern, allowed = EXTRA_RUNS[key]
    grid = config["grid"]
    if key in ANY_CELL:
        cells = set(itertools.product(grid["datasets"], grid["backbones"]))
        where = "grid.datasets x grid.backbones"
    else:
        cells = {(d, b) for d, b, _ in grid_cells(config)}
        where = "grid.datasets x grid.backbones, narrowed by grid.only"
    out = {}
    for name, listed in ((config.get("experiments") or {}).get(key) or {}).items():
        if not pattern.fullmatch(str(name)):
            raise ConfigError(f"experiments.{key}", name, allowed)
        out[name] = []
        for text in listed or []:
            d, _, b = str(text).partition("/")
            if (d, b) not in cells:
                raise ConfigError(f"experiments.{key}.{name}", text, f"a cell of the grid as <dataset>/<backbone> "
                                  f"({where})")
            out[name].append((d, b))
    return out


def prac_changes(folder: str) -> dict[str, dict]:
    """What a PrAC ablation changes in the ``prac`` block (a setting of experiments.prac_settings changes nothing
    here: its recipe does)."""
    m = PRAC_ABLATION.fullmatch(folder)
    if m is None:
        return {}
    if m.group(1) is not None:
        return {"prac": {"forget_threshold": int(m.group(1))}}
    return {"prac": {folder: True}}


def imp_run(folder: str) -> tuple[str, str | None]:
    """An IMP folder's variant, and the folder of the IMP run of the same cell whose masks it follows (None for
    none). A name that is no other run's is a variant that follows full IMP (random_prune, snip, ...)."""
    if folder in ("full", *STRUCTURE_VARIANTS) or folder.startswith("prac-from-") or \
            (folder.startswith("full-") and folder[5:] in PRAC_SETTINGS):
        return ("full" if folder.startswith(("prac-from-", "full-")) else folder), None
    m = IMP_RUN.fullmatch(folder)
    if m is None or m["variant"]:
        return folder, "full"
    return (STRUCTURE_IMP, None) if m["percent"] else (m["follower"], STRUCTURE_IMP)


def rewind_percent(folder: str) -> int | None:
    """The rewind point of ``structure_lth-rw<p>``, in percent of training; None for other folders."""
    m = IMP_RUN.fullmatch(folder)
    return int(m["percent"]) if m and m["percent"] else None


def imp_changes(folder: str, recipe: dict[str, dict] | None = None) -> dict[str, dict]:
    """What an IMP folder changes in the ``imp`` block; ``recipe``: the run's resolved recipe (resolve_recipe).

    A variant that follows Structure-LTH's IMP prunes its layers and rewinds where it does (imp.structure_rewind),
    so that its tickets differ from Structure-LTH's in the mask alone.
    """
    percent = rewind_percent(folder)
    if percent is not None:
        return {"imp": {"structure_rewind": f"{percent}%"}}
    if imp_run(folder)[1] == STRUCTURE_IMP:
        rewind = ((recipe or {}).get("imp") or {}).get("structure_rewind", STRUCTURE_REWIND)
        return {"imp": {"policy": "structure_lth", "rewind": rewind}}
    return {}


def structure_run(folder: str) -> tuple[str, dict[str, dict]]:
    """A structure folder's method and what it changes in the ``structure`` block."""
    m = STRUCTURE_ABLATION.fullmatch(folder) or STRUCTURE_TRANSFER.fullmatch(folder)
    if m is None:
        return folder, {}
    found = m.groupdict()
    if found.get("reinit"):
        return m["method"], {"structure": {"reinit": True}}
    if found.get("released"):
        return m["method"], {"structure": dict(RELEASED_STRUCTURE[m["method"]])}
    if found.get("rho"):
        return m["method"], {"structure": {"rho": float(m["rho"])}}
    if found.get("criterion"):
        return m["method"], {"structure": {"criterion": m["criterion"]}}
    return m["method"], {}


def structure_source(folder: str) -> tuple[str, str]:
    """Where a structure run's tickets come from: ("imp", the IMP folder of the same cell whose rounds it
    structures) or ("transfer", the dataset whose structure run of the same backbone gives its masks)."""
    m = STRUCTURE_TRANSFER.fullmatch(folder)
    if m:
        return "transfer", m["dataset"]
    m = STRUCTURE_ABLATION.fullmatch(folder)
    if m and m["percent"]:
        return "imp", f"{STRUCTURE_IMP}-rw{m['percent']}"
    if m and m["source"]:
        return "imp", f"{STRUCTURE_IMP}-{m['source']}"
    return "imp", STRUCTURE_IMP


def jackpot_changes(folder: str) -> dict[str, dict]:
    """What a jackpot search of experiments.jackpot_searches changes in the ``jackpot`` block."""
    m = JACKPOT_SEARCH.fullmatch(folder)
    if m is None:
        return {}
    if m.group(5) is not None:
        return {"jackpot": {"rate": float(m.group(5))}}
    return {"jackpot": {"epochs" if m.group(3) == "e" else "tune_epochs": int(m.group(4))}}


def recipe_of(phase: str, folder: str = "") -> str | None:
    """The recipe (a paper's, or a variant of it) that a run in ``results/<phase>/.../seed<k>/<folder>`` follows;
    None for the grid's base dense run. The rules and the report's coverage both ask here."""
    if phase == "pretrain":
        return folder or None
    if phase == "structure":
        return "structure_lth"
    if phase == "jackpot":
        return "jackpot"
    if phase == "imp" and (folder in STRUCTURE_VARIANTS or folder.startswith(f"{STRUCTURE_IMP}-")):
        return "structure_lth"
    setting = folder.removeprefix("full-") if phase == "imp" else folder
    return f"prac_{setting}" if setting in PRAC_SETTINGS else "prac"


def run_changes(phase: str, folder: str, recipe: dict[str, dict] | None = None) -> dict[str, dict]:
    """What a run folder changes on top of its recipe (an ablation or another search length); {} for the others.
    ``recipe``, the run's resolved recipe, is read by the IMP runs that follow Structure-LTH's (imp_changes)."""
    if phase == "prac":
        return prac_changes(folder)
    if phase == "imp":
        return imp_changes(folder, recipe)
    if phase == "structure":
        return structure_run(folder)[1]
    if phase == "jackpot":
        return jackpot_changes(folder)
    return {}


def planned_runs(config: dict[str, Any]) -> dict[str, str]:
    """Every output the workflow's `all` rule asks for, as {path: the rule that writes it}, in a stable order.

    Every run is a target, not only the report: a fresh clone holds the committed report, and asking for it alone
    would let Snakemake stop there without running a single job. Each paper's own dense run is listed too (it is
    an input of that paper's stages anyway), so that the report's coverage finds every run it reads here.
    """
    exp = config.get("experiments") or {}
    root = config.get("results", "results")
    transfer = [(t["source"], t["target"]) for t in exp.get("transfer", [])]
    extra = {key: extra_runs(config, key) for key in EXTRA_RUNS}
    out: dict[str, str] = {}

    def add(rule: str, phase: str, d: str, b: str, s: int, *parts: str) -> None:
        out.setdefault(os.path.join(root, phase, d, b, f"seed{s}", *parts), rule)

    def here(key: str, d: str, b: str) -> list[str]:
        return [name for name, cells in extra[key].items() if (d, b) in cells]

    for d, b, s in grid_cells(config):
        # The base dense run even where every paper trains its own: the report's dense accuracy of a cell is its.
        add("pretrain", "pretrain", d, b, s, "metrics.json")
        structure = [*exp.get("structure_methods", []), *here("structure_ablations", d, b)]
        variants = ["full", *exp.get("imp_baselines", []), *exp.get("imp_variants", [])]
        if structure:
            variants.append(STRUCTURE_IMP)
        variants += [f"full-{v}" for v in here("prac_settings", d, b)]
        # The IMP runs that structure ablations read (another rewind point or mask source), then those listed alone.
        variants += [source for kind, source in map(structure_source, structure) if kind == "imp"]
        variants += here("imp_runs", d, b)
        for v in variants:
            add("imp", "imp", d, b, s, v, "metrics.json")
        for src, tgt in transfer:
            if tgt == b:
                add("imp", "imp", d, b, s, f"prac-from-{src}", "metrics.json")
        if exp.get("prac", True):
            add("prac", "prac", d, b, s, "metrics.json")
            add("prac_savings", "prac", d, b, s, "savings.json")
        for name in [*here("prac_ablations", d, b), *here("prac_settings", d, b)]:
            add("prac_ablation", "prac", d, b, s, name, "metrics.json")
        for sp in exp.get("jackpot_sparsities", []):
            add("jackpot", "jackpot", d, b, s, f"magnitude-s{sp}", "metrics.json")
        for name in here("jackpot_searches", d, b):
            add("jackpot_search", "jackpot", d, b, s, name, "metrics.json")
        for sp in exp.get("jackpot_random_sparsities", []):
            add("jackpot_cost", "jackpot", d, b, s, f"cost-s{sp}.json")
            for init in ("random", "magnitude"):
                add("jackpot_overlap", "jackpot", d, b, s, f"overlap-{init}-s{sp}", "overlap.csv")
        for m in structure:
            add("structure", "structure", d, b, s, m, "metrics.json")
        if {"refill", "regroup"} <= set(exp.get("structure_methods", [])):
            add("timing", "structure", d, b, s, "timing", "timing.json")
    for name, targets in extra["structure_transfers"].items():
        method, _ = structure_run(name)
        _, source = structure_source(name)
        for (d, b), s in itertools.product(targets, config["grid"]["seeds"]):
            # A target outside grid.only runs these alone: its dense run, and its own Structure-LTH IMP run, which
            # gives the rewind point (the masks are the source's); so does a source outside grid.only, with the
            # structure run whose masks the transfer reads.
            for cell, run in (((d, b), name), ((source, b), method)):
                add("pretrain", "pretrain", *cell, s, "metrics.json")
                add("imp", "imp", *cell, s, STRUCTURE_IMP, "metrics.json")
                add("structure", "structure", *cell, s, run, "metrics.json")
    for d, b, s in dense_cells(config):
        add("pretrain", "pretrain", d, b, s, "metrics.json")
        for paper in PAPERS:
            name = dense_run(config, paper, d, b)
            if name:
                add("pretrain_paper", "pretrain", d, b, s, name, "metrics.json")
    dense: dict[tuple, str] = {}
    for path in list(out):
        phase, d, b, seed, *rest = os.path.relpath(path, root).split(os.sep)
        if phase == "pretrain":
            continue
        recipe = recipe_of(phase, rest[0] if len(rest) > 1 else "")
        key = (recipe, d, b)
        if key not in dense:
            dense[key] = dense_run(config, recipe, d, b)
        if dense[key]:
            add("pretrain_paper", "pretrain", d, b, int(seed[4:]), dense[key], "metrics.json")
    return out


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def job_kind(rule: str, path: str, root: str = "results") -> str:
    """What a planned output's job is, as ``rule:phase/folder`` with every number in the folder as N (``imp:imp/
    structure_lth-rwN``, ``pretrain_paper:pretrain/prac``): the paper grid's ~60 kinds, which its miniature runs
    each at least once (the cells and seeds a kind runs on are the grid's scale, not another code path)."""
    parts = os.path.relpath(path, root).split(os.sep)
    if len(parts) < 5 or not parts[3].startswith("seed"):  # collecting and the report: one job per grid
        return rule
    phase, _, _, _, *rest = parts
    return f"{rule}:{phase}/{NUMBER.sub('N', '/'.join(rest[:-1]) or rest[-1])}"


def _check_recipes(config: dict[str, Any], classes: dict[str, type[Hparams]]) -> None:
    """Every paper's recipe, merged for every dataset and backbone of the grid, must make valid blocks."""
    grid = config["grid"]
    recipes = config.get("recipes") or {}
    for paper, recipe in recipes.items():
        for key in recipe.get("overrides") or {}:
            dataset, slash, backbone = key.partition("/")
            if dataset not in grid["datasets"] or (slash and backbone not in grid["backbones"]):
                raise ConfigError(f"recipes.{paper}.overrides.{key}", recipe["overrides"][key],
                                  f"a dataset of grid.datasets ({', '.join(grid['datasets'])}), or "
                                  f"<dataset>/<backbone> with a backbone of grid.backbones")
        # Every backbone with every dataset, grid.only or not: a transfer source runs outside grid.only.
        for dataset, backbone in itertools.product(grid["datasets"], grid["backbones"]):
            layers = recipe_layers(config, paper, dataset, backbone)
            for where, layer in layers[1:]:
                for name, block in layer.items():
                    for key in PER_JOB.get(name, ()):
                        if key in (block or {}):
                            raise ConfigError(f"{where}.{name}.{key}", block[key], "no value here: the grid sets "
                                              "it per job (see experiments: in the config)")
            for name, values in resolve_recipe(config, paper, dataset, backbone).items():
                try:
                    classes[name].from_dict(values)
                except ConfigError as e:
                    field = e.key.rpartition(".")[2]
                    where = next((w for w, layer in reversed(layers) if field in (layer.get(name) or {})), None)
                    raise ConfigError(f"{where}.{e.key}" if where else e.key, e.value, e.allowed) from None


def _check_data_roots(config: dict[str, Any]) -> None:
    """A data_roots folder of a grid dataset must exist now: the jobs that read it may start hours into a run."""
    from .data.cifar import CIFAR10, CIFAR100

    # The CIFAR builders create their root when they download; the other datasets cannot be downloaded.
    downloadable = {CIFAR10.name, CIFAR100.name}
    roots = config.get("data_roots") or {}
    for dataset in config["grid"]["datasets"]:
        if dataset not in roots:
            continue
        path = Path(os.path.expanduser(roots[dataset]))
        if path.is_dir():
            continue
        data = {**(config.get("data") or {}), **((config.get("overrides") or {}).get(dataset) or {}).get("data", {})}
        if dataset in downloadable and data.get("download") and not path.exists():
            continue
        fix = " or set data: {download: true}" if dataset in downloadable else ""
        raise ConfigError(f"data_roots.{dataset}", roots[dataset],
                          f"an existing folder that holds the {dataset} files (relative paths start at "
                          f"{os.getcwd()}){fix}")


class _Missing:
    """The value of a required key that is absent: shown as ``(missing)`` in the error line."""

    def __repr__(self) -> str:
        return "(missing)"


def _check_schema(config: dict[str, Any]) -> None:
    from jsonschema.validators import validator_for

    s = schema()
    errors = list(validator_for(s)(s).iter_errors(config))
    if errors:
        # A missing key last: it is often the misspelt key that another error names.
        raise _schema_error(min(errors, key=lambda e: e.validator == "required"))


def _schema_error(e) -> ConfigError:
    path = [str(p) for p in e.absolute_path if not isinstance(p, int)]  # list items: name the list, show the item
    key = ".".join(path)
    if e.validator == "additionalProperties" and e.validator_value is False:
        known = list(e.schema.get("properties", {}))
        extra = next(k for k in e.instance if k not in known)
        close = difflib.get_close_matches(str(extra), known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return ConfigError(".".join([*path, str(extra)]), e.instance[extra],
                           f"{hint}known keys of {key or 'the config'}: {', '.join(known)}")
    if e.validator == "required":
        missing = next(k for k in e.validator_value if k not in e.instance)
        return ConfigError(".".join([*path, missing]), _Missing(),
                           f"{_describe(e.schema['properties'][missing])}; {key or 'the config'} needs "
                           f"{', '.join(e.validator_value)}")
    if e.validator in ("type", "minimum", "maximum", "pattern", "minItems", "items"):
        return ConfigError(key, e.instance, _describe(e.schema))
    return ConfigError(key, e.instance, " ".join(e.message.split()))


_NOUNS = {"string": ("a string", "strings"), "integer": ("an integer", "integers"), "number": ("a number", "numbers"),
          "boolean": ("true or false", "booleans"), "object": ("a mapping", "mappings"), "array": ("a list", "lists")}


def _describe(s: dict, *, plural: bool = False, note: bool = True) -> str:
    """What a schema allows, in words: 'a non-empty list of integers >= 0', 'an integer >= 1 (CPU threads ...)'."""
    types = [s["type"]] if isinstance(s.get("type"), str) else list(s.get("type", []))
    if "number" in types and "integer" in types:
        types.remove("integer")
    words = []
    for t in types:
        noun = _NOUNS[t][plural]
        if t == "array" and "items" in s:
            items = _describe(s["items"], plural=True, note=False)
            noun = f"{'a non-empty list' if s.get('minItems') else noun} of {items}"
        elif t == "object" and s.get("required"):
            noun += f" with keys {', '.join(s['required'])}"
        if "minimum" in s and "maximum" in s:
            noun += f" from {s['minimum']} to {s['maximum']}"
        elif "minimum" in s:
            noun += f" >= {s['minimum']}"
        elif "maximum" in s:
            noun += f" <= {s['maximum']}"
        if t == "string" and s.get("pattern") in PATTERN_WORDS:
            noun = f"{noun}, each {PATTERN_WORDS[s['pattern']]}" if plural else PATTERN_WORDS[s["pattern"]]
        words.append(noun)
    text = " or ".join(words) or "a value"
    if note and s.get("description"):
        text += f" ({' '.join(s['description'].splitlines()[0].split())})"
    return text


def _field_schema(f) -> dict:
    kind = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}[f.type if isinstance(f.type, str)
                                                                                      else f.type.__name__]
    # No "default" keys: Snakemake would fill them into the config, and the CLI reads the defaults itself.
    out: dict[str, Any] = {"type": kind, "description": f"{f.metadata.get('help', '')} (default: {f.default!r})"}
    if kind == "number":
        out["type"] = ["number", "integer"]
    if kind == "string" and f.name in ("milestones", "rewind_epochs", "rewind_iterations", "rounds"):
        out["type"] = ["string", "integer", "array"]
    return out


# The rules that run a model and so ask a cluster for resources; the rest (collect, report, cost) are localrules.
CLUSTER_RULES = ("pretrain", "prac", "imp", "jackpot", "jackpot_overlap", "structure", "timing")


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


def _check_cluster(config: dict[str, Any]) -> None:
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


def schema() -> dict[str, Any]:
    """The JSON schema of the workflow config (written to workflow/schemas/config.schema.yaml)."""
    classes = block_classes()
    blocks = {name: {"type": "object", "additionalProperties": False, "description": (cls.__doc__ or "").strip(),
                     "properties": {f.name: _field_schema(f) for f in cls._fields()}} for name, cls in classes.items()}
    def strings(pattern: str | None = NAME, least: int = 1) -> dict:
        return {"type": "array", "items": {"type": "string", **({"pattern": pattern} if pattern else {})},
                "minItems": least}

    # A recipe's blocks have the top-level blocks' keys and types.
    recipe_blocks = {b: {"$ref": f"#/properties/{b}"} for b in RECIPE_BLOCKS}
    recipe = {"type": "object", "additionalProperties": False,
              "properties": {**recipe_blocks, "overrides": {
                  "type": "object", "description": "<dataset> or <dataset>/<backbone> -> {block: {key: value}}",
                  "additionalProperties": {"type": "object", "additionalProperties": False,
                                           "properties": recipe_blocks}}}}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "ticketbench workflow configuration (generated by `ticketbench schema`; do not edit by hand)",
        "type": "object",
        "additionalProperties": False,
        "required": ["grid"],
        "properties": {
            "grid": {"type": "object", "additionalProperties": False, "required": ["datasets", "backbones", "seeds"],
                     "description": "the experiment grid; every combination runs",
                     "properties": {"datasets": strings(), "backbones": strings(),
                                    "only": {"type": "object", "additionalProperties": strings(least=0),
                                             "description": "dataset -> the backbones it runs with (default: all; "
                                             "[]: none)"},
                                    "dense": {"type": "object", "additionalProperties": strings(),
                                              "description": "dataset -> backbones that run their dense runs "
                                              "alone (the base one and each paper's own), outside grid.only"},
                                    "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                                        "maximum": SEED_MAX}, "minItems": 1}}},
            "results": {"type": "string", "pattern": RESULTS_PATH,
                        "description": "root folder of the results (default: results)"},
            "threads": {"type": "integer", "minimum": 1, "maximum": THREADS_MAX,
                        "description": "CPU threads per job; part of the recipe, bitwise reproducible per count (1)"},
            "gpu": {"type": "integer", "minimum": 0, "maximum": GPUS_MAX,
                    "description": "GPUs each training job declares (default 0)"},
            "cluster": cluster_schema(),
            "data_roots": {"type": "object", "propertyNames": {"pattern": NAME},
                           "additionalProperties": {"type": "string", "pattern": PRINTABLE},
                           "description": "dataset name -> folder that holds its files"},
            "overrides": {"type": "object", "description": "dataset name -> {block: {key: value}}: per-dataset recipe "
                          "changes, passed to the stages as flags",
                          "additionalProperties": {"type": "object", "additionalProperties": False,
                                                   "properties": {b: {"type": "object"} for b in classes}}},
            "recipes": {"type": "object", "additionalProperties": False,
                        "description": "paper -> its recipe: {block: {key: value}} and overrides: {<dataset> or "
                        "<dataset>/<backbone>: {block: {key: value}}}, layered in that order on the top-level "
                        "blocks and overrides; passed as flags to the stages of that paper's pipeline",
                        "properties": {p: recipe for p in RECIPES}},
            "experiments": {
                "type": "object", "additionalProperties": False, "description": "which comparisons to run",
                "properties": {
                    "prac": {"type": "boolean", "description": "PrAC-IMP and its savings (default: true)"},
                    "imp_baselines": {"type": "array", "items": {"type": "string"}},
                    "imp_variants": {"type": "array", "items": {"type": "string"}},
                    "transfer": {"type": "array", "items": {
                        "type": "object", "required": ["source", "target"], "additionalProperties": False,
                        "properties": {"source": {"type": "string"}, "target": {"type": "string"}}}},
                    "jackpot_sparsities": {"type": "array", "items": {"type": "number"}},
                    "jackpot_random_sparsities": {"type": "array", "items": {"type": "number"}},
                    "structure_methods": {"type": "array", "items": {"type": "string"}},
                    **{key: {"type": "object", "additionalProperties": strings(None, least=0), "description": text}
                       for key, text in EXTRA_RUNS_HELP.items()},
                }},
            **blocks,
        },
    }


def schema_text() -> str:
    import yaml

    head = "# Generated by `ticketbench schema` from the hparams dataclasses; tests/test_pipeline.py keeps it in step.\n"
    return head + yaml.safe_dump(schema(), sort_keys=False, width=120)


from .stage import STAGES, Stage  # noqa: E402


@STAGES.register("schema")
class Schema(Stage):
    name = "schema"
    help = "write the workflow config's JSON schema (generated from the hparams dataclasses)"

    @classmethod
    def add_args(cls, parser) -> None:
        parser.add_argument("--out", default="workflow/schemas/config.schema.yaml", metavar="FILE")

    @classmethod
    def run(cls, args, config) -> int:
        from . import storage

        storage.write_text(args.out, schema_text())
        return 0


@STAGES.register("check-config")
class CheckConfig(Stage):
    name = "check-config"
    help = ("validate workflow config files (merged in order, as `snakemake --configfile` merges them) and print "
            "the first problem as the same one line Snakemake prints")

    @classmethod
    def add_args(cls, parser) -> None:
        # Its own dest: the CLI would otherwise read the files itself, merge them shallowly and word YAML errors
        # its own way, while this stage must see exactly the config Snakemake sees.
        parser.add_argument("--config", dest="files", action="append", default=[], metavar="FILE",
                            help=f"a config file; repeat to layer files, later ones win (default: {DEFAULT_CONFIG}; "
                            f"Snakemake always starts from it, so pass it first to check what `snakemake "
                            f"--configfile FILE` runs)")
        parser.add_argument("--no-data", action="store_true",
                            help="skip the check that data_roots folders exist, as `snakemake -n` does")

    @classmethod
    def run(cls, args, config) -> int:
        try:
            check_config(load_config_files(args.files or [DEFAULT_CONFIG]), data=not args.no_data)
        except ConfigError as e:
            print(error_line(e), file=sys.stderr)
            return 2
        print("config ok")
        return 0
