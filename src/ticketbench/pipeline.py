"""The workflow's config: one check that fails before any job starts, and the schema it implies.

Snakemake validates the config's shape against ``workflow/schemas/config.schema.yaml``; this module
checks what a schema cannot (backbones that timm knows, registered datasets, sparsities, epochs)
and raises one :class:`ConfigError` line naming the key. The schema is generated from the same
hparams dataclasses the CLI uses, so config, CLI and schema cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .hparams import DataHparams, Hparams, TrainHparams
from .methods.imp import BASELINES, ImpHparams
from .methods.jackpot import JackpotHparams
from .methods.prac import PracHparams
from .methods.structure import METHODS as STRUCTURE_METHODS
from .methods.structure import StructureHparams

BLOCKS: dict[str, type[Hparams]] = {"data": DataHparams, "train": TrainHparams, "imp": ImpHparams,
                                    "prac": PracHparams, "jackpot": JackpotHparams, "structure": StructureHparams}
# Keys of a block that the grid sets per job (wildcards), so the block must not fix them.
PER_JOB = {"data": {"dataset"}, "jackpot": {"sparsity", "init"}, "structure": {"method"}, "imp": {"baseline"}}
INITS = ("magnitude", "random")


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError for the first bad setting; used by the Snakefile before the DAG is built."""
    from .data import dataset_names
    from .models import create_model, list_backbones

    grid = config.get("grid") or {}
    for d in grid.get("datasets", []):
        if d not in dataset_names():
            raise ConfigError("grid.datasets", d, f"one of {', '.join(dataset_names())}")
    known = set(list_backbones())
    for b in grid.get("backbones", []):
        if b not in known:
            create_model(b, num_classes=10)  # raises the backbone error with close matches
    for dataset, backbones in (grid.get("only") or {}).items():
        for b in backbones:
            if dataset not in grid.get("datasets", []) or b not in grid.get("backbones", []):
                raise ConfigError(f"grid.only.{dataset}", b, "a dataset and backbones listed in the grid")
    for seed in grid.get("seeds", []):
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError("grid.seeds", seed, "non-negative integers")
    for name, cls in BLOCKS.items():
        block = dict(config.get(name) or {})
        for key in PER_JOB.get(name, ()):
            if key in block:
                raise ConfigError(f"{name}.{key}", block[key], "no value here: the grid sets it per job "
                                  "(see experiments: in the config)")
        cls.from_dict(block)
    for dataset, blocks in (config.get("overrides") or {}).items():
        if dataset not in grid.get("datasets", []):
            raise ConfigError("overrides", dataset, "a dataset of grid.datasets")
        for name, block in (blocks or {}).items():
            merged = {**(config.get(name) or {}), **(block or {})}
            try:
                BLOCKS[name].from_dict(merged)
            except ConfigError as e:
                raise ConfigError(f"overrides.{dataset}.{e.key}", e.value, e.allowed) from None
    exp = config.get("experiments") or {}
    for b in exp.get("imp_baselines", []):
        if b not in BASELINES[1:]:
            raise ConfigError("experiments.imp_baselines", b, f"one of {', '.join(BASELINES[1:])}")
    for m in exp.get("structure_methods", []):
        if m not in STRUCTURE_METHODS:
            raise ConfigError("experiments.structure_methods", m, f"one of {', '.join(STRUCTURE_METHODS)}")
    for key in ("jackpot_sparsities", "jackpot_random_sparsities"):
        for s in exp.get(key, []):
            if not isinstance(s, (int, float)) or not 0 < s < 1:
                raise ConfigError(f"experiments.{key}", s, "sparsities strictly between 0 and 1")
    for pair in exp.get("transfer", []):
        for role in ("source", "target"):
            if pair.get(role) not in grid.get("backbones", []):
                raise ConfigError(f"experiments.transfer.{role}", pair.get(role), "a backbone of grid.backbones")


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


def schema() -> dict[str, Any]:
    """The JSON schema of the workflow config (written to workflow/schemas/config.schema.yaml)."""
    blocks = {name: {"type": "object", "additionalProperties": False, "description": (cls.__doc__ or "").strip(),
                     "properties": {f.name: _field_schema(f) for f in cls._fields()}} for name, cls in BLOCKS.items()}
    def strings() -> dict:
        return {"type": "array", "items": {"type": "string"}, "minItems": 1}

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
                                    "only": {"type": "object", "additionalProperties": strings(),
                                             "description": "dataset -> the backbones it runs with (default: all)"},
                                    "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                              "minItems": 1}}},
            "results": {"type": "string", "description": "root folder of the results (default: results)"},
            "threads": {"type": "integer", "minimum": 1,
                        "description": "CPU threads per job; part of the recipe, bitwise reproducible per count (1)"},
            "gpu": {"type": "integer", "minimum": 0, "description": "GPUs each training job declares (default 0)"},
            "data_roots": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "dataset name -> folder that holds its files"},
            "overrides": {"type": "object", "description": "dataset name -> {block: {key: value}}: per-dataset recipe "
                          "changes, passed to the stages as flags",
                          "additionalProperties": {"type": "object", "additionalProperties": False,
                                                   "properties": {b: {"type": "object"} for b in BLOCKS}}},
            "experiments": {
                "type": "object", "additionalProperties": False, "description": "which comparisons to run",
                "properties": {
                    "prac": {"type": "boolean", "description": "PrAC-IMP and its savings (default: true)"},
                    "imp_baselines": {"type": "array", "items": {"type": "string"}},
                    "transfer": {"type": "array", "items": {
                        "type": "object", "required": ["source", "target"], "additionalProperties": False,
                        "properties": {"source": {"type": "string"}, "target": {"type": "string"}}}},
                    "jackpot_sparsities": {"type": "array", "items": {"type": "number"}},
                    "jackpot_random_sparsities": {"type": "array", "items": {"type": "number"}},
                    "structure_methods": {"type": "array", "items": {"type": "string"}},
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
        from . import io

        io.write_text(args.out, schema_text())
        return 0


@STAGES.register("check-config")
class CheckConfig(Stage):
    name = "check-config"
    help = "validate workflow config files (merged in order) and print the first problem as one line"

    @classmethod
    def add_args(cls, parser) -> None:
        parser.add_argument("--config", action="append", default=[], metavar="FILE")

    @classmethod
    def run(cls, args, config) -> int:
        check_config(config)
        print("config ok")
        return 0
