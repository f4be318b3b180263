import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

from ticketbench.errors import ArtifactError, ConfigError
from ticketbench.masks import (Mask, MaskEnforcer, iou, magnitude_prune, prunable_names, prune_to_sparsity,
                               sparsity_after_rounds)


def _weights(seed=0, shapes=((8, 3, 3, 3), (16, 8, 3, 3), (10, 16))):
    g = torch.Generator().manual_seed(seed)
    return {f"l{i}.weight": torch.randn(*s, generator=g) for i, s in enumerate(shapes)}


def test_global_magnitude_equals_torch_global_unstructured():
    w = _weights()
    modules = []
    for name, t in w.items():
        m = nn.Conv2d(t.shape[1], t.shape[0], 3) if t.dim() == 4 else nn.Linear(t.shape[1], t.shape[0])
        with torch.no_grad():
            m.weight.copy_(t)
        modules.append((m, "weight"))
    tprune.global_unstructured(modules, pruning_method=tprune.L1Unstructured, amount=0.37)
    ours = magnitude_prune(w, 0.37)
    for (m, _), name in zip(modules, w):
        assert torch.equal(ours[name], m.weight_mask.bool())


def test_global_prune_removes_exact_count_and_keeps_pruned_pruned():
    w = _weights()
    total = sum(t.numel() for t in w.values())
    mask = None
    remaining = total
    for r in range(1, 6):
        new = magnitude_prune(w, 0.2, mask)
        remaining -= round(0.2 * remaining)
        assert new.kept == remaining
        if mask is not None:
            assert all(not (new[n] & ~mask[n]).any() for n in w)  # nothing revived
        mask = new
        assert abs(mask.sparsity() - sparsity_after_rounds(r)) < 2 / total * len(w) + 1e-9


def test_ties_break_towards_lower_index_deterministically():
    w = {"a.weight": torch.ones(2, 5), "b.weight": torch.ones(5)}
    m = magnitude_prune(w, 0.3)  # round(4.5) = 4 weights, half-to-even like torch.nn.utils.prune
    assert m["a.weight"].flatten().tolist() == [False] * 4 + [True] * 6
    assert m["b.weight"].all()
    assert torch.equal(magnitude_prune(w, 0.3)["a.weight"], m["a.weight"])


def test_layerwise_prunes_each_layer_exactly():
    w = _weights(1)
    m = prune_to_sparsity(w, 0.5, scope="layerwise")
    for n, t in w.items():
        assert int((~m[n]).sum()) == round(0.5 * t.numel())


def test_bad_arguments_fail_with_key():
    with pytest.raises(ConfigError, match="sparsity"):
        prune_to_sparsity(_weights(), 1.0)
    with pytest.raises(ConfigError, match="scope"):
        magnitude_prune(_weights(), 0.2, scope="columns")


def test_iou():
    a = {"x": torch.tensor([True, True, False, False])}
    b = {"x": torch.tensor([True, False, True, False])}
    assert iou(a, a) == 1.0
    assert iou(a, b) == pytest.approx(1 / 3)


def test_save_load_roundtrip_and_truncation(tmp_path):
    m = prune_to_sparsity(_weights(), 0.6)
    p = tmp_path / "mask.safetensors"
    m.save(p, method="imp", source_hash="abc", config={"rate": 0.2})
    back, meta = Mask.load(p)
    assert all(torch.equal(back[n], m[n]) for n in m)
    assert meta["method"] == "imp" and meta["source_hash"] == "abc" and meta["config"] == {"rate": 0.2}
    assert meta["sparsity"] == pytest.approx(m.sparsity())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="mask.safetensors"):
        Mask.load(p)
    assert not list(tmp_path.glob(".*.tmp")), "no temp files left behind"


def test_policies_on_paper_network():
    from ticketbench.models import create_model

    model = create_model("cifar_resnet20", num_classes=10)
    prac = prunable_names(model, "prac")
    slth = prunable_names(model, "structure_lth")
    olth = prunable_names(model, "openlth")
    assert "conv1.weight" in prac and "conv1.weight" not in slth
    assert "fc.weight" not in prac and "fc.weight" in olth
    assert set(slth) < set(prac) < set(olth)
    with pytest.raises(ConfigError, match="prune_policy"):
        prunable_names(model, "everything")


def test_enforcer_keeps_zeros_through_sgd(tiny_net):
    names = prunable_names(tiny_net, "openlth")
    params = dict(tiny_net.named_parameters())
    mask = prune_to_sparsity({n: params[n] for n in names}, 0.7)
    mask.apply_(tiny_net)
    enforce = MaskEnforcer(tiny_net, mask)
    opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for _ in range(5):
        loss = tiny_net(torch.randn(4, 3, 16, 16)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        enforce()
    for n in names:
        assert torch.all(params[n][~mask[n]] == 0)
        assert torch.all(params[n][mask[n]] != 0)
