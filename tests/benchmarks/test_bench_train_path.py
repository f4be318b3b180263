"""The training path against the one it replaced, timed in the same run (issue 12).

- Data path alone: batches gathered and augmented on the device (``DeviceBatches``) against the per-sample
  DataLoader path, CIFAR-shaped uint8 images with pad-4 crops and flips. Target: >= 10x the images/s.
- Training step of cifar_resnet20, batch 128, one thread, against the fp32 NCHW step: <= 0.8x with fp32 +
  channels-last, <= 0.55x with bf16 + channels-last where the CPU has native bf16 (AVX512-BF16 or AMX). The
  step's FLOPs are counted and set against the same run's measured GEMM rate in the same precision.

`make bench` runs these with timing on and enforces the targets; `make test` runs each once as a smoke test.
"""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ticketbench.data import DatasetInfo, DeviceBatches, make_loader
from ticketbench.data.inmemory import TensorIndexedDataset
from ticketbench.models import create_model
from ticketbench.timing import paired
from ticketbench.train import autocast, memory_format

DATA_TARGET = 10.0
CL_TARGET = 0.80
BF16_TARGET = 0.55
GEMM_FRACTION_AIM = 0.50


def enforce() -> bool:
    return os.environ.get("TICKETBENCH_BENCH_ENFORCE", "1") == "1"


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (else autocast emulates it and is slower than fp32)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cifar_like(n: int) -> TensorIndexedDataset:
    info = DatasetInfo("cifar-like", 10, 3, 32, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)
    return TensorIndexedDataset(info, images, labels, scale=1 / 255, pad=4, flip=True, augment=True)


@pytest.mark.benchmark(group="train-path")
def test_device_batches_vs_per_sample_loader(benchmark):
    enabled = not benchmark.disabled
    ds = cifar_like(4096 if enabled else 256)
    old = make_loader(ds, 128, shuffle=True, seed=0)
    new = DeviceBatches(ds, 128, shuffle=True, seed=0)

    def epoch(batches):
        return lambda: sum(len(x) for x, _, _ in batches)

    t = paired(epoch(old), epoch(new), rounds=5 if enabled else 1, warmup=1)
    speedup = 1 / t.ratio
    benchmark.extra_info.update(old_images_per_s=len(ds) / t.base_s, new_images_per_s=len(ds) / t.test_s,
                                speedup=speedup, target=DATA_TARGET)
    benchmark.pedantic(epoch(new), rounds=3 if enabled else 1)
    if enabled and enforce():
        assert speedup >= DATA_TARGET, f"device batches are {speedup:.1f}x the per-sample loader, target {DATA_TARGET}x"


def _step(precision: str, layout: str, *, compile: bool = False, batch: int = 128):
    """One SGD training step of cifar_resnet20 under ``precision``/``layout``, and its (x, y)."""
    torch.manual_seed(0)
    fmt = memory_format(layout)
    model = create_model("cifar_resnet20", num_classes=10).to(memory_format=fmt).train()
    forward = torch.compile(model) if compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    device = torch.device("cpu")

    def step():
        with autocast(device, precision):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_flops(batch: int = 128) -> int:
    """FLOPs of one training step (forward and backward convolutions and matmuls), counted by torch."""
    step = _step("fp32", "contiguous", batch=batch)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def gemm_rate(dtype: torch.dtype, n: int = 2048, reps: int = 3) -> float:
    """FLOP/s of an n x n matrix product in ``dtype`` on this thread (best of ``reps``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


VARIANTS = {  # name: (precision, layout, compile, target ratio against fp32 NCHW)
    "fp32-channels_last": ("fp32", "channels_last", False, CL_TARGET),
    "bf16-channels_last": ("bf16", "channels_last", False, BF16_TARGET),
    "bf16-channels_last-compiled": ("bf16", "channels_last", True, None),
}


@pytest.mark.benchmark(group="train-path")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_training_step_vs_fp32_nchw(benchmark, variant):
    precision, layout, compiled, target = VARIANTS[variant]
    enabled = not benchmark.disabled
    if compiled and not enabled:
        pytest.skip("compiling takes minutes; timed only under `make bench`")
    if precision == "bf16" and not native_bf16():
        target = None  # emulated bf16 is no faster; recorded, not enforced
    batch = 128 if enabled else 8
    base, test = _step("fp32", "contiguous", batch=batch), _step(precision, layout, compile=compiled, batch=batch)
    t = paired(base, test, rounds=15 if enabled else 1, warmup=3 if compiled else 2 if enabled else 0)
    flops = step_flops(batch)
    rate = gemm_rate(torch.bfloat16 if precision == "bf16" else torch.float32, n=2048 if enabled else 256)
    fraction = flops / t.test_s / rate
    benchmark.extra_info.update(ratio=t.ratio, target=target, fp32_nchw_ms=t.base_s * 1e3, step_ms=t.test_s * 1e3,
                                step_gflop=flops / 1e9, gemm_gflops=rate / 1e9, gemm_fraction=fraction,
                                gemm_fraction_aim=GEMM_FRACTION_AIM, native_bf16=native_bf16(),
                                threads=torch.get_num_threads())
    benchmark.pedantic(test, rounds=5 if enabled else 1)
    if enabled and enforce() and target is not None:
        assert t.ratio <= target, f"{variant} step is {t.ratio:.3f}x the fp32 NCHW step, target {target}x"
