"""What every method needs from a finished pretrain run, and one IMP-style training round."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .. import artifacts, storage, paths
from ..data import Splits, load_splits
from ..errors import ArtifactError, ConfigError, short_repr
from ..hparams import DataHparams, Hparams, ModelHparams, TrainHparams, iteration_point
from ..masks import Mask
from ..models import create_model
from ..stage import Stage, add_common_args, add_input, claim_out_dir, resolve_seed, setup_runtime
from ..train import Callback, TrainResult, train

State = dict[str, torch.Tensor]


@dataclass
class Pretrained:
    """A pretrain run loaded back: its settings, data, weights and training dynamics."""

    dir: Path
    seed: int
    data_hp: DataHparams
    model_hp: ModelHparams
    train_hp: TrainHparams
    splits: Splits
    best_state: State
    final_state: State
    source_hash: str
    metrics: dict

    def new_model(self, seed: int | None = None) -> nn.Module:
        """An untrained model of the pretrain run's architecture (random init from ``seed``)."""
        torch.manual_seed(self.seed if seed is None else seed)
        info = self.splits.info
        # At the data's size, as pretrain built it (a fixed-size model is rebuilt for it); pretrain checked it runs.
        return create_model(self.model_hp.backbone, num_classes=info.num_classes, in_chans=info.in_chans,
                            image_size=info.image_size, check_size=False)

    @functools.cached_property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter of the architecture, what a mask loaded for it must match."""
        return {n: tuple(p.shape) for n, p in self.new_model().named_parameters()}

    def model_from(self, state: State) -> nn.Module:
        model = self.new_model()
        model.load_state_dict(state)
        return model

    @property
    def iters_per_epoch(self) -> int:
        """Optimiser steps per epoch of the dense run (its schedule is what ``it<n>`` rewind points count in)."""
        return int(self.metrics["epochs"][0]["iterations"])

    def resolve_point(self, point: str) -> str:
        """A rewind point by its snapshot name: ``p%`` of the dense run's iterations becomes ``it<n>``, as the pretrain
        run named it when its ``rewind_iterations`` held the same percentage."""
        if point.endswith("%"):
            return f"it{iteration_point(point, self.train_hp.epochs * self.iters_per_epoch)}"
        return "ep0" if point == "init" else point

    def resume_epoch(self, point: str) -> float:
        """Where a round rewound to ``point`` resumes the LR schedule (``lr_resume``), in epochs."""
        return rewind_epoch(self.resolve_point(point), self.iters_per_epoch)

    def rewind_path(self, point: str) -> Path:
        """The file of the snapshot to rewind to: ``ep<k>``, ``it<n>``, ``p%`` or ``init`` (= ``ep0``); it must exist."""
        asked, point = point, self.resolve_point(point)
        path = paths.rewind(self.dir, point)
        if not path.exists():
            have = sorted(p.stem for p in (self.dir / "rewind").glob("*.safetensors"))
            named = asked if asked == point else f"{asked} ({point})"
            raise ConfigError("rewind", named, f"a snapshot saved by the pretrain run in {self.dir}: "
                              f"{', '.join(have) or 'none'} (pretrain saves more with --rewind-epochs or "
                              f"--rewind-iterations)")
        return path

    def rewind_state(self, point: str) -> State:
        path = self.rewind_path(point)
        state, meta = artifacts.load_checkpoint(path)
        settings = {"seed": self.seed, "data": {"dataset": self.data_hp.dataset},
                    "model": {"backbone": self.model_hp.backbone}}
        check_written_by(path, meta, settings)
        return state

    def dynamics(self) -> torch.Tensor:
        tensors, _ = storage.load_tensors(paths.dynamics(self.dir))
        return tensors["correct"]


@dataclass
class Run:
    """What a method stage works with once its inputs are checked and its folder claimed."""

    args: argparse.Namespace
    config: dict
    pre: Pretrained
    hp: dict[str, Hparams]  # by config block: ``hp["imp"]``, ``hp["train"]``, ...
    device: torch.device
    resolved: dict  # the settings recorded in hparams.json

    @property
    def progress(self) -> bool:
        return not self.args.no_progress


class MethodStage(Stage):
    """A stage that starts from a finished pretrain run, in one fixed order, so that a stage states only what differs:

    read its hparams blocks from config and flags (:meth:`adjust` may derive some from others) and check its flags;
    set up threads, determinism and the device; load the pretrain run; resolve the retraining recipe
    (``retrains``); check everything it reads (:meth:`check_inputs`); claim the output folder by writing
    ``hparams.json`` (``claims_out``), and only then do the work (:meth:`execute`). A bad input therefore fails
    with one line before anything is written.
    """

    hparams: tuple[type[Hparams], ...] = ()
    retrains = False  # retrains with the pretrain run's recipe, changed by the config's train: block and flags
    claims_out = True  # False: writes files into --out without a run folder's hparams.json (the studies)
    pretrain_help = "folder of a finished `ticketbench pretrain` run"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_common_args(parser)
        add_pretrain_args(parser, cls.pretrain_help)
        for block in cls.hparams:
            block.add_args(parser)
        if cls.retrains:
            TrainHparams.add_args(parser)
        cls.add_stage_args(parser)

    @classmethod
    def add_stage_args(cls, parser: argparse.ArgumentParser) -> None:
        """Flags of this stage only (input folders and the like)."""

    @classmethod
    def adjust(cls, hp: dict[str, Hparams], args: argparse.Namespace) -> dict[str, Hparams]:
        """Settings derived from other settings, and checks of the flags that need no file; before any work."""
        return hp

    @classmethod
    def settings(cls, pre: Pretrained, hp: dict[str, Hparams], args: argparse.Namespace,
                 config: dict) -> dict[str, Any]:
        """What this stage records in hparams.json besides its hparams blocks (input folders, say); may raise."""
        return {}

    @classmethod
    def check_inputs(cls, pre: Pretrained, hp: dict[str, Hparams], args: argparse.Namespace) -> None:
        """Everything the stage reads, checked before its output folder is claimed."""

    @classmethod
    def execute(cls, run: Run) -> int:
        raise NotImplementedError

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        hp = cls.adjust({block.section: block.from_sources(config, args) for block in cls.hparams}, args)
        device = setup_runtime(args, config)
        pre = load_pretrained(args.pretrain, data_root=args.data_root)
        seed = resolve_seed(args, config)
        if args.seed is not None and seed != pre.seed:
            raise ConfigError("seed", seed, f"the pretrain run's seed ({pre.seed}); methods reuse it")
        if cls.retrains:
            hp["train"] = resolve_train(pre, config, args)
        resolved = {"pretrain": pre.source_hash, **{k: v.to_dict() for k, v in hp.items()}, "threads": args.threads,
                    **cls.settings(pre, hp, args, config)}
        cls.check_inputs(pre, hp, args)
        if cls.claims_out:
            claim_out_dir(args.out, resolved, args.overwrite)
        return cls.execute(Run(args, config, pre, hp, device, resolved))


def resolve_train(pre: Pretrained, config: dict, args: argparse.Namespace) -> TrainHparams:
    """Rounds retrain with the pretrain recipe unless the config or the flags change it."""
    base = {**pre.train_hp.to_dict(), **(config.get("train") or {})}
    return TrainHparams.from_sources({"train": base}, args)


def add_pretrain_args(parser, what: str = "folder of a finished `ticketbench pretrain` run") -> None:
    """The two flags every method stage takes to find its pretrain run and, on this machine, its data."""
    add_input(parser, "--pretrain", required=True, help=what)
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="where the dataset lives on this machine (default: as recorded by the pretrain run)")


def load_pretrained(run_dir: str | Path, *, data_root: str | None = None) -> Pretrained:
    """Load a pretrain run folder; ``data_root`` overrides where the dataset lives on this machine."""
    run_dir = Path(run_dir)
    settings, metrics = finished_run("pretrain", run_dir, need=("seed", "data", "model", "train"))
    # Settings, metrics and weights must tell one story: an edited hparams.json would otherwise relabel the run's
    # seed or dataset, and a folder an interrupted --overwrite left would pair new settings with old weights.
    for key, recorded in (("seed", metrics["seed"]), ("data.dataset", metrics["dataset"]),
                          ("model.backbone", metrics["backbone"])):
        if _get(settings, key) != recorded:
            raise ArtifactError(paths.hparams(run_dir), f"says {key}={short_repr(_get(settings, key))} but its "
                                f"metrics.json records {short_repr(recorded)}: the file was edited or the folder "
                                "mixes two runs")
    best, meta = artifacts.load_checkpoint(paths.model(run_dir))
    final, final_meta = artifacts.load_checkpoint(paths.final(run_dir))
    if metrics.get("state_hash") not in (None, meta["state_hash"]):
        raise ArtifactError(paths.model(run_dir), "these are not the weights its metrics.json was measured on "
                            "(their state_hash differs); the folder mixes two runs: re-run the pretrain stage")
    for path, m in ((paths.model(run_dir), meta), (paths.final(run_dir), final_meta)):
        check_written_by(path, m, settings)
    data = dict(settings["data"])
    if data_root is not None:
        data["data_root"] = data_root
    data_hp = DataHparams.from_dict(data)
    model_hp = ModelHparams.from_dict(settings["model"])
    train_hp = TrainHparams.from_dict(settings["train"])
    splits = load_splits(data_hp.dataset, root=data_hp.data_root or None, download=False,
                         augment=not data_hp.no_augment, image_size=data_hp.image_size or None,
                         **({"cache": data_hp.cache} if data_hp.cache else {}))
    return Pretrained(run_dir, int(settings["seed"]), data_hp, model_hp, train_hp, splits, best, final,
                      meta["state_hash"], metrics)


def read_hparams(run_dir: str | Path) -> dict:
    """A run's hparams.json: a JSON object with its run id and settings, else one line naming the file."""
    path = paths.hparams(run_dir)
    data = storage.read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict) or not isinstance(
            data.get("run_id"), str):
        raise ArtifactError(path, "is not the hparams.json of a run (a JSON object with 'run_id' and 'settings'); "
                            "the file was damaged or replaced")
    return data


