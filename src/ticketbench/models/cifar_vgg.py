"""CIFAR VGG-16/19 with batch norm as used by the PrAC lottery-ticket code, registered in timm's registry.

The feature extractor is a conv3x3+BN+ReLU stack with four 2x2 max-pools (the last pool of the ImageNet
configuration is dropped, so a 32x32 input ends at 2x2), followed by global average pooling and a single
``Linear(512, num_classes)`` named ``classifier``. There are no published weights; ``pretrained=True`` is refused.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import torch
import torch.nn as nn
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ._head import ClassifierHead, paper_cfg, refuse_pretrained

# register_model appends every entrypoint name to this list.
__all__ = ["CifarVGG"]


LayerCfg = Sequence[Union[int, str]]
VGG_CFGS: dict[str, list[Union[int, str]]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


class CifarVGG(ClassifierHead, nn.Module):
    """VGG with batch norm for 32x32 inputs.

    ``features`` is one ``nn.Sequential`` of Conv2d/BatchNorm2d/ReLU/MaxPool2d, so the first convolution is
    ``features.0``, and ``classifier`` is the only linear layer.
    """

    head_name = "classifier"

    def __init__(
        self,
        layer_cfg: LayerCfg = VGG_CFGS["vgg16"],
        num_classes: int = 10,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        device=None,
        dtype=None,
    ):
        """Build the network.

        Args:
            layer_cfg: Output channels of each 3x3 conv, with "M" for a 2x2 max-pool.
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

        layers: list[nn.Module] = []
        self.feature_info = []
        chs, reduction = in_chans, 1
        for v in layer_cfg:
            if v == "M":
                # The map just before each pool is the last one at its resolution.
                self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers) - 1}"))
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                reduction *= 2
            else:
                # Conv bias kept (despite the following BN) to match the torchvision-style layers of the PrAC code.
                conv = nn.Conv2d(chs, int(v), 3, padding=1, **dd)
                layers += [conv, nn.BatchNorm2d(int(v), **dd), nn.ReLU(inplace=True)]
                chs = int(v)
        if not isinstance(layers[-1], nn.MaxPool2d):
            self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers) - 1}"))
        self.features = nn.Sequential(*layers)

        self.num_features = self.head_hidden_size = chs
        self.global_pool, self.classifier = create_classifier(chs, num_classes, pool_type=global_pool, **dd)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan_out Kaiming normal, as torchvision's VGG that the PrAC code builds on.
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Conv stack; returns the unpooled feature map."""
        return self.features(x)


def _create_cifar_vgg(variant: str, pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    refuse_pretrained(variant, pretrained)
    # features_only must look inside the `features` Sequential to find the per-resolution taps, and there is
    # one tap per max-pool plus the final map rather than timm's default five.
    layer_cfg = list(kwargs["layer_cfg"])
    num_levels = layer_cfg.count("M") + (layer_cfg[-1] != "M")
    feature_cfg = dict(flatten_sequential=True, out_indices=tuple(range(num_levels)))
    return build_model_with_cfg(CifarVGG, variant, pretrained, feature_cfg=feature_cfg, **kwargs)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return paper_cfg("features.0", "classifier", **{"pool_size": (2, 2), **kwargs})


# Must exist before the @register_model functions run: register_model reads it from this module.
default_cfgs = generate_default_cfgs({
    "cifar_vgg16_bn": _cfg(),
    "cifar_vgg19_bn": _cfg(),
})


@register_model
def cifar_vgg16_bn(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-16 with batch norm for CIFAR, four max-pools, ~14.7M parameters."""
    model_args = dict(layer_cfg=VGG_CFGS["vgg16"])
    return _create_cifar_vgg("cifar_vgg16_bn", pretrained, **dict(model_args, **kwargs))


@register_model
def cifar_vgg19_bn(pretrained: bool = False, **kwargs: Any) -> CifarVGG:
    """VGG-19 with batch norm for CIFAR, four max-pools, ~20.0M parameters."""
    model_args = dict(layer_cfg=VGG_CFGS["vgg19"])
    return _create_cifar_vgg("cifar_vgg19_bn", pretrained, **dict(model_args, **kwargs))
