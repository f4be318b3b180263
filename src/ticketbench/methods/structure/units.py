"""Channel units of a backbone, read from Torch-Pruning's dependency graph.

A *unit group* is one index space of channels that must be removed together: a layer's output channels plus
every channel coupled to them (the BatchNorm after it, depthwise and grouped convolutions, the other branch of a
residual addition, a squeeze-excite gate, the next layers' inputs). Its *producers* are the conv and linear layers
whose output rows these channels are. A channel can be removed from the network without changing any output
exactly when every producer row and bias and every BatchNorm scale and shift of it are zero: its activation is then
zero after the activation function and contributes nothing downstream.

A group is *blocked* when that argument fails for a reason of the architecture, and the reason is kept in words:

- a LayerNorm or GroupNorm normalises over the channels, so a zero channel still moves the mean and variance of the
  others (the residual stream of ViTs and ConvNeXts);
- channels are split, unbound or concatenated on the way (attention's qkv splits into q, k and v per head; Torch-
  Pruning's graph maps those indices in a way that does not remove whole heads);
- a bare parameter (a class token, position embedding or layer scale) is added to or multiplies the channels, and
  an addition would make a removed channel non-zero;
- padding maps channels one to one where the option-A shortcut really pads (CIFAR ResNets);
- a producer is the classifier, whose outputs are the classes.

Grouped (not depthwise) convolutions, as in RegNet and ResNeXt, are removed a whole convolution group at a time:
their input and output channels are coupled like a depthwise convolution's, and a unit is ``width`` channels.
Torch-Pruning 1.6 removes input channels of a grouped convolution one by one, which is wrong unless every group
loses the same ones, so its pruner is replaced for these layers (:class:`_GroupedConvPruner`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from dataclasses import dataclass
from typing import Iterator

import torch
import torch_pruning as tp
from torch import nn

from ...models import classifier_names, conv_linear_layers

_NORMS_OVER_CHANNELS = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm)
_REINDEXING_OPS = ("_ConcatOp", "_SplitOp", "_UnbindOp", "_SliceOp")
# Elementwise functions with f(0) != 0: a removed (zero) channel would have fed f(0) onwards. Harmless only as a
# gate, whose output multiplies the channel it gates (squeeze-excite): the product is zero either way.
_NONZERO_AT_ZERO = ("SigmoidBackward", "HardsigmoidBackward", "SoftplusBackward", "ExpBackward", "CosBackward")
_MIXING = ("SoftmaxBackward", "LogSoftmaxBackward")


@dataclass(frozen=True)
class UnitGroup:
    """One coupled channel index space (see the module docstring)."""

    root: str  # the conv or linear layer whose output channels define the group (the slim plan names it)
    channels: int
    width: int  # channels per unit: 1, or the group width of grouped convolutions
    producers: tuple[str, ...]  # module names of the conv and linear layers producing these channels
    norms: tuple[str, ...]  # BatchNorm modules with one scale and shift per channel
    blocker: str | None  # why no channel of this group can be removed; None when they can

    @property
    def units(self) -> int:
        return self.channels // self.width

    @property
    def removable(self) -> bool:
        return self.blocker is None

    def weights(self) -> tuple[str, ...]:
        return tuple(f"{p}.weight" for p in self.producers)


def _is_grouped(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and 1 < m.groups < m.out_channels


class _GroupedConvPruner(tp.pruner.function.ConvPruner):
    """Removes whole convolution groups: the same channels from the input and the output (in == out)."""

    def prune_out_channels(self, layer: nn.Conv2d, idxs) -> nn.Module:
        width = layer.out_channels // layer.groups
        drop = sorted(set(int(i) for i in idxs))
        whole = {g for g in range(layer.groups) if set(range(g * width, (g + 1) * width)) <= set(drop)}
        if set(drop) != {c for g in whole for c in range(g * width, (g + 1) * width)}:
            raise ValueError(f"a grouped convolution of {layer.groups} groups loses whole groups of {width} channels; "
                             f"{len(drop)} channels asked for do not make whole groups")
        keep = [c for c in range(layer.out_channels) if c // width not in whole]
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
        if layer.bias is not None:
            layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)
        layer.out_channels -= len(drop)
        layer.in_channels -= len(drop)
        layer.groups -= len(whole)
        return layer

    prune_in_channels = prune_out_channels


_MARKED: dict[type, type] = {}


@contextlib.contextmanager
def _grouped_marked(model: nn.Module) -> Iterator[dict[type, tp.pruner.function.BasePruningFunc]]:
    """Give grouped convolutions with equal input and output widths a marker subclass while the graph is built and
    pruned, so that :class:`_GroupedConvPruner` handles them (Torch-Pruning picks a custom pruner by class)."""
    swapped = []
    for m in model.modules():
        if _is_grouped(m) and m.in_channels == m.out_channels and type(m) not in _MARKED.values():
            cls = type(m)
            if cls not in _MARKED:
                _MARKED[cls] = type(f"_Grouped{cls.__name__}", (cls,), {})
            marker = _MARKED[cls]
            m.__class__ = marker
            swapped.append((m, cls))
    try:
        yield {marker: _GroupedConvPruner() for marker in {type(m) for m, _ in swapped}}
    finally:
        for m, cls in swapped:
            m.__class__ = cls


def _unwrapped(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Parameters no module type Torch-Pruning knows owns (class token, position embedding, layer scale), with the
    dimension it would guess for them itself: given explicitly, so that the guess is ours and it does not warn."""
    known = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.PReLU,
             nn.Embedding, nn.MultiheadAttention, nn.modules.instancenorm._InstanceNorm)
    owned = {id(p) for m in model.modules() if isinstance(m, known) for p in m.parameters(recurse=False)}
    out = []
    for p in model.parameters():
        if id(p) in owned:
            continue
        dims = [d for d, n in enumerate(p.shape) if n > 1]
        if dims:
            out.append((p, dims[-1]))
    return out


