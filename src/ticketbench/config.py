"""The workflow's config: one check that fails before any job starts, and the schema it implies.

:func:`check_config` validates the shape against :func:`schema` (the JSON schema written to
``workflow/schemas/config.schema.yaml``), then what a schema cannot say (backbones that timm knows, registered
datasets, sparsities, epochs, data folders that exist), and raises one :class:`ConfigError` naming the key.
The Snakefile and ``ticketbench check-config`` both call it on the config merged the same way, so they accept
and reject the same configs with the same line. The schema is generated from the same hparams dataclasses the
CLI uses, so config, CLI and schema cannot drift apart.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import os
import sys
from pathlib import Path
from typing import Any

from . import runs as kinds
from .cluster import GPUS_MAX, SLURM_CONSTRAINT, SLURM_NAME, SLURM_OPTIONS, check_cluster, cluster_schema
from .errors import ConfigError
from .hparams import SEED_MAX, THREADS_MAX, DataHparams, Hparams, RuntimeHparams, TrainHparams
from .methods.registry import IMP_VARIANTS, STRUCTURE_METHODS
from .recipes import RECIPE_BLOCKS, RECIPES, recipe_layers, resolve_recipe
from .runs import EXTRA_RUNS, EXTRA_RUNS_HELP, STRUCTURE_IMP, extra_runs, grid_cells
from .untrusted import merge_config, read_config_files, read_yaml_mapping


def block_classes() -> dict[str, type[Hparams]]:
    """Config block -> its hparams class. The method modules import torch, so only a check or the schema asks."""
    from .methods.imp import ImpHparams
    from .methods.instability import InstabilityHparams
    from .methods.jackpot.search import JackpotHparams
    from .methods.prac.stage import PracHparams
    from .methods.structure.stage import StructureHparams

    return {"data": DataHparams, "train": TrainHparams, "imp": ImpHparams, "prac": PracHparams,
            "jackpot": JackpotHparams, "structure": StructureHparams, "runtime": RuntimeHparams,
            "instability": InstabilityHparams}


# Keys of a block that the grid sets per job (wildcards), so the block must not fix them.
PER_JOB = {"data": {"dataset"}, "jackpot": {"sparsity", "init"}, "structure": {"method"}, "imp": {"variant"}}
# The file the Snakefile's `configfile:` names: every run layers its other config files on top of it.
DEFAULT_CONFIG = "config/config.yaml"


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


def error_line(e: ConfigError) -> str:
    return f"ticketbench config error: {e}"


def load_config_files(files: list[str]) -> dict[str, Any]:
    """Read YAML config files and merge them in order as Snakemake does (nested mappings merge)."""
    return read_config_files(files, "top-level keys such as grid:, experiments:, train:")


def check_workflow_config(cli_config: dict[str, Any], default_file: str = DEFAULT_CONFIG, *,
                          replace: bool = False, data: bool = True, files: list[str] = ()) -> None:
    """Check the config that Snakemake's ``configfile:`` is about to build; a bad one exits with one line.

    ``cli_config`` is Snakemake's config before that directive: the ``--configfile`` files and ``--config``
    values, which the directive layers on top of ``default_file`` (or, with ``replace``, uses alone). ``files``:
    the ``--configfile`` files, read again here with this project's reader, because Snakemake's keeps the last of
    two equal keys and accepts files of any size and depth.
    """
    try:
        for path in files:
            read_yaml_mapping(path, "top-level keys such as grid:, experiments:, train:")
        merged = {} if replace else load_config_files([default_file])
        merge_config(merged, copy.deepcopy(cli_config))
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
    baselines, others = imp_variant_roles()
    for key, allowed in (("imp_baselines", baselines), ("imp_variants", others)):
        for v in exp.get(key, []):
            if v not in allowed:
                raise ConfigError(f"experiments.{key}", v, f"one of {', '.join(allowed)}")
    methods = STRUCTURE_METHODS.names()
    released = [f"{m}-released" for m in methods if STRUCTURE_METHODS.spec(m).released]
    for m in exp.get("structure_methods", []):
        if m not in methods and m not in released:
            raise ConfigError("experiments.structure_methods", m,
                              f"one of {', '.join(methods)}, or {', '.join(released)} (the released "
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
    check_cluster(config)


def _check_extra_runs(config: dict[str, Any]) -> None:
    from .methods.structure.refill import CHANNEL_SCORES

    runs = {key: extra_runs(config, key) for key in EXTRA_RUNS}
    for name in runs["prac_settings"]:
        # Without its recipe the setting would silently run PrAC's standard one under another name.
        if f"prac_{name}" not in (config.get("recipes") or {}):
            raise ConfigError("experiments.prac_settings", name, f"a setting with its recipe in recipes.prac_{name} "
                              "(PrAC Table 1's learning rate, warm-up and rewind point for it)")
    followers = imp_variant_roles()[0]

    def check_source(key: str, name: str, folder: str) -> None:
        """An IMP folder that another run reads: a variant that follows a reference, or a rewind point."""
        variant, _ = kinds.imp_run(folder)
        percent = kinds.rewind_percent(folder)
        if percent is not None and not 0 < percent <= 100:
            raise ConfigError(f"experiments.{key}", name, "a rewind point rw<p> with 0 < p <= 100 (percent of "
                              "the dense run's training)")
        if percent is None and variant not in followers:
            raise ConfigError(f"experiments.{key}", name, f"an IMP variant that follows a reference run: "
                              f"{', '.join(followers)}")

    def check_imp_run(key: str, name: str) -> None:
        """An IMP folder asked for by name: a follower of full IMP or of another variant, or a rewind point."""
        check_source(key, name, name)
        source = kinds.parse("imp", name)[1].get("source_variant")
        if source is not None and (source == "full" or source not in IMP_VARIANTS or
                                   IMP_VARIANTS.spec(source).paper != "prac"):
            raise ConfigError(f"experiments.{key}", name, f"<variant>-of-<source> with a source of "
                              f"{', '.join(n for n in IMP_VARIANTS.names('prac') if n != 'full')} (a variant that "
                              f"follows full IMP's masks: name it alone)")

    for name in runs["imp_runs"]:
        check_imp_run("imp_runs", name)
    for name in runs["instability"]:
        found = kinds.parse("imp", name)
        if found is None or found[0].pattern == "prac-from-{source}":
            raise ConfigError("experiments.instability", name, kinds.allowed_names("instability"))
        if found[0].key == "imp_runs":
            check_imp_run("instability", name)
    for name in runs["structure_ablations"]:
        method, changes = kinds.structure_run(name)
        kind, source = kinds.structure_source(name)
        if kind == "imp" and source != STRUCTURE_IMP:
            check_source("structure_ablations", name, source)
            continue
        criterion = changes["structure"].get("criterion")
        if name == f"{method}-released" and not changes["structure"]:
            released = [m for m in STRUCTURE_METHODS.names() if STRUCTURE_METHODS.spec(m).released]
            raise ConfigError("experiments.structure_ablations", name, f"<method>-released for a method with the "
                              f"released code's settings: {', '.join(released)}")
        if not STRUCTURE_METHODS.spec(method).channels and "scratch" in changes["structure"]:
            channels = " and ".join(m for m in STRUCTURE_METHODS.names() if STRUCTURE_METHODS.spec(m).channels)
            raise ConfigError("experiments.structure_ablations", name, f"<method>-scratch_e or <method>-scratch_b "
                              f"for a method whose tickets are slimmed: {channels}")
        if not STRUCTURE_METHODS.spec(method).channels and {"criterion", "rho"} & set(changes["structure"]):
            channels = " and ".join(m for m in STRUCTURE_METHODS.names() if STRUCTURE_METHODS.spec(m).channels)
            raise ConfigError("experiments.structure_ablations", name, f"{method}-reinit, {method}-released, "
                              f"{method}-rw<p> or {method}-from-<variant>: a channel criterion or rho changes "
                              f"{channels} only")
        if criterion is not None and criterion not in CHANNEL_SCORES:
            raise ConfigError("experiments.structure_ablations", name,
                              f"<method>-<criterion> with a criterion of {', '.join(CHANNEL_SCORES.names())}")
    for name, targets in runs["structure_transfers"].items():
        _, source = kinds.structure_source(name)
        for d, b in targets:
            # The source's structure run is a job of the grid: of its cell's whole pipeline, or of the runs a source
            # outside grid.only makes for the transfer alone (planned_runs).
            if source == d or source not in config["grid"]["datasets"]:
                raise ConfigError(f"experiments.structure_transfers.{name}", f"{d}/{b}",
                                  f"a cell <dataset>/<backbone> of another dataset than {source}, with {source} "
                                  f"in grid.datasets")
    for name in runs["jackpot_searches"]:
        lengths = [v for k, v in kinds.run_changes("jackpot", name)["jackpot"].items() if k.endswith("epochs")]
        if any(v < 1 for v in lengths):
            raise ConfigError("experiments.jackpot_searches", name, "at least 1 search or tuning epoch")
        if not 0 < kinds.run_changes("jackpot", name)["jackpot"].get("rate", 0.5) < 1:
            raise ConfigError("experiments.jackpot_searches", name, "a restriction rate r with 0 < r < 1")


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


def imp_variant_roles() -> tuple[list[str], list[str]]:
    """(the registered IMP variants experiments.imp_baselines takes: those that follow a reference run, those
    experiments.imp_variants takes: the others but full IMP and Structure-LTH's own)."""
    baselines = [n for n in IMP_VARIANTS.names() if IMP_VARIANTS.get(n).reference]
    return baselines, [n for n in IMP_VARIANTS.names() if n not in baselines and n not in ("full", STRUCTURE_IMP)]


def schema() -> dict[str, Any]:
    """The JSON schema of the workflow config (written to workflow/schemas/config.schema.yaml)."""
    classes = block_classes()
    baselines, others = imp_variant_roles()
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
                    "imp_baselines": {"type": "array", "items": {"type": "string"}, "description": (
                        f"IMP variants that follow full IMP's masks, in results/imp/<d>/<b>/seed<k>/<name>/; "
                        f"registered: {', '.join(baselines)}")},
                    "imp_variants": {"type": "array", "items": {"type": "string"}, "description": (
                        f"other IMP variants, in results/imp/<d>/<b>/seed<k>/<name>/; registered: "
                        f"{', '.join(others)}")},
                    "transfer": {"type": "array", "items": {
                        "type": "object", "required": ["source", "target"], "additionalProperties": False,
                        "properties": {"source": {"type": "string"}, "target": {"type": "string"}}}},
                    "jackpot_sparsities": {"type": "array", "items": {"type": "number"}},
                    "jackpot_random_sparsities": {"type": "array", "items": {"type": "number"}},
                    "structure_methods": {"type": "array", "items": {"type": "string"}, "description": (
                        f"structure methods, in results/structure/<d>/<b>/seed<k>/<name>/; registered: "
                        f"{', '.join(STRUCTURE_METHODS.names())}; <method>-released: the released code's settings")},
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
