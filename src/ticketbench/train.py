"""The one training loop: SGD, mask-aware, deterministic, with rewind snapshots and per-sample records.

Methods never fork this loop. They change what it sees (a mask, a data subset, a start epoch) or
listen to it through callbacks, e.g. PrAC's early stop on mask convergence.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import IndexedDataset, make_batches
from .hparams import TrainHparams, int_list, iteration_points
from .masks import MaskEnforcer

State = dict[str, torch.Tensor]


def snapshot(model: nn.Module) -> State:
    """A detached, contiguous CPU copy of the full state (weights and BatchNorm buffers)."""
    return {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
            for k, v in model.state_dict().items()}


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (fp32: none); the loss is still computed in fp32 under it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def memory_format(layout: str) -> torch.memory_format:
    return torch.channels_last if layout == "channels_last" else torch.contiguous_format


def lr_at(hp: TrainHparams, iteration: int, iters_per_epoch: int) -> float:
    """Learning rate for a global iteration; warm-up is linear, then cosine, multistep or constant."""
    total = hp.epochs * iters_per_epoch
    warm = hp.warmup_epochs * iters_per_epoch
    if iteration < warm:
        return hp.lr * (iteration + 1) / warm
    if hp.schedule == "cosine":
        progress = (iteration - warm) / max(1, total - warm)
        return 0.5 * hp.lr * (1 + math.cos(math.pi * min(1.0, progress)))
    if hp.schedule == "cosine_epoch":
        epoch = (iteration - warm) // iters_per_epoch
        return 0.5 * hp.lr * (1 + math.cos(math.pi * min(1.0, epoch / max(1, hp.epochs - hp.warmup_epochs))))
    if hp.schedule == "multistep":
        epoch = iteration // iters_per_epoch
        return hp.lr * hp.gamma ** sum(epoch >= m for m in int_list(hp.milestones))
    return hp.lr


@dataclass
class EpochContext:
    """What a callback sees after each epoch. Returning True from a callback stops training."""

    epoch: int
    model: nn.Module
    record: dict
    correct: torch.Tensor  # int8 per stable id for this epoch: 1 correct, 0 wrong, -1 not trained on


Callback = Callable[[EpochContext], "bool | None"]


@dataclass
class TrainResult:
    best_state: State
    final_state: State
    best_epoch: int
    best_val_acc: float
    test_acc: float | None
    history: list[dict]
    iterations: int
    wall_seconds: float
    correctness: torch.Tensor  # int8 [epochs run, base_size]
    snapshots: dict[str, State] = field(default_factory=dict)
    stopped_early: bool = False
    test_correct: torch.Tensor | None = None  # bool per test example, in dataset order, of the best-val weights


EVAL_BATCH = 512


def predict(model: nn.Module, ds: IndexedDataset, device: torch.device, batch_size: int = EVAL_BATCH, *,
            precision: str = "fp32", layout: str = "contiguous", workers: int = -1,
            forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
            batches: Iterable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted labels, stable ids) on the CPU, in eval mode, in dataset order; one host copy per call.

    ``batches`` are unshuffled batches of ``ds`` made once by the caller (:func:`make_batches`): a training run
    evaluates every epoch and must not start new loader workers each time.
    """
    was_training = model.training
    model.eval()
    forward = model if forward is None else forward
    preds, ids = [], []
    fmt = memory_format(layout)
    with torch.inference_mode(), autocast(device, precision):
        if batches is None:
            batches = make_batches(ds, batch_size, shuffle=False, device=device, workers=workers)
        for x, _, i in batches:
            preds.append(forward(x.contiguous(memory_format=fmt)).argmax(1))
            ids.append(i)
    model.train(was_training)
    if not preds:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.cat(preds).cpu(), torch.cat(ids).cpu()


def correctness(model: nn.Module, ds: IndexedDataset, device: torch.device, batch_size: int = EVAL_BATCH,
                **kw) -> torch.Tensor:
    """Whether each example of ``ds`` is classified right (bool, dataset order): what paired comparisons need."""
    preds, _ = predict(model, ds, device, batch_size, **kw)
    return preds == ds.targets


def evaluate(model: nn.Module, ds: IndexedDataset, device: torch.device, batch_size: int = EVAL_BATCH, **kw) -> float:
    """Top-1 accuracy as a fraction in [0, 1]."""
    return float(correctness(model, ds, device, batch_size, **kw).float().mean())


