"""Backbones: any timm model, plus the lottery-ticket papers' CIFAR networks.

Importing this package registers ``cifar_resnet20/32/56``, ``cifar_wrn32_2``, ``cifar_resnet18``,
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
                 **kwargs: Any) -> nn.Module:
    """Build a randomly initialised backbone by timm name.

    Args:
        name: Any timm model name, including the ``cifar_*`` networks registered by this package.
        num_classes: Number of classifier outputs.
        in_chans: Number of input image channels.
        image_size: The side of the images it will see; given, one forward pass at that size (eval mode, no
            gradient, parameters and random state untouched) checks that the model runs on them.
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
    model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)
    # Checked on the built model because the conv type is an implementation detail no registry entry records.
    if any(isinstance(m, WEIGHT_STANDARDISED) for m in model.modules()):
        raise ConfigError("backbone", name, _WS_ALLOWED)
    if image_size is not None:
        check_input_size(model, name, in_chans, image_size)
    return model


def check_input_size(model: nn.Module, name: str, in_chans: int, image_size: int) -> None:
    """Refuse, in one line, a backbone that cannot run on ``image_size`` inputs: one built for a fixed size (ViT,
    Swin, Mixer at 224) or one whose stem needs more pixels (Inception v3), before a run claims its folder."""
    import torch

    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_chans, image_size, image_size))
    except Exception as e:  # noqa: BLE001 - any failure of the forward means the same thing to the user
        cfg = getattr(model, "pretrained_cfg", None) or {}
        size = cfg.get("input_size", (0, 0, 0))[-1]
        why = " ".join(str(e).split())[:160] or type(e).__name__
        raise ConfigError("backbone", name, f"a backbone that runs on {image_size}x{image_size} inputs; this one "
                          f"fails at that size ({why}): set data.image_size (--image-size) to one it takes"
                          + (f", such as its default {size}" if size else "") + ", or choose another backbone") from None
    finally:
        model.train(was_training)


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
