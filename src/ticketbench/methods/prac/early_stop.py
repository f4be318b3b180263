"""PrAC's early stop (the paper's Early-Bird-style rule): a round ends once the mask it would prune next has
stopped moving. It is active in every round, round 0 (the dense run) included."""

from __future__ import annotations

import struct
from collections import deque
from typing import Sequence

from ...masks import Mask, magnitude_prune
from ...train import EpochContext

def _float32(x: float) -> float:
    """``x`` rounded to the nearest float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


class EarlyStop:
    """The PrAC paper's early stop: the would-be mask has converged.

    Distances are recorded only once one has exceeded ``eps`` (the first epochs after rewinding
    barely move the weights); training stops when the last ``patience`` recorded distances are
    all below ``eps``. The queue starts full of 1s, so at least ``patience`` recorded epochs pass.
    Distances and ``eps`` are compared as float32, as the released code compares its float32 tensors: a distance
    within float32 rounding of eps decides as it does there (tests/conformance/test_prac.py).
    """

    def __init__(self, eps: float = 0.07, patience: int = 5):
        self.eps = _float32(eps)
        self.queue: deque[float] = deque([1.0] * patience, maxlen=patience)
        self.recording = False
        self.history: list[float] = []

    def update(self, distance: float) -> bool:
        self.history.append(distance)
        distance = _float32(distance)
        if distance > self.eps:
            self.recording = True
        if self.recording:
            self.queue.append(distance)
        return self.recording and max(self.queue) < self.eps


class MaskConvergence:
    """Callback: the normalised Hamming distance between consecutive epochs' would-be masks feeds EarlyStop."""

    def __init__(self, mask: Mask, *, weights_of: Sequence[str], rate: float, eps: float, patience: int):
        self.mask, self.names, self.rate = mask, list(weights_of), rate
        self.norm = max(1, mask.kept)  # weights alive at the start of the round, as the paper normalises
        self.stop = EarlyStop(eps, patience)
        self.prev: Mask | None = None

    def __call__(self, ctx: EpochContext) -> bool:
        params = dict(ctx.model.named_parameters())
        would = magnitude_prune({n: params[n].detach().cpu() for n in self.names}, self.rate, self.mask)
        stop = False
        if self.prev is not None:
            dist = sum(int((would[n] ^ self.prev[n]).sum()) for n in self.names) / self.norm
            ctx.record["mask_distance"] = dist
            stop = self.stop.update(dist)
        self.prev = would
        return stop


def can_stop_early(epochs: int, patience: int) -> bool:
    """Whether EarlyStop can fire within ``epochs``: distances start at epoch 2, the first recorded one exceeds eps,
    and ``patience`` more must follow it."""
    return epochs >= patience + 2
