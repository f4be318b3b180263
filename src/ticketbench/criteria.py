"""Pruning criteria computed on a (pre-)trained model: magnitude, random, SNIP, GraSP and SynFlow.

Shared by the IMP base (the pruning-at-init variants) and the jackpot paper's overlap study, so neither imports the
other. Each returns name -> score tensor; a higher score means "keep". The jackpot mask-overlap study
turns every score into a mask with the same per-layer budget as the searched jackpot, so the
comparison is about *which* weights each criterion keeps, not how many.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .masks import Mask, keep_highest
from .registry import Registry

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


def synflow_iterative(model: nn.Module, names: Sequence[str], kept: int | Mapping[str, int],
                      input_shape: Sequence[int], iterations: int = 100) -> Mask:
    """SynFlow as Tanaka et al. (2020) prune with it: ``iterations`` rounds of scoring the masked network and pruning
    to a budget that shrinks exponentially, ending at exactly ``kept`` (global, or per layer for a mapping).

    The single-shot score (:func:`synflow`) ranks once and, at high sparsity, can empty a whole layer; rescoring after
    each cut is what the paper credits for avoiding that collapse. The network is linearised as in the paper: a
    float64 copy in eval mode with every floating tensor of its state (BatchNorm buffers included) made non-negative.
    """
    import copy

    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    params = _params(net, names)
    original = [p.detach().clone() for p in params]
    alive = [torch.ones_like(p, dtype=torch.bool) for p in params]
    total = sum(p.numel() for p in params)
    final = kept if isinstance(kept, int) else {n: int(kept[n]) for n in names}
    device = params[0].device
    ones = torch.ones(1, *input_shape, dtype=torch.float64, device=device)
    mask = Mask({n: a.cpu() for n, a in zip(names, alive)})
    for i in range(1, iterations + 1):
        with torch.no_grad():
            for p, w, a in zip(params, original, alive):
                p.copy_(w * a)
        grads = torch.autograd.grad(net(ones).sum(), params)
        # Pruned weights score -inf, so a later cut never brings one back.
        scores = {n: torch.where(a, (g * p).detach().abs(), -torch.inf)
                  for n, p, g, a in zip(names, params, grads, alive)}
        share = i / iterations
        if isinstance(final, int):
            budget = final if i == iterations else round(total * (final / total) ** share)
        else:
            budget = {n: final[n] if i == iterations else round(p.numel() * (final[n] / p.numel()) ** share)
                      for n, p in zip(names, params)}
        mask = keep_highest(scores, budget)
        alive = [mask[n].to(device) for n in names]
    return mask


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
