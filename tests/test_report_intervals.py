"""Issue 13: the report's own tables give every number as a mean over seeds with its 95% interval and n, the paper
tables put that mean beside the published number, and the figures draw the spread over seeds."""

import csv
import math
import statistics
from pathlib import Path

import pytest
from scipy import stats

from ticketbench.artifacts import pack_bits
from ticketbench.report import build_report

from test_report import CORE, TABLES, _write

CELL = ("cifar10", "cifar_resnet20")
N_TEST = 200  # test examples per seed: accuracies below are multiples of 1/200
SEEDS = (0, 1, 2)
IMP = {1: [0.92, 0.90, 0.94], 2: [0.91, 0.89, 0.90], 3: [0.88, 0.86, 0.87]}  # round -> accuracy per seed
PRAC = {1: [0.915, 0.90, 0.93], 2: [0.90, 0.885, 0.89]}  # PrAC ran two rounds only: round 3 is not run
CEP = [100, 110, 120]  # round 1, per seed
SAVING = [0.6, 0.5, 0.55]


def _correct(acc: float) -> dict:
    k = round(acc * N_TEST)
    return pack_bits([True] * k + [False] * (N_TEST - k))


def _row(r: int, acc: float, **extra) -> dict:
    return {"round": r, "sparsity": 1 - 0.8 ** r, "test_acc": acc, "val_acc": acc, "train_iterations": 10,
            "find_iterations": 10 * r, "test_correct": _correct(acc), **extra}


def _run(method: str, rows: list[dict], seed: int) -> dict:
    last = rows[-1]
    return {**CORE, "dataset": CELL[0], "backbone": CELL[1], "seed": seed, "method": method, "rounds": rows,
            "sparsity": last["sparsity"], "test_acc": last["test_acc"], "test_correct": last["test_correct"]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("intervals") / "results"
    for i, s in enumerate(SEEDS):
        seed = lambda phase: root / phase / CELL[0] / CELL[1] / f"seed{s}"  # noqa: E731
        dense = [0.93, 0.92, 0.95][i]
        _write(seed("pretrain") / "metrics.json", {**CORE, "dataset": CELL[0], "backbone": CELL[1], "seed": s,
                                                   "method": "pretrain", "sparsity": 0.0, "test_acc": dense,
                                                   "test_correct": _correct(dense)})
        _write(seed("imp") / "full" / "metrics.json", _run("imp", [_row(r, a[i]) for r, a in IMP.items()], s))
        # Round 2 is the highest matching one: PrAC-IMP found its ticket in (1 - SAVING) of full IMP's 20 iterations.
        prac = [_row(r, a[i], cep_size=CEP[i] * r, cet_size=1000 - 10 * i, prac_size=1050 + i,
                     overlap_rate=0.5 + i / 100, prac_trained_fraction=0.4 - i / 50, stopped_early=i == 0,
                     find_iterations=round(10 * r * (1 - SAVING[i])))
                for r, a in PRAC.items()]
        _write(seed("prac") / "metrics.json", _run("prac", prac, s))
        _write(seed("prac") / "savings.json", {"saving": SAVING[i], "matched_sparsity": 0.36, "tolerance": 0.01})
        refill = [_row(r, a[i] - 0.01, time_saving=0.2 * r + i / 100) for r, a in IMP.items()]
        for row in refill:
            row["sparsity"] += i / 1000  # structured tickets miss the target sparsity a little, differently per seed
        _write(seed("structure") / "refill" / "metrics.json", _run("refill", refill, s))
        _write(seed("structure") / "timing" / "timing.json", {
            "round": 1, "batch": 64, "device": "cpu", "threads": 1,
            "end_to_end": {"refill_slim": {"dense_ms": 10.0 + i, "ms": 8.0 + i, "time_saving": 0.2 - i / 100}},
            "layers": [{"layer": f"conv{k}", "refill_slim_speedup": 1.1 + k / 10 + i / 20} for k in range(3)]})
        jp = seed("jackpot")
        _write(jp / "magnitude-s0.9" / "metrics.json",
               {**CORE, "dataset": CELL[0], "backbone": CELL[1], "seed": s, "method": "jackpot", "init": "magnitude",
                "sparsity": 0.9, "test_acc": dense - 0.01, "test_correct": _correct(dense - 0.01),
                "weights_unchanged": True, "epochs": [{"epoch": e} for e in range(1, 31)]})
        _write(jp / "cost-s0.9.json", {"factor": 4.0 + i, "magnitude_curve": [0.5 + i / 20, 0.9],
                                       "random_curve": [0.1, 0.6 + i / 20]})
        _write(jp / "overlap-random-s0.9" / "overlap.json",
               {"rows": [{"criterion": "snip", "sparsity": 0.9, "overlap": 0.3 + i / 10, "iou": 0.2 + i / 10}]})
        (jp / "overlap-random-s0.9" / "overlap_layers.csv").write_text(f"layer,snip\nconv0,{0.3 + i / 10}\nconv1,0.5\n")
    # One seed only: its cells have a mean but no interval.
    _write(root / "imp" / CELL[0] / CELL[1] / "seed0" / "random_reinit" / "metrics.json",
           _run("random_reinit", [_row(r, 0.8) for r in IMP], 0))
    out = root.parent / "report"
    return out, build_report(root, TABLES, out), root


def _table(out: Path, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "tables" / f"{name}.csv").open()))


