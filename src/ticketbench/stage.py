"""What every CLI stage shares: the config file, the output folder and its hparams.json guard."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from . import storage, paths
from .errors import ArtifactError, ConfigError
from .hparams import SEED_MAX, THREADS_MAX
from .registry import Registry
from .untrusted import read_config_files

STAGES: Registry[type["Stage"]] = Registry("stage")


class Stage:
    """A subcommand of ``ticketbench``. Subclass, set ``name``/``help``, implement ``add_args`` and ``run``."""

    name = ""
    help = ""

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict[str, Any]) -> int:
        raise NotImplementedError


def add_common_args(parser: argparse.ArgumentParser, *, out: bool = True) -> None:
    g = parser.add_argument_group("run")
    g.add_argument("--config", metavar="FILE", action="append", default=[],
                   help="YAML file whose blocks (data, model, train, ...) set defaults; repeat it to layer files "
                   "(later files win, block by block); flags given on the command line win over all files")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: the config's seed, else 0)")
    if out:
        g.add_argument("--out", required=True, metavar="DIR", help="output folder of this run")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    g.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch; results are bitwise reproducible for a fixed thread count, so the "
                   "count is part of the recipe (default: 1)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    from .hparams import RuntimeHparams

    RuntimeHparams.add_args(parser)
    g.add_argument("--overwrite", action="store_true",
                   help="replace the results of a run with different settings already in --out")


def add_input(group, flag: str, **kwargs) -> argparse.Action:
    """A flag that names a folder this stage reads (a run of an earlier stage): ``--out`` may never be it."""
    action = group.add_argument(flag, metavar="DIR", **kwargs)
    action.reads_run = True
    return action


def check_out(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--out`` names a place of its own: not empty (the checkout root), not a folder the stage reads, nor one
    that holds it (an --overwrite there would replace the input run's files)."""
    out = getattr(args, "out", None)
    if out is None:
        return
    if not str(out).strip():
        raise ConfigError("out", out, "a folder or file name (an empty one is the current folder)")
    target = Path(out).resolve()
    for action in parser._actions:
        if not getattr(action, "reads_run", False):
            continue
        value = getattr(args, action.dest, None)
        for folder in value if isinstance(value, list) else [value]:
            if folder and (target == Path(folder).resolve() or target in Path(folder).resolve().parents):
                raise ConfigError("out", out, f"a folder other than the {action.option_strings[0]} run it reads "
                                  f"({folder}) and not one that holds it")


def load_config(files: list[str] | str | None) -> dict[str, Any]:
    """Read and merge config files in order, as the workflow merges them (nested mappings merge)."""
    return read_config_files([files] if isinstance(files, str) else (files or []),
                             "blocks such as data:, model:, train:")


def setup_runtime(args: argparse.Namespace, config: dict[str, Any] | None = None):
    """Threads, determinism and the device, in the order torch needs them; returns the device."""
    import torch

    from .hparams import RuntimeHparams
    from .runtime import make_deterministic, resolve_device
    from .timing import tune_allocator

    if not 1 <= args.threads <= THREADS_MAX:
        raise ConfigError("threads", args.threads, f"a number of CPU threads from 1 to {THREADS_MAX}")
    runtime = RuntimeHparams.from_sources(config, args)
    torch.set_num_threads(args.threads)
    make_deterministic(runtime.deterministic)
    tune_allocator()
    return resolve_device(args.device)


def resolve_seed(args: argparse.Namespace, config: dict[str, Any]) -> int:
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise ConfigError("seed", seed, f"an integer from 0 to {SEED_MAX}")
    return seed


def make_run_id(resolved: dict[str, Any]) -> str:
    """A short hash of the resolved settings in which each hparams block keeps only its non-default fields.

    As in OpenLTH, a field added later with a default that changes nothing leaves every existing run id (and so
    every existing output folder) valid; hparams.json still records every field for provenance.
    """
    from .hparams import Hparams

    defaults: dict[str, dict[str, Any]] = {}
    for cls in _subclasses(Hparams):
        if cls.section:
            defaults.setdefault(cls.section, {}).update({f.name: f.default for f in cls._fields()})
    canonical = {}
    for key, value in resolved.items():
        if key in defaults and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in defaults[key] or v != defaults[key][k]}
        canonical[key] = value
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def claim_out_dir(out: str, resolved: dict[str, Any], overwrite: bool) -> str:
    """Write ``hparams.json`` into ``out``; refuse a folder that holds a run with other settings.

    Returns the run id, a hash of the settings that differ from their defaults (see :func:`run_id`), so a later
    reader can tell recipes apart.
    """
    run_id = make_run_id(resolved)
    target = paths.hparams(out)
    if target.exists() and not overwrite:
        old = storage.read_json(target)
        if not isinstance(old, dict) or not isinstance(old.get("settings"), dict):
            raise ArtifactError(target, "is not the hparams.json of a run (a JSON object with its settings); "
                                "pass --overwrite to replace the folder's run")
        # A folder written before the run id left out defaults holds the same settings under another id.
        if old.get("run_id") != run_id and old.get("settings") != json.loads(json.dumps(resolved)):
            changed = sorted(k for k in set(old.get("settings", {})) | set(resolved)
                             if old.get("settings", {}).get(k) != resolved.get(k))
            raise ConfigError("out", out, f"an empty folder or one of a run with the same settings (differs in "
                              f"{', '.join(changed) or 'run id'}); pass --overwrite to replace it")
    # A run is complete when its metrics.json lands, which a stage writes last. The old run's go first, so that a
    # job killed between here and its own metrics leaves a folder every reader refuses as unfinished, never the new
    # settings beside the old run's weights; temporaries of a killed writer go too.
    for done in [paths.metrics(out), *Path(out).glob("round*/metrics.json")]:
        if done.is_file() and target.exists():
            done.unlink()
    # Only this run's own folders: another run may live (and be writing) in a subfolder, as a paper's dense run does.
    for pattern in (".*.tmp", "rewind/.*.tmp", "round*/.*.tmp"):
        for tmp in Path(out).glob(pattern):
            if tmp.is_file():
                tmp.unlink()
    storage.write_json(target, {"run_id": run_id, "settings": resolved})
    return run_id
