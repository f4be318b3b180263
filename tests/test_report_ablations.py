"""The paper cells that needed methods of their own: pruning at init, random subsets, Structure-LTH's rewinding and
mask-source ablations, Table A2's transfer and our reading of the short restriction. Each reads its runs as a mean
over seeds with its interval, and nothing where they did not run."""

import pytest

from ticketbench.report import paper_table
from ticketbench.report.needs import Reading
from ticketbench.report.paper import load_tables, needs_of, ours
from ticketbench.report.results import Results

from test_report import TABLES, _rounds, _seed_runs

SEEDS = (0, 1, 2)
RN20_C10, RN18_C10 = ("cifar10", "cifar_resnet20"), ("cifar10", "cifar_resnet18")


@pytest.fixture(scope="module")
def tables():
    return {t.id: t for t in load_tables(TABLES)}


def _claim(tables, table: str, start: str) -> tuple:
    t = tables[table]
    return t, next(r for r in t.rows if str(r["claim"]).startswith(start))


def _runs(root, phase, cell, folder, acc, n_rounds, settings=None, **extra):
    """One run per seed, each round at ``acc`` (plus 0.01 x seed), the same for every round."""
    _seed_runs(root, phase, cell, folder,
               {s: {"method": phase, "test_acc": acc, "rounds": _rounds([acc + 0.01 * s] * n_rounds, **{
                   k: [v] * n_rounds for k, v in extra.items()})} for s in SEEDS}, settings)


def test_prac_against_pruning_at_init_at_the_claimed_sparsity(tmp_path, tables):
    t, row = _claim(tables, "prac_claims", "vs pruning-at-init")
    assert ours(t, row, Results.scan(tmp_path)) == {}
    _runs(tmp_path, "prac", RN20_C10, "", 0.90, 12)
    for variant, acc in (("synflow", 0.89), ("snip", 0.87), ("grasp", 0.86)):
        _runs(tmp_path, "imp", RN20_C10, variant, acc, 12, scored_at="ep3")
    text = ours(t, row, Results.scan(tmp_path))["value"]
    # 93.13% sparsity is round 12 of 20% rounds; the gaps pair seeds, so their interval is 0.
    assert text == ("CIFAR-10 ResNet-20 at 93.13%: PrAC minus SynFlow 1.00 points ± 0.00 (n=3) (scored at ep3); "
                    "SNIP 3.00 points ± 0.00 (n=3) (scored at ep3); GraSP 4.00 points ± 0.00 (n=3) (scored at ep3)")


def test_random_subsets_of_the_prac_sets_size(tmp_path, tables):
    t, row = _claim(tables, "prac_claims", "Random subsets needed to match PrAC")
    need = needs_of(t, row)["value"]
    assert isinstance(need, Reading) and need.deviation == "prac-random-subsets"
    _runs(tmp_path, "imp", RN20_C10, "full", 0.90, 4)
    _runs(tmp_path, "prac", RN20_C10, "", 0.90, 4, prac_trained_fraction=0.4)
    assert ours(t, row, Results.scan(tmp_path)) == {}  # the random-subset run is the claim's
    _runs(tmp_path, "prac", RN20_C10, "random_subset", 0.88, 4, prac_trained_fraction=0.4)
    text = ours(t, row, Results.scan(tmp_path))["value"]
    assert text.startswith("CIFAR-10 ResNet-20: random subsets of the PrAC sets' size (40.00% ± 0.00 (n=3) of the "
                           "data, mean over rounds)")
    assert "random-subset tickets minus PrAC's -2.00 points ± 0.00 (n=3) (mean over rounds)" in text


def test_the_rewinding_ablation_ranks_rewind_points_and_compares_with_random_tickets(tmp_path, tables):
    t, row = _claim(tables, "slth_claims", "Rewinding ablation")
    points = {"": 0.93, "-rw10": 0.935, "-rw20": 0.93, "-rw50": 0.94, "-rw100": 0.925, "-reinit": 0.92}
    for suffix, acc in points.items():
        _runs(tmp_path, "structure", RN18_C10, f"refill{suffix}", acc, 3)
    text = ours(t, row, Results.scan(tmp_path))["value"]
    assert text.startswith("CIFAR-10 RN-18: refill: best 50%; 50% 95.00% [91.89, 97.04] (n=3: 94.00, 95.00, 96.00), "
                           "10% 94.50% ")
    # Rounds 2 and 3 (36% and 49% sparsity) are beyond 30%; regroup did not run, so only refill is shown.
    assert "minus random re-init beyond 30% sparsity: 50% 2.00 points ± 0.00 (n=3), 10% 1.50 points" in text
    assert "regroup" not in text


