"""Refill-slimmed vs dense latency (target: latency fraction <= 1.25 x FLOPs fraction at >= 50% channel sparsity)."""

import os

import pytest
import torch

from ticketbench.methods.refill import channel_sparsity
from ticketbench.slim import macs, slim
from ticketbench.timing import paired

from methods.test_refill_slim import _refilled

TARGET = 1.25


@pytest.mark.benchmark(group="slim")
@pytest.mark.parametrize("name", ["cifar_resnet20", "test_resnet", "cifar_vgg16_bn"])
def test_slimmed_latency_tracks_flops(benchmark, name):
    model, masks, example = _refilled(name, fraction=0.6)
    small, _ = slim(model, example)
    flops_fraction = macs(small, example) / macs(model, example)
    x = torch.randn(64, 3, 32, 32)
    enabled = not benchmark.disabled
    with torch.inference_mode():
        t = paired(lambda: model(x), lambda: small(x), rounds=15 if enabled else 1, warmup=2 if enabled else 0)
        benchmark.pedantic(lambda: small(x), rounds=5 if enabled else 1)
    ratio = t.ratio / flops_fraction
    benchmark.extra_info.update(channel_sparsity=channel_sparsity(masks), flops_fraction=flops_fraction,
                                latency_fraction=t.ratio, time_saving=t.saving, latency_over_flops=ratio,
                                target=TARGET, dense_ms=t.base_s * 1e3, slim_ms=t.test_s * 1e3,
                                threads=torch.get_num_threads())
    if enabled and os.environ.get("TICKETBENCH_BENCH_ENFORCE", "1") == "1":
        assert ratio <= TARGET, f"latency fraction {t.ratio:.3f} > {TARGET} x FLOPs fraction {flops_fraction:.3f}"
