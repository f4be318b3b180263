"""Block-sparse (IMP-Regroup) conv vs dense conv on CIFAR-sized layers (target: >= 1.5x faster), same run.

The layer's mask is planted as row groups that each keep whole input channels (plus a little noise), then
regrouped with KaHyPar, so the blocks timed are the ones :func:`regroup` really produces. `make test` runs each
case once as a smoke test; with timing enabled the speedup target is enforced unless
TICKETBENCH_BENCH_ENFORCE=0. Timing runs on one thread so the ratio does not depend on the core count.

The two threshold sweeps measure what this device wants for ``structure.blocksparse_min_macs`` and
``structure.blocksparse_max_work`` and print them as config lines (``make bench``); the pipeline never times to
choose, it reads the stored values.

With glibc's default malloc the heap goes back to the OS after every call (~12k page faults per 64->64 @32x32
conv, doubling the dense time and making the ratio swing between 1.2x and 2.8x); benchmarks/conftest.py applies
:func:`ticketbench.timing.tune_allocator`, as every CLI stage does, so both sides are timed without that.
"""

import math
import os

import pytest
import torch
from torch import nn

from ticketbench.methods.structure.blocksparse import BlockSparseConv2d
from ticketbench.masks import Mask
from ticketbench.methods.structure.regroup import Block, regroup
from ticketbench.methods.structure.stage import StructureHparams, regroup_with
from ticketbench.timing import paired

TARGET = 1.5
BATCH = 64
#: (channels, size) of 3x3 convs: the CIFAR ResNet-20 stages, then the wider CIFAR ResNet-18 / VGG stages.
SHAPES = [(16, 32), (32, 16), (64, 8), (64, 32), (128, 16), (256, 8)]
#: Gathered-work fractions of the max_work sweep (whole input channels per 32-row block).
WORKS = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875]
#: A layer should run block-sparse only where the per-block path is at least this much faster.
FLOOR = 1.0


