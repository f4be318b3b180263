"""IMP, PrAC-IMP, the transfer experiment and the random baselines, end to end from the CLI on tiny data."""

import pytest
import torch

from ticketbench import storage, paths
from ticketbench.artifacts import CORE_KEYS, load_checkpoint, read_metrics, unpack_bits
from ticketbench.cli import main
from ticketbench.masks import Mask, prunable_names
from ticketbench.methods.common import load_pretrained, train_round
from ticketbench.hparams import TrainHparams

PRE = ["--dataset", "synthetic", "--epochs", "3", "--batch-size", "64", "--rewind-epochs", "0,1", "--no-progress"]
ROUNDS = 3


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    runs = {}
    for backbone in ("test_resnet", "cifar_resnet20"):
        out = root / "pretrain" / backbone
        assert main(["pretrain", *PRE, "--backbone", backbone, "--out", str(out)]) == 0
        runs[backbone] = out
    return root, runs


def _imp(pre, out, *extra):
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--no-progress",
                 *extra]) == 0
    return read_metrics(paths.metrics(out))


def test_imp_rounds_sparsity_and_accounting(pretrained):
    root, runs = pretrained
    m = _imp(runs["test_resnet"], root / "imp_full")
    assert set(CORE_KEYS) <= set(m) and m["method"] == "imp" and len(m["rounds"]) == ROUNDS
    pre_iters = read_metrics(paths.metrics(runs["test_resnet"]))["train_iterations"]
    cumulative = pre_iters
    for r, row in enumerate(m["rounds"], start=1):
        mask, meta = Mask.load(root / "imp_full" / f"round{r}" / "mask.safetensors")
        expected = 1 - 0.8 ** r
        assert abs(mask.sparsity() - expected) <= len(mask) / mask.total  # within one weight per layer
        assert row["sparsity"] == pytest.approx(mask.sparsity())
        assert row["find_iterations"] == cumulative
        cumulative += row["train_iterations"]
        assert row["cumulative_iterations"] == cumulative
        state, _ = load_checkpoint(root / "imp_full" / f"round{r}" / "model.safetensors")
        assert all(torch.all(state[n][~mask[n]] == 0) for n in mask)  # the trained ticket honours its mask
        if r > 1:
            assert not any((mask[n] & ~prev[n]).any() for n in mask)  # pruned weights never come back
        prev = mask


def test_rewind_restores_snapshot_for_surviving_weights(pretrained):
    _, runs = pretrained
    pre = load_pretrained(runs["test_resnet"])
    names = prunable_names(pre.new_model(), "prac")
    from ticketbench.masks import magnitude_prune

    mask = magnitude_prune({n: pre.final_state[n] for n in names}, 0.5)
    rewind = pre.rewind_state("ep1")
    hp = TrainHparams(epochs=1, batch_size=64, rewind_epochs="0")
    _, res = train_round(pre, rewind, mask, hp, device=torch.device("cpu"), progress=False)
    start = res.snapshots["ep0"]
    for k, v in rewind.items():
        expected = v * mask[k] if k in mask else v
        assert torch.equal(start[k], expected), k


def test_prac_imp_transfer_and_savings(pretrained):
    root, runs = pretrained
    full = root / "imp_full_tr"
    _imp(runs["test_resnet"], full)
    prac = root / "prac"
    assert main(["prac", "--pretrain", str(runs["test_resnet"]), "--out", str(prac), "--rounds", str(ROUNDS),
                 "--no-progress"]) == 0
    m = read_metrics(paths.metrics(prac))
    n = load_pretrained(runs["test_resnet"]).splits.train.base_size
    for r, row in enumerate(m["rounds"], start=1):
        sets, _ = storage.load_tensors(prac / f"round{r}" / "prac_set.safetensors")
        assert row["prac_trained_size"] == len(sets["trained_on"]) <= n
        assert set(sets["next"].tolist()) == set(sets["cet"].tolist()) | set(sets["cep"].tolist())
        assert row["cep_size"] == len(sets["cep"]) and row["cet_size"] == len(sets["cet"])
        assert 0 <= row["test_acc"] <= 1 and "search_test_acc" in row
        # Each round keeps its ticket's per-example test correctness, so the report can pair methods.
        assert unpack_bits(row["test_correct"]).mean() == pytest.approx(row["test_acc"])
    assert m["test_correct"] == m["rounds"][-1]["test_correct"]
    # The transfer experiment: test_resnet's PrAC sets drive cifar_resnet20.
    tr = root / "transfer"
    t = _imp(runs["cifar_resnet20"], tr, "--subsets", str(prac), "--evaluate-tickets")
    for r, row in enumerate(t["rounds"], start=1):
        sets, _ = storage.load_tensors(prac / f"round{r}" / "prac_set.safetensors")
        assert row["data_fraction"] == pytest.approx(len(sets["trained_on"]) / n)
    out = root / "savings.json"
    assert main(["prac-savings", "--full", str(full), "--prac", str(prac), "--out", str(out)]) == 0
    s = storage.read_json(out)
    assert len(s["rows"]) == ROUNDS and "saving" in s


