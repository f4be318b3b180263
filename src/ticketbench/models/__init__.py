"""Backbones: any timm model, plus the lottery-ticket papers' CIFAR networks.

Importing this package registers ``cifar_resnet20/32/56``, ``cifar_wrn32_2`` (and ``cifar_wrn32_2a`` with the jackpots' zero-pad shortcuts), ``cifar_resnet18``,
``cifar_vgg16_bn/19_bn``, ``cifar_mobilenet_v1`` (Structure-LTH's MobileNet-v1) and ``resnet50_cifar_stem``
(Structure-LTH's "RN-50(+)" for Tiny-ImageNet: timm's resnet50 with a 3x3 stride-1 stem and no max-pool) in
timm's own registry, so ``timm.create_model`` and ``timm.list_models`` know them (all but the last match
``"cifar_*"``). The helpers here name the layers that pruning code treats specially (stem, classifier) without
hard-coding any architecture.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import timm
import torch.nn as nn
from timm.layers import ScaledStdConv2d, ScaledStdConv2dSame, StdConv2d, StdConv2dSame
from timm.models import get_arch_name, is_model, parse_model_name

from ..errors import ConfigError
# Imported for their @register_model side effect.
from . import cifar_mobilenet, cifar_resnet, cifar_vgg, resnet_cifar_stem  # noqa: F401
from .cifar_mobilenet import CifarMobileNetV1, DepthwiseSeparable
from .cifar_resnet import BasicBlock, CifarResNet, ShortcutA
from .cifar_vgg import CifarVGG
from .resnet_cifar_stem import CifarStemResNet

__all__ = [
    "WEIGHT_STANDARDISED",
    "BasicBlock",
    "CifarMobileNetV1",
    "CifarResNet",
    "CifarStemResNet",
    "CifarVGG",
    "DepthwiseSeparable",
    "ShortcutA",
    "classifier_names",
    "conv_linear_layers",
    "create_model",
    "list_backbones",
    "stem_name",
]

#: Conv layers that standardise their weight on every forward pass. A pruning mask zeroes entries of the
#: stored weight, but standardisation subtracts the mean again, so pruned connections come back as non-zero.
WEIGHT_STANDARDISED: tuple[type, ...] = (StdConv2d, StdConv2dSame, ScaledStdConv2d, ScaledStdConv2dSame)

_WS_ALLOWED = (
    "weight-standardised convolutions re-normalise weights every forward pass and would silently undo "
    "pruning masks; choose a backbone with plain Conv2d"
)


def create_model(name: str, num_classes: int, in_chans: int = 3, image_size: int | None = None,
                 check_size: bool = True, **kwargs: Any) -> nn.Module:
    """Build a randomly initialised backbone by timm name.

    Args:
        name: Any timm model name, including the ``cifar_*`` networks registered by this package.
        num_classes: Number of classifier outputs.
        in_chans: Number of input image channels.
        image_size: The side of the images it will see. A model timm builds for a fixed size (ViT, DeiT, Swin,
            Mixer, LeViT, CoAtNet) that fails at this one is rebuilt for it (``img_size``, a patch size that keeps 8 patches per side,
            a Swin window that divides the feature map); with ``check_size``, one forward pass at that size (eval
            mode, no gradient, parameters and random state untouched) checks that the model runs on them.
        check_size: Run that forward pass (a stage that loads a model another stage built and checked skips it).
        **kwargs: Passed on to ``timm.create_model``; entries whose value is None are dropped so that
            unset config fields keep the model's defaults. ``pretrained`` defaults to False.

    Returns:
        The model, with ``pretrained_cfg`` set by timm.

    Raises:
        ConfigError: If the name is unknown to timm, has a source prefix (hf-hub:, local-dir:), or the model
            uses weight-standardised convolutions, which cannot hold a pruning mask.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    pretrained = kwargs.pop("pretrained", False)
    source, model_id = parse_model_name(name)
    if source:
        # hf-hub: downloads and local-dir: reads a folder named by the config (weights, possibly pickled): a shared
        # config must not make every node load files from wherever it points.
        raise ConfigError("backbone", name, f"a timm model name without a source prefix ({source}: loads a model "
                          "from outside the project); e.g. resnet18, cifar_resnet20")
    if not is_model(model_id):
        close = difflib.get_close_matches(get_arch_name(model_id), timm.list_models(), n=3)
        raise ConfigError(
            "backbone", name,
            "any timm model name; e.g. cifar_resnet20, test_resnet; close matches: " + (", ".join(close) or "none"),
        )
    def build(**extra: Any) -> nn.Module:
        return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans,
                                 **kwargs, **extra)

    model = build()
    # Checked on the built model because the conv type is an implementation detail no registry entry records.
    if any(isinstance(m, WEIGHT_STANDARDISED) for m in model.modules()):
        raise ConfigError("backbone", name, _WS_ALLOWED)
    if image_size is not None:
        model = _at_size(model, build, name, in_chans, image_size, check_size)
    return model