def _t_half(values) -> float:
    return stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def _bounded(values) -> str:
    """A fraction's cell: the mean, its t interval made on the logit scale and mapped back, the per-seed values."""
    z = [math.log(v / (1 - v)) for v in values]
    half = _t_half(z)
    lo, hi = (100 / (1 + math.exp(-(statistics.mean(z) + d))) for d in (-half, half))
    each = ", ".join(f"{100 * v:.2f}" for v in values)
    return f"{100 * statistics.mean(values):.2f} [{lo:.2f}, {hi:.2f}] (n={len(values)}: {each})"


def _wilson_half(accs) -> float:
    # The seeds share one test set: n is its size, not seeds x size.
    k = round(statistics.mean(round(a * N_TEST) / N_TEST for a in accs) * N_TEST)
    ci = stats.binomtest(k, N_TEST).proportion_ci(method="wilson")
    return (ci.high - ci.low) / 2


def test_accuracy_cells_are_the_seed_mean_with_t_and_test_intervals(report):
    out, _, _ = report
    rows = {r["round"]: r for r in _table(out, "grid_imp_cifar10_cifar_resnet20")}
    for r, accs in IMP.items():
        want = f"{_bounded(accs)[:-1]}; test ±{100 * _wilson_half(accs):.2f})"
        assert rows[str(r)]["IMP acc (%)"] == want
    assert rows["1"]["sparsity (%)"] == "20.00"  # fixed by the pruning schedule: shown once, plainly
    assert "(n=1, no interval" in rows["1"]["random_reinit acc (%)"]
    assert rows["3"]["PrAC ticket acc (%)"] == "not run" and rows["3"]["PrAC set (%)"] == "not run"
    fraction = [0.4, 0.38, 0.36]
    assert rows["1"]["PrAC set (%)"] == _bounded(fraction)


def test_other_seed_varying_numbers_have_intervals(report):
    out, _, _ = report
    savings = _table(out, "grid_prac_savings")[0]
    want = _bounded(SAVING)
    assert savings["iterations saved (%)"] == want
    assert savings["seeds"] == "3" and savings["highest matching sparsity (%)"] == "36.00"
    assert savings["capped"] == "yes"  # PrAC ran two rounds only and still matches at the second
    structure = _table(out, "grid_structure_cifar10_cifar_resnet20")[0]
    assert structure["refill remaining (%)"] == "79.90 [79.65, 80.15] (n=3: 80.00, 79.90, 79.80)"  # seeds differ
    assert structure["refill time saving (%)"].startswith("21.00 ± ")
    timing = _table(out, "grid_timing")[0]
    assert "seed" not in timing and timing["dense (ms)"] == f"11.00 ± {_t_half([10, 11, 12]):.2f} (n=3)"
    jackpot = _table(out, "grid_jackpot_cifar10_cifar_resnet20")[0]
    assert jackpot["Δ vs dense (points)"] == "-1.00 ± 0.00 (n=3)"  # paired by seed: every seed is 1 point below
    sets = _table(out, "grid_prac_sets_cifar10_cifar_resnet20")[0]
    assert sets["early stop"] == "1/3 seeds"
    readme = (out / "README.md").read_text()
    assert readme.count("mean ± 95% t-interval over n seeds") >= 6  # once per grid table


def test_paper_tables_put_the_seed_mean_beside_the_paper(report):
    out, _, _ = report
    rows = list(csv.reader((out / "tables" / "prac_a3.csv").open()))
    half = _t_half(CEP)
    assert rows[1][:4] == ["20.00", "1501", f"110 ± {half:.0f} (n=3)", f"-1391 ± {half:.0f} (n=3)"]
    assert rows[3][2] == "not run"  # 48.80% sparsity is round 3, which PrAC did not run
    a2 = list(csv.reader((out / "tables" / "prac_a2.csv").open()))
    fraction = [statistics.mean([0.4 - i / 50] * 2) for i in range(3)]  # each seed's mean over its rounds
    assert a2[1][3] == f"{100 * statistics.mean(fraction):.2f} ± {100 * _t_half(fraction):.2f} (n=3)"


def test_figures_show_the_spread_and_are_deterministic(report, tmp_path):
    from ticketbench.report import figures
    from ticketbench.report.results import Results

    out, summary, root = report
    assert set(summary["figures"]) == {"accuracy_vs_sparsity.png", "prac_set_size.png", "time_saving.png",
                                       "search_cost.png", "overlap_cifar10_cifar_resnet20_overlap-random-s0.9.png",
                                       "layer_speedup_cifar10_cifar_resnet20_round1.png"}
    for name in summary["figures"]:
        assert (out / "figures" / name).stat().st_size > 1000
    # The bootstrap intervals over seeds are seeded: drawing the bar chart and the bands again gives the same bytes.
    res = Results.scan(root)
    again = [figures.accuracy_vs_sparsity(res, tmp_path), *figures.layer_speedups(res, tmp_path)]
    assert all((tmp_path / n).read_bytes() == (out / "figures" / n).read_bytes() for n in again)
