"""Latency measurement that compares against a baseline measured in the same run.

Absolute times on shared CI machines drift by tens of percent; the ratio of two functions timed
in alternation (A, B, A, B, ...) cancels most of that drift, so every target is a ratio.
"""

from __future__ import annotations

import ctypes
import math
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import stats


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


def _alternate(base: Callable[[], object], test: Callable[[], object], rounds: int, tb: list[float],
               tt: list[float], device, clock: Callable[[], float]) -> None:
    """``rounds`` more timed calls of each, appended to ``tb`` and ``tt``; which one goes first alternates (over all
    rounds so far) so that neither always runs on a warmer cache."""
    for _ in range(rounds):
        order = ((base, tb), (test, tt)) if len(tb) % 2 == 0 else ((test, tt), (base, tb))
        for fn, sink in order:
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            sink.append(clock() - t0)


def paired(base: Callable[[], object], test: Callable[[], object], *, rounds: int = 20, warmup: int = 3,
           device: torch.device | str | None = None) -> PairedTiming:
    """Median time of ``base`` and ``test``, called alternately so both see the same machine state."""
    for _ in range(warmup):
        base(), test()
    _sync(device)
    tb: list[float] = []
    tt: list[float] = []
    _alternate(base, test, rounds, tb, tt, device, time.perf_counter)
    return PairedTiming(statistics.median(tb), statistics.median(tt), rounds)


TIGHT, NOISY = "tight", "noisy"


@dataclass(frozen=True)
class TimedRatio:
    """Paired timing with a 95% interval of the time ratio test/base, timed until that interval is tight."""

    base_s: float  # median seconds per call of the baseline
    test_s: float  # median seconds per call of the function under test
    rounds: int
    ratio: float  # median of the per-round ratios test/base: each round's pair shares the machine's state
    ratio_low: float  # nan when too few rounds ran for an interval
    ratio_high: float
    verdict: str  # TIGHT: the interval is narrower than asked; NOISY: a limit stopped timing first

    @property
    def saving(self) -> float:
        return 1.0 - self.ratio

    @property
    def saving_low(self) -> float:
        return 1.0 - self.ratio_high

    @property
    def saving_high(self) -> float:
        return 1.0 - self.ratio_low


def ratio_interval(ratios: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median ratio, from order statistics (scipy's quantile test).

    The median, as ``paired`` reports, because a stall of the machine (another process, a page-fault storm) puts
    an outlier in a timing series that would widen a t-interval of the mean and move its centre; order statistics
    need no normality, cover at least ``level`` exactly, and cost one binomial quantile, so they can be recomputed
    after every batch. Fewer than 6 rounds give no 95% interval: (nan, nan).
    """
    ci = stats.quantile_test(np.asarray(ratios, dtype=float), p=0.5).confidence_interval(level)
    return float(ci.low), float(ci.high)


def paired_until_tight(base: Callable[[], object], test: Callable[[], object], *, rounds: int = 10,
                       max_rounds: int = 200, max_seconds: float = 30.0, width: float = 0.05, warmup: int = 2,
                       device: torch.device | str | None = None,
                       clock: Callable[[], float] = time.perf_counter) -> TimedRatio:
    """``base`` and ``test`` called alternately, in batches of ``rounds``, until the 95% interval of the ratio
    test/base is narrower than ``width`` (5 points of time saving by default), or ``max_rounds`` rounds or
    ``max_seconds`` (warm-up included) have run, in which case the verdict is NOISY."""
    if rounds < 1 or max_rounds < 1:
        raise ValueError(f"paired_until_tight needs a round per batch and in all, got {rounds}, {max_rounds}")
    start = clock()
    for _ in range(warmup):
        base(), test()
    _sync(device)
    tb: list[float] = []
    tt: list[float] = []
    while True:
        _alternate(base, test, min(rounds, max_rounds - len(tb)), tb, tt, device, clock)
        ratios = [t / b for b, t in zip(tb, tt)]
        lo, hi = ratio_interval(ratios)
        tight = hi - lo < width  # False while nan
        if tight or len(tb) >= max_rounds or clock() - start >= max_seconds:
            break
    return TimedRatio(statistics.median(tb), statistics.median(tt), len(tb), statistics.median(ratios), lo, hi,
                      TIGHT if tight else NOISY)


def saving_metrics(t: TimedRatio) -> dict:
    """The metrics.json keys of a timed saving; an interval that could not be formed is None (JSON has no nan)."""
    def num(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {"time_saving": t.saving, "time_saving_low": num(t.saving_low), "time_saving_high": num(t.saving_high),
            "timing_rounds_used": t.rounds, "timing_verdict": t.verdict}


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


def for_inference(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """Eval mode and channels-last memory, the layout oneDNN and cuDNN run fastest.

    Applied to the dense baseline and to every sparse variant alike. In NCHW the CPU kernels reorder every
    activation on the way in and out; that fixed cost does not shrink with the channel count, and it hid a
    third of the slimmed models' gain (VGG-16 at 60% channel sparsity: 78 ms NCHW vs 51 ms channels-last).
    """
    return model.eval().to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)


def layer_inputs(model: torch.nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The input each named module receives in one forward pass (for per-layer timing)."""
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    hooks = [modules[n].register_forward_pre_hook(lambda m, args, n=n: seen.setdefault(n, args[0].detach()))
             for n in names if n in modules]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def per_layer(dense: torch.nn.Module, variants: dict[str, torch.nn.Module], x: torch.Tensor, *,
              rounds: int = 10) -> list[dict]:
    """Each conv of ``dense`` against the module of the same name in every variant, on its real input.

    A slimmed variant's layer gets its own (narrower) real input, so both sides see what they would
    see inside the full forward pass.
    """
    names = [n for n, m in dense.named_modules() if isinstance(m, torch.nn.Conv2d)]
    dense_in = layer_inputs(dense, x, names)
    var_in = {k: layer_inputs(v, x, names) for k, v in variants.items()}
    rows = []
    for n in names:
        if n not in dense_in:
            continue
        base = dict(dense.named_modules())[n]
        row = {"layer": n, "in_channels": base.in_channels, "out_channels": base.out_channels}
        for k, model in variants.items():
            mod = dict(model.named_modules()).get(n)
            if mod is None or n not in var_in[k]:
                continue
            xi, xv = dense_in[n], var_in[k][n]
            with torch.inference_mode():
                t = paired(lambda: base(xi), lambda: mod(xv), rounds=rounds, warmup=2)
            row.update({"dense_ms": t.base_s * 1e3, f"{k}_ms": t.test_s * 1e3, f"{k}_speedup": 1 / t.ratio})
        rows.append(row)
    return rows
