"""Physical channel removal: turn a refilled (channel-sparse) ticket into a smaller dense model.

Torch-Pruning's dependency graph finds the layers coupled to a channel (its BatchNorm, the next
layer's input, residual adds). A channel is removed only when every layer that *produces* it is
exactly zero there (conv filters and bias, BatchNorm scale and shift): then its activation is zero
after BatchNorm and ReLU, and dropping it changes no output. Groups that pass through channel
padding (option-A shortcuts) are left alone, because the graph maps padded channels one-to-one,
which is wrong for them.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ... import storage
from ...errors import ArtifactError

_UNSAFE_NODES = ("ConstantPad", "Pad")


def _producer_is_zero(module: nn.Module, handler, idxs: list[int]) -> bool:
    name = getattr(handler, "__name__", "")
    if "out_channels" not in name:
        return True  # consumers (input channels) need no check
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        w = module.weight.detach()
        zero = bool((w[idxs] == 0).all())
        if module.bias is not None:
            zero &= bool((module.bias.detach()[idxs] == 0).all())
        return zero
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if not module.affine:
            return False
        return bool((module.weight.detach()[idxs] == 0).all() and (module.bias.detach()[idxs] == 0).all())
    return True


def _removable(dg: tp.DependencyGraph, conv: nn.Conv2d) -> list[int]:
    zero = [c for c in range(conv.out_channels) if bool((conv.weight.detach()[c] == 0).all())]
    keep = []
    for c in zero:
        group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[c])
        if any(any(u in str(dep.target.name) for u in _UNSAFE_NODES) for dep, _ in group.items):
            continue
        if all(_producer_is_zero(dep.target.module, dep.handler, list(idxs)) for dep, idxs in group.items):
            keep.append(c)
    # Never empty a layer completely: a zero-width conv is not a valid module.
    return keep if len(keep) < conv.out_channels else keep[:-1]


def slim(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, list[tuple[str, list[int]]]]:
    """A slimmed deep copy of ``model`` and the (conv name, removed channels) plan that produced it."""
    model = copy.deepcopy(model).eval()
    names = {m: n for n, m in model.named_modules()}
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    plan = []
    for conv in [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]:
        idxs = _removable(dg, conv)
        if idxs:
            plan.append((names[conv], idxs))
            dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=idxs).prune()
    return model, plan


def apply_plan(model: nn.Module, plan: list[tuple[str, list[int]]], example: torch.Tensor) -> nn.Module:
    """Replay a slimming plan on a fresh dense model of the same architecture (used to load)."""
    model.eval()
    modules = dict(model.named_modules())
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    for name, idxs in plan:
        dg.get_pruning_group(modules[name], tp.prune_conv_out_channels, idxs=list(idxs)).prune()
    return model


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
    model = create_model(meta["backbone"], num_classes=meta["num_classes"], in_chans=meta["in_chans"])
    example = torch.zeros(1, *meta["input_size"])
    apply_plan(model, [(n, i) for n, i in meta["plan"]], example)
    model.load_state_dict(state)
    return model.eval(), meta


def macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass at the example's shape."""
    ops, _ = tp.utils.count_ops_and_params(model, example)
    return int(ops)
