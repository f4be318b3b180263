"""`ticketbench report --coverage`: every cell of every paper table maps to a job of the paper grid, dry and
without torch, from the same declarations the report's resolvers read through."""

from pathlib import Path

import pytest

from ticketbench.config import load_config_files
from ticketbench.runs import planned_runs
from ticketbench.report.coverage import MAPPED, PAPER_ONLY, UNMAPPED, coverage
from ticketbench.report.deviations import DEVIATIONS
from ticketbench.report.paper import load_tables

from test_cli_startup import _run

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "config" / "paper_tables"
DEFAULT, PAPER = str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "paper.yaml")

# Cells that stand on our reading of something the paper leaves open, and the deviation that states the reading:
# mapped, and the coverage says so. Listed here so that a new reading, or a dropped one, shows.
READINGS = {
    ("slth_a2", None): "slth-a2-network",  # ResNet-50 (the caption) or ResNet-18 (the text)
    ("prac_claims", "Random subsets needed to match PrAC"): "prac-random-subsets",
    ("jp_claims", "short restriction"): "jp-short-restriction",
}


def _paper() -> dict:
    return load_config_files([DEFAULT, PAPER])


def _reading(cell) -> str | None:
    return next((key for (table, start), key in READINGS.items()
                 if cell.table == table and (start is None or cell.row.startswith(f"claim={start}"))), None)


def _jobs(detail: str) -> list[tuple[str, str]]:
    """(rule, path) of each job a mapped cell names, after the reading it stands on if any."""
    jobs = detail.split("): ", 1)[1] if detail.startswith("our reading") else detail
    return [tuple(job.split(" ", 1)) for job in jobs.split("; ")]


def test_the_paper_grid_maps_every_cell():
    cells = coverage(_paper(), TABLES)
    tables = load_tables(TABLES)
    assert len(cells) == sum(len(t.rows) * len(t.value_columns) for t in tables)
    assert [c for c in cells if c.status == UNMAPPED] == []
    # What is left is paper-only and says so: model sizes, weight init, where a claim is stated.
    paper_only = {(c.table, c.column) for c in cells if c.status == PAPER_ONLY}
    assert paper_only == {("slth_1", "model_size"), ("imp_openlth", "init"), *{(t, "where") for t in (
        "prac_claims", "slth_claims", "jp_claims")}}
    planned = planned_runs(_paper())
    keys = {d.key for d in DEVIATIONS}
    for c in cells:
        if c.status == MAPPED:
            key = _reading(c)
            assert c.detail.startswith(f"our reading (see Deviations: {key}): ") == bool(key), c
            assert key is None or key in keys
            for rule, path in _jobs(c.detail):
                assert planned[path.replace("seed{0,1,2}", "seed0")] == rule, c
    assert {_reading(c) for c in cells if c.status == MAPPED} - {None} == set(READINGS.values())


