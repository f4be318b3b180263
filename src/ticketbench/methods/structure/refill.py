"""IMP-Refill and Refill+ (Chen et al., ICML 2022): from an unstructured IMP mask to whole channels.

Per layer, the channel budget is what the layer's remaining weights would fill as whole output
channels: ceil(remaining / weights-per-channel), plus a fraction rho of the other channels for
Refill+. The top-scoring channels become fully dense (their pruned weights are refilled with the
rewind values on retraining) and every other channel is emptied, conv filter and BatchNorm scale
and shift alike, so that the emptied channel is exactly zero and can be removed physically.

Where channels are coupled (a residual stream, a depthwise or grouped convolution after its pointwise one, a
squeeze-excite gate; :mod:`~ticketbench.methods.structure.units`), a choice per layer would empty different
channels in each coupled layer and nothing could be removed. There the group of layers chooses together: its budget
is what all its producers' remaining weights fill, and a channel's score is the sum over producers of its score
relative to that layer's mean score, so that each layer counts alike. This joint choice is a deviation from the
paper's Algorithm 2, which chooses per layer; the report's notes list it.
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


def _channels_first(name: str, modules: dict, a: torch.Tensor) -> torch.Tensor:
    """Activations as (channels, everything else): convolutions put channels in dim 1, linears last."""
    if isinstance(modules[name.rsplit(".", 1)[0]], nn.Linear):
        return a.reshape(-1, a.shape[-1]).t()
    return a.transpose(0, 1).flatten(1)


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
        modules = dict(model.named_modules())
        return {n: _channels_first(n, modules, a.detach().abs().pow(p)).sum(1).cpu() for n, a in acts.items()}
    return score


CHANNEL_SCORES.add("act_l1", _feature_norm(1))
CHANNEL_SCORES.add("act_l2", _feature_norm(2))


@CHANNEL_SCORES.register("saliency")
def saliency(model: nn.Module, mask: Mask, batch) -> dict[str, torch.Tensor]:
    """|activation * gradient| summed per channel (Molchanov et al.)."""
    acts = _activations(model, mask, batch, grad=True)
    model.zero_grad(set_to_none=True)
    modules = dict(model.named_modules())
    return {n: _channels_first(n, modules, (a * a.grad).detach().abs()).sum(1).cpu() for n, a in acts.items()}


@CHANNEL_SCORES.register("released_stale_act_l1")
def released_stale_act_l1(model: nn.Module, mask: Mask, batch) -> dict[str, torch.Tensor]:
    """The released code's activation 'l1', bug for bug (deviation slth-refill-activation-counter): every layer is
    scored from the output of the first masked layer to run, cut into C contiguous chunks (``view(C, -1)`` of a
    batch-major tensor, not channels), after one forward in train mode. Never a default; only by this name."""
    modules = dict(model.named_modules())
    first: list[torch.Tensor] = []
    handles = [modules[n.rsplit(".", 1)[0]].register_forward_hook(
        lambda _m, _i, out: first.append(out.detach()) if not first else None) for n in mask]
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            model(batch[0])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {n: first[0].reshape(m.shape[0], -1).abs().sum(1).cpu() for n, m in mask.items()}


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


def _rows(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return keep.view(-1, *([1] * (like.dim() - 1))).expand_as(like).clone()


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores (ties: lower index first), ascending."""
    return torch.sort(-scores.double(), stable=True).indices[:k].sort().values


