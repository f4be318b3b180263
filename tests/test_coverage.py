"""`ticketbench report --coverage`: every cell of every paper table maps to a job of the paper grid, dry and
without torch, from the same declarations the report's resolvers read through."""

from pathlib import Path

import pytest

from ticketbench.pipeline import load_config_files, planned_runs
from ticketbench.report.coverage import MAPPED, PAPER_ONLY, UNMAPPED, coverage
from ticketbench.report.paper import load_tables

from test_cli_startup import _run

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "config" / "paper_tables"
DEFAULT, PAPER = str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "paper.yaml")

# Cells no run of ticketbench can fill: each needs a method the suite does not implement (the reason is the
# coverage's own). Listed here so that a new gap, or a closed one, shows.
GAPS = {
    ("slth_a2", None): "no cross-dataset ticket transfer",
    ("prac_claims", "vs pruning-at-init"): "no pruning-at-init IMP variant",
    ("prac_claims", "Random subsets needed to match PrAC"): "no random-subset data selector",
    ("slth_claims", "Rewinding ablation"): "one rewind point",
    ("slth_claims", "Mask-source ablation"): "regroups IMP masks only",
    ("jp_claims", "short restriction"): "does not define the short restriction",
}


def _paper() -> dict:
    return load_config_files([DEFAULT, PAPER])


def _gap(cell) -> str | None:
    return next((why for (table, start), why in GAPS.items()
                 if cell.table == table and (start is None or cell.row.startswith(f"claim={start}"))), None)


def test_the_paper_grid_maps_every_cell_it_can_run():
    cells = coverage(_paper(), TABLES)
    tables = load_tables(TABLES)
    assert len(cells) == sum(len(t.rows) * len(t.value_columns) for t in tables)
    unmapped = [c for c in cells if c.status == UNMAPPED]
    assert all(_gap(c) and _gap(c) in c.detail for c in unmapped), [c for c in unmapped if not _gap(c)]
    assert {_gap(c) for c in unmapped} == set(GAPS.values())
    assert len(unmapped) == 18 + 5  # slth_a2's 9 rows x 2 columns, one cell of each other row
    # What is left is paper-only and says so: model sizes, weight init, where a claim is stated.
    paper_only = {(c.table, c.column) for c in cells if c.status == PAPER_ONLY}
    assert paper_only == {("slth_1", "model_size"), ("imp_openlth", "init"), *{(t, "where") for t in (
        "prac_claims", "slth_claims", "jp_claims")}}
    planned = planned_runs(_paper())
    for c in cells:
        if c.status == MAPPED:
            for job in c.detail.split("; "):
                rule, path = job.split(" ", 1)
                assert planned[path.replace("seed{0,1,2}", "seed0")] == rule, c


def test_the_new_runs_fill_the_tables_they_were_added_for():
    by = {(c.table, c.row, c.column): c for c in coverage(_paper(), TABLES)}
    assert "prac_ablation results/prac/cifar10/cifar_resnet20/seed{0,1,2}/ef2/metrics.json" == \
        by[("prac_a4", "ef=2", "accuracy")].detail
    assert by[("prac_a4", "ef=0", "accuracy")].detail.startswith("prac results/prac/cifar10/cifar_resnet20/seed")
    assert "/structure/cifar10/cifar_resnet18/seed{0,1,2}/regroup-reinit/" in \
        by[("slth_a4", "round=1", "acc_random")].detail
    assert "/tiny-imagenet/resnet50_cifar_stem/" in by[("slth_a7", "round=1", "refill_acc")].detail
    mbnet = by[("slth_1", "dataset=CIFAR-100, network=MBNet-v1", "batch_size")]
    assert "/cifar100/cifar_mobilenet_v1/" in mbnet.detail
    assert "/magnitude-s0.95-e160/" in by[("jp_r1", "model=ResNet-32, dataset=CIFAR-100, sparsity=95",
                                          "top1_160s")].detail
    low = by[("prac_1", "network=ResNet-56, variant=Low, dataset=None", "learning_rate")].detail
    assert low == "prac_ablation results/prac/cifar100/cifar_resnet56/seed{0,1,2}/low/metrics.json"
    tiny = by[("prac_claims", "claim=Saving, Tiny: ResNet-18 / VGG-16", "value")]
    assert tiny.status == MAPPED and "/tiny-imagenet/resnet18/" in tiny.detail


def test_a_cell_whose_run_is_missing_or_runs_another_recipe_says_why(tmp_path):
    config = _paper()
    del config["experiments"]["prac_ablations"]["ef2"]
    config["recipes"]["jackpot"]["jackpot"]["epochs"] = 10
    by = {(c.table, c.row, c.column): c for c in coverage(config, TABLES)}
    ef2 = by[("prac_a4", "ef=2", "accuracy")]
    assert ef2.status == UNMAPPED
    assert "experiments.prac_ablations.ef2 does not list cifar10/cifar_resnet20" in ef2.detail
    thirty = by[("jp_r1", "model=VGGNet-19, dataset=CIFAR-10, sparsity=90", "top1_30s")]
    assert thirty.status == UNMAPPED and "needs jackpot.epochs=30" in thirty.detail and "sets 10" in thirty.detail
    # The 160-epoch search sets its own length, whatever the recipe's.
    assert by[("jp_r1", "model=VGGNet-19, dataset=CIFAR-10, sparsity=90", "top1_160s")].status == MAPPED


def test_the_embedded_default_maps_no_paper_cell():
    # Digits only: every cell is unmapped or paper-only, and the report says "not run" for them (test_report).
    cells = coverage(load_config_files([DEFAULT]), TABLES)
    assert {c.status for c in cells} == {UNMAPPED, PAPER_ONLY}
    assert all("is not a cell of the grid" in c.detail or _gap(c) for c in cells if c.status == UNMAPPED)


@pytest.mark.parametrize("files,code", [([PAPER], 1), ([], 1)], ids=["paper", "default"])
def test_the_coverage_command_is_dry_and_imports_no_torch(files, code):
    argv = ["report", "--coverage", "--tables", TABLES, *(a for f in files for a in ("--configfile", f))]
    rc, heavy, out = _run(*argv)
    assert (rc, heavy) == (code, [])
    lines = out.splitlines()
    assert lines[-1].startswith("coverage of config/config.yaml" + (f" + {PAPER}" if files else "") + ": ")
    tables = load_tables(TABLES)
    assert len(lines) - 1 == sum(len(t.rows) * len(t.value_columns) for t in tables)
    if files:
        assert lines[-1].endswith("23 unmapped")
        assert "prac_a4 | ef=2 | accuracy | mapped: prac_ablation " in out


def test_a_bad_experiments_entry_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  jackpot_searches:\n    magnitude-s0.9-x160: [digits/test_resnet]\n")
    rc, heavy, out = _run("report", "--coverage", "--configfile", bad)
    assert (rc, heavy) == (2, [])