def test_random_baselines_follow_the_reference(pretrained):
    root, runs = pretrained
    ref = root / "imp_ref"
    _imp(runs["test_resnet"], ref)
    rp = _imp(runs["test_resnet"], root / "rp", "--variant", "random_prune", "--reference", str(ref))
    rl = _imp(runs["test_resnet"], root / "rl", "--variant", "random_prune_layerwise", "--reference", str(ref))
    ri = _imp(runs["test_resnet"], root / "ri", "--variant", "random_reinit", "--reference", str(ref))
    assert (rp["method"], rl["method"], ri["method"]) == ("random_prune", "random_prune_layerwise", "random_reinit")
    for r in range(1, ROUNDS + 1):
        m_ref, _ = Mask.load(ref / f"round{r}" / "mask.safetensors")
        m_rp, _ = Mask.load(root / "rp" / f"round{r}" / "mask.safetensors")
        m_rl, _ = Mask.load(root / "rl" / f"round{r}" / "mask.safetensors")
        m_ri, _ = Mask.load(root / "ri" / f"round{r}" / "mask.safetensors")
        assert all(torch.equal(m_ri[n], m_ref[n]) for n in m_ref)
        assert all(int(m_rl[n].sum()) == int(m_ref[n].sum()) for n in m_ref)
        assert any(not torch.equal(m_rl[n], m_ref[n]) for n in m_ref)
        # PrAC's random pruning is global: the same number of weights in all, not in each layer.
        assert m_rp.kept == m_ref.kept
        assert any(int(m_rp[n].sum()) != int(m_ref[n].sum()) for n in m_ref)


