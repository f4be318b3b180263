"""MobileNet-v1 in the CIFAR form used by Structure-LTH, registered in timm's model registry.

``cifar_mobilenet_v1``: a 3x3 stride-1 stem conv (3->32) + BN + ReLU, then 13 depthwise-separable blocks
(depthwise 3x3 conv + BN + ReLU, pointwise 1x1 conv + BN + ReLU) of widths 64, 128/2, 128, 256/2, 256, 512/2,
512 x5, 1024/2, 1024 ("/2": the block's depthwise conv has stride 2), global average pooling and one
``Linear(1024, num_classes)``. With four stride-2 blocks a 32x32 input ends at 2x2, as in the kuangliu
pytorch-cifar MobileNet that the Structure-LTH code (``models/mobilenet.py``) reuses.

Parameter count at 10 classes: 3,217,226 (3,185,088 conv weights, 21,888 BN affine, 10,250 linear), which is
the count of that reference code and the "3.21 M" of the Structure-LTH paper (Table 1/A2).

Module names follow the reference code (``conv1``/``bn1`` stem, ``layers.{i}.conv1`` depthwise,
``layers.{i}.conv2`` pointwise, ``linear`` classifier), so its checkpoints load with ``load_state_dict``.
There are no published weights; ``pretrained=True`` is refused.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import torch
import torch.nn as nn
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ._head import ClassifierHead, paper_cfg, refuse_pretrained

# register_model appends every entrypoint name to this list.
__all__ = ["CifarMobileNetV1", "DepthwiseSeparable"]

# An int is a stride-1 block of that width; (width, stride) otherwise.
BlockCfg = Sequence[Union[int, tuple[int, int]]]
MOBILENET_V1_CFG: list[Union[int, tuple[int, int]]] = [
    64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024,
]


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU; no residual, no conv bias."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(in_chs, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(in_chs, out_chs, 1, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(out_chs, **dd)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(x)))


class CifarMobileNetV1(ClassifierHead, nn.Module):
    """MobileNet-v1 for 32x32 inputs: 3x3 stride-1 stem, depthwise-separable blocks, global pool, linear.

    The blocks are the ``nn.Sequential`` ``layers``; the stem conv is ``conv1`` and the classifier ``linear``.
    """

    head_name = "linear"

    def __init__(
        self,
        block_cfg: BlockCfg = MOBILENET_V1_CFG,
        stem_chs: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        device=None,
        dtype=None,
    ):
        """Build the network.

        Args:
            block_cfg: One entry per depthwise-separable block: its output width, or (width, stride).
            stem_chs: Output channels of the 3x3 stem convolution ``conv1``.
            num_classes: Classifier outputs; 0 gives a model without classifier.
            in_chans: Input image channels.
            global_pool: timm global pooling type.
            drop_rate: Dropout before the classifier.
            device: Factory device for parameters.
            dtype: Factory dtype for parameters.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate

        self.conv1 = nn.Conv2d(in_chans, stem_chs, 3, stride=1, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(stem_chs, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.feature_info = [dict(num_chs=stem_chs, reduction=1, module="act1")]

        blocks: list[nn.Module] = []
        in_chs, reduction = stem_chs, 1
        for entry in block_cfg:
            out_chs, stride = (entry, 1) if isinstance(entry, int) else entry
            if stride != 1 and blocks:
                # The block before a stride change is the last one at its resolution.
                self.feature_info.append(dict(num_chs=in_chs, reduction=reduction, module=f"layers.{len(blocks) - 1}"))
            blocks.append(DepthwiseSeparable(in_chs, out_chs, stride, **dd))
            in_chs, reduction = out_chs, reduction * stride
        self.feature_info.append(dict(num_chs=in_chs, reduction=reduction, module=f"layers.{len(blocks) - 1}"))
        self.layers = nn.Sequential(*blocks)

        self.num_features = self.head_hidden_size = in_chs
        # Global pooling rather than the reference's fixed 2x2 average pool, so other input sizes
        # (e.g. 64x64 Tiny-ImageNet) still reach a 1024-wide classifier; on 32x32 input the two agree.
        self.global_pool, self.linear = create_classifier(in_chs, num_classes, pool_type=global_pool, **dd)
        # Parameters keep PyTorch's default initialisation (BN weight 1, bias 0), as in the reference code.

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and depthwise-separable blocks; returns the unpooled feature map."""
        return self.layers(self.act1(self.bn1(self.conv1(x))))


def _create_cifar_mobilenet(variant: str, pretrained: bool = False, **kwargs: Any) -> CifarMobileNetV1:
    refuse_pretrained(variant, pretrained)
    # features_only must look inside the `layers` Sequential for the per-resolution taps; there is one tap
    # for the stem, one per stride-2 block and one for the final map rather than timm's default five.
    block_cfg = list(kwargs["block_cfg"])
    num_strided = sum(not isinstance(e, int) and e[1] != 1 for e in block_cfg[1:])
    feature_cfg = dict(flatten_sequential=True, out_indices=tuple(range(num_strided + 2)))
    return build_model_with_cfg(CifarMobileNetV1, variant, pretrained, feature_cfg=feature_cfg, **kwargs)


# Must exist before the @register_model functions run: register_model reads it from this module.
default_cfgs = generate_default_cfgs({
    "cifar_mobilenet_v1": paper_cfg("conv1", "linear", pool_size=(2, 2)),
})


@register_model
def cifar_mobilenet_v1(pretrained: bool = False, **kwargs: Any) -> CifarMobileNetV1:
    """MobileNet-v1 for CIFAR as in Structure-LTH, 3x3 stride-1 stem, ~3.22M parameters at 10 classes."""
    model_args = dict(block_cfg=MOBILENET_V1_CFG, stem_chs=32)
    return _create_cifar_mobilenet("cifar_mobilenet_v1", pretrained, **dict(model_args, **kwargs))
