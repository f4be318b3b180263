"""Inputs both sides of a conformance test compute the same way, bit for bit, on any CPU.

The drivers that run the released code (``drivers/``, run outside this project) and the tests that run ours import
this module, so a fixture stores the seeds of its inputs rather than megabytes of weights. Values come from an
integer hash (SplitMix64) of (seed, layer index, element index), so no random-number stream, library version or
vector path can change them; every value is an exact float32 (a multiple of 2**-20 in (-1, 1)).

No torch here: numpy only, so a driver can use it beside any released code's torch.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def uniform_ints(seed: int, stream: int, n: int) -> np.ndarray:
    """``n`` uint64 hashes of (seed, stream, 0..n-1)."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed) * _GOLD + np.uint64(stream + 1))
        return _mix(base + np.arange(n, dtype=np.uint64) * _GOLD)


def values(seed: int, stream: int, shape: Sequence[int], levels: int | None = None, scale: float = 1.0) -> np.ndarray:
    """float32 array of ``shape`` in (-scale, scale): 2**20 levels, or ``levels`` levels (for ties) if given."""
    n = int(np.prod(shape)) if len(shape) else 1
    h = uniform_ints(seed, stream, n)
    if levels is None:
        k = (h >> np.uint64(44)).astype(np.int64) - (1 << 19)  # 20 bits, centred
        v = k.astype(np.float64) / (1 << 20) * 2
    else:
        k = (h % np.uint64(levels)).astype(np.int64)
        v = (k + 0.5) / levels * 2 - 1
    return (v * scale).astype(np.float32).reshape(tuple(shape))


def weights(seed: int, shapes: Mapping[str, Sequence[int]], levels: int | None = None) -> dict[str, np.ndarray]:
    """One tensor per name, in the mapping's order; layer i is stream i, scaled by 1/sqrt(fan-in) like an init."""
    out = {}
    for i, (name, shape) in enumerate(shapes.items()):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        out[name] = values(seed, i, shape, levels, scale=float(1 / np.sqrt(fan_in)))
    return out


def labels(seed: int, stream: int, n: int, classes: int) -> np.ndarray:
    return (uniform_ints(seed, stream, n) % np.uint64(classes)).astype(np.int64)


def digest(mask: np.ndarray) -> dict:
    """A mask's kept count and the sha256 of its packed bits (C order), for fixtures of large layers."""
    bits = np.packbits(np.asarray(mask, dtype=bool).reshape(-1))
    return {"shape": list(np.shape(mask)), "kept": int(np.count_nonzero(mask)),
            "sha256": hashlib.sha256(bits.tobytes()).hexdigest()}


def digests(masks: Mapping[str, np.ndarray]) -> dict[str, dict]:
    return {n: digest(m) for n, m in masks.items()}