# Tokens per side that a patch size refitted to a small input keeps (ViTs on CIFAR use patch 4 at 32x32: 8x8).
MIN_TOKENS = 8


def _fixed_size(model: nn.Module) -> int | None:
    """The input side a model was built for, where timm says its size is fixed (ViT, Swin, Mixer, LeViT, CoAtNet)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return int(cfg["input_size"][-1]) if cfg.get("fixed_input_size") and cfg.get("input_size") else None


def _first(model: nn.Module, attr: str) -> int | None:
    """The first value of ``attr`` (an int or a square pair) on the model's modules, in definition order."""
    for m in model.modules():
        v = getattr(m, attr, None)
        if isinstance(v, int) or (isinstance(v, tuple) and v and isinstance(v[0], int)):
            return int(v if isinstance(v, int) else v[0])
    return None


def _size_kwargs(model: nn.Module, image_size: int) -> list[dict[str, int]]:
    """The timm arguments that rebuild a fixed-size model for ``image_size``, most faithful first: the size with a
    patch size that keeps MIN_TOKENS patches per side and a window that divides the first feature map (Swin), then
    the size alone (entrypoints that fix the patch size refuse a second one)."""
    sizes: dict[str, int] = {"img_size": image_size}
    patch = _first(model, "patch_size")
    if patch:
        fits = [p for p in range(1, patch + 1) if image_size % p == 0 and image_size // p >= MIN_TOKENS]
        if image_size % patch or image_size // patch < MIN_TOKENS:
            patch = max(fits, default=patch)
            sizes["patch_size"] = patch
    window = _first(model, "window_size") if hasattr(model, "layers") else None
    if window and patch:
        side = image_size // patch
        w = max(d for d in range(1, window + 1) if side % d == 0)
        if w != window:
            sizes["window_size"] = w
    return [sizes, {"img_size": image_size}] if len(sizes) > 1 else [sizes]


def _at_size(model: nn.Module, build, name: str, in_chans: int, image_size: int, check: bool) -> nn.Module:
    default = _fixed_size(model)
    # Only a model that fails at the size as timm built it is rebuilt: one that runs (timm's test_vit at 32x32) keeps
    # the architecture its earlier runs had.
    if default is not None and default != image_size:
        if _runs(model, in_chans, image_size) is None:
            return model  # runs as built: that forward was the check
        for extra in _size_kwargs(model, image_size):
            try:
                model = build(**extra)
            except TypeError:  # the entrypoint fixes that argument
                continue
            break
    if check:
        check_input_size(model, name, in_chans, image_size)
    return model


def _runs(model: nn.Module, in_chans: int, side: int) -> str | None:
    """None when one eval forward at ``side`` x ``side`` works, else why not."""
    import torch

    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_chans, side, side))
    except Exception as e:  # noqa: BLE001 - any failure of the forward means the same thing to the user
        return " ".join(str(e).split())[:160] or type(e).__name__
    finally:
        model.train(was_training)
    return None