def test_missing_reference_and_bad_rewind_are_clear(pretrained, capsys):
    root, runs = pretrained
    assert main(["imp", "--pretrain", str(runs["test_resnet"]), "--out", str(root / "x"), "--variant",
                 "random_prune", "--no-progress"]) == 2
    assert "reference" in capsys.readouterr().err
    assert main(["imp", "--pretrain", str(runs["test_resnet"]), "--out", str(root / "y"), "--rewind", "ep9",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "rewind='ep9'" in err and "ep0, ep1" in err


def test_an_iteration_rewind_resumes_the_schedule_at_that_iteration(tmp_path):
    """OpenLTH's it<n> rewind with lr_resume: each round retrains from step n of the dense schedule, not step 0."""
    pre = tmp_path / "pre"
    assert main(["pretrain", *PRE, "--backbone", "test_resnet", "--rewind-iterations", "3", "--out", str(pre)]) == 0
    per_epoch = read_metrics(paths.metrics(pre))["epochs"][0]["iterations"]
    m = _imp(pre, tmp_path / "imp", "--rewind", "it3", "--lr-resume", "--rounds", "1")
    assert m["rounds"][0]["train_iterations"] == 3 * per_epoch - 3
    restarted = _imp(pre, tmp_path / "imp_restart", "--rewind", "it3", "--rounds", "1")
    assert restarted["rounds"][0]["train_iterations"] == 3 * per_epoch


def test_random_pruning_is_global_every_weight_equally_likely():
    """PrAC's baseline draws one random mask over all layers: a layer keeps about the global density whatever its
    reference layer kept (the layer-wise draw copied the reference's per-layer sparsity)."""
    from ticketbench.methods.imp import random_global

    ref = Mask({"a": torch.zeros(4000, dtype=torch.bool), "b": torch.ones(4000, dtype=torch.bool)})
    rp = random_global(ref, seed=3)
    assert rp.kept == ref.kept == 4000
    assert 0.45 < float(rp["a"].float().mean()) < 0.55 and 0.45 < float(rp["b"].float().mean()) < 0.55
    # Keyed by the seed only: the order the layers are listed in does not change the draw.
    again = random_global(Mask({"b": ref["b"], "a": ref["a"]}), seed=3)
    assert all(torch.equal(rp[n], again[n]) for n in ref)


def test_structure_lth_variant_runs_its_own_imp(tmp_path):
    """Structure-LTH's IMP (Alg. 1): the stem is never pruned, nor the classifier, and rounds rewind to 5% of
    training, a snapshot the pretrain run saved at that iteration."""
    pre = tmp_path / "pre"
    assert main(["pretrain", *PRE, "--backbone", "cifar_resnet20", "--rewind-iterations", "5%", "--out", str(pre)]) == 0
    total = read_metrics(paths.metrics(pre))["train_iterations"]
    at = round(0.05 * total)
    assert (pre / "rewind" / f"it{at}.safetensors").is_file()
    m = _imp(pre, tmp_path / "slth", "--variant", "structure_lth", "--rounds", "2")
    settings = storage.read_json(paths.hparams(tmp_path / "slth"))["settings"]["imp"]
    assert (settings["policy"], settings["rewind"], m["method"]) == ("structure_lth", "5%", "structure_lth")
    mask, _ = Mask.load(tmp_path / "slth" / "round2" / "mask.safetensors")
    loaded = load_pretrained(pre)
    assert set(mask) == set(prunable_names(loaded.new_model(), "structure_lth"))
    assert "conv1.weight" not in mask and not any(n.startswith("fc") or n.startswith("head") for n in mask)
    # The round starts from the 5% snapshot: its surviving weights at epoch 0 of the round are that snapshot's.
    rewind = loaded.rewind_state("5%")
    assert torch.equal(rewind["conv1.weight"], loaded.rewind_state(f"it{at}")["conv1.weight"])


def test_group_aware_imp_prunes_from_the_regrouped_mask(tmp_path):
    """Structure-LTH Alg. 4: each round's mask is regrouped, and the next round prunes from that mask."""
    pre = tmp_path / "pre"
    assert main(["pretrain", *PRE, "--backbone", "cifar_resnet20", "--rewind-iterations", "5%", "--out", str(pre)]) == 0
    m = _imp(pre, tmp_path / "ga", "--variant", "group_aware", "--rounds", "2")
    assert m["method"] == "group_aware"
    r1, _ = Mask.load(tmp_path / "ga" / "round1" / "mask.safetensors")
    r2, _ = Mask.load(tmp_path / "ga" / "round2" / "mask.safetensors")
    row1 = m["rounds"][0]
    # Regrouping changed the plain magnitude mask (blocks refill and drop weights) ...
    assert row1["sparsity"] != pytest.approx(row1["unstructured_sparsity"])
    # ... and round 2 pruned 20% of what the regrouped round-1 mask kept, before regrouping again.
    assert m["rounds"][1]["unstructured_sparsity"] == pytest.approx(1 - 0.8 * r1.kept / r1.total, abs=1e-3)


def test_group_aware_reads_structure_lths_recipe_and_checks_it_first(tmp_path, capsys):
    """Group-aware IMP regroups with Structure-LTH's recipe for the cell; a bad value fails before any write."""
    import yaml

    pre = tmp_path / "pre"
    assert main(["pretrain", *PRE, "--backbone", "test_resnet", "--rewind-iterations", "5%", "--out", str(pre)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"recipes": {"structure_lth": {"structure": {"regroup_preset": "nope"}}}}))
    out = tmp_path / "ga"
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--variant", "group_aware", "--rounds", "1",
                 "--config", str(bad), "--no-progress"]) == 2
    assert "regroup_preset" in capsys.readouterr().err and not out.exists()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"structure": {"parts": 8},
                                    "recipes": {"structure_lth": {"structure": {"parts": 2}}}}))
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--variant", "group_aware", "--rounds", "1",
                 "--config", str(good), "--no-progress"]) == 0
    assert run_settings(out)["structure"]["parts"] == 2


def run_settings(run):
    return storage.read_json(paths.hparams(run))["settings"]


def test_openlth_prune_rule_removes_ceil_plus_one_counting_unpruned_layers(pretrained):
    """imp.prune_rule openlth: each round removes ceil(0.2 n) + 1 weights (no ties in trained weights), n counting
    the conv and linear weights the policy leaves out (here the classifier)."""
    import math

    from ticketbench.models import conv_linear_layers

    root, runs = pretrained
    m = _imp(runs["test_resnet"], root / "imp_openlth", "--prune-rule", "openlth")
    model = load_pretrained(runs["test_resnet"]).new_model()
    names = prunable_names(model, "prac")
    outside = sum(mod.weight.numel() for n, mod in conv_linear_layers(model).items() if f"{n}.weight" not in names)
    assert outside > 0
    kept = sum(dict(model.named_parameters())[n].numel() for n in names)
    for r in range(1, ROUNDS + 1):
        mask, _ = Mask.load(root / "imp_openlth" / f"round{r}" / "mask.safetensors")
        assert kept - mask.kept == math.ceil(0.2 * (kept + outside)) + 1
        kept = mask.kept
    assert m["rounds"][-1]["sparsity"] > 1 - 0.8 ** ROUNDS
