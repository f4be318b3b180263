"""Datasets held entirely in memory as one tensor, with augmentation done by hand in torch."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import DatasetInfo, IndexedDataset


def random_translate(img: Tensor, pad: int) -> Tensor:
    """Shift ``img`` ``[C, H, W]`` by up to ``pad`` pixels each way, filling with zeros.

    This equals zero-padding by ``pad`` and taking a random crop of the original size, without building the
    padded image. Offsets come from torch's global RNG so seeded runs repeat exactly.
    """
    if pad <= 0:
        return img
    dy, dx = (torch.randint(0, 2 * pad + 1, (2,)) - pad).tolist()
    if dy == 0 and dx == 0:
        return img
    _, h, w = img.shape
    out = torch.zeros_like(img)
    # out[y, x] = img[y + dy, x + dx] wherever the source pixel exists.
    out[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        img[:, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
    return out


class TensorIndexedDataset(IndexedDataset):
    """Base set stored as one tensor of raw images; normalisation happens per item.

    Args:
        info: Facts about the dataset; ``mean``/``std`` have ``info.in_chans`` entries.
        images: ``[N, c, H, W]`` raw images, ``c`` either ``info.in_chans`` or 1 (replicated on access, which
            saves memory for grey images shown to RGB models). uint8 or float.
        labels: ``[N]`` class labels.
        scale: Factor taking raw values to [0, 1] pixel units (1/255 for uint8) before normalisation.
        pad: Maximum translation in pixels when augmenting; 0 disables it.
        flip: Whether augmentation also flips horizontally with probability 1/2.
        augment: Initial augmentation setting.
    """

    def __init__(self, info: DatasetInfo, images: Tensor, labels: Tensor, *, scale: float = 1.0, pad: int = 0,
                 flip: bool = False, augment: bool = False):
        super().__init__(info, labels, augment=augment)
        if images.ndim != 4 or len(images) != self.base_size or images.shape[1] not in (1, info.in_chans):
            raise ValueError(f"images of shape {tuple(images.shape)} do not fit {self.base_size} labels and {info}")
        self._images = images
        self._scale = float(scale)
        self._pad = int(pad)
        self._flip = bool(flip)
        self._mean = torch.tensor(info.mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(info.std, dtype=torch.float32).view(-1, 1, 1)

    def _load(self, sid: int, augment: bool) -> Tensor:
        img = self._images[sid]
        if augment:
            img = random_translate(img, self._pad)
            if self._flip and bool(torch.rand(()) < 0.5):
                img = img.flip(-1)
        x = img.to(torch.float32)
        if self._scale != 1.0:
            x = x * self._scale
        # The subtraction allocates a fresh tensor, so callers never alias the stored base set.
        return (x.expand(self.info.in_chans, -1, -1) - self._mean) / self._std