def check_input_size(model: nn.Module, name: str, in_chans: int, image_size: int) -> None:
    """Refuse, in one line, a backbone that cannot run on ``image_size`` inputs (a stem that needs more pixels, as
    Inception v3's, or a fixed-size model timm cannot rebuild for it), before a run claims its folder. The line
    names the smallest ``--image-size`` that works, up to the model's default size."""
    why = _runs(model, in_chans, image_size)
    if why is None:
        return
    cfg = getattr(model, "pretrained_cfg", None) or {}
    default = int(cfg.get("input_size", (0, 0, 0))[-1]) or 0
    need = ""
    if default > image_size and _fixed_size(model) is None and _runs(model, in_chans, default) is None:
        lo, hi = image_size, default  # fails at lo, runs at hi: the smallest side that runs, by bisection
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _runs(model, in_chans, mid) is None else (mid, hi)
        need = f": it needs --image-size (data.image_size) {hi} or more (its default is {default})"
    elif default:
        need = f": set --image-size (data.image_size) to one it takes, such as its default {default}"
    raise ConfigError("backbone", name, f"a backbone that runs on the data's {image_size}x{image_size} images; "
                      f"this one fails at that size ({why}){need}, or choose another backbone")


def list_backbones(pattern: str = "*") -> list[str]:
    """List timm model names matching a shell-style pattern, e.g. ``"cifar_*"``.

    Args:
        pattern: Wildcard filter as understood by ``timm.list_models``.

    Returns:
        Sorted model names.
    """
    return timm.list_models(pattern)


def _cfg_names(model: nn.Module, key: str) -> list[str]:
    cfg = getattr(model, "pretrained_cfg", None)
    value = cfg.get(key) if isinstance(cfg, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, str)]
    return []


def stem_name(model: nn.Module) -> str:
    """Name of the first convolution applied to the input (often kept dense by pruning methods).

    Args:
        model: A timm model or any module with at least one ``nn.Conv2d``.

    Returns:
        ``pretrained_cfg["first_conv"]`` if it names an ``nn.Conv2d`` of the model, else the first ``nn.Conv2d``
        in module order.

    Raises:
        ValueError: If the model has no ``nn.Conv2d``.
    """
    modules = dict(model.named_modules())
    for name in _cfg_names(model, "first_conv"):
        if isinstance(modules.get(name), nn.Conv2d):
            return name
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            return name
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d, so it has no convolutional stem")


def _weight_owners(name: str, module: nn.Module) -> list[str]:
    # A head may be a leaf (Linear) or a container (e.g. a conv head); report the modules holding its weights.
    if "weight" in dict(module.named_parameters(recurse=False)):
        return [name]
    return [
        f"{name}.{sub}" for sub, m in module.named_modules()
        if sub and "weight" in dict(m.named_parameters(recurse=False))
    ]


def classifier_names(model: nn.Module) -> list[str]:
    """Names of the modules whose weights form the classification head.

    Args:
        model: A timm model or any module.

    Returns:
        Module names taken from ``pretrained_cfg["classifier"]`` (a name or a tuple of names, e.g. distilled
        ViTs); when that is absent or names no module, the module returned by ``model.get_classifier()``, and
        for models without that method, the last ``nn.Linear``. A container head is expanded to the
        submodules that own weights; a head without weights (``num_classes=0``) contributes nothing.
    """
    modules = dict(model.named_modules())
    heads = [name for name in _cfg_names(model, "classifier") if name in modules]
    if not heads:
        heads = _located_classifier(model, modules)
    names: list[str] = []
    for head in heads:
        names += [n for n in _weight_owners(head, modules[head]) if n not in names]
    return names


def _located_classifier(model: nn.Module, modules: dict[str, nn.Module]) -> list[str]:
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        found = get_classifier()
        found = found if isinstance(found, (tuple, list)) else (found,)
        return [name for target in found for name, m in modules.items() if m is target]
    linears = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
    return linears[-1:]


def conv_linear_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All ``nn.Conv2d`` and ``nn.Linear`` modules (subclasses included), the layers pruning masks apply to.

    Args:
        model: Any module.

    Returns:
        Mapping of module name to module, in module order.
    """
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
