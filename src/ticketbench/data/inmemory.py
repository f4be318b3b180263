"""Datasets held entirely in memory as one tensor, with augmentation done by hand in torch.

Two ways to read them: per item (``dataset[i]``, for DataLoader and tests) and per batch
(:meth:`TensorIndexedDataset.batch`), which gathers, augments and normalises a whole batch on the
device that holds the images. The training loop uses the batch path: one gather per step instead
of one Python call per sample, and on a GPU no host round trip at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
        # Device copies of the base set and normalisation constants, shared by every view (subset, with_augment).
        self._on_device: dict[str, tuple[Tensor, Tensor]] = {}
        self._norm: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def pad(self) -> int:
        return self._pad

    @property
    def flip(self) -> bool:
        return self._flip

    def device_store(self, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """(images, labels) of the base set on ``device``, copied there on first use.

        The images come zero-padded by ``pad`` on each side, so a translated crop is a plain gather, with no
        bounds to test per pixel.
        """
        key = str(torch.device(device))
        if key not in self._on_device:
            p = self._pad
            images = F.pad(self._images, (p, p, p, p)) if p > 0 else self._images
            self._on_device[key] = (images.to(device), self._labels.to(device))
        return self._on_device[key]

    def batch(self, sids: Tensor, *, shifts: Tensor | None = None, flips: Tensor | None = None) -> Tensor:
        """Normalised images of base samples ``sids`` (on the device of ``sids``), augmented as given.

        Args:
            sids: ``[B]`` stable ids, on the device where the batch is wanted.
            shifts: ``[B, 2]`` integer (dy, dx) translations in ``[-pad, pad]``, or None for none.
            flips: ``[B]`` bool, mirror horizontally after translating, or None for none.

        The result equals stacking ``_load`` with the same offsets (up to float rounding: the scale folds into
        the normalisation here): translating fills with zeros, like padding by ``pad`` and cropping.
        """
        images, _ = self.device_store(sids.device)
        x = images.index_select(0, sids)
        p, (h, w) = self._pad, self._images.shape[-2:]
        if shifts is not None or flips is not None:
            x = _translate_flip(x, p, h, w, shifts, flips)
        elif p > 0:
            x = x[:, :, p:p + h, p:p + w]
        key = str(sids.device)
        if key not in self._norm:
            # (x * scale - mean) / std == (x - mean / scale) / (std / scale): one subtraction, one division.
            self._norm[key] = ((self._mean / self._scale).to(sids.device), (self._std / self._scale).to(sids.device))
        shift, div = self._norm[key]
        x = x.to(torch.float32)
        # ``x`` is a fresh copy (index_select above), so it can be normalised in place unless grey gets replicated.
        x = x.sub_(shift) if x.shape[1] == self.info.in_chans else x.expand(-1, self.info.in_chans, -1, -1) - shift
        return x.div_(div)

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


def _translate_flip(x: Tensor, pad: int, h: int, w: int, shifts: Tensor | None, flips: Tensor | None) -> Tensor:
    """Crops ``[B, C, h, w]`` of zero-padded images ``x`` ``[B, C, h + 2 pad, w + 2 pad]``, translated by ``shifts``
    (dy, dx) and then mirrored where ``flips``, as one gather."""
    b, c = x.shape[:2]
    wp = w + 2 * pad
    dev = x.device
    rows = torch.arange(h, device=dev).expand(b, h) + pad
    cols = torch.arange(w, device=dev).expand(b, w)
    if flips is not None:
        # A flip after the shift reads column w-1-j of the shifted image.
        cols = torch.where(flips.unsqueeze(1), (w - 1) - cols, cols)
    cols = cols + pad
    if shifts is not None:
        rows = rows + shifts[:, :1]
        cols = cols + shifts[:, 1:]
    flat = (rows.unsqueeze(2) * wp + cols.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, -1).gather(2, flat).view(b, c, h, w)