def _planted_mask(channels: int, keep: float = 0.3, noise: float = 0.002, seed: int = 0,
                  rows_per_group: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(channels, channels, 3, 3, generator=g) < noise
    for rows in torch.randperm(channels, generator=g).chunk(max(1, channels // rows_per_group)):
        kept = torch.randperm(channels, generator=g)[: int(keep * channels)]
        mask[rows[:, None], kept[None]] = True
    return mask


def _speedup(channels: int, size: int, blocks, enabled: bool) -> tuple[float, BlockSparseConv2d]:
    """Dense conv time / per-block path time on one layer, the per-block path forced whatever the thresholds say."""
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    sparse = BlockSparseConv2d.from_conv(conv, blocks, max_work=math.inf, min_macs=0)
    x = torch.randn(BATCH if enabled else 4, channels, size, size)
    with torch.inference_mode():
        t = paired(lambda: conv(x), lambda: sparse(x), rounds=20 if enabled else 1, warmup=2 if enabled else 0)
    return t.base_s / t.test_s, sparse


def _report(capsys, lines: list[str], enabled: bool) -> None:
    if enabled:  # a smoke run's one tiny call per case measures nothing worth storing
        with capsys.disabled():
            print("\n" + "\n".join(lines))


@pytest.mark.benchmark(group="blocksparse-conv")
@pytest.mark.parametrize("channels,size", [(64, 32), (128, 16), (256, 8)])
def test_blocksparse_conv_speedup(benchmark, channels, size):
    torch.manual_seed(0)
    res = regroup(Mask({"weight": _planted_mask(channels)}), parts=channels // 32, row_threshold=15, granularity=32)
    assert not res.fallback
    group_sparsity = res.group_sparsity()["weight"]
    assert group_sparsity >= 0.8
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=True)
    with torch.no_grad():
        conv.weight.mul_(res.mask["weight"])  # the dense baseline computes the same masked conv
    sparse = BlockSparseConv2d.from_conv(conv, res.blocks["weight"])
    assert not sparse.dense
    x = torch.randn(BATCH, channels, size, size)

    def dense_fn():
        with torch.inference_mode():
            return conv(x)

    def sparse_fn():
        with torch.inference_mode():
            return sparse(x)

    assert (dense_fn() - sparse_fn()).abs().max() <= 1e-4
    enabled = not benchmark.disabled
    t = paired(dense_fn, sparse_fn, rounds=30 if enabled else 2, warmup=3 if enabled else 1)
    speedup = t.base_s / t.test_s
    benchmark.extra_info.update(dense_s=t.base_s, blocksparse_s=t.test_s, speedup=speedup,
                                group_sparsity=group_sparsity, work=sparse.work, blocks=sparse.num_blocks,
                                threads=torch.get_num_threads(), target=TARGET)
    benchmark.pedantic(sparse_fn, rounds=10 if enabled else 1, warmup_rounds=1 if enabled else 0)
    if enabled and os.environ.get("TICKETBENCH_BENCH_ENFORCE", "1") != "0":
        assert speedup >= TARGET, f"block-sparse speedup {speedup:.2f}x < {TARGET}x"


def suggest_min_macs(measured: list[tuple[int, float]]) -> int:
    """The smallest size s (multiply-adds per output position) such that every measured layer of size >= s
    reached FLOOR; one more than the largest size if that one failed, i.e. no measured layer runs block-sparse."""
    suggestion = None
    for macs in sorted({m for m, _ in measured}, reverse=True):
        if all(speedup >= FLOOR for m, speedup in measured if m == macs):
            suggestion = macs
        else:
            break
    return suggestion if suggestion is not None else max(m for m, _ in measured) + 1


def suggest_max_work(measured: list[tuple[float, float]]) -> float:
    """Largest gathered-work fraction up to which every measured layer reached FLOOR (0: none did)."""
    best = 0.0
    for work, speedup in sorted(measured):
        if speedup < FLOOR:
            break
        best = work
    return round(best, 2)


def test_suggestions_follow_the_measurements():
    assert suggest_min_macs([(2304, 0.8), (9216, 1.1), (36864, 2.0), (36864, 1.6), (147456, 3.0)]) == 9216
    assert suggest_min_macs([(2304, 1.2), (9216, 0.9), (36864, 2.0)]) == 36864  # one slow size sets the bar
    assert suggest_min_macs([(2304, 0.5), (36864, 0.9)]) == 36865
    assert suggest_max_work([(0.31, 2.5), (0.47, 1.6), (0.56, 1.1), (0.66, 0.9), (0.8, 0.7)]) == 0.56
    assert suggest_max_work([(0.3, 0.9)]) == 0.0


@pytest.mark.benchmark(group="blocksparse-thresholds")
def test_blocksparse_min_macs_for_this_device(benchmark, capsys):
    """Per layer shape, blocks as the default (adaptive) regroup makes them from 16-row groups that keep 30% of
    the input channels: the gathered work stays at 0.2-0.3 and only the layer size varies."""
    enabled = not benchmark.disabled
    measured, lines, largest = [], [], None
    for channels, size in SHAPES:
        res = regroup_with(StructureHparams(method="regroup"),
                           Mask({"w.weight": _planted_mask(channels, rows_per_group=16)}), seed=0)
        assert res.blocks["w.weight"], (channels, size)
        speedup, largest = _speedup(channels, size, res.blocks["w.weight"], enabled)
        measured.append((largest.macs, speedup))
        lines.append(f"  {channels:>3}->{channels:<3} 3x3 @{size}x{size}: macs/position {largest.macs:>6}, "
                     f"work {largest.work:.2f}, speedup {speedup:.2f}x")
    suggestion = suggest_min_macs(measured)
    benchmark.extra_info.update(suggested_min_macs=suggestion, threads=torch.get_num_threads(), floor=FLOOR,
                                speedups={f"{c}@{s}": v for (c, s), (_, v) in zip(SHAPES, measured)})
    x = torch.randn(BATCH if enabled else 4, SHAPES[-1][0], SHAPES[-1][1], SHAPES[-1][1])
    with torch.inference_mode():
        benchmark.pedantic(lambda: largest(x), rounds=5 if enabled else 1, warmup_rounds=1 if enabled else 0)
    _report(capsys, ["block-sparse vs dense per layer size (one thread):", *lines,
                     f"structure.blocksparse_min_macs: {suggestion}"], enabled)
    assert suggestion in {m for m, _ in measured} | {max(m for m, _ in measured) + 1}


@pytest.mark.benchmark(group="blocksparse-thresholds")
def test_blocksparse_max_work_for_this_device(benchmark, capsys):
    """One 64->64 layer at 32x32 (the default min_macs size), two 32-row blocks gathering more and more channels.

    Blocks are built directly: regroup's column rule keeps only ~60% of a group's columns, so planted masks
    never reach a gathered work above ~0.5."""
    enabled = not benchmark.disabled
    channels, size, taps = 64, 32, 9
    g = torch.Generator().manual_seed(0)
    measured, lines, sparse = [], [], None
    for work in WORKS:
        blocks = []
        for rows in torch.randperm(channels, generator=g).chunk(2):
            kept = torch.randperm(channels, generator=g)[: round(work * channels)]
            blocks.append(Block(rows, (kept[:, None] * taps + torch.arange(taps)).flatten()))
        speedup, sparse = _speedup(channels, size, blocks, enabled)
        measured.append((sparse.work, speedup))
        lines.append(f"  work {sparse.work:.3f}: speedup {speedup:.2f}x")
    suggestion = suggest_max_work(measured)
    benchmark.extra_info.update(suggested_max_work=suggestion, threads=torch.get_num_threads(), floor=FLOOR,
                                speedups={f"{w:.3f}": v for w, v in measured})
    x = torch.randn(BATCH if enabled else 4, channels, size, size)
    with torch.inference_mode():
        benchmark.pedantic(lambda: sparse(x), rounds=5 if enabled else 1, warmup_rounds=1 if enabled else 0)
    _report(capsys, [f"block-sparse vs dense by gathered work, {channels}->{channels} 3x3 @{size}x{size} (one thread):",
                     *lines, f"structure.blocksparse_max_work: {suggestion}"], enabled)
    assert 0.0 <= suggestion <= 1.0