def dependency_graph(model: nn.Module, example: torch.Tensor, pruners=None) -> tp.DependencyGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tracing warnings of timm's asserts; the graph is checked below
        return tp.DependencyGraph().build_dependency(model, example_inputs=example, customized_pruners=pruners or None,
                                                     unwrapped_parameters=_unwrapped(model), verbose=False)


def _describe(dg: tp.DependencyGraph, names: dict, params: dict, model_heads: set[str], items
              ) -> tuple[list, list, list, int]:
    producers, norms, blockers, width = [], [], [], 1
    for item in items:
        dep, idxs = item.dep, item.idxs
        mod, out = dep.target.module, dg.is_out_channel_pruning_fn(dep.handler)
        if _is_grouped(mod) and mod.in_channels != mod.out_channels:
            # Torch-Pruning removes such a conv's channels one by one, which breaks its groups.
            blockers.append(f"{names[mod]} is a grouped convolution whose input and output widths differ")
        if isinstance(mod, nn.Parameter):
            blockers.append(f"the bare parameter {params.get(id(mod), '?')} acts on these channels")
        elif isinstance(mod, (nn.Conv2d, nn.Linear)) and out:
            name = names[mod]
            if name in model_heads:
                blockers.append(f"{name} is the classifier")
            elif list(map(int, idxs)) != list(map(int, item.root_idxs)) or len(idxs) != out_channels(mod):
                blockers.append(f"the channels of {name} are re-indexed on the way (concatenated or split)")
            if _is_grouped(mod):
                width = math.lcm(width, mod.out_channels // mod.groups)
            producers.append(name)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm) and out:
            if not mod.affine:
                blockers.append(f"{names[mod]} is a BatchNorm without scale and shift to zero")
            norms.append(names[mod])
        elif isinstance(mod, _NORMS_OVER_CHANNELS):
            blockers.append(f"a {type(mod).__name__} ({names.get(mod, '?')}, ...) normalises over the channels")
        elif isinstance(mod, nn.MultiheadAttention):
            blockers.append(f"{names[mod]} splits the channels into attention heads")
        elif type(mod).__name__ in _REINDEXING_OPS:
            blockers.append("the channels are split, sliced or concatenated on the way (attention's q, k and v; a "
                            "strided shortcut)")
        elif "Pad" in str(dep.target.name):
            blockers.append("channel padding (an option-A shortcut) maps them one to one")
        elif any(op in str(dep.target.name) for op in _MIXING):
            blockers.append("a softmax mixes the channels")
        elif any(op in str(dep.target.name) for op in _NONZERO_AT_ZERO) and not all(
                "MulBackward" in str(o.name) for o in dep.target.outputs):
            op = next(op for op in _NONZERO_AT_ZERO if op in str(dep.target.name)).replace("Backward", "").lower()
            blockers.append(f"a {op} that is not a gate turns a zero channel into a non-zero one")
    return producers, norms, blockers, width


