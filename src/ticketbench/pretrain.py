"""Stage 1: train the dense model, with rewind snapshots and per-sample training dynamics."""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from . import artifacts, storage, paths
from .data import load_splits
from .hparams import DataHparams, ModelHparams, TrainHparams
from .masks import count_zeros, prunable_names
from .models import create_model
from .stage import STAGES, Stage, add_common_args, claim_out_dir, resolve_seed, setup_runtime
from .train import train


def build(data_hp: DataHparams, model_hp: ModelHparams):
    """The splits and an untrained model for a data/model choice; the model is created after seeding."""
    splits = load_splits(data_hp.dataset, root=data_hp.data_root or None, download=data_hp.download,
                         augment=not data_hp.no_augment,
                         image_size=data_hp.image_size or None, **({"cache": data_hp.cache} if data_hp.cache else {}))
    model = create_model(model_hp.backbone, num_classes=splits.info.num_classes, in_chans=splits.info.in_chans,
                         image_size=splits.info.image_size)
    return splits, model


@STAGES.register("pretrain")
class Pretrain(Stage):
    name = "pretrain"
    help = "train a dense model and save rewind snapshots and per-sample training dynamics"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_common_args(parser)
        DataHparams.add_args(parser)
        ModelHparams.add_args(parser)
        TrainHparams.add_args(parser)

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict[str, Any]) -> int:
        data_hp = DataHparams.from_sources(config, args)
        model_hp = ModelHparams.from_sources(config, args)
        train_hp = TrainHparams.from_sources(config, args)
        seed = resolve_seed(args, config)
        device = setup_runtime(args, config)
        # Data and model are built before anything is written: an unknown backbone or a missing data root must
        # not leave an hparams.json behind that would then refuse the corrected retry.
        torch.manual_seed(seed)
        splits, model = build(data_hp, model_hp)
        resolved = {"seed": seed, "threads": args.threads, "data": data_hp.to_dict(), "model": model_hp.to_dict(), "train": train_hp.to_dict()}
        run_id = claim_out_dir(args.out, resolved, args.overwrite)
        result, meta = pretrain(data_hp, model_hp, train_hp, seed=seed, device=device, out=args.out,
                                progress=not args.no_progress, run_id=run_id, splits=splits, model=model)
        print(f"pretrain {data_hp.dataset} x {model_hp.backbone} seed {seed}: test_acc {result['test_acc']:.4f} "
              f"(best val {result['val_acc']:.4f} at epoch {result['best_epoch']}) in {result['wall_seconds']:.1f}s "
              f"-> {args.out}")
        return 0


def pretrain(data_hp: DataHparams, model_hp: ModelHparams, train_hp: TrainHparams, *, seed: int,
             device: torch.device, out: str, splits, model: torch.nn.Module, progress: bool = True,
             run_id: str = "") -> tuple[dict, dict]:
    """Train ``model`` (from :func:`build`, right after ``torch.manual_seed(seed)``) and write every artifact of the
    pretrain stage into ``out``; returns (metrics, config)."""
    t0 = time.perf_counter()
    res = train(model, splits.train, splits.val, train_hp, device=device, seed=seed, test_ds=splits.test,
                workers=data_hp.workers, progress=progress, desc=f"pretrain {model_hp.backbone}")
    config = {"seed": seed, "data": data_hp.to_dict(), "model": model_hp.to_dict(), "train": train_hp.to_dict(),
              "run_id": run_id}
    best_hash = artifacts.save_checkpoint(paths.model(out), res.best_state, method="pretrain", config=config,
                                          epoch=res.best_epoch)
    artifacts.save_checkpoint(paths.final(out), res.final_state, method="pretrain", config=config,
                              epoch=res.history[-1]["epoch"])
    for point, state in res.snapshots.items():
        artifacts.save_checkpoint(paths.rewind(out, point), state, method="pretrain", config=config, point=point)
    storage.save_tensors(paths.dynamics(out), {"correct": res.correctness, "ids": splits.train.ids},
                    {"kind": "dynamics", "method": "pretrain", "source_hash": best_hash,
                     "rows": "epochs", "columns": "stable train ids; 1 correct, 0 wrong, -1 not trained on"})
    model.load_state_dict(res.best_state)
    zeros, total = count_zeros(model, prunable_names(model, "openlth"))
    metrics = artifacts.write_metrics(
        paths.metrics(out), method="pretrain", dataset=data_hp.dataset, backbone=model_hp.backbone, seed=seed,
        sparsity=zeros / total, test_acc=res.test_acc, val_acc=res.best_val_acc, train_iterations=res.iterations,
        test_correct=res.test_correct,
        wall_seconds=time.perf_counter() - t0, best_epoch=res.best_epoch, epochs=res.history, state_hash=best_hash,
        rewind_points=sorted(res.snapshots), run_id=run_id)
    return metrics, config
