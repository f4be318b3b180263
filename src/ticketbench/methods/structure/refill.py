"""IMP-Refill and Refill+ (Chen et al., ICML 2022): from an unstructured IMP mask to whole channels.

Per layer, the channel budget is what the layer's remaining weights would fill as whole output
channels: ceil(remaining / weights-per-channel), plus a fraction rho of the other channels for
Refill+. The top-scoring channels become fully dense (their pruned weights are refilled with the
rewind values on retraining) and every other channel is emptied, conv filter and BatchNorm scale
and shift alike, so that the emptied channel is exactly zero and can be removed physically.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...masks import Mask
from ...registry import Registry

ChannelScore = Callable[..., dict[str, torch.Tensor]]
CHANNEL_SCORES: Registry[ChannelScore] = Registry("refill_criterion")


@CHANNEL_SCORES.register("l1")
def l1_of_weights(model: nn.Module, mask: Mask, batch=None) -> dict[str, torch.Tensor]:
    """The paper's criterion: l1 norm of each channel's remaining trained weights."""
    params = dict(model.named_parameters())
    return {n: (params[n].detach().cpu() * m).abs().flatten(1).sum(1) for n, m in mask.items()}


@CHANNEL_SCORES.register("remain")
def remaining_count(model: nn.Module, mask: Mask, batch=None) -> dict[str, torch.Tensor]:
    """The released code's default: how many weights of the channel survived IMP."""
    return {n: m.flatten(1).sum(1).double() for n, m in mask.items()}


def _activations(model: nn.Module, mask: Mask, batch, grad: bool) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    acts, handles = {}, []
    for n in mask:
        def hook(_m, _i, out, n=n):
            if grad:
                out.retain_grad()
            acts[n] = out
        handles.append(modules[n.rsplit(".", 1)[0]].register_forward_hook(hook))
    x, y = batch
    model.eval()
    try:
        out = model(x)
        if grad:
            F.cross_entropy(out, y).backward()
    finally:
        for h in handles:
            h.remove()
    return acts


def _feature_norm(p: int):
    def score(model: nn.Module, mask: Mask, batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            acts = _activations(model, mask, batch, grad=False)
        return {n: a.detach().abs().pow(p).transpose(0, 1).flatten(1).sum(1).cpu() for n, a in acts.items()}
    return score


CHANNEL_SCORES.add("act_l1", _feature_norm(1))
CHANNEL_SCORES.add("act_l2", _feature_norm(2))


@CHANNEL_SCORES.register("saliency")
def saliency(model: nn.Module, mask: Mask, batch) -> dict[str, torch.Tensor]:
    """|activation * gradient| summed per channel (Molchanov et al.)."""
    acts = _activations(model, mask, batch, grad=True)
    model.zero_grad(set_to_none=True)
    return {n: (a * a.grad).detach().abs().transpose(0, 1).flatten(1).sum(1).cpu() for n, a in acts.items()}


def channel_budget(layer_mask: torch.Tensor, rho: float = 0.0, round_to: int = 1) -> int:
    """Channels to keep: ceil(c_eq + (C_out - c_eq) * rho), c_eq = remaining / weights per channel.

    ``round_to`` > 1 rounds the count up to a multiple (capped at C_out): CPU and GPU convolution
    kernels work in blocks of 8 or 16 channels, so odd widths waste part of the speedup.
    """
    c_out = layer_mask.shape[0]
    per_channel = layer_mask[0].numel()
    c_eq = int(layer_mask.sum()) / per_channel
    if c_eq == 0:
        return 0
    k = max(1, math.ceil(c_eq + (c_out - c_eq) * rho - 1e-9))
    return min(c_out, round_to * math.ceil(k / round_to))


def refill(mask: Mask, scores: Mapping[str, torch.Tensor], rho: float = 0.0,
           round_to: int = 1) -> tuple[Mask, dict[str, torch.Tensor]]:
    """The channel-wise mask and, per layer, the kept channel indices (highest score first; ties: lower index)."""
    out, kept = Mask(), {}
    for n, m in mask.items():
        k = channel_budget(m, rho, round_to)
        order = torch.sort(-scores[n].double(), stable=True).indices[:k]
        keep = torch.zeros(m.shape[0], dtype=torch.bool)
        keep[order] = True
        out[n] = keep.view(-1, *([1] * (m.dim() - 1))).expand_as(m).clone()
        kept[n] = order.sort().values
    return out, kept


def batchnorm_after(model: nn.Module, names: list[str], example: torch.Tensor) -> dict[str, str]:
    """Weight name of each conv -> module name of the BatchNorm that directly consumes its output."""
    import torch_pruning as tp

    modules = {m: n for n, m in model.named_modules()}
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    named = dict(model.named_modules())
    out = {}
    for n in names:
        node = dg.module2node.get(named[n.rsplit(".", 1)[0]])
        for nxt in (node.outputs if node is not None else []):
            if isinstance(nxt.module, nn.modules.batchnorm._BatchNorm):
                out[n] = modules[nxt.module]
                break
    return out


def batchnorm_mask(model: nn.Module, channel_mask: Mask, bn_of: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Mask entries that zero the BatchNorm scale and shift of every emptied channel."""
    params = dict(model.named_parameters())
    out = {}
    for n, m in channel_mask.items():
        bn = bn_of.get(n)
        if bn is None or f"{bn}.weight" not in params:
            continue
        alive = m.flatten(1).any(1)
        out[f"{bn}.weight"] = alive.clone()
        out[f"{bn}.bias"] = alive.clone()
    return out


def channel_sparsity(mask: Mask) -> float:
    """Fraction of output channels that are empty, over the masked layers."""
    total = sum(m.shape[0] for m in mask.values())
    empty = sum(int((~m.flatten(1).any(1)).sum()) for m in mask.values())
    return empty / total if total else 0.0