def out_channels(mod: nn.Module) -> int:
    return mod.out_channels if isinstance(mod, nn.Conv2d) else mod.out_features


# Torch-Pruning maps a channel through a flatten by expanding each index into ``stride`` positions. On a graph that
# flattens and reshapes back inside a block (CoAtNet's attention at a small input), one group's walk expands the same
# channels again and again until the machine runs out of memory (18 GB for coatnet_nano_rw_224 at 32x32). A walk
# that maps more indices than this is stopped, and its group blocked in words.
MAX_MAPPED_INDICES = 1 << 22


class _Unbounded(Exception):
    pass


@contextlib.contextmanager
def _bounded_flatten() -> Iterator[list[int]]:
    """Count the indices every flatten mapping produces (the yielded counter; reset it per group) and stop the walk
    past MAX_MAPPED_INDICES."""
    from torch_pruning.dependency.index_mapping import _FlattenIndexMapping

    real = _FlattenIndexMapping.__call__
    mapped = [0]

    def bounded(self, idxs):
        mapped[0] += len(idxs) * (1 if self.reverse else self._stride)
        if mapped[0] > MAX_MAPPED_INDICES:
            raise _Unbounded
        return real(self, idxs)

    _FlattenIndexMapping.__call__ = bounded
    try:
        yield mapped
    finally:
        _FlattenIndexMapping.__call__ = real


def _groups(model: nn.Module, dg: tp.DependencyGraph) -> list[UnitGroup]:
    names = {m: n for n, m in model.named_modules()}
    modules = dict(model.named_modules())
    params = {id(p): n for n, p in model.named_parameters()}
    heads = set(classifier_names(model))
    seen: set[nn.Module] = set()
    out = []
    for name, layer in conv_linear_layers(model).items():
        if layer in seen or layer not in dg.module2node:
            continue
        pruner = dg.get_pruner_of_module(layer)
        try:
            with _bounded_flatten():
                group = dg.get_pruning_group(layer, pruner.prune_out_channels, list(range(out_channels(layer))))
        except _Unbounded:
            seen.add(layer)
            out.append(UnitGroup(name, out_channels(layer), 1, (name,), (), "the channels are flattened and "
                                 "reshaped on the way so often that the dependency graph cannot follow them"))
            continue
        producers, norms, blockers, width = _describe(dg, names, params, heads, group.items)
        seen.update(modules[p] for p in producers)
        if name not in producers:
            producers.insert(0, name)
            seen.add(layer)
            blockers.append(f"the graph does not reach {name}'s outputs")
        # One reason per kind: a ConvNeXt stage's stream passes a dozen LayerNorms, one names the kind.
        kinds: dict[str, str] = {}
        for b in blockers:
            kinds.setdefault(b.split(" (")[0] if b.startswith("a ") else b, b)
        blocker = "; ".join(kinds.values()) or None
        out.append(UnitGroup(name, out_channels(layer), width, tuple(dict.fromkeys(producers)),
                             tuple(dict.fromkeys(norms)), blocker))
    return out