# The stage whose run each input flag names, for the message that says what the flag needs.
STAGE_OF_INPUT = {"pretrain": "pretrain", "subsets": "prac", "prac": "prac", "jackpot": "jackpot",
                  "magnitude": "jackpot", "random": "jackpot", "refill": "structure", "regroup": "structure",
                  "transfer-from": "structure"}


def finished_run(flag: str, folder: str | Path, need: Sequence[str] = ()) -> tuple[dict, dict]:
    """The settings and metrics of a finished run given as ``--<flag>``; a run is finished when its metrics.json,
    written last, holds the run id of its hparams.json."""
    folder = Path(folder)
    if not paths.metrics(folder).is_file():
        what = STAGE_OF_INPUT.get(flag, "imp")
        raise ConfigError(flag, str(folder), f"a finished `ticketbench {what}` run; this folder has no metrics.json "
                          "(a run writes it last: re-run it if it was interrupted)")
    hp = read_hparams(folder)
    metrics = artifacts.read_metrics(paths.metrics(folder))
    if metrics.get("run_id") not in (None, hp["run_id"]):
        raise ArtifactError(folder, f"its metrics.json belongs to run {short_repr(metrics['run_id'])}, its "
                            f"hparams.json to run {hp['run_id']}: the folder mixes two runs (an interrupted "
                            "--overwrite?); re-run it")
    missing = [k for k in need if k not in hp["settings"] or (k != "seed" and not isinstance(hp["settings"][k], dict))]
    if missing:
        raise ArtifactError(paths.hparams(folder), f"its settings lack {missing[0]!r}; the file was damaged or "
                            "was not written by this stage")
    return hp["settings"], metrics


