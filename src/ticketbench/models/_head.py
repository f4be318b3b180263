"""What the papers' CIFAR networks share: timm's classifier surface and the refusal of pretrained weights."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from timm.layers import create_classifier, get_device_dtype

from ..errors import ConfigError


class ClassifierHead:
    """Mixin for a net with ``global_pool``, ``drop_rate``, ``num_features`` and a classifier named ``head_name``.

    Gives every paper network the surface timm's generic code expects (``get_classifier``,
    ``reset_classifier``, ``forward_head``, ``forward``); the net itself only defines ``forward_features``.
    """

    head_name = "fc"

    @torch.jit.ignore
    def get_classifier(self, name_only: bool = False):
        """Return the classifier module (or its name with ``name_only=True``)."""
        return self.head_name if name_only else getattr(self, self.head_name)

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the classifier with a freshly initialised one (``num_classes=0`` removes it)."""
        dd = get_device_dtype(self)
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, head = create_classifier(self.num_features, num_classes, pool_type=global_pool, **dd)
        setattr(self, self.head_name, head)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
        self.global_pool.train(self.training)
        head.train(self.training)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and classify it (or return the pooled features with ``pre_logits=True``)."""
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else getattr(self, self.head_name)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def paper_cfg(first_conv: str, classifier: str, **kwargs) -> dict:
    """timm pretrained_cfg of a paper network. No url/hf_hub_id: nothing can be downloaded, so timm lists
    none of these as pretrained, but ``first_conv``/``classifier`` still name the stem and the head."""
    return {"num_classes": 10, "input_size": (3, 32, 32), "crop_pct": 1.0, "interpolation": "bilinear",
            "mean": CIFAR10_MEAN, "std": CIFAR10_STD, "first_conv": first_conv, "classifier": classifier, **kwargs}


def refuse_pretrained(variant: str, pretrained: bool) -> None:
    """No paper network has published weights; say so before timm's loader fails with a generic error."""
    if pretrained:
        raise ConfigError("pretrained", True, f"{variant} has no pretrained weights; use pretrained=False "
                          "(load a checkpoint with checkpoint_path=)")