def joint_budget(masks: list[torch.Tensor], width: int = 1, rho: float = 0.0, round_to: int = 1) -> int:
    """Units a coupled group keeps: :func:`channel_budget` over all its producers' weights at once, in units."""
    channels = masks[0].shape[0]
    per_channel = sum(m[0].numel() for m in masks)
    c_eq = sum(int(m.sum()) for m in masks) / per_channel
    if c_eq == 0:
        return 0
    k = max(1, math.ceil((c_eq + (channels - c_eq) * rho) / width - 1e-9))
    if width == 1:
        k = round_to * math.ceil(k / round_to)
    return min(channels // width, k)


def joint_scores(scores: list[torch.Tensor], width: int = 1) -> torch.Tensor:
    """One score per unit: each producer's channel scores over their mean, summed over producers and the unit."""
    total = sum(s.double() / s.double().mean() if float(s.double().mean()) > 0 else s.double() for s in scores)
    return total.view(-1, width).sum(1)


def joint_choice(group, mask: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``group``'s producers choose their channels together (see :func:`refill`)."""
    names = group.weights()
    return group.removable and (len(names) > 1 or group.width > 1) and all(n in mask for n in names)


def refill(mask: Mask, scores: Mapping[str, torch.Tensor], rho: float = 0.0, round_to: int = 1,
           groups: list | None = None) -> tuple[Mask, dict[str, torch.Tensor]]:
    """The channel-wise mask and, per layer, the kept channel indices (ascending; chosen highest score first, ties
    to the lower index). ``round_to`` rounds per-layer budgets, and joint budgets of single-channel units; a group
    of grouped convolutions keeps whole convolution groups instead.

    ``groups`` (:class:`~ticketbench.methods.structure.units.UnitGroup`): a removable group of several producers,
    or of grouped convolutions, whose producers are all in ``mask`` chooses its units jointly; every other layer
    chooses per layer.
    """
    out, kept = Mask(), {}
    for g in groups or []:
        if not joint_choice(g, mask):
            continue
        names = g.weights()
        k = joint_budget([mask[n] for n in names], g.width, rho, round_to)
        units = _top(joint_scores([scores[n] for n in names], g.width), k)
        channels = (units[:, None] * g.width + torch.arange(g.width)).flatten()
        keep = torch.zeros(g.channels, dtype=torch.bool)
        keep[channels] = True
        for n in names:
            out[n], kept[n] = _rows(keep, mask[n]), channels
    for n, m in mask.items():
        if n in out:
            continue
        order = _top(scores[n], channel_budget(m, rho, round_to))
        keep = torch.zeros(m.shape[0], dtype=torch.bool)
        keep[order] = True
        out[n], kept[n] = _rows(keep, m), order
    return Mask({n: out[n] for n in mask}), kept


#: How Refill picks a layer's channels: exact (the budget's top scores, always channel-wise) or released.
REFILL_RULES = ("exact", "released")


def refill_released(mask: Mask, scores: Mapping[str, torch.Tensor], rho: float, generator: torch.Generator,
                    criterion: str) -> tuple[Mask, dict[str, torch.Tensor]]:
    """Refill per layer as the released code does it (``prune_model_custom_fillback`` at Structure-LTH 8b10a76).

    Per layer: ``x = c + (C - c) * rho`` with ``c`` = remaining weights / row size in float32, and ``k = C - int(x)``
    (``max(k, 1)`` for ``remain``; ``k <= 0`` fills every row for the others). With ``t`` the k-th smallest score,
    rows above ``t`` become whole and rows below empty; of the rows scoring exactly ``t``, ONE drawn by
    ``torch.randperm`` becomes whole and the others keep their partial IMP rows. So distinct scores keep
    ``int(x) + 1`` channels, an empty layer gets one random channel back, and ties leave partial rows. The draws
    follow ``generator``, one per layer in order: the released code's for the same torch seed.
    """
    out, kept = Mask(), {}
    for n, m in mask.items():
        rows = m.reshape(m.shape[0], -1)
        c_out, size = rows.shape
        remaining = (torch.tensor(int(rows.sum()), dtype=torch.float32) / size).item()
        int_channel = int(remaining + (c_out - remaining) * rho)
        k = c_out - int_channel
        new = rows.clone()
        if criterion == "remain":
            k = max(k, 1)
        elif k <= 0:
            out[n], kept[n] = torch.ones_like(m), torch.arange(c_out)
            continue
        score = scores[n].float()
        threshold = torch.kthvalue(score, k).values
        new[score > threshold] = True
        new[score < threshold] = False
        tied = (score == threshold).nonzero().flatten()
        new[tied[torch.randperm(len(tied), generator=generator)[0]]] = True
        out[n], kept[n] = new.reshape(m.shape), new.all(1).nonzero().flatten()
    return Mask({n: out[n] for n in mask}), kept


def batchnorm_after(model: nn.Module, names: list[str], example: torch.Tensor) -> dict[str, str]:
    """Weight name of each layer -> module name of the BatchNorm that directly consumes its output.

    Found by following tensors through one forward pass rather than through Torch-Pruning's graph, which traces a
    BatchNorm that carries its activation (timm's ``BatchNormAct2d``) as a bare operation without its module.
    """
    modules = dict(model.named_modules())
    # The tensor is kept with its name: a freed tensor's id can be reused by a later one.
    produced: dict[int, tuple[torch.Tensor, str]] = {}
    out: dict[str, str] = {}

    def record(name):
        def hook(_m, _i, y):
            produced[id(y)] = (y, name)
        return hook

    def consume(name):
        def hook(_m, args):
            found = produced.get(id(args[0])) if args else None
            if found is not None and found[0] is args[0]:
                out.setdefault(found[1], name)
        return hook

    handles = [modules[n.rsplit(".", 1)[0]].register_forward_hook(record(n)) for n in names]
    handles += [m.register_forward_pre_hook(consume(n)) for n, m in modules.items()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return out


def batchnorm_mask(model: nn.Module, channel_mask: Mask, bn_of: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Mask entries that zero the layer's own bias and the BatchNorm scale and shift of every emptied channel.

    A linear layer of an MLP (or a squeeze-excite conv) has a bias and no BatchNorm: left alone, the bias alone
    keeps an emptied unit alive (GELU(b) is not 0), and the unit could not be removed.
    """
    params = dict(model.named_parameters())
    out = {}
    for n, m in channel_mask.items():
        bias = f"{n.rsplit('.', 1)[0]}.bias"
        if n.endswith(".weight") and bias in params:
            out[bias] = m.flatten(1).any(1).clone()
        bn = bn_of.get(n)
        if bn is None or f"{bn}.weight" not in params:
            continue
        alive = m.flatten(1).any(1)
        out[f"{bn}.weight"] = alive.clone()
        out[f"{bn}.bias"] = alive.clone()
    return out


def group_norm_mask(model: nn.Module, channel_mask: Mask, groups) -> dict[str, torch.Tensor]:
    """Mask entries that zero every BatchNorm of a jointly chosen group (:func:`joint_choice`) where its channels
    were emptied: in a pre-activation net the stream's BatchNorm follows an addition, not a layer, and
    :func:`batchnorm_after` does not find it."""
    params = dict(model.named_parameters())
    out = {}
    for g in groups or []:
        if not joint_choice(g, channel_mask):
            continue
        alive = channel_mask[g.weights()[0]].flatten(1).any(1)
        for bn in g.norms:
            if f"{bn}.weight" in params:
                out[f"{bn}.weight"], out[f"{bn}.bias"] = alive.clone(), alive.clone()
    return out


def channel_sparsity(mask: Mask) -> float:
    """Fraction of output channels that are empty, over the masked layers."""
    total = sum(m.shape[0] for m in mask.values())
    empty = sum(int((~m.flatten(1).any(1)).sum()) for m in mask.values())
    return empty / total if total else 0.0
