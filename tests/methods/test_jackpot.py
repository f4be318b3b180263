"""Lottery-jackpot search: frozen weights, exact budgets, magnitude init, straight-through gradient, swaps."""

import math

import pytest
import torch
from torch import nn

from ticketbench import storage, paths
from ticketbench.artifacts import load_checkpoint, read_metrics
from ticketbench.cli import main

from conftest import pretrain_synthetic
from ticketbench.criteria import CRITERIA, mask_with_budget
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.jackpot.search import JackpotHparams, ScoredMask, search, swap_update, topk_mask
from ticketbench.methods.jackpot.studies import search_cost
from torch.nn.utils import parametrize

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pre_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("jp") / "pre"
    return pretrain_synthetic(out, epochs=3)


@pytest.mark.parametrize("init,update", [("magnitude", "swap"), ("magnitude", "topk"), ("random", "swap")])
def test_search_freezes_weights_and_keeps_exact_budgets(pre_dir, init, update):
    pre = load_pretrained(pre_dir)
    jp = JackpotHparams(sparsity=0.8, epochs=2, batch_size=64, init=init, update=update)
    s = search(pre, jp, device=CPU, progress=False)
    assert s["weights_unchanged"]
    original = pre.best_state
    state = s["model"].state_dict()
    for k, v in original.items():
        if "running" in k or "num_batches" in k:
            continue  # BatchNorm statistics are re-estimated on purpose
        if k in s["mask"]:
            m = s["mask"][k]
            assert torch.equal(state[k][m], v[m]) and torch.all(state[k][~m] == 0)
        else:
            assert torch.equal(state[k], v), k  # BN affine, biases, classifier: bitwise unchanged
    for n, m in s["mask"].items():
        assert int(m.sum()) == int(s["budget"][n].sum())  # per-layer sparsity exact
    total = s["mask"].total
    assert s["mask"].sparsity() == pytest.approx(round(0.8 * total) / total)
    if init == "magnitude":
        assert all(torch.equal(s["initial"][n], s["budget"][n]) for n in s["budget"])  # first mask = magnitude mask


def test_straight_through_gradient_by_hand():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2, bias=False)
    w = layer.weight.detach().clone()
    scores = torch.tensor([[1.0, 0.99, 1.0], [0.99, 1.0, 1.0]])
    mask = topk_mask(scores, 4)
    pm = ScoredMask(scores.clone(), mask, "swap")
    parametrize.register_parametrization(layer, "weight", pm, unsafe=True)
    layer.parametrizations.weight.original.requires_grad_(False)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    c = torch.tensor([[0.5, -1.0]])
    (layer(x) * c).sum().backward()
    # d/dW_eff of sum(c * (x W_eff^T)) = c^T x; the STE hands it to the scores times W.
    expected = (c.T @ x) * w
    assert torch.allclose(pm.scores.grad, expected)
    assert torch.equal(mask, torch.tensor([[True, False, True], [False, True, True]]))


def test_swap_respects_rate_and_budget():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(100, generator=g)
    mask = torch.zeros(100, dtype=torch.bool)
    mask[:30] = True  # kept set disagrees with the top-30 scores in many places
    k_kept = int(mask.sum())
    kept_by_score = topk_mask(scores, 30)
    c = int((kept_by_score & ~mask).sum())
    for rate in (1.0, 0.5, 0.1):
        m = mask.clone()
        flips = swap_update(scores, m, rate)
        assert flips == (1 if c == 1 else math.ceil(rate * c)) and int(m.sum()) == k_kept
        assert int((m != mask).sum()) == 2 * flips
    m = mask.clone()
    while swap_update(scores, m, 0.3):
        assert int(m.sum()) == k_kept
    assert torch.equal(m, kept_by_score)  # repeated swaps reach the top-k fixed point


def test_swap_freezes_on_ties():
    mask = torch.tensor([True, False, True, False])  # two pruned, so tau is the 2nd smallest score
    # tau = 0.99: revive {3}, remove {0, 2}; the counts differ (a tie at tau), so the layer holds still.
    assert swap_update(torch.tensor([0.99, 0.99, 0.99, 1.0]), mask.clone(), 1.0) == 0
    # tau = 0.99: revive {3}, remove {2}: one pair swaps.
    assert swap_update(torch.tensor([1.0, 0.99, 0.99, 1.0]), mask.clone(), 1.0) == 1


def test_criteria_sane_on_tiny_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 3, bias=False))
    names = ["0.weight", "2.weight"]
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    x, y = batches[0]
    grads = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), [net[0].weight, net[2].weight])
    snip = CRITERIA.get("snip")(net, names, batches)
    assert torch.allclose(snip["0.weight"], (grads[0] * net[0].weight).abs())
    # GraSP: w * (H g) against an explicit Hessian-vector product.
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])

    def loss_of(v):
        w1, w2 = v[:24].view(6, 4), v[24:].view(3, 6)
        return nn.functional.cross_entropy(torch.relu(x @ w1.T) @ w2.T, y)

    g = torch.autograd.functional.jacobian(loss_of, flat)
    hg = torch.autograd.functional.hessian(loss_of, flat) @ g
    grasp = CRITERIA.get("grasp")(net, names, batches)
    assert torch.allclose(torch.cat([grasp[n].flatten() for n in names]), flat * hg, atol=1e-6)
    # SynFlow: positive, data-free, and conserved: each layer of a bias-free chain carries the same total flow.
    syn = CRITERIA.get("synflow")(net, names, [(torch.ones(1, 4), None)])
    assert all((s >= 0).all() for s in syn.values())
    assert syn["0.weight"].sum() == pytest.approx(float(syn["2.weight"].sum()), rel=1e-5)
    budget = {n: 5 for n in names}
    assert all(int(m.sum()) == 5 for m in mask_with_budget(snip, budget).values())


