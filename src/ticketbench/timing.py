"""Latency measurement that compares against a baseline measured in the same run.

Absolute times on shared CI machines drift by tens of percent; the ratio of two functions timed
in alternation (A, B, A, B, ...) cancels most of that drift, so every target is a ratio.
"""

from __future__ import annotations

import ctypes
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class PairedTiming:
    base_s: float  # median seconds per call of the baseline
    test_s: float  # median seconds per call of the function under test
    rounds: int

    @property
    def ratio(self) -> float:
        return self.test_s / self.base_s

    @property
    def saving(self) -> float:
        """Time saving 1 - T/T_base, as the Structure-LTH paper reports it."""
        return 1.0 - self.ratio


def paired(base: Callable[[], object], test: Callable[[], object], *, rounds: int = 20, warmup: int = 3,
           device: torch.device | str | None = None) -> PairedTiming:
    """Median time of ``base`` and ``test``, called alternately so both see the same machine state."""
    for _ in range(warmup):
        base(), test()
    _sync(device)
    tb, tt = [], []
    for i in range(rounds):
        # Alternate which one goes first so neither always runs on a warmer cache.
        order = ((base, tb), (test, tt)) if i % 2 == 0 else ((test, tt), (base, tb))
        for fn, sink in order:
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            sink.append(time.perf_counter() - t0)
    return PairedTiming(statistics.median(tb), statistics.median(tt), rounds)


def tune_allocator() -> None:
    """Ask glibc to keep freed memory instead of returning it to the OS after every call.

    With the default thresholds every large activation is a fresh mmap: on the 2-core VMs this
    suite targets that costs about 11k page faults per forward pass, inflating and destabilising
    the times of dense and sparse models alike (roughly what jemalloc or tcmalloc would avoid).
    Applied to every stage and benchmark, so all models are timed under the same allocator.
    """
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below 32 MiB come from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: give the heap back only above 1 GiB free
