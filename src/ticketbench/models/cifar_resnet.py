"""CIFAR ResNets of the lottery-ticket papers, registered in timm's model registry.

* ``cifar_resnet20/32/56``: He et al. (2016) CIFAR ResNets, 16/32/64 channels, option-A shortcuts.
* ``cifar_wrn32_2``: the "WRN-32-2" (GraSP ResNet-32) of the Structure-LTH and jackpot papers, 32/64/128
  channels; projection (B) shortcuts by default, option A with ``shortcut="A"``.
* ``cifar_resnet18``: ImageNet ResNet-18 widths with a 3x3 stride-1 stem and no max-pool.

None of them has published weights, so ``pretrained=True`` is refused up front with a ConfigError that names the
model (timm's own loader would fail later with a generic RuntimeError).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ..errors import ConfigError
from ._head import ClassifierHead, paper_cfg, refuse_pretrained

# register_model appends every entrypoint name to this list.
__all__ = ["CifarResNet", "BasicBlock", "ShortcutA"]

SHORTCUTS = ("A", "B")


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample spatially and zero-pad the extra channels; it has no parameters.

    Being parameter-free matters for pruning: a projection shortcut would add weights that a
    mask could remove, changing the sparsity the papers report.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"option-A shortcut cannot reduce channels ({in_chs} -> {out_chs})")
        self.stride = stride
        self.pad = out_chs - in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # Zeros go on both sides of the channel axis, as in the reference implementations.
        before = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, before, self.pad - before))


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers with a residual connection (He et al., 2016)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, shortcut: str = "A", device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(out_chs, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, stride=1, padding=1, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(out_chs, **dd)
        self.act2 = nn.ReLU(inplace=True)
        if stride == 1 and in_chs == out_chs:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(in_chs, out_chs, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False, **dd),
                nn.BatchNorm2d(out_chs, **dd),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class CifarResNet(ClassifierHead, nn.Module):
    """ResNet for 32x32 inputs: 3x3 stem, stages of basic blocks, global pool, linear classifier.

    Stage ``i`` (1-based) is the attribute ``layer{i}``; the first stage keeps the resolution and every
    later stage halves it. Module names follow timm's ResNet (``conv1``, ``layer1.0.conv1``, ``fc``).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 3, 3),
        channels: Sequence[int] = (16, 32, 64),
        stem_chs: int = 16,
        shortcut: str = "A",
        num_classes: int = 10,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        device=None,
        dtype=None,
    ):
        """Build the network.

        Args:
            layers: Number of basic blocks in each stage.
            channels: Output channels of each stage.
            stem_chs: Output channels of the 3x3 stem convolution ``conv1``.
            shortcut: "A" (parameter-free subsample + zero-pad) or "B" (1x1 conv + BN projection) where the
                shape changes.
            num_classes: Classifier outputs; 0 gives a model without classifier.
            in_chans: Input image channels.
            global_pool: timm global pooling type.
            drop_rate: Dropout before the classifier.
            device: Factory device for parameters.
            dtype: Factory dtype for parameters.
        """
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ConfigError("shortcut", shortcut, "'A' (subsample + zero-pad) or 'B' (1x1 conv + BN projection)")
        if len(layers) != len(channels):
            raise ValueError(f"layers {tuple(layers)} and channels {tuple(channels)} must have the same length")
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate

        self.conv1 = nn.Conv2d(in_chans, stem_chs, 3, stride=1, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(stem_chs, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.feature_info = [dict(num_chs=stem_chs, reduction=1, module="act1")]

        in_chs, reduction = stem_chs, 1
        self.stage_names = []
        for idx, (depth, out_chs) in enumerate(zip(layers, channels)):
            stride = 1 if idx == 0 else 2
            reduction *= stride
            blocks = [
                BasicBlock(in_chs if b == 0 else out_chs, out_chs, stride if b == 0 else 1, shortcut, **dd)
                for b in range(depth)
            ]
            name = f"layer{idx + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=name))
            in_chs = out_chs

        self.num_features = self.head_hidden_size = in_chs
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool, **dd)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan_in Kaiming normal, as in the reference CIFAR ResNet and OpenLTH code.
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and residual stages; returns the unpooled feature map."""
        x = self.act1(self.bn1(self.conv1(x)))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x


def _create_cifar_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    refuse_pretrained(variant, pretrained)
    # timm's features_only default expects five feature levels; these nets have the stem plus one per stage.
    num_levels = len(kwargs["layers"]) + 1
    return build_model_with_cfg(
        CifarResNet, variant, pretrained, feature_cfg=dict(out_indices=tuple(range(num_levels))), **kwargs
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return paper_cfg("conv1", "fc", **{"pool_size": (8, 8), **kwargs})


# Must exist before the @register_model functions run: register_model reads it from this module.
default_cfgs = generate_default_cfgs({
    "cifar_resnet20": _cfg(),
    "cifar_resnet32": _cfg(),
    "cifar_resnet56": _cfg(),
    "cifar_wrn32_2": _cfg(),
    "cifar_wrn32_2a": _cfg(),
    "cifar_resnet18": _cfg(pool_size=(4, 4)),
})


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-20 for CIFAR (He et al., 2016), option-A shortcuts, ~0.27M parameters."""
    model_args = dict(layers=(3, 3, 3), channels=(16, 32, 64), stem_chs=16, shortcut="A")
    return _create_cifar_resnet("cifar_resnet20", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-32 for CIFAR (He et al., 2016), option-A shortcuts, ~0.46M parameters."""
    model_args = dict(layers=(5, 5, 5), channels=(16, 32, 64), stem_chs=16, shortcut="A")
    return _create_cifar_resnet("cifar_resnet32", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-56 for CIFAR (He et al., 2016), option-A shortcuts, ~0.85M parameters."""
    model_args = dict(layers=(9, 9, 9), channels=(16, 32, 64), stem_chs=16, shortcut="A")
    return _create_cifar_resnet("cifar_resnet56", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_wrn32_2(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """WRN-32-2 / GraSP ResNet-32 (32/64/128 channels); ``shortcut="B"`` (default, ~1.86M) or ``"A"``."""
    model_args = dict(layers=(5, 5, 5), channels=(32, 64, 128), stem_chs=32, shortcut="B")
    return _create_cifar_resnet("cifar_wrn32_2", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_wrn32_2a(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """The lottery-jackpots ResNet-32 (released models/resnet_cifar.py): 32/64/128 channels, option-A shortcuts."""
    model_args = dict(layers=(5, 5, 5), channels=(32, 64, 128), stem_chs=32, shortcut="A")
    return _create_cifar_resnet("cifar_wrn32_2a", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_resnet18(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool, projection shortcuts, ~11.17M parameters."""
    model_args = dict(layers=(2, 2, 2, 2), channels=(64, 128, 256, 512), stem_chs=64, shortcut="B")
    return _create_cifar_resnet("cifar_resnet18", pretrained, **dict(model_args, **kwargs))
