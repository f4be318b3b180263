"""The budget-following IMP variants (SNIP, GraSP, SynFlow, OMP, ADMM), PrAC's random-subset ablation and rewinding
at 100% of training, each checked against what it must do."""

import dataclasses

import pytest
import torch

from ticketbench import paths, storage
from ticketbench.artifacts import load_checkpoint, read_metrics
from ticketbench.cli import main
from ticketbench.masks import Mask, keep_highest, prunable_names, prune_to_sparsity
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.imp import ImpHparams, RoundInputs, score_batches
from ticketbench.methods.registry import IMP_VARIANTS as VARIANTS
from ticketbench.criteria import CRITERIA
from ticketbench.methods.prac.critical_sets import critical_for_training

from conftest import pretrain_synthetic

ROUNDS = 2
BUDGET_VARIANTS = ("snip", "grasp", "synflow", "omp", "admm")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    pre = pretrain_synthetic(root / "pre", epochs=2, extra=("--rewind-iterations", "100%"))
    ref = root / "ref"
    assert main(["imp", "--pretrain", str(pre), "--out", str(ref), "--rounds", str(ROUNDS), "--no-progress"]) == 0
    return root, pre, ref


def _inputs(pre, ref, variant, r, **imp):
    loaded = load_pretrained(pre)
    hp = ImpHparams(variant=variant, rounds=ROUNDS, **imp)
    names = prunable_names(loaded.new_model(), hp.policy)
    return RoundInputs(loaded, hp, r, {n: loaded.final_state[n] for n in names}, None, ref, {},
                       train_hp=dataclasses.replace(loaded.train_hp, epochs=1))


def _ref_mask(ref, r):
    return Mask.load(ref / f"round{r}" / "mask.safetensors")[0]


def _equal(a, b):
    return set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("variant", BUDGET_VARIANTS)
def test_budget_variants_keep_exactly_the_reference_count_and_train(runs, variant):
    root, pre, ref = runs
    out = root / variant
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--variant", variant,
                 "--reference", str(ref), "--admm-epochs", "1", "--no-progress"]) == 0
    m = read_metrics(paths.metrics(out))
    assert m["method"] == variant and len(m["rounds"]) == ROUNDS
    for r in range(1, ROUNDS + 1):
        mask, _ = Mask.load(out / f"round{r}" / "mask.safetensors")
        reference = _ref_mask(ref, r)
        assert set(mask) == set(reference) and mask.kept == reference.kept
        state, _ = load_checkpoint(out / f"round{r}" / "model.safetensors")
        assert all(torch.all(state[n][~mask[n]] == 0) for n in mask)
        # Made again in this process, the round's mask is the one the run wrote: the variant is deterministic.
        again, _ = VARIANTS.get(variant).mask(_inputs(pre, ref, variant, r, admm_epochs=1))
        assert _equal(again, mask)


@pytest.mark.parametrize("criterion", ["snip", "grasp", "synflow"])
def test_pruning_at_init_differs_from_magnitude_at_the_same_budget(runs, criterion):
    _, pre, ref = runs
    x = _inputs(pre, ref, criterion, 2)
    mask, facts = VARIANTS.get(criterion).mask(x)
    rewind = x.pre.rewind_state(x.imp.rewind)
    kept = _ref_mask(ref, 2).kept
    assert mask.kept == kept and facts["scored_at"] == x.imp.rewind
    by_magnitude = keep_highest({n: rewind[n].abs() for n in x.weights}, kept)
    assert not _equal(mask, by_magnitude) and not _equal(mask, _ref_mask(ref, 2))


def test_snip_keeps_the_globally_highest_scores(runs):
    """One budget over all layers: no kept weight scores below a dropped one, wherever they sit."""
    _, pre, ref = runs
    x = _inputs(pre, ref, "snip", 1)
    mask, _ = VARIANTS.get("snip").mask(x)
    model = x.pre.model_from(x.pre.rewind_state(x.imp.rewind))
    scores = CRITERIA.get("snip")(model, list(x.weights), score_batches(x.pre, torch.device("cpu")))
    kept = torch.cat([scores[n][mask[n]].double() for n in mask])
    dropped = torch.cat([scores[n][~mask[n]].double() for n in mask])
    assert kept.min() >= dropped.max()
    assert len({round(float(mask[n].float().mean()), 3) for n in mask}) > 1  # densities differ across layers


def test_layerwise_scope_follows_the_reference_per_layer(runs):
    _, pre, ref = runs
    mask, _ = VARIANTS.get("grasp").mask(_inputs(pre, ref, "grasp", 2, scope="layerwise"))
    reference = _ref_mask(ref, 2)
    assert all(int(mask[n].sum()) == int(reference[n].sum()) for n in reference)


def test_omp_is_one_shot_magnitude_pruning_of_the_dense_weights(runs):
    _, pre, ref = runs
    for r in range(1, ROUNDS + 1):
        x = _inputs(pre, ref, "omp", r)
        mask, _ = VARIANTS.get("omp").mask(x)
        reference = _ref_mask(ref, r)
        dense = {n: x.pre.final_state[n] for n in x.weights}
        assert _equal(mask, prune_to_sparsity(dense, 1 - reference.kept / reference.total))
    # The dense weights ranked once, not IMP's round 2, which ranks the weights round 1 retrained.
    assert not _equal(mask, _ref_mask(ref, ROUNDS))