def test_search_cost_factor():
    mag = [{"epoch": e, "val_acc": a} for e, a in enumerate([0.8, 0.9, 0.95, 0.95], 1)]
    rnd = [{"epoch": e, "val_acc": a} for e, a in enumerate([0.2, 0.5, 0.7, 0.9], 1)]
    res = search_cost(mag, rnd)
    assert res["random_epochs"] == 4 and res["magnitude_epochs"] == 2 and res["factor"] == 2.0


def test_cli_search_overlap_and_cost(pre_dir, tmp_path):
    runs = {}
    for init in ("magnitude", "random"):
        runs[init] = tmp_path / init
        assert main(["jackpot", "--pretrain", str(pre_dir), "--out", str(runs[init]), "--init", init, "--sparsity",
                     "0.9", "--epochs", "2", "--batch-size", "64", "--no-progress"]) == 0
        m = read_metrics(paths.metrics(runs[init]))
        assert m["method"] == "jackpot" and m["weights_unchanged"] and m["sparsity"] == pytest.approx(0.9, abs=1e-4)
        assert [e["epoch"] for e in m["epochs"]] == [1, 2] and "mask_flips" in m["epochs"][0]
        state, meta = load_checkpoint(paths.model(runs[init]))
        mask, _ = Mask.load(paths.mask(runs[init]))
        assert all(torch.all(state[n][~mask[n]] == 0) for n in mask)
    assert main(["jackpot-overlap", "--pretrain", str(pre_dir), "--jackpot", str(runs["magnitude"]),
                 "--out", str(tmp_path / "ov"), "--batches", "1"]) == 0
    rows = (tmp_path / "ov" / "overlap.csv").read_text().splitlines()
    assert rows[0] == "criterion,sparsity,overlap,iou" and len(rows) == 6
    assert (tmp_path / "ov" / "overlap_layers.csv").exists()
    # On a random-initialised search, the random criterion is an independent draw, not the search's initial mask.
    assert main(["jackpot-overlap", "--pretrain", str(pre_dir), "--jackpot", str(runs["random"]),
                 "--out", str(tmp_path / "ov_random"), "--batches", "1"]) == 0
    random_row = next(r for r in storage.read_json(tmp_path / "ov_random" / "overlap.json")["rows"]
                      if r["criterion"] == "random")
    assert random_row["overlap"] < 0.3  # chance is 0.1; the search's own initial mask overlaps far more
    # An IMP run of another dense network is refused: its masks are not comparable weight by weight.
    other = tmp_path / "other_pre"
    assert main(["pretrain", "--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "1", "--batch-size",
                 "64", "--seed", "5", "--no-progress", "--out", str(other)]) == 0
    imp_other = tmp_path / "imp_other"
    assert main(["imp", "--pretrain", str(other), "--rounds", "1", "--rewind", "init", "--no-progress",
                 "--out", str(imp_other)]) == 0
    assert main(["jackpot-overlap", "--pretrain", str(pre_dir), "--jackpot", str(runs["magnitude"]), "--imp",
                 str(imp_other), "--out", str(tmp_path / "ov_bad"), "--batches", "1"]) == 2
    assert not (tmp_path / "ov_bad").exists()
    assert main(["jackpot-cost", "--magnitude", str(runs["magnitude"]), "--random", str(runs["random"]),
                 "--out", str(tmp_path / "cost.json")]) == 0
    assert main(["jackpot-cost", "--magnitude", str(runs["random"]), "--random", str(runs["magnitude"]),
                 "--out", str(tmp_path / "bad.json")]) == 2


def test_released_budget_and_per_epoch_cosine_run_through_the_search(pre_dir):
    """jackpot.budget_rounding released and lr_schedule cosine_epoch reach the search: its budget is the released
    per-layer rule and the learning rate holds within each epoch, annealed once per epoch."""
    from ticketbench.methods.jackpot.search import released_budget
    from ticketbench.masks import policy_names

    pre = load_pretrained(pre_dir)
    jp = JackpotHparams(sparsity=0.8, epochs=3, batch_size=64, budget_rounding="released", lr_schedule="cosine_epoch")
    s = search(pre, jp, device=CPU, progress=False)
    model = pre.model_from(pre.best_state)
    names, _ = policy_names(model, "jackpot")
    params = dict(model.named_parameters())
    expected = released_budget({n: params[n].detach() for n in names}, 0.8)
    assert all(torch.equal(s["budget"][n], expected[n]) for n in names)
    assert s["mask"].kept == expected.kept  # swaps keep every layer's released budget
    lrs = [e["lr"] for e in s["result"].history]  # the rate of each epoch's last step
    assert lrs == pytest.approx([0.5 * jp.lr * (1 + math.cos(math.pi * e / 3)) for e in range(3)])
    with pytest.raises(Exception, match="budget_rounding"):
        JackpotHparams.from_dict({"budget_rounding": "floor"})
