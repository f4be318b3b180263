"""Pruning criteria computed on a (pre-)trained model: magnitude, random, SNIP, GraSP and SynFlow.

Each returns name -> score tensor; a higher score means "keep". The jackpot mask-overlap study
turns every score into a mask with the same per-layer budget as the searched jackpot, so the
comparison is about *which* weights each criterion keeps, not how many.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...masks import Mask
from ...registry import Registry

Scores = dict[str, torch.Tensor]
Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
CRITERIA: Registry[Callable[..., Scores]] = Registry("criterion")


def _params(model: nn.Module, names: Sequence[str]) -> list[torch.Tensor]:
    params = dict(model.named_parameters())
    return [params[n] for n in names]


@CRITERIA.register("magnitude")
def magnitude(model: nn.Module, names: Sequence[str], batches: Batches = (), seed: int = 0) -> Scores:
    return {n: p.detach().abs().cpu() for n, p in zip(names, _params(model, names))}


@CRITERIA.register("random")
def random(model: nn.Module, names: Sequence[str], batches: Batches = (), seed: int = 0) -> Scores:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) for n, p in zip(names, _params(model, names))}


@CRITERIA.register("snip")
def snip(model: nn.Module, names: Sequence[str], batches: Batches, seed: int = 0) -> Scores:
    """Connection sensitivity |dL/dw * w| (Lee et al., 2019), summed over the given batches."""
    params = _params(model, names)
    total = [torch.zeros_like(p) for p in params]
    model.eval()
    for x, y in batches:
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        for t, g in zip(total, grads):
            t.add_(g)
    return {n: (t * p).detach().abs().cpu() for n, t, p in zip(names, total, params)}


@CRITERIA.register("grasp")
def grasp(model: nn.Module, names: Sequence[str], batches: Batches, seed: int = 0) -> Scores:
    """Gradient-signal preservation (Wang et al., 2020): S = -w * (H g); GraSP removes the highest S.

    Returned negated (``w * Hg``), so that, like every criterion here, higher means keep.
    """
    params = _params(model, names)
    model.eval()
    g = [torch.zeros_like(p) for p in params]
    for x, y in batches:
        for acc, gi in zip(g, torch.autograd.grad(F.cross_entropy(model(x), y), params)):
            acc.add_(gi)
    hg = [torch.zeros_like(p) for p in params]
    for x, y in batches:
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        dot = sum((gi * acc.detach()).sum() for gi, acc in zip(grads, g))
        for acc, h in zip(hg, torch.autograd.grad(dot, params)):
            acc.add_(h)
    return {n: (p * h).detach().cpu() for n, p, h in zip(names, params, hg)}


@CRITERIA.register("synflow")
def synflow(model: nn.Module, names: Sequence[str], batches: Batches = (), seed: int = 0) -> Scores:
    """Synaptic flow (Tanaka et al., 2020), single shot and data-free: |w * dR/dw| with R = sum(f_|w|(1)).

    Runs on a float64 copy with every parameter replaced by its absolute value and BatchNorm in
    eval mode, so the score depends on the weights alone.
    """
    import copy

    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    params = _params(net, names)
    shape = next(iter(batches))[0].shape[1:] if batches else (3, 32, 32)
    out = net(torch.ones(1, *shape, dtype=torch.float64))
    grads = torch.autograd.grad(out.sum(), params)
    return {n: (g * p).detach().abs().float().cpu() for n, p, g in zip(names, params, grads)}


def mask_with_budget(scores: Mapping[str, torch.Tensor], kept: Mapping[str, int]) -> Mask:
    """Per layer, keep the ``kept[name]`` highest-scoring weights (ties: lower flat index wins)."""
    out = Mask()
    for name, s in scores.items():
        flat = s.flatten().double()
        order = torch.sort(-flat, stable=True).indices[: kept[name]]
        m = torch.zeros(flat.numel(), dtype=torch.bool)
        m[order] = True
        out[name] = m.view_as(s)
    return out
