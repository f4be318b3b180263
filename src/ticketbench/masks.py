"""Pruning masks: which weights are kept, which layers may be pruned, and magnitude pruning.

A mask maps parameter names (``layer1.0.conv1.weight``) to boolean tensors; True means kept.
Sparsity is always the fraction of *prunable* weights that are zero, over the layers of a named
policy, because the three papers disagree on which layers count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import nn

from . import storage
from .errors import ArtifactError, ConfigError
from .registry import Registry


@dataclass(frozen=True)
class LayerPolicy:
    """Which weight tensors a method may prune.

    ``linear`` covers the linear layers of the feature extractor: attention (qkv, projection) and MLP blocks of
    transformers and ConvNeXts. The papers only pruned CNNs, whose bodies hold no linear layer, so on their
    networks a policy means what the paper says; on a transformer it is what makes "36% sparsity" mean 36% of
    the model's weights. ``narrow`` marks a policy that may knowingly cover little of a backbone: the user asks for
    it by name, and no coverage check refuses it.
    """

    conv: bool
    linear: bool
    stem: bool
    classifier: bool
    description: str
    narrow: bool = False
    skip_name: str = ""  # a released code's rule: skip the module of exactly this name instead of the stem


POLICIES: Registry[LayerPolicy] = Registry("prune_policy")
POLICIES.add("prac", LayerPolicy(True, True, True, False, "every conv (stem included) and every linear of the body "
                                 "(attention, MLP); classifier kept (PrAC)"))
POLICIES.add("structure_lth", LayerPolicy(True, True, False, False, "every conv and body linear except the stem; "
                                          "classifier kept (Structure-LTH)"))
POLICIES.add("openlth", LayerPolicy(True, True, True, True, "every conv and linear layer, stem and classifier included (OpenLTH)"))
POLICIES.add("jackpot", LayerPolicy(True, True, True, False, "every conv and linear except the classifier (lottery jackpots)"))
POLICIES.add("structure_lth_released", LayerPolicy(
    True, False, True, False, "Structure-LTH's released code: every conv except a module named exactly conv1 (a "
    "ResNet's stem; VGG's first conv features.0 is pruned), no linear layer", skip_name="conv1"))
POLICIES.add("openlth_vgg", LayerPolicy(True, True, True, False, "open_lth's VGG: every conv and linear except the "
                                        "classifier (its pruning_layers_to_ignore fc.weight)"))
POLICIES.add("convs_only", LayerPolicy(True, False, True, False, "every conv, stem included, and nothing else: on a "
                                       "transformer only the patch embedding (asked for by name; no coverage check)",
                                       narrow=True))

#: A policy that covers less than this share of a backbone's body (conv and linear weights but the classifier's) is
#: refused, unless it is narrow.
MIN_COVERAGE = 0.8


def _policy(policy: str | LayerPolicy) -> LayerPolicy:
    return POLICIES.get(policy) if isinstance(policy, str) else policy


def prunable_names(model: nn.Module, policy: str | LayerPolicy) -> list[str]:
    """Parameter names (``<module>.weight``) that ``policy`` allows to prune, in module order."""
    from .models import classifier_names, conv_linear_layers, stem_name

    pol = _policy(policy)
    stem, heads = stem_name(model), set(classifier_names(model))
    names = []
    for name, module in conv_linear_layers(model).items():
        is_conv = isinstance(module, nn.Conv2d)
        if (is_conv and not pol.conv) or (not is_conv and not pol.linear and name not in heads):
            continue
        if name == stem and not pol.stem:
            continue
        if pol.skip_name and name == pol.skip_name:
            continue
        if name in heads and not pol.classifier:
            continue
        names.append(f"{name}.weight" if name else "weight")
    if not names:
        raise ConfigError("prune_policy", policy if isinstance(policy, str) else pol.description,
                          f"a policy that leaves at least one prunable layer in {type(model).__name__}")
    return names


def coverage(model: nn.Module, names: Iterable[str]) -> float:
    """Share of the body's conv and linear weights that the named parameters hold.

    The classifier is left out of both sides: each paper's rule decides it, and a 1000-class head (a fifth of an
    EfficientNet-B0) would otherwise refuse the papers' own policies on ImageNet.
    """
    from .models import classifier_names, conv_linear_layers

    heads = {f"{n}.weight" for n in classifier_names(model)}
    body = {f"{n}.weight": m.weight.numel() for n, m in conv_linear_layers(model).items()
            if f"{n}.weight" not in heads}
    total = sum(body.values())
    return sum(body[n] for n in names if n in body) / total if total else 0.0


def policy_names(model: nn.Module, policy: str, key: str = "policy", backbone: str = "") -> tuple[list[str], float]:
    """The layers ``policy`` prunes in ``model`` and their coverage, refused in one line below :data:`MIN_COVERAGE`.

    A policy that prunes a fifth of a network while reporting "36% sparsity" misleads every table it lands in, so a
    narrow cover is an error unless the policy is one the user names for exactly that (``narrow``).
    """
    names = prunable_names(model, policy)
    cov = coverage(model, names)
    if cov < MIN_COVERAGE and not _policy(policy).narrow:
        narrow = ", ".join(n for n in POLICIES.names() if POLICIES.get(n).narrow)
        raise ConfigError(key, policy, f"a policy covering at least {MIN_COVERAGE:.0%} of the conv and linear "
                          f"weights of {backbone or type(model).__name__}'s body (it covers {cov:.1%}; "
                          f"`ticketbench backbones {backbone or '<name>'}` lists each policy's cover, and {narrow} "
                          f"prunes a narrow cover on purpose)")
    return names, cov


class Mask(dict):
    """Parameter name -> bool tensor (True = kept)."""

    @property
    def total(self) -> int:
        return sum(m.numel() for m in self.values())

    @property
    def kept(self) -> int:
        return int(sum(int(m.sum()) for m in self.values()))

    def sparsity(self) -> float:
        return 1.0 - self.kept / self.total if self.total else 0.0

    def layer_sparsity(self) -> dict[str, float]:
        return {n: 1.0 - float(m.float().mean()) for n, m in self.items()}

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of ``model`` in place."""
        params = dict(model.named_parameters())
        for n, m in self.items():
            params[n].mul_(m.to(params[n].device, params[n].dtype))
        return model

    def save(self, path, *, method: str, source_hash: str = "", config: dict | None = None, **extra) -> None:
        meta = {"kind": "mask", "method": method, "source_hash": source_hash, "sparsity": self.sparsity(),
                "layer_sparsity": self.layer_sparsity(), "config": config or {}, "state_hash": storage.state_hash(self),
                **extra}
        storage.save_tensors(path, dict(self), meta)

    @classmethod
    def load(cls, path) -> tuple["Mask", dict]:
        tensors, meta = storage.load_tensors(path)
        if meta.get("kind") != "mask":
            raise ArtifactError(path, f"is not a ticketbench mask (kind={meta.get('kind')!r})")
        wrong = next(((n, t.dtype) for n, t in tensors.items() if t.dtype != torch.bool), None)
        if wrong:
            raise ArtifactError(path, f"layer {wrong[0]!r} of this mask is {str(wrong[1]).replace('torch.', '')}, "
                                "not bool; the file was changed after ticketbench wrote it")
        # Masks written before the hash was recorded have none to check.
        if "state_hash" in meta and storage.state_hash(tensors) != meta["state_hash"]:
            raise ArtifactError(path, "its layers do not hash to the state_hash its metadata records: the file was "
                                "changed after it was written; re-run the stage or `dvc pull` it")
        mask = cls(tensors)
        if not mask or mask.kept == 0:
            raise ArtifactError(path, "this mask keeps no weight (sparsity 1.0); a ticket needs at least one")
        return mask, meta

    def check_fits(self, path, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Refuse a mask with a layer that a model with these parameter ``shapes`` lacks or has in another shape."""
        for n, m in self.items():
            if n not in shapes:
                raise ArtifactError(path, f"this mask has a layer {n!r}, which the model does not have; was it made "
                                    "for another backbone?")
            if tuple(m.shape) != tuple(shapes[n]):
                raise ArtifactError(path, f"layer {n!r} of this mask has shape {tuple(m.shape)}, the model's "
                                    f"{tuple(shapes[n])}; was it made for another backbone?")


def iou(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Intersection over union of the kept weights of two masks over their common layers."""
    names = sorted(set(a) & set(b))
    if not names:
        raise ValueError("the two masks share no layer")
    inter = sum(int((a[n] & b[n]).sum()) for n in names)
    union = sum(int((a[n] | b[n]).sum()) for n in names)
    return inter / union if union else 1.0


def _prune_count(remaining: int, fraction: float) -> int:
    # Python's round() (half to even) matches torch.nn.utils.prune's amount rounding.
    return min(remaining, round(fraction * remaining))


def _lowest(scores: torch.Tensor, alive: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the k lowest scores among alive entries; ties go to the lower flat index."""
    idx = alive.nonzero().flatten()
    order = torch.sort(scores[idx], stable=True).indices
    return idx[order[:k]]


#: How many weights a magnitude-pruning step removes and how ties at the threshold fall.
PRUNE_RULES = ("exact", "openlth")


def _openlth_drop(scores: torch.Tensor, alive: torch.Tensor, fraction: float, counted: int) -> torch.Tensor:
    """open_lth's ``sparse_global`` step (2ce732f): the threshold is the ``ceil(fraction * counted)``-th smallest
    alive score (0-based), and every alive weight not above it goes, so ``ceil(fraction * counted) + 1`` weights
    and all ties at the threshold. ``counted`` is every weight its mask still keeps, layers it does not prune too."""
    k = math.ceil(fraction * counted)
    values = torch.sort(scores[alive]).values
    if k >= len(values):
        return alive.nonzero().flatten()  # open_lth would index past the end; nothing is left above the threshold
    return (alive & (scores <= values[k])).nonzero().flatten()


def magnitude_prune(weights: Mapping[str, torch.Tensor], fraction: float, mask: Mapping[str, torch.Tensor] | None = None,
                    scope: str = "global", rule: str = "exact", uncounted: int = 0) -> Mask:
    """Remove ``fraction`` of the weights that ``mask`` still keeps, smallest magnitude first.

    Args:
        weights: name -> weight tensor, for the prunable layers only.
        fraction: share of the *remaining* weights to remove (0.2 for IMP).
        mask: the current mask (all kept if None); pruned weights stay pruned.
        scope: ``global`` ranks all layers together, ``layerwise`` removes ``fraction`` in each layer.
        rule: ``exact`` removes ``round(fraction * remaining)`` weights, ties to the lower flat index;
            ``openlth`` reproduces open_lth's count and ties (:func:`_openlth_drop`; global scope only).
        uncounted: with ``openlth``, weights of layers that are not pruned but count towards the remaining total
            (open_lth's VGG: its classifier).
    """
    if not 0 <= fraction <= 1:
        raise ConfigError("fraction", fraction, "a fraction in [0, 1]")
    if rule not in PRUNE_RULES:
        raise ConfigError("prune_rule", rule, f"one of {', '.join(PRUNE_RULES)}")
    if rule == "openlth" and scope != "global":
        raise ConfigError("scope", scope, "global with prune_rule openlth (open_lth prunes globally)")
    names = list(weights)
    old = {n: (mask[n].bool().cpu() if mask is not None else torch.ones_like(weights[n], dtype=torch.bool, device="cpu"))
           for n in names}
    new = Mask({n: m.clone() for n, m in old.items()})
    if scope == "layerwise":
        for n in names:
            flat = new[n].view(-1)
            drop = _lowest(weights[n].detach().abs().flatten().cpu().double(), old[n].flatten(),
                           _prune_count(int(old[n].sum()), fraction))
            flat[drop] = False
        return new
    if scope != "global":
        raise ConfigError("scope", scope, "global or layerwise")
    scores = torch.cat([weights[n].detach().abs().flatten().cpu().double() for n in names])
    alive = torch.cat([old[n].flatten() for n in names])
    if rule == "openlth":
        drop = _openlth_drop(scores, alive, fraction, int(alive.sum()) + uncounted)
    else:
        drop = _lowest(scores, alive, _prune_count(int(alive.sum()), fraction))
    flat = torch.cat([new[n].flatten() for n in names])
    flat[drop] = False
    offset = 0
    for n in names:
        k = new[n].numel()
        new[n] = flat[offset : offset + k].view_as(new[n]).clone()
        offset += k
    return Mask(new)


def prune_to_sparsity(weights: Mapping[str, torch.Tensor], sparsity: float, scope: str = "global") -> Mask:
    """One-shot magnitude mask with exactly ``round(sparsity * n)`` zeros (globally or in each layer)."""
    if not 0 <= sparsity < 1:
        raise ConfigError("sparsity", sparsity, "a fraction in [0, 1)")
    return magnitude_prune(weights, sparsity, None, scope)


def keep_highest(scores: Mapping[str, torch.Tensor], kept: int | Mapping[str, int]) -> Mask:
    """Keep exactly ``kept`` entries with the highest scores: one budget over all layers (an int) or one per layer.

    The rest are dropped lowest first as :func:`magnitude_prune` drops them (ties: the lower flat index goes first,
    layers laid end to end in the order given), so absolute weights and the same count give its mask exactly. A NaN
    score, from a criterion that overflowed, counts as the lowest: it must not win a place. The work runs on the
    scores' device; the mask comes back on the CPU.
    """
    names = list(scores)
    if not isinstance(kept, int):
        return Mask({n: keep_highest({n: scores[n]}, int(kept[n]))[n] for n in names})
    flat = torch.cat([scores[n].detach().flatten().double() for n in names])
    if not 0 <= kept <= len(flat):
        raise ConfigError("kept", kept, f"a count of weights from 0 to {len(flat)}")
    flat = torch.nan_to_num(flat, nan=-torch.inf)
    keep = torch.ones(len(flat), dtype=torch.bool, device=flat.device)
    keep[_lowest(flat, keep, len(flat) - kept)] = False
    keep = keep.cpu()
    return Mask({n: part.view(scores[n].shape).clone()
                 for n, part in zip(names, keep.split([scores[n].numel() for n in names]))})


def sparsity_after_rounds(rounds: int, rate: float = 0.2) -> float:
    return 1.0 - (1.0 - rate) ** rounds


def count_zeros(model: nn.Module, names: Iterable[str]) -> tuple[int, int]:
    """(zeros, total) over the named parameters: the sparsity that metrics.json reports."""
    params = dict(model.named_parameters())
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    return zeros, sum(params[n].numel() for n in names)


class MaskEnforcer:
    """Keeps pruned weights exactly zero during training by re-masking after every optimiser step.

    One fused ``_foreach_mul_`` over all masked tensors costs far less than a parametrisation that
    rebuilds each weight in every forward pass, which is how the overhead stays within a few percent.
    """

    def __init__(self, model: nn.Module, mask: Mapping[str, torch.Tensor] | None):
        params = dict(model.named_parameters())
        self.params = [params[n] for n in (mask or {})]
        # Laid out like the weights (e.g. channels-last), so the fused multiply stays on its fast path.
        self.masks = [torch.empty_like(params[n]).copy_(mask[n]) for n in (mask or {})]

    @torch.no_grad()
    def __call__(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)
