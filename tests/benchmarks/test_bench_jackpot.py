"""Jackpot search step (scores through the straight-through mask, then a budget-preserving swap) vs a dense step."""

import torch
import torch.nn.functional as F
import pytest

from ticketbench.masks import prunable_names, prune_to_sparsity
from ticketbench.methods.jackpot.search import attach, initial_scores, swap_update
from ticketbench.models import create_model
from ticketbench.timing import paired


@pytest.mark.benchmark(group="jackpot-step")
@pytest.mark.parametrize("backbone", ["test_resnet", "cifar_resnet20"])
def test_jackpot_search_step(benchmark, backbone):
    torch.manual_seed(0)
    enabled = not benchmark.disabled
    x, y = torch.randn(64 if enabled else 4, 3, 32, 32), torch.randint(0, 10, (64 if enabled else 4,))
    dense = create_model(backbone, num_classes=10)
    search = create_model(backbone, num_classes=10)
    search.load_state_dict(dense.state_dict())
    params = dict(search.named_parameters())
    names = prunable_names(search, "jackpot")
    weights = {n: params[n].detach() for n in names}
    budget = prune_to_sparsity(weights, 0.9)
    scored = attach(search, initial_scores(weights, budget, "magnitude", 0), budget, "swap")
    d_opt = torch.optim.SGD(dense.parameters(), lr=0.01, momentum=0.9)
    s_opt = torch.optim.SGD([p for p in search.parameters() if p.requires_grad], lr=0.1, momentum=0.9)

    def step(model, opt, after=None):
        def run():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after:
                after()
        return run

    def swaps():
        for pm in scored.values():
            swap_update(pm.scores, pm.mask, 1.0)

    t = paired(step(dense, d_opt), step(search, s_opt, swaps), rounds=15 if enabled else 1, warmup=2 if enabled else 0)
    benchmark.extra_info.update(dense_s=t.base_s, search_s=t.test_s, ratio=t.ratio)
    benchmark.pedantic(step(search, s_opt, swaps), rounds=5 if enabled else 1)
    assert all(int(pm.mask.sum()) == int(budget[n].sum()) for n, pm in scored.items())
