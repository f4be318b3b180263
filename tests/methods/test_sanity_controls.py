"""The sanity controls of a lottery ticket, each checked against what it must be: the layerwise-shuffled mask
(random_prune_layerwise), the inverted mask, magnitude pruning of the rewind-point weights, controls of another
variant's masks (<follower>-of-<source>), and the instability of a ticket's training."""

import pytest
import torch

from ticketbench import paths
from ticketbench.artifacts import read_metrics
from ticketbench.cli import main
from ticketbench.masks import Mask, keep_highest, prunable_names
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.imp import ImpHparams, RoundInputs
from ticketbench.methods.instability import all_kept, barrier, interpolate
from ticketbench.methods.registry import IMP_VARIANTS
from ticketbench.criteria import CRITERIA
from ticketbench.methods.imp import score_batches
from ticketbench import runs as kinds

from conftest import pretrain_synthetic

ROUNDS = 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sanity")
    pre = pretrain_synthetic(root / "pre", epochs=2)
    ref = root / "full"
    assert main(["imp", "--pretrain", str(pre), "--out", str(ref), "--rounds", str(ROUNDS), "--no-progress"]) == 0
    return root, pre, ref


def _imp(root, pre, name, variant, reference, *extra):
    out = root / name
    assert main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--variant", variant,
                 "--reference", str(reference), "--no-progress", *extra]) == 0
    return out


def _mask(run, r):
    return Mask.load(run / f"round{r}" / "mask.safetensors")[0]


def _inputs(pre, ref, r):
    loaded = load_pretrained(pre)
    hp = ImpHparams(rounds=ROUNDS)
    names = prunable_names(loaded.new_model(), hp.policy)
    return loaded, RoundInputs(loaded, hp, r, {n: loaded.final_state[n] for n in names}, None, ref, {})


def test_shuffled_mask_keeps_each_layers_count_and_moves_positions(runs):
    root, pre, ref = runs
    out = _imp(root, pre, "shuffled", "random_prune_layerwise", ref)
    for r in range(1, ROUNDS + 1):
        mine, theirs = _mask(out, r), _mask(ref, r)
        assert sorted(mine) == sorted(theirs)
        assert all(int(mine[n].sum()) == int(theirs[n].sum()) for n in theirs)
        moved = [n for n in theirs if not torch.equal(mine[n], theirs[n]) and 0 < int(theirs[n].sum()) < theirs[n].numel()]
        assert moved, "a shuffle that leaves every partly pruned layer in place is no control"


def test_inverted_mask_keeps_exactly_the_lowest_ranked_weights_in_each_layer(runs):
    root, pre, ref = runs
    out = _imp(root, pre, "inverted", "inverted", ref)
    loaded, _ = _inputs(pre, ref, 1)
    m = read_metrics(paths.metrics(out))
    assert m["method"] == "inverted" and m["rounds"][0]["inverted"] == "full"
    for r in range(1, ROUNDS + 1):
        mine, theirs = _mask(out, r), _mask(ref, r)
        for n, kept in theirs.items():
            k = int(kept.sum())
            assert int(mine[n].sum()) == k
            w = loaded.final_state[n].abs().flatten()
            # The complement ranking: every kept weight is no larger than every dropped one, in each layer.
            flat = mine[n].flatten()
            if 0 < k < w.numel():
                assert w[flat].max() <= w[~flat].min()
            assert torch.equal(mine[n], keep_highest({n: -loaded.final_state[n].abs()}, k)[n])
    # Round 1 of IMP keeps each layer's largest dense weights, the inversion its smallest: they overlap only where
    # a layer keeps more than half its weights, by exactly that excess.
    mine, theirs = _mask(out, 1), _mask(ref, 1)
    for n in theirs:
        k, size = int(theirs[n].sum()), theirs[n].numel()
        assert int((mine[n] & theirs[n]).sum()) == max(0, 2 * k - size)


