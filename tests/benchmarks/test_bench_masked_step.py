"""Masked training step vs dense training step (target: <= 5% overhead), measured in the same run.

`make bench` runs this with timing on and enforces the target; `make test` runs it once as a smoke
test (pytest-benchmark disabled), so CI checks that it works without trusting a noisy CI clock.
"""

import os

import pytest
import torch
import torch.nn.functional as F

from ticketbench.masks import MaskEnforcer, prunable_names, prune_to_sparsity
from ticketbench.models import create_model
from ticketbench.timing import paired

TARGET = 1.05


def _step_fn(model, opt, x, y, enforce=None):
    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if enforce is not None:
            enforce()

    return step


@pytest.mark.benchmark(group="masked-step")
@pytest.mark.parametrize("backbone", ["test_resnet", "cifar_resnet20"])
def test_masked_step_overhead(benchmark, backbone):
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    dense = create_model(backbone, num_classes=10)
    masked = create_model(backbone, num_classes=10)
    masked.load_state_dict(dense.state_dict())
    names = prunable_names(masked, "openlth")
    params = dict(masked.named_parameters())
    mask = prune_to_sparsity({n: params[n] for n in names}, 0.9)
    mask.apply_(masked)
    sgd = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)
    dense_step = _step_fn(dense, torch.optim.SGD(dense.parameters(), **sgd), x, y)
    masked_step = _step_fn(masked, torch.optim.SGD(masked.parameters(), **sgd), x, y, MaskEnforcer(masked, mask))

    enabled = not benchmark.disabled
    t = paired(dense_step, masked_step, rounds=30 if enabled else 2, warmup=3 if enabled else 1)
    benchmark.extra_info.update(dense_s=t.base_s, masked_s=t.test_s, ratio=t.ratio, target=TARGET)
    benchmark.pedantic(masked_step, rounds=10 if enabled else 1, warmup_rounds=1 if enabled else 0)
    assert all(bool((params[n][~mask[n]] == 0).all()) for n in names)
    if enabled and os.environ.get("TICKETBENCH_BENCH_ENFORCE", "1") == "1":
        assert t.ratio <= TARGET, f"masked/dense step ratio {t.ratio:.3f} > {TARGET}"