def test_admm_pulls_the_weights_to_the_projection(runs):
    _, pre, ref = runs

    def admm(rho):
        x = _inputs(pre, ref, "admm", 2, admm_epochs=3, admm_rho=rho, admm_lr=0.01)
        # Batches of 8: 32 steps an epoch, enough for the penalty to act between two updates of Z and U.
        return VARIANTS.get("admm").mask(dataclasses.replace(x, train_hp=dataclasses.replace(x.train_hp, batch_size=8)))

    with_penalty, facts = admm(1.0)
    _, free = admm(0.0)
    gaps = facts["admm_residuals"]  # ||W - Z|| / ||W||, before the first epoch and after each
    assert with_penalty.kept == _ref_mask(ref, 2).kept and len(gaps) == 4
    assert gaps[0] == pytest.approx(free["admm_residuals"][0])
    assert max(gaps[1:]) < 0.5 * gaps[0]  # the weights moved onto the budget's support
    assert gaps[-1] < 0.25 * free["admm_residuals"][-1]  # which training without the penalty does not do


def test_budget_variants_refuse_bad_inputs(runs, capsys):
    root, pre, ref = runs
    assert main(["imp", "--pretrain", str(pre), "--out", str(root / "bad1"), "--variant", "snip", "--reference",
                 str(ref), "--policy", "structure_lth", "--rounds", "1", "--no-progress"]) == 2
    assert "policy 'structure_lth'" in capsys.readouterr().err
    assert main(["imp", "--pretrain", str(pre), "--out", str(root / "bad2"), "--variant", "admm", "--reference",
                 str(ref), "--precision", "fp16", "--rounds", "1", "--no-progress"]) == 2
    assert "train.precision" in capsys.readouterr().err
    assert not (root / "bad1").exists() and not (root / "bad2").exists()


def _prac(pre, out, *extra):
    assert main(["prac", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--skip-ticket-eval",
                 "--no-progress", *extra]) == 0
    return read_metrics(paths.metrics(out))


def test_random_subsets_have_the_prac_sets_sizes(runs):
    root, pre, _ = runs
    m = _prac(pre, root / "prac_random", "--random-subset")
    again = _prac(pre, root / "prac_random_again", "--random-subset")
    n = load_pretrained(pre).splits.train.base_size
    for r in range(1, ROUNDS + 1):
        sets, _ = storage.load_tensors(root / "prac_random" / f"round{r}" / "prac_set.safetensors")
        drawn, prac_set = sets["trained_on"], sets["prac_set"]
        assert len(drawn) == len(prac_set) == m["rounds"][r - 1]["prac_trained_size"] < n
        assert len(torch.unique(drawn)) == len(drawn) and not torch.equal(drawn, prac_set)
        assert m["rounds"][r - 1]["random_subset"] is True
        if r > 1:  # the set this round stood in for is the one found after the round before
            before, _ = storage.load_tensors(root / "prac_random" / f"round{r - 1}" / "prac_set.safetensors")
            assert torch.equal(prac_set, before["next"])
        same, _ = storage.load_tensors(root / "prac_random_again" / f"round{r}" / "prac_set.safetensors")
        assert torch.equal(same["trained_on"], drawn)
    first, _ = storage.load_tensors(root / "prac_random" / "round1" / "prac_set.safetensors")
    assert torch.equal(first["prac_set"], critical_for_training(load_pretrained(pre).dynamics()))
    assert [r["test_acc"] for r in again["rounds"]] == [r["test_acc"] for r in m["rounds"]]


def test_rewinding_to_100_percent_starts_from_the_final_dense_weights(runs, monkeypatch, capsys):
    from ticketbench.methods import imp as imp_mod

    root, pre, _ = runs
    loaded = load_pretrained(pre)
    total = read_metrics(paths.metrics(pre))["train_iterations"]
    assert (pre / "rewind" / f"it{total}.safetensors").is_file()
    final = loaded.final_state
    assert all(torch.equal(loaded.rewind_state("100%")[k], final[k]) for k in final)
    starts = []
    real = imp_mod.train_round
    monkeypatch.setattr(imp_mod, "train_round",
                        lambda p, start, *a, **k: starts.append(start) or real(p, start, *a, **k))
    assert main(["imp", "--pretrain", str(pre), "--out", str(root / "ft"), "--rewind", "100%", "--rounds", "1",
                 "--no-progress"]) == 0
    (start,) = starts
    assert all(torch.equal(start[k], final[k]) for k in final)
    assert ImpHparams(structure_rewind="100%").structure_rewind == "100%"
    assert main(["imp", "--pretrain", str(pre), "--out", str(root / "ft_resume"), "--rewind", "100%", "--lr-resume",
                 "--rounds", "1", "--no-progress"]) == 2
    assert "imp.lr_resume" in capsys.readouterr().err
