"""timm's ResNet-50 with a CIFAR stem: the Structure-LTH paper's "RN-50(+)" for Tiny-ImageNet.

``resnet50_cifar_stem`` is timm's ``resnet50`` (bottlenecks 3-4-6-3, 1x1 conv + BN projections) whose 7x7
stride-2 stem conv is replaced by a 3x3 stride-1 one and whose stem max-pool is removed, as in the
``imagenet=False`` branch of the Structure-LTH code (``models/resnet50_cfg.py``). A 64x64 Tiny-ImageNet image
thus ends at 8x8 instead of 2x2. The parameter count is timm's resnet50 minus the stem difference
(64 * in_chans * (49 - 9)): 25,549,352 at 1000 classes and 23,910,152 at 200, for 3 input channels. (The
reference code's projection convs also carry a bias, 3,840 parameters that timm's ResNet and this model lack.)

Everything else is timm's ResNet, so ``conv1``/``fc`` remain the stem/classifier names and all ResNet kwargs
other than the stem ones work. There are no published weights; ``pretrained=True`` is refused.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import Bottleneck, ResNet

from ..errors import ConfigError
from ._head import paper_cfg, refuse_pretrained

# register_model appends every entrypoint name to this list.
__all__ = ["CifarStemResNet"]

# timm's ResNet counts strides from the 4x of its ImageNet stem; this stem has stride 1.
_IMAGENET_STEM_STRIDE = 4


class CifarStemResNet(ResNet):
    """timm ResNet with one 3x3 stride-1 stem conv and no stem pooling.

    ``output_stride`` is the real stride of the final feature map (8 without dilation); the other arguments
    are those of ``timm.models.resnet.ResNet``, less ``stem_type`` and ``replace_stem_pool``.
    """

    def __init__(self, *args: Any, output_stride: int = 8, device=None, dtype=None, **kwargs: Any):
        # Those options would build an ImageNet stem that is then thrown away, so refuse them instead.
        for key in ("stem_type", "replace_stem_pool"):
            if kwargs.get(key):
                raise ConfigError(key, kwargs[key], "unset: resnet*_cifar_stem always has a single 3x3 stride-1 stem")
        if output_stride not in (2, 4, 8):
            raise ConfigError("output_stride", output_stride, "8 (no dilation), 4 or 2 for a stride-1 stem")
        super().__init__(
            *args, output_stride=output_stride * _IMAGENET_STEM_STRIDE, device=device, dtype=dtype, **kwargs
        )
        stem_chs = self.conv1.out_channels
        self.conv1 = nn.Conv2d(self.in_chans, stem_chs, 3, stride=1, padding=1, bias=False, device=device, dtype=dtype)
        # Same rule ResNet.init_weights applied to the stem it replaced (and the reference code uses).
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()
        self.feature_info[0]["reduction"] = 1
        for info in self.feature_info[1:]:
            info["reduction"] //= _IMAGENET_STEM_STRIDE


def _create_cifar_stem_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> CifarStemResNet:
    refuse_pretrained(variant, pretrained)
    return build_model_with_cfg(CifarStemResNet, variant, pretrained, **kwargs)


# Must exist before the @register_model functions run: register_model reads it from this module.
default_cfgs = generate_default_cfgs({
    "resnet50_cifar_stem": paper_cfg(
        "conv1", "fc", num_classes=200, input_size=(3, 64, 64), pool_size=(8, 8),
        mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
    ),
})


@register_model
def resnet50_cifar_stem(pretrained: bool = False, **kwargs: Any) -> CifarStemResNet:
    """ResNet-50 with a 3x3 stride-1 stem and no max-pool (Structure-LTH "RN-50(+)"), ~23.9M params at 200 classes."""
    # The reference code starts every BN at weight 1; timm would zero the last BN of each block.
    model_args = dict(block=Bottleneck, layers=(3, 4, 6, 3), zero_init_last=False)
    return _create_cifar_stem_resnet("resnet50_cifar_stem", pretrained, **dict(model_args, **kwargs))
