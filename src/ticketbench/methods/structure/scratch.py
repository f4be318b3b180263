"""Scratch-E and Scratch-B (Liu et al., ICLR 2019, "Rethinking the Value of Network Pruning") for slimmed tickets.

The baseline asks whether a structured ticket's weights matter or only its architecture: the slimmed architecture of
a round's ticket (the shapes :func:`~ticketbench.methods.structure.slim.slim` gives it) is initialised afresh at its
own shapes and trained from epoch 0.

* **Scratch-E** trains the recipe's epochs (``train.epochs``): as many as the dense run, and as a ticket counting the
  rewind prefix it shares with the dense run.
* **Scratch-B** trains for the dense run's compute: its epochs are Scratch-E's times dense MACs / slimmed MACs, capped
  by ``structure.scratch_b_max_factor`` and truncated to an integer, as the released code does: its CIFAR
  ``main_B.py`` trains ``int(160 * flops_std / flops_small)`` epochs, uncapped; its ImageNet ``main_B.py`` trains
  ``int(90 * ratio)`` epochs, or 180 (twice 90) once the ratio reaches 2, hence the default cap 2. Multistep
  milestones move with the epochs (each ``int(m * epochs_B / epochs_E)``, as the released decays at fixed shares of
  training do); warm-up epochs stay as they are; a cosine schedule anneals over the longer run by itself.

The architecture is the slimming plan of the round's structured ticket at its start (the rewind weights with the
structured mask and its BatchNorm entries applied): the units the mask empties are exactly zero there as after
retraining, so the plan is the one slimming the retrained ticket finds, without retraining it.
"""

from __future__ import annotations

import dataclasses
import inspect

import torch
from torch import nn

from ...hparams import TrainHparams
from ...masks import Mask
from . import slim as slimming


def ticket_plan(pre, start: dict[str, torch.Tensor], mask: Mask, example: torch.Tensor
                ) -> tuple[list[tuple[str, list[int]]], list[str]]:
    """The slimming plan of the structured ticket ``mask`` (with its BatchNorm entries) started from ``start``, and the
    groups slimming had to keep whole (``unsafe_groups``)."""
    model = pre.model_from(start)
    with torch.no_grad():
        mask.apply_(model)
    unsafe: list[str] = []
    _, plan = slimming.slim(model, example, unsafe)
    return plan, unsafe


def fresh_init(model: nn.Module) -> str:
    """Initialise ``model`` in place as its constructor does, at the shapes it has now; returns the rule's name.

    Every submodule first takes PyTorch's default (``reset_parameters``), then the model's own init runs if it has
    one that needs no argument: timm's ``init_weights`` (e.g. ResNet: Kaiming fan-out, last BatchNorm of each block
    zeroed) or the CIFAR networks' ``_init_weights``. Fan-based rules then see the slimmed fans, not the dense ones.
    """
    for m in model.modules():
        if m is not model and callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
    for attr in ("init_weights", "_init_weights"):
        fn = getattr(model, attr, None)
        if callable(fn) and all(p.default is not inspect.Parameter.empty
                                for p in inspect.signature(fn).parameters.values()):
            fn()
            return f"{type(model).__name__}.{attr}"
    return "reset_parameters"


def scratch_model(pre, plan: list[tuple[str, list[int]]], example: torch.Tensor, seed: int) -> tuple[nn.Module, str]:
    """The architecture ``plan`` slims the pre run's backbone to, freshly initialised from ``seed``, and the rule."""
    model = slimming.apply_plan(pre.new_model(seed=seed), plan, example)
    torch.manual_seed(seed)
    with torch.no_grad():
        rule = fresh_init(model)
    return model, rule


def scratch_factor(dense_macs: int, slim_macs: int, budget: str, max_factor: float) -> float:
    """How many times Scratch-E's epochs the budget trains: 1 for ``e``; for ``b`` dense / slimmed MACs, capped by
    ``max_factor`` (0: no cap) and never below 1."""
    if budget == "e":
        return 1.0
    factor = max(1.0, dense_macs / slim_macs)
    return min(factor, max_factor) if max_factor else factor


def scratch_hparams(hp: TrainHparams, factor: float) -> TrainHparams:
    """The recipe stretched to ``int(epochs * factor)`` epochs, multistep milestones moved in proportion."""
    epochs = max(hp.epochs, int(hp.epochs * factor))
    if epochs == hp.epochs:
        return hp
    milestones = ",".join(str(int(int(m) * epochs / hp.epochs)) for m in hp.milestones.split(",") if m.strip())
    return dataclasses.replace(hp, epochs=epochs, milestones=milestones)