def test_the_mask_source_ablation_ranks_the_regrouped_tickets(tmp_path, tables):
    t, row = _claim(tables, "slth_claims", "Mask-source ablation")
    accs = {"regroup": 0.93, "regroup-from-omp": 0.93, "regroup-from-snip": 0.90, "regroup-from-admm": 0.91}
    for folder, acc in accs.items():
        _runs(tmp_path, "structure", RN18_C10, folder, acc, 2)
    text = ours(t, row, Results.scan(tmp_path))["value"]
    assert text.startswith("CIFAR-10 RN-18: regrouped tickets by mask source, best first: IMP 94.00% [91.02, 96.10] "
                           "(n=3: 93.00, 94.00, "
                           "95.00), "
                           "OMP 94.00% [91.02, 96.10] (n=3: 93.00, 94.00, 95.00), ADMM 92.00%")
    assert text.index("ADMM") < text.index("SNIP") and "SynFlow" not in text


def test_table_a2_reads_the_transferred_tickets_at_the_nearest_remaining_weight(tmp_path, tables):
    t = tables["slth_a2"]
    row = next(r for r in t.rows if r["method"] == "IMP-Refill" and r["remaining"] == 64.14)
    need = needs_of(t, row)["transfer_acc"]
    assert isinstance(need, Reading) and need.deviation == "slth-a2-network"
    assert ours(t, row, Results.scan(tmp_path)) == {}
    # Rounds at 80% and 64% of the weights left: the row reads round 2, 0.14 points from its 64.14%.
    _runs(tmp_path, "structure", ("cifar10", "resnet50"), "refill-transfer-imagenet", 0.95, 2, time_saving=0.3)
    got = ours(t, row, Results.scan(tmp_path))
    assert float(got["transfer_acc"]) == pytest.approx(96.0) and got["transfer_acc"].n == 3
    assert float(got["time_saving"]) == pytest.approx(30.0)
    # 51.37% left is no round of the run (the nearest, 64%, is further than 2.5 points); Regroup did not run.
    assert ours(t, next(r for r in t.rows if r["remaining"] == 51.37), Results.scan(tmp_path)) == {}
    assert ours(t, next(r for r in t.rows if r["method"] == "IMP-Regroup"), Results.scan(tmp_path)) == {}
    table, _ = paper_table(t, Results.scan(tmp_path))
    assert any("Deviations: slth-a2-network" in note and "ResNet-50" in note for note in table.notes)


def test_the_short_restriction_reads_the_restricted_searches_beside_rate_1(tmp_path, tables):
    t, row = _claim(tables, "jp_claims", "short restriction")
    need = needs_of(t, row)["value"]
    assert isinstance(need, Reading) and need.deviation == "jp-short-restriction"
    cell = ("cifar10", "cifar_vgg19_bn")
    for folder, rate, swing in (("magnitude-s0.9", 1.0, 0.02), ("magnitude-s0.9-r0.5", 0.5, 0.01)):
        epochs = [{"epoch": e, "val_acc": 0.9 + (swing if e % 2 else 0.0)} for e in range(1, 31)]
        _seed_runs(tmp_path, "jackpot", cell, folder, {s: {"method": "jackpot", "test_acc": 0.9, "rate": rate,
                                                            "best_epoch": 20 + s, "epochs": epochs} for s in SEEDS},
                   {"jackpot": {"epochs": 30, "rate": rate}})
    text = ours(t, row, Results.scan(tmp_path))["value"]
    assert text == ("CIFAR-10 VGGNet-19 at 90%: rate 1: 90.00% ± 0.00 (n=3), best epoch 21.0 ± 2.5 (n=3), "
                    "validation swing 2.00 points ± 0.00 (n=3); rate 0.5: 90.00% ± 0.00 (n=3), best epoch 21.0 "
                    "± 2.5 (n=3), validation swing 1.00 points ± 0.00 (n=3)")