def unit_groups(model: nn.Module, example: torch.Tensor) -> list[UnitGroup]:
    """Every output-channel group of ``model``'s conv and linear layers, in module order of their roots."""
    model = model.eval()
    with _grouped_marked(model) as pruners:
        dg = dependency_graph(model, example, pruners)
        return _groups(model, dg)


def _zero_rows(module: nn.Module, idxs: list[int]) -> bool:
    zero = bool((module.weight.detach()[idxs] == 0).all())
    if getattr(module, "bias", None) is not None:
        zero &= bool((module.bias.detach()[idxs] == 0).all())
    return zero


def removable_units(model: nn.Module, group: UnitGroup, modules: dict[str, nn.Module] | None = None) -> list[int]:
    """Channels of ``group`` whose whole unit is zero in every producer and BatchNorm; never every unit."""
    if not group.removable:
        return []
    modules = modules or dict(model.named_modules())
    layers = [modules[p] for p in group.producers] + [modules[b] for b in group.norms]
    dead = []
    for u in range(group.units):
        idxs = list(range(u * group.width, (u + 1) * group.width))
        if all(_zero_rows(m, idxs) for m in layers):
            dead.append(u)
    if len(dead) == group.units:  # a zero-width layer is not a valid module
        dead = dead[:-1]
    return [c for u in dead for c in range(u * group.width, (u + 1) * group.width)]


Plan = list[tuple[str, list[int]]]


def plan(model: nn.Module, example: torch.Tensor) -> Plan:
    """(root layer, channels) of every removable zero unit of ``model``, which is left as it is."""
    model.eval()
    with _grouped_marked(model) as pruners:
        dg = dependency_graph(model, example, pruners)
        modules = dict(model.named_modules())
        return [(g.root, idxs) for g in _groups(model, dg) if (idxs := removable_units(model, g, modules))]


def prune(model: nn.Module, example: torch.Tensor, plan: Plan) -> nn.Module:
    """Carry out ``plan`` on ``model`` in place and return it (a plan replays on any fresh model of the same
    architecture)."""
    model.eval()
    modules = dict(model.named_modules())
    with _grouped_marked(model) as pruners:
        dg = dependency_graph(model, example, pruners)
        for root, idxs in plan:
            layer = modules[root]
            dg.get_pruning_group(layer, dg.get_pruner_of_module(layer).prune_out_channels, list(idxs)).prune()
    return model


def same_function(a: nn.Module, b: nn.Module, example: torch.Tensor) -> bool:
    """Whether two models agree in float64 on random inputs shaped like ``example`` (to 1e-9: rounding only)."""
    x = torch.randn(2, *example.shape[1:], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        ya, yb = copy.deepcopy(a).double().eval()(x), copy.deepcopy(b).double().eval()(x)
    return ya.shape == yb.shape and bool(torch.allclose(ya, yb, rtol=1e-9, atol=1e-9))


def safe_plan(model: nn.Module, example: torch.Tensor) -> tuple[Plan, list[str]]:
    """:func:`plan`, checked: the groups whose removal changes ``model``'s outputs are left out and named.

    The graph analysis blocks what it knows changes outputs; an operation it does not know (a functional mean over
    the channels, a buffer added to them) would otherwise remove channels that are not dead. Checking the whole plan
    costs one float64 forward pass; only when it fails is each group tried on its own.
    """
    full = plan(model, example)
    if not full or same_function(model, prune(copy.deepcopy(model), example, full), example):
        return full, []
    kept, unsafe = [], []
    for entry in full:
        trial = kept + [entry]
        try:
            ok = same_function(model, prune(copy.deepcopy(model), example, trial), example)
        except RuntimeError:  # a shape the pruned graph cannot run
            ok = False
        (kept if ok else unsafe).append(entry if ok else entry[0])
    return kept, unsafe