def test_inverted_snip_turns_snips_scores_around(runs):
    root, pre, ref = runs
    snip = _imp(root, pre, "snip", "snip", ref)
    out = _imp(root, pre, "inverted-of-snip", "inverted", snip)
    loaded, x = _inputs(pre, ref, 1)
    model = loaded.model_from(loaded.rewind_state("ep1"))
    scores = CRITERIA.get("snip")(model, list(x.weights), score_batches(loaded, torch.device("cpu")), seed=loaded.seed)
    counts = {n: int(m.sum()) for n, m in _mask(snip, 1).items()}
    expected = keep_highest({n: -s for n, s in scores.items()}, counts)
    mine = _mask(out, 1)
    assert all(torch.equal(mine[n], expected[n]) for n in expected)
    assert read_metrics(paths.metrics(out))["rounds"][0]["inverted"] == "snip"


def test_inverting_a_random_mask_is_refused_before_anything_is_written(runs, capsys):
    root, pre, ref = runs
    rand = _imp(root, pre, "random_prune", "random_prune", ref)
    out = root / "inverted-of-random"
    rc = main(["imp", "--pretrain", str(pre), "--out", str(out), "--rounds", str(ROUNDS), "--variant", "inverted",
               "--reference", str(rand), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and "random_prune draws or copies its mask" in err[0]


def test_rewind_magnitude_prunes_the_rewind_point_weights(runs):
    root, pre, ref = runs
    out = _imp(root, pre, "rewind_magnitude", "rewind_magnitude", ref)
    loaded, _ = _inputs(pre, ref, 1)
    rewind = loaded.rewind_state("ep1")
    for r in range(1, ROUNDS + 1):
        theirs = _mask(ref, r)
        expected = keep_highest({n: rewind[n].abs() for n in theirs}, theirs.kept)
        mine = _mask(out, r)
        assert all(torch.equal(mine[n], expected[n]) for n in theirs)


def test_a_control_of_another_variant_reads_that_variants_run():
    assert kinds.imp_run("random_prune_layerwise-of-snip") == ("random_prune_layerwise", "snip")
    assert kinds.imp_run("random_reinit-of-grasp") == ("random_reinit", "grasp")
    assert kinds.imp_run("inverted") == ("inverted", "full")
    assert "inverted" in IMP_VARIANTS and IMP_VARIANTS.get("snip").ranks and not IMP_VARIANTS.get("random_prune").ranks


def test_interpolation_is_exact_at_the_ends_and_keeps_pruned_weights_at_zero():
    a = {"w": torch.tensor([1.0, 0.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([-1.0, 0.0, 5.0]), "n": torch.tensor(9)}
    assert torch.equal(interpolate(a, b, 0.0)["w"], a["w"]) and torch.equal(interpolate(a, b, 1.0)["w"], b["w"])
    mid = interpolate(a, b, 0.5)
    assert torch.equal(mid["w"], torch.tensor([0.0, 0.0, 4.0])) and int(mid["n"]) == 4
    assert barrier([0.9, 0.5, 0.8]) == pytest.approx(0.5 - 0.15)
    assert barrier([0.9, 0.95, 0.9]) == 0.0


def test_instability_run_reproduces_both_copies_at_the_ends(runs):
    root, pre, ref = runs
    out = root / "instability"
    assert main(["instability", "--pretrain", str(pre), "--reference", str(ref), "--out", str(out), "--points", "5",
                 "--rounds", "0,2", "--no-progress"]) == 0
    m = read_metrics(paths.metrics(out))
    assert m["method"] == "instability" and [r["round"] for r in m["rounds"]] == [0, 2]
    dense, ticket = m["rounds"]
    assert dense["sparsity"] == 0.0 and ticket["sparsity"] == pytest.approx(_mask(ref, 2).sparsity())
    loaded = load_pretrained(pre)
    from ticketbench.methods.common import train_round
    from ticketbench.train import evaluate

    mask = _mask(ref, 2)
    rewind = loaded.rewind_state("ep1")
    for offset, end in ((0, 0), (1, -1)):
        model, _ = train_round(loaded, rewind, mask, loaded.train_hp, device=torch.device("cpu"), progress=False,
                               seed_offset=offset)
        assert evaluate(model, loaded.splits.test, torch.device("cpu")) == pytest.approx(
            ticket["interpolation_test_acc"][end], abs=1e-12)
    # Copy A is the IMP round's own training (same recipe, same data order): the same ticket accuracy.
    assert ticket["test_acc"] == read_metrics(paths.metrics(ref))["rounds"][1]["test_acc"]
    assert len(ticket["interpolation_test_acc"]) == 5
    assert ticket["error_barrier"] == pytest.approx(barrier(ticket["interpolation_test_acc"]))
    assert ticket["stable"] == (ticket["error_barrier"] < 0.02)
    assert all_kept(mask).sparsity() == 0.0


def test_instability_refuses_a_round_the_reference_lacks(runs, capsys):
    root, pre, ref = runs
    out = root / "instability-bad"
    rc = main(["instability", "--pretrain", str(pre), "--reference", str(ref), "--out", str(out), "--rounds", "0,7",
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists() and len(err) == 1 and "instability.rounds" in err[0]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One seed of a cell laid out as the workflow writes it: the dense run, full IMP, two controls of it and the
    instability of its training."""
    root = tmp_path_factory.mktemp("grid") / "results"
    cell = root.joinpath("{}", "synthetic", "test_resnet", "seed0").as_posix()
    pre = pretrain_synthetic(cell.format("pretrain"), epochs=2)
    imp = f"{cell.format('imp')}"
    assert main(["imp", "--pretrain", str(pre), "--out", f"{imp}/full", "--rounds", str(ROUNDS), "--rate", "0.6",
                 "--no-progress"]) == 0
    for v in ("inverted", "random_prune_layerwise"):
        assert main(["imp", "--pretrain", str(pre), "--out", f"{imp}/{v}", "--rounds", str(ROUNDS), "--rate", "0.6",
                     "--variant", v, "--reference", f"{imp}/full", "--no-progress"]) == 0
    assert main(["instability", "--pretrain", str(pre), "--reference", f"{imp}/full", "--out",
                 f"{cell.format('instability')}/full", "--points", "3", "--no-progress"]) == 0
    return root


def test_the_report_puts_every_control_beside_its_ticket(grid):
    from ticketbench.report.results import Results
    from ticketbench.report.sanity import beaten_text, sanity_tables

    res = Results.scan(grid)
    tables = {t.id: t for t in sanity_tables(res)}
    sanity = tables["sanity_synthetic_test_resnet"]
    by_control = {row[1]: row for row in sanity.rows}
    assert set(by_control) == {"inverted ranking", "mask shuffled within each layer", "instability of its training"}
    for label in ("inverted ranking", "mask shuffled within each layer"):
        row = by_control[label]
        assert row[0] == "full" and row[-1].endswith("(one seed)") and label in row[-1]
        assert row[-1].startswith(("the ticket beats", "its ", "undecided"))
    assert "-point rule" in by_control["instability of its training"][-1]
    barrier = tables["grid_instability_synthetic_test_resnet"]
    assert [row[2] for row in barrier.rows] == [0, 1, 2]  # the dense network and both rounds
    text = beaten_text(res, ("synthetic", "test_resnet"))
    assert text.startswith("; of its sanity controls on this cell") and "inverted ranking" in text


def test_batchnorm_reestimation_recomputes_the_statistics_at_every_point(runs):
    root, pre, ref = runs
    out = root / "instability-bn"
    assert main(["instability", "--pretrain", str(pre), "--reference", str(ref), "--out", str(out), "--points", "3",
                 "--rounds", "1", "--batchnorm", "reestimate", "--bn-batches", "2", "--no-progress"]) == 0
    (row,) = read_metrics(paths.metrics(out))["rounds"]
    assert row["batchnorm"] == "reestimate" and len(row["interpolation_test_acc"]) == 3
    assert 0 <= row["error_barrier"] <= 1
    # Statistics of two training batches are not the running averages of training: the ends move.
    from ticketbench.methods.instability import reestimate_batchnorm

    loaded = load_pretrained(pre)
    model = loaded.model_from(loaded.final_state)
    before = {n: b.clone() for n, b in model.named_buffers() if n.endswith("running_mean")}
    reestimate_batchnorm(model, loaded, 64, 2, torch.device("cpu"))
    after = dict(model.named_buffers())
    assert before and all(not torch.equal(before[n], after[n]) for n in before)