def train(model: nn.Module, train_ds: IndexedDataset, val_ds: IndexedDataset, hp: TrainHparams, *,
          device: torch.device, seed: int, test_ds: IndexedDataset | None = None,
          mask: Mapping[str, torch.Tensor] | None = None, start_epoch: float = 0, workers: int = -1,
          callbacks: Sequence[Callback] = (), step_hooks: Sequence[Callable[[int, int], None]] = (),
          progress: bool = True, desc: str = "train") -> TrainResult:
    """Train ``model`` in place for epochs ``start_epoch .. hp.epochs-1``.

    The schedule is positioned at ``start_epoch``, so rewinding to epoch k with ``start_epoch=k``
    resumes the learning rate where it was; ``start_epoch=0`` restarts it. A fractional ``start_epoch`` (a
    rewind to iteration n of an epoch of m steps is n/m) resumes inside that epoch: its first steps are
    skipped and the schedule continues from the matching iteration, as OpenLTH does. ``step_hooks`` run after
    every optimiser step with (iteration, epoch), e.g. a mask update. The returned
    ``test_acc`` is measured once, on the best-validation weights: the test set never selects.
    """
    from .runtime import note_numerics, seed_everything

    gen = seed_everything(seed)
    fmt = memory_format(hp.layout)
    model.to(device=device, memory_format=fmt)
    note_numerics(precision=hp.precision, layout=hp.layout, compile=hp.compile)
    # Compiled or not, ``forward`` shares the parameters of ``model``: masks, snapshots and callbacks see them.
    forward = torch.compile(model) if hp.compile else model
    eval_kw = dict(precision=hp.precision, layout=hp.layout, workers=workers, forward=forward)
    enforce = MaskEnforcer(model, mask)
    enforce()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay, nesterov=hp.nesterov)
    # fp16 needs loss scaling against underflow; bf16 has fp32's exponent range and does not.
    scaler = torch.amp.GradScaler(device.type) if hp.precision == "fp16" else None
    batches = make_batches(train_ds, hp.batch_size, shuffle=True, seed=int(gen.initial_seed()), device=device,
                           workers=workers)
    val_batches = make_batches(val_ds, EVAL_BATCH, shuffle=False, device=device, workers=workers)
    per_epoch = len(batches)
    snap_epochs = set(int_list(hp.rewind_epochs))
    snap_iters = set(iteration_points(hp.rewind_iterations, hp.epochs * per_epoch))
    snapshots: dict[str, State] = {}
    start_iteration = round(start_epoch * per_epoch)
    first_epoch, skip = divmod(start_iteration, per_epoch)
    if skip == 0 and first_epoch in snap_epochs:
        snapshots[f"ep{first_epoch}"] = snapshot(model)
    # A percentage of a short run can name the starting point itself (5% of 3 iterations is iteration 0): the
    # loop below saves after each step, so the start is saved here.
    if start_iteration in snap_iters:
        snapshots[f"it{start_iteration}"] = snapshot(model)

    iteration = start_iteration
    best_val, best_epoch, best_state = -1.0, -1, snapshot(model)
    history, records = [], []
    stopped = False
    t0 = time.perf_counter()
    bar = tqdm(range(first_epoch, hp.epochs), desc=desc, disable=not progress, mininterval=2.0, dynamic_ncols=True)
    for epoch in bar:
        model.train()
        # Statistics stay on the device and are read once per epoch: a read per step would stall a GPU.
        correct = torch.full((train_ds.base_size,), -1, dtype=torch.int8, device=device)
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        n_right = torch.zeros((), dtype=torch.int64, device=device)
        n_seen = 0
        for x, y, ids in batches:
            if skip:  # resuming mid-epoch: these steps happened before the rewind point
                skip -= 1
                continue
            x = x.contiguous(memory_format=fmt)
            for group in opt.param_groups:
                group["lr"] = lr_at(hp, iteration, per_epoch)
            with autocast(device, hp.precision):
                logits = forward(x)
                loss = F.cross_entropy(logits, y, label_smoothing=hp.label_smoothing)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            enforce()
            iteration += 1
            for hook in step_hooks:
                hook(iteration, epoch)
            with torch.no_grad():
                hit = logits.argmax(1) == y
                correct[ids] = hit.to(torch.int8)
                loss_sum += loss.detach().float() * len(y)
                n_right += hit.sum()
            n_seen += len(y)
            if iteration in snap_iters:
                snapshots[f"it{iteration}"] = snapshot(model)
        if epoch + 1 in snap_epochs:
            snapshots[f"ep{epoch + 1}"] = snapshot(model)
        val_acc = evaluate(model, val_ds, device, batches=val_batches, **eval_kw)
        correct = correct.cpu()
        record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": float(loss_sum) / max(1, n_seen),
                  "train_acc": int(n_right) / max(1, n_seen), "val_acc": val_acc, "iterations": iteration,
                  "seconds": time.perf_counter() - t0}
        history.append(record)
        records.append(correct)
        # Strictly better only: ties keep the earlier epoch, which makes selection deterministic.
        if val_acc > best_val:
            best_val, best_epoch, best_state = val_acc, epoch + 1, snapshot(model)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val=f"{val_acc:.3f}")
        ctx = EpochContext(epoch + 1, model, record, correct)
        if any(bool(cb(ctx)) for cb in callbacks):
            stopped = True
            break
    bar.close()
    final_state = snapshot(model)
    test_acc, test_correct = None, None
    if test_ds is not None:
        model.load_state_dict(best_state)
        test_correct = correctness(model, test_ds, device, **eval_kw)
        test_acc = float(test_correct.float().mean())
        model.load_state_dict(final_state)
    # Callers get the model back in the layout they gave (slimming, timing and export expect NCHW).
    model.to(memory_format=torch.contiguous_format)
    return TrainResult(best_state, final_state, best_epoch, best_val, test_acc, history,
                       iteration - start_iteration, time.perf_counter() - t0,
                       torch.stack(records) if records else torch.empty(0, train_ds.base_size, dtype=torch.int8),
                       snapshots, stopped, test_correct)