def check_written_by(path: Path, meta: dict, settings: dict) -> None:
    """A pretrain checkpoint records the settings it was trained with: they must be the run's."""
    config = meta.get("config")
    if not isinstance(config, dict):
        return
    for key in ("seed", "data.dataset", "model.backbone"):
        if _get(config, key) is not None and _get(config, key) != _get(settings, key):
            raise ArtifactError(path, f"was trained with {key}={short_repr(_get(config, key))}, but the run's "
                                f"hparams.json says {short_repr(_get(settings, key))}: the file was edited or the "
                                "folder mixes two runs")


def _get(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def check_source(flag: str, folder: str | Path, pre: Pretrained) -> tuple[dict, dict]:
    """The settings and metrics of a finished run given as ``--<flag>`` that must have started from ``pre``'s weights,
    as every run whose masks or weights a stage builds on must: a run of another seed or another dense network has
    masks over other weights."""
    settings, metrics = finished_run(flag, folder)
    source = settings.get("pretrain")
    if source != pre.source_hash:
        raise ConfigError(flag, str(folder), f"a run started from the pretrain run in {pre.dir} (weights "
                          f"{pre.source_hash[:12]}); this one started from {short_repr(source)[:40]}")
    for key, mine in (("seed", pre.seed), ("dataset", pre.data_hp.dataset), ("backbone", pre.model_hp.backbone)):
        if metrics[key] != mine:
            raise ConfigError(flag, str(folder), f"a run of {key} {mine!r}, as the pretrain run; its metrics.json "
                              f"records {short_repr(metrics[key])}")
    return settings, metrics


def load_mask_from(path: Path, pre: Pretrained) -> Mask:
    """A ticket's mask that must have been pruned from ``pre``'s weights and fit its model: every layer of the mask
    is a parameter of the model, of the same shape."""
    mask, meta = Mask.load(path)
    source = meta.get("source_hash")
    if source and source != pre.source_hash:
        raise ArtifactError(path, f"this mask was pruned from other weights ({short_repr(source)[:40]}), not from "
                            f"the pretrain run in {pre.dir} ({pre.source_hash[:12]})")
    mask.check_fits(path, pre.shapes)
    return mask


def rewind_epoch(point: str, iters_per_epoch: int | None = None) -> float:
    """The epoch a rewind point sits at, for resuming the LR schedule: ``ep<k>`` is k, ``it<n>`` is n over the
    pretrain run's steps per epoch (a fraction: training resumes inside that epoch, on any data size)."""
    if point in ("init", "ep0"):
        return 0
    if point.startswith("ep"):
        return int(point[2:])
    if not iters_per_epoch:
        raise ValueError(f"rewind point {point!r} needs the pretrain run's iterations per epoch")
    return int(point[2:]) / iters_per_epoch


def scaled_hparams(hp: TrainHparams, fraction: float, rule: str) -> TrainHparams:
    """Training length on a data subset holding ``fraction`` of the full training set.

    ``linear`` (the PrAC paper's rule): the same number of epochs over the smaller set, so the
    iteration count shrinks by ``fraction``. ``quadratic`` (the released PrAC code): the epoch
    count is scaled too, so iterations shrink by ``fraction**2``.
    """
    if rule == "linear" or fraction >= 1.0:
        return hp
    if rule != "quadratic":
        raise ConfigError("epoch_scaling", rule, "linear or quadratic")
    epochs = max(1, int(hp.epochs * fraction))
    return dataclasses.replace(hp, epochs=epochs, warmup_epochs=min(hp.warmup_epochs, epochs - 1),
                               milestones=",".join(str(int(int(m) * fraction)) for m in hp.milestones.split(",") if m),
                               rewind_epochs="0")


def train_round(pre: Pretrained, start: State, mask: Mask, hp: TrainHparams, *, device: torch.device,
                ids: torch.Tensor | None = None, start_epoch: float = 0, callbacks: Sequence[Callback] = (),
                progress: bool = True, desc: str = "round", seed_offset: int = 0) -> tuple[nn.Module, TrainResult]:
    """Train a masked model from ``start`` on the full training split or on the sample ids ``ids``."""
    model = pre.new_model()
    model.load_state_dict(start)
    data = pre.splits.train if ids is None else pre.splits.train.subset(ids)
    res = train(model, data, pre.splits.val, hp, device=device, seed=pre.seed + seed_offset,
                test_ds=pre.splits.test, mask=mask, start_epoch=start_epoch, workers=pre.data_hp.workers,
                callbacks=callbacks, progress=progress, desc=desc)
    return model, res


def round_dir(out: str | Path, r: int) -> Path:
    return Path(out) / f"round{r}"


def write_round(out: Path, *, method: str, pre: Pretrained, mask: Mask, res: TrainResult, config: dict,
                t0: float, **extra: Any) -> dict:
    """Save one round's mask, best-val and last-epoch weights and its metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    sparsity = mask.sparsity()
    mask.save(paths.mask(out), method=method, source_hash=pre.source_hash, config=config, round=extra.get("round"))
    best_hash = artifacts.save_checkpoint(paths.model(out), res.best_state, method=method, source_hash=pre.source_hash,
                                          sparsity=sparsity, config=config)
    artifacts.save_checkpoint(paths.final(out), res.final_state, method=method, source_hash=pre.source_hash,
                              sparsity=sparsity, config=config)
    # ``extra`` may override the run facts, e.g. a PrAC ticket is scored by its full-data retraining
    # while its iterations are those of the search on the PrAC set.
    facts = {"train_iterations": res.iterations, "best_epoch": res.best_epoch, "epochs_run": len(res.history),
             "stopped_early": res.stopped_early, **extra}
    return artifacts.write_metrics(
        paths.metrics(out), method=method, dataset=pre.data_hp.dataset, backbone=pre.model_hp.backbone, seed=pre.seed,
        sparsity=sparsity, test_acc=res.test_acc, val_acc=res.best_val_acc, wall_seconds=time.perf_counter() - t0,
        test_correct=res.test_correct, layer_sparsity=mask.layer_sparsity(), state_hash=best_hash, **facts)


def write_summary(out: str | Path, rounds: list[dict], *, method: str, pre: Pretrained, t0: float, **extra: Any) -> dict:
    """The run-level metrics.json: core keys of the last round plus every round's row."""
    last = rounds[-1]
    bulky = {"layer_sparsity", "versions", "mask_distances", "method", "dataset", "backbone", "seed"}
    rows = [{k: v for k, v in r.items() if k not in bulky} for r in rounds]
    return artifacts.write_metrics(
        paths.metrics(out), method=method, dataset=pre.data_hp.dataset, backbone=pre.model_hp.backbone, seed=pre.seed,
        sparsity=last["sparsity"], test_acc=last["test_acc"], val_acc=last["val_acc"], test_correct=last.get("test_correct"),
        train_iterations=sum(r["train_iterations"] for r in rounds) + sum(r.get("ticket_iterations", 0) for r in rounds),
        wall_seconds=time.perf_counter() - t0, rounds=rows, dense_test_acc=pre.metrics["test_acc"],
        pretrain_iterations=pre.metrics["train_iterations"], **extra)