def test_the_former_gaps_map_to_the_runs_added_for_them():
    by = {(c.table, c.row, c.column): c.detail for c in coverage(_paper(), TABLES)}
    claim = {(t, row.split("=", 1)[1].split(" (")[0].split(",")[0]): d for (t, row, col), d in by.items()
             if col == "value" and row.startswith("claim=")}
    pai = claim[("prac_claims", "vs pruning-at-init")]
    assert all(f"imp results/imp/cifar10/cifar_resnet20/seed{{0,1,2}}/{v}/metrics.json" in pai
               for v in ("snip", "grasp", "synflow"))
    assert "prac_ablation results/prac/cifar10/cifar_resnet20/seed{0,1,2}/random_subset/metrics.json" in \
        claim[("prac_claims", "Random subsets needed to match PrAC")]
    rewinds = claim[("slth_claims", "Rewinding ablation")]
    assert all(f"/cifar10/cifar_resnet18/seed{{0,1,2}}/{m}-rw{p}/" in rewinds
               for m in ("refill", "regroup") for p in (10, 20, 50, 100))
    sources = claim[("slth_claims", "Mask-source ablation")]
    assert all(f"/regroup-from-{v}/" in sources for v in ("omp", "random_prune", "snip", "grasp", "synflow", "admm"))
    a2 = by[("slth_a2", "method=IMP-Regroup, remaining=43.99", "time_saving")]
    assert a2.endswith("structure results/structure/cifar10/resnet50/seed{0,1,2}/regroup-transfer-imagenet/"
                       "metrics.json")
    assert "/cifar10/cifar_vgg19_bn/seed{0,1,2}/magnitude-s0.9-r0.5/" in claim[("jp_claims", "short restriction")]
    # The IMP runs the structure runs read are planned with them, as the transfer target's own runs are.
    planned = planned_runs(_paper())
    for folder in ("structure_lth-rw100", "structure_lth-admm"):
        assert planned[f"results/imp/cifar10/cifar_resnet18/seed0/{folder}/metrics.json"] == "imp"
    for run in ("pretrain/cifar10/resnet50/seed0", "imp/cifar10/resnet50/seed0/structure_lth"):
        assert f"results/{run}/metrics.json" in planned


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
    del config["experiments"]["structure_transfers"]["refill-transfer-imagenet"]
    # GraSP's run and its controls, which would run it as their source
    for name in [n for n in config["experiments"]["imp_runs"] if n == "grasp" or n.endswith("-of-grasp")]:
        del config["experiments"]["imp_runs"][name]
    config["recipes"]["jackpot"]["jackpot"]["epochs"] = 10
    by = {(c.table, c.row, c.column): c for c in coverage(config, TABLES)}
    ef2 = by[("prac_a4", "ef=2", "accuracy")]
    assert ef2.status == UNMAPPED
    assert "experiments.prac_ablations.ef2 does not list cifar10/cifar_resnet20" in ef2.detail
    a2 = by[("slth_a2", "method=IMP-Refill, remaining=64.14", "transfer_acc")]
    assert a2.status == UNMAPPED
    assert "experiments.structure_transfers.refill-transfer-imagenet does not list cifar10/resnet50" in a2.detail
    pai = next(c for (t, row, col), c in by.items() if row.startswith("claim=vs pruning-at-init") and col == "value")
    assert pai.status == UNMAPPED and "does not run grasp on cifar10/cifar_resnet20" in pai.detail
    thirty = by[("jp_r1", "model=VGGNet-19, dataset=CIFAR-10, sparsity=90", "top1_30s")]
    assert thirty.status == UNMAPPED and "needs jackpot.epochs=30" in thirty.detail and "sets 10" in thirty.detail
    # The 160-epoch search sets its own length, whatever the recipe's.
    assert by[("jp_r1", "model=VGGNet-19, dataset=CIFAR-10, sparsity=90", "top1_160s")].status == MAPPED


def test_a_cell_read_at_a_round_the_plan_never_reaches_says_why():
    """Fewer rounds than a row's sparsity needs (the miniature's two) leave the row unfilled: coverage says so."""
    config = _paper()
    config["recipes"]["prac"]["imp"]["rounds"] = 2
    config["recipes"]["structure_lth"]["overrides"]["imagenet"]["imp"] = {"rounds": 3}
    by = {(c.table, c.row, c.column): c for c in coverage(config, TABLES)}
    a3 = by[("prac_a3", "sparsity=48.8", "cep")]
    assert a3.status == UNMAPPED and "stops at 36.00% sparsity (2 rounds of 20%" in a3.detail
    # A transfer's rounds are its source's: ImageNet's three reach 48.8%, Table A2's 51.37% remaining (48.63%).
    assert by[("slth_a2", "method=IMP-Refill, remaining=51.37", "transfer_acc")].status == MAPPED
    a2 = by[("slth_a2", "method=IMP-Refill, remaining=41.01", "transfer_acc")]
    assert a2.status == UNMAPPED and "on imagenet/resnet50" in a2.detail


def test_the_embedded_default_maps_no_paper_cell():
    # Digits only: every cell is unmapped or paper-only, and the report says "not run" for them (test_report).
    cells = coverage(load_config_files([DEFAULT]), TABLES)
    assert {c.status for c in cells} == {UNMAPPED, PAPER_ONLY}
    assert all("is not a cell of the grid" in c.detail for c in cells if c.status == UNMAPPED)


@pytest.mark.parametrize("files,code", [([PAPER], 0), ([], 1)], ids=["paper", "default"])
def test_the_coverage_command_is_dry_and_imports_no_torch(files, code):
    argv = ["report", "--coverage", "--tables", TABLES, *(a for f in files for a in ("--configfile", f))]
    rc, heavy, out = _run(*argv)
    assert (rc, heavy) == (code, [])
    lines = out.splitlines()
    assert lines[-1].startswith("coverage of config/config.yaml" + (f" + {PAPER}" if files else "") + ": ")
    tables = load_tables(TABLES)
    assert len(lines) - 1 == sum(len(t.rows) * len(t.value_columns) for t in tables)
    if files:
        assert lines[-1].endswith(" 0 unmapped")
        assert "prac_a4 | ef=2 | accuracy | mapped: prac_ablation " in out
        assert "jp_claims | claim=short restriction" in out and \
            "| value | mapped: our reading (see Deviations: jp-short-restriction): jackpot " in out


def test_a_bad_experiments_entry_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments:\n  jackpot_searches:\n    magnitude-s0.9-x160: [digits/test_resnet]\n")
    rc, heavy, out = _run("report", "--coverage", "--configfile", bad)
    assert (rc, heavy) == (2, [])
