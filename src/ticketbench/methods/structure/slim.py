"""Physical channel removal: turn a refilled (channel-sparse) ticket into a smaller dense model.

Torch-Pruning's dependency graph finds the layers coupled to a channel (its BatchNorm, the next
layer's input, residual adds, depthwise and grouped convolutions, squeeze-excite gates, MLP hidden
units); :mod:`~ticketbench.methods.structure.units` groups them and says which groups cannot lose a
channel without changing an output (LayerNorm streams, attention's qkv, option-A padding). A unit
is removed only when every layer that *produces* it is exactly zero there (conv and linear rows and
bias, BatchNorm scale and shift): its activation is then zero and dropping it changes no output.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ... import storage
from ...errors import ArtifactError
from . import units


def slim(model: nn.Module, example: torch.Tensor, unsafe: list[str] | None = None
         ) -> tuple[nn.Module, list[tuple[str, list[int]]]]:
    """A slimmed deep copy of ``model`` and the (root layer, removed channels) plan that produced it.

    The slimmed model is checked to compute ``model``'s function (float64, :func:`units.safe_plan`); groups that
    would change it stay whole and their roots are appended to ``unsafe``.
    """
    model = copy.deepcopy(model).eval()
    plan, dropped = units.safe_plan(model, example)
    if unsafe is not None:
        unsafe.extend(dropped)
    return units.prune(model, example, plan), plan


def apply_plan(model: nn.Module, plan: list[tuple[str, list[int]]], example: torch.Tensor) -> nn.Module:
    """Replay a slimming plan on a fresh dense model of the same architecture (used to load)."""
    units.prune(model, example, [(n, list(i)) for n, i in plan])
    return model


def removed_channels(dense: nn.Module, slimmed: nn.Module) -> tuple[int, int]:
    """(output channels removed, output channels in all) over the conv and linear layers except the classifier."""
    from ...models import classifier_names, conv_linear_layers

    heads = set(classifier_names(dense))
    after = conv_linear_layers(slimmed)
    width = units.out_channels
    pairs = [(width(m), width(after[n])) for n, m in conv_linear_layers(dense).items() if n not in heads]
    return sum(a - b for a, b in pairs), sum(a for a, _ in pairs)


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_slim(path, model: nn.Module, plan: list, *, backbone: str, num_classes: int, in_chans: int,
              input_size: tuple[int, ...], **meta: Any) -> None:
    storage.save_tensors(path, dict(model.state_dict()),
                    {"kind": "slim", "backbone": backbone, "num_classes": num_classes, "in_chans": in_chans,
                     "input_size": list(input_size), "plan": [[n, list(map(int, i))] for n, i in plan], **meta})


def load_slim(path) -> tuple[nn.Module, dict]:
    from ...models import create_model

    state, meta = storage.load_tensors(path)
    if meta.get("kind") != "slim":
        raise ArtifactError(path, f"is not a slimmed ticketbench model (kind={meta.get('kind')!r})")
    model = create_model(meta["backbone"], num_classes=meta["num_classes"], in_chans=meta["in_chans"],
                         image_size=int(meta["input_size"][-1]), check_size=False)
    example = torch.zeros(1, *meta["input_size"])
    apply_plan(model, [(n, i) for n, i in meta["plan"]], example)
    model.load_state_dict(state)
    return model.eval(), meta


def macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass at the example's shape."""
    ops, _ = tp.utils.count_ops_and_params(model, example)
    return int(ops)
