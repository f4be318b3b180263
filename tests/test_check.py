"""The accuracy gate: baselines pinned from measured spread, a rule that catches real drops, loud failures."""

import base64
import json
import math
import re
from pathlib import Path

import pytest
import yaml

from ticketbench.check import COLUMNS, MAIN_DROP, RULE, allowed, floor_of, is_main
from ticketbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
CELL = ("digits", "test_resnet")
# Per-seed accuracies of a noisy world: main cells move by about a point between seeds, the jackpot by ten.
PRETRAIN = [0.96, 0.975, 0.97, 0.98]
IMP = [[0.97, 0.98, 0.975, 0.985], [0.975, 0.985, 0.98, 0.97]]
JACKPOT = [0.8, 0.9, 0.7, 0.85]
REGROUP_SPARSITY = [0.55, 0.58, 0.56, 0.57]
DIGITS_TEST = 359  # test examples in the digits split (ticketbench.data.digits)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_results(root: Path, seeds, shift: float = 0.0, test_n: int | None = None) -> Path:
    """A results tree with the shapes `ticketbench check` reads, one value per seed from the lists above; with
    ``test_n``, every run records a test set of that size, as training writes it (``test_correct``)."""
    # The gate reads only the size; the bits are there so the record has the shape training writes.
    rec = {} if test_n is None else {"test_correct": {"n": test_n, "bits": base64.b64encode(
        bytes((test_n + 7) // 8)).decode("ascii")}}
    for s in seeds:
        base = {"dataset": CELL[0], "backbone": CELL[1], "seed": s, "train_iterations": 1, "wall_seconds": 1.0,
                "versions": {}, **rec}
        cell = root / "{}" / CELL[0] / CELL[1] / f"seed{s}"
        _write(Path(str(cell).format("pretrain")) / "metrics.json",
               {**base, "method": "pretrain", "sparsity": 0.0, "test_acc": PRETRAIN[s] + shift, "val_acc": PRETRAIN[s]})
        rounds = [{"round": r, "sparsity": 1 - 0.8 ** r, "test_acc": IMP[r - 1][s] + shift, "val_acc": IMP[r - 1][s],
                   **rec} for r in (1, 2)]
        _write(Path(str(cell).format("imp")) / "full" / "metrics.json",
               {**base, "method": "imp", **{k: rounds[-1][k] for k in ("sparsity", "test_acc", "val_acc")},
                "rounds": rounds})
        _write(Path(str(cell).format("jackpot")) / "magnitude-s0.9" / "metrics.json",
               {**base, "method": "jackpot", "sparsity": 0.9, "test_acc": JACKPOT[s] + shift, "val_acc": JACKPOT[s]})
        _write(Path(str(cell).format("structure")) / "regroup" / "metrics.json",
               {**base, "method": "regroup", "sparsity": REGROUP_SPARSITY[s], "test_acc": IMP[1][s], "val_acc": IMP[1][s]})
    return root


@pytest.fixture(params=[None, DIGITS_TEST], ids=["no-test-set", "test-set"])
def pinned(tmp_path, request):
    """Baselines from two 'kernel paths' of four seeds each (the second a little off), and a 3-seed run to check;
    once as runs written before they recorded their test set, once as runs that record it."""
    a = make_results(tmp_path / "native", range(4), test_n=request.param)
    b = make_results(tmp_path / "avx2", range(4), shift=0.002, test_n=request.param)
    base = tmp_path / "baselines.json"
    assert main(["check", "--accept", "--baselines", str(base), "--results", str(a), "--results", str(b)]) == 0
    run = make_results(tmp_path / "run", range(3), test_n=request.param)
    return base, run


def _check(base, run, capsys):
    code = main(["check", "--results", str(run), "--baselines", str(base)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


STATUSES = {"ok", "FAIL", "new"}


def _line(out: str, name: str) -> str:
    """The table row of ``cell:metric``."""
    cell, metric = name.rsplit(":", 1)
    return next(line for line in out.splitlines() if line.split()[:2] == [cell, metric])


def _row(out: str, name: str) -> list[str]:
    return _line(out, name).split()


def _verdict(out: str, name: str) -> str:
    """ok / new, or for a FAIL row its reason (DROP, DRIFT, CHANGED, NaN, missing)."""
    row = _row(out, name)
    i = next(i for i, t in enumerate(row) if i >= 2 and t in STATUSES)
    return row[i + 1].rstrip(";") if row[i] == "FAIL" else row[i]


def _allowed(out: str, name: str) -> tuple[float, str]:
    """The allowed drop of a row, in points, and what set it."""
    m = re.search(r"\)\s+±?([0-9.]+) \((sd|test set|floor)\)\s", _line(out, name))
    return float(m.group(1)), m.group(2)


def _metrics(run: Path, *parts: str) -> Path:
    return run.joinpath(*parts[:1], *CELL, *parts[1:], "metrics.json")


def _edit(path: Path, **changes):
    data = json.loads(path.read_text())
    for k, v in changes.items():
        if k == "round2_test_acc":
            data["rounds"][1]["test_acc"] = v
        else:
            data[k] = v
    path.write_text(json.dumps(data))


def test_baselines_hold_mean_and_spread_and_the_output_states_the_rule(pinned, capsys):
    base, run = pinned
    spec = json.loads(base.read_text())
    entry = spec["metrics"]["pretrain/digits/test_resnet:test_acc"]
    assert entry["n"] == 8 and entry["kind"] == "accuracy"
    assert entry["mean"] == pytest.approx(sum(PRETRAIN) / 4 + 0.001)
    assert spec["metrics"]["imp/digits/test_resnet/full#round1:sparsity"]["kind"] == "exact"
    assert spec["metrics"]["structure/digits/test_resnet/regroup:sparsity"]["kind"] == "outcome"
    code, out, _ = _check(base, run, capsys)
    assert code == 0, out
    assert out.count("rule: ") == 1 and "z*max(sd, se_test, floor)*sqrt(1/n_seeds + 1/n_baseline)" in out
    row = " ".join(_row(out, "pretrain/digits/test_resnet:test_acc"))
    assert f"{100 * entry['mean']:.2f} ± {100 * entry['sd']:.2f} (8)" in row and " (3) " in row
    assert row.endswith("ok main cell")


def test_a_drop_past_the_allowance_fails_and_a_smaller_one_passes(pinned, capsys):
    base, run = pinned
    spec = json.loads(base.read_text())["metrics"]
    name = "imp/digits/test_resnet/full#round2:test_acc"
    tol = allowed(spec[name], 3, 4.0, floor_of(name), spec[name].get("n_test"))
    assert tol < MAIN_DROP, "a main cell must flag a 3-point drop"
    got = sum(IMP[1][:3]) / 3
    path = _metrics(run, "imp", "seed0", "full")
    # Shift seed 0 so that the 3-seed mean lands just inside, then just outside, the allowance.
    inside = spec[name]["mean"] - tol + 0.001
    _edit(path, round2_test_acc=IMP[1][0] + 3 * (inside - got))
    code, out, _ = _check(base, run, capsys)
    assert code == 0 and _verdict(out, name) == "ok", out
    outside = spec[name]["mean"] - tol - 0.001
    _edit(path, round2_test_acc=IMP[1][0] + 3 * (outside - got))
    code, out, _ = _check(base, run, capsys)
    assert code == 1 and _verdict(out, name) == "DROP"
    assert f"FAILED {name}: DROP" in out


def test_a_gain_is_not_a_regression_but_an_outcome_moves_both_ways(pinned, capsys):
    base, run = pinned
    for s in range(3):
        _edit(_metrics(run, "pretrain", f"seed{s}"), test_acc=1.0)
    code, out, _ = _check(base, run, capsys)
    # A gain past the allowance a drop has is not a failure, but it is not passed silently either.
    assert code == 0
    name = "pretrain/digits/test_resnet:test_acc"
    assert "better than expected: check" in _line(out, name)
    assert f"CHECK {name}: better than expected: check (baseline" in out
    assert "1 better than expected (check them)" in out
    for s in range(3):
        _edit(_metrics(run, "structure", f"seed{s}", "regroup"), sparsity=0.4)
    code, out, _ = _check(base, run, capsys)
    assert code == 1 and _verdict(out, "structure/digits/test_resnet/regroup:sparsity") == "DRIFT"


def test_sparsity_fixed_by_construction_is_exact(pinned, capsys):
    base, run = pinned
    _edit(_metrics(run, "imp", "seed1", "full"), sparsity=0.36 + 1e-6)
    code, out, _ = _check(base, run, capsys)
    assert code == 1 and _verdict(out, "imp/digits/test_resnet/full:sparsity") == "CHANGED"


def test_nan_fails_naming_the_file(pinned, capsys):
    base, run = pinned
    path = _metrics(run, "jackpot", "seed2", "magnitude-s0.9")
    _edit(path, test_acc=float("nan"))
    code, out, err = _check(base, run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err and "test_acc" in err


def test_a_truncated_metrics_file_fails_naming_it(pinned, capsys):
    base, run = pinned
    path = _metrics(run, "pretrain", "seed1")
    path.write_text(path.read_text()[:40])
    code, out, err = _check(base, run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err


def test_a_missing_cell_fails_and_an_unknown_one_is_listed_as_new(pinned, capsys):
    base, run = pinned
    import shutil

    shutil.rmtree(run / "jackpot")
    _write(run / "jackpot" / CELL[0] / CELL[1] / "seed0" / "random-s0.9" / "metrics.json",
           {"method": "jackpot", "dataset": CELL[0], "backbone": CELL[1], "seed": 0, "sparsity": 0.9, "test_acc": 0.4,
            "val_acc": 0.4, "train_iterations": 1, "wall_seconds": 1.0, "versions": {}})
    code, out, _ = _check(base, run, capsys)
    assert code == 1
    assert _verdict(out, "jackpot/digits/test_resnet/magnitude-s0.9:test_acc") == "missing"
    assert _verdict(out, "jackpot/digits/test_resnet/random-s0.9:test_acc") == "new"


def test_noisy_cells_get_a_wide_gate_and_an_aggregate(pinned, capsys):
    base, run = pinned
    code, out, _ = _check(base, run, capsys)
    name = "jackpot/digits/test_resnet/magnitude-s0.9:test_acc"
    assert _allowed(out, name)[0] > 100 * MAIN_DROP and _line(out, name).endswith("wide; aggregate jackpot/*:test_acc")
    assert _row(out, "jackpot/*:test_acc")[-1] == "aggregate"


def test_pinning_refuses_main_cells_that_cannot_flag_a_3_point_drop(tmp_path, capsys):
    a = make_results(tmp_path / "a", range(2))
    _edit(_metrics(a, "pretrain", "seed1"), test_acc=0.80)  # two seeds 16 points apart
    code = main(["check", "--accept", "--baselines", str(tmp_path / "b.json"), "--results", str(a)])
    assert code == 1 and "cannot flag a 3% drop" in capsys.readouterr().out


def test_the_pinned_smoke_baselines_flag_a_3_point_drop_in_every_main_cell():
    """The committed baselines, at the seed count CI runs, keep every main accuracy cell under 3 points."""
    spec = json.loads((ROOT / "tests" / "baselines" / "smoke.json").read_text())
    seeds = len(yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())["grid"]["seeds"])
    main_rows = {n: e for n, e in spec["metrics"].items() if e["kind"] == "accuracy" and is_main(n.rsplit(":", 1)[0])}
    assert len(main_rows) >= 10
    for name, entry in main_rows.items():
        # The smoke runs record their test set, so the test-set floor applies on top of the measured spread.
        n_test = entry.get("n_test", DIGITS_TEST) if name.endswith(":test_acc") else None
        for tol in (allowed(entry, seeds, spec["z"], floor_of(name)),
                    allowed(entry, seeds, spec["z"], floor_of(name), n_test)):
            assert math.isfinite(tol) and tol < MAIN_DROP, f"{name} flags only drops > {tol:.3f}"


def test_the_output_is_one_table_then_the_rule_then_a_summary(pinned, capsys):
    base, run = pinned
    for s in range(3):
        _edit(_metrics(run, "structure", f"seed{s}", "regroup"), sparsity=0.4)
    code, out, _ = _check(base, run, capsys)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].split("  ")[0] == "cell" and re.split(r"\s{2,}", lines[0].strip()) == list(COLUMNS)
    table = lines[1:lines.index("")]
    spec = json.loads(base.read_text())["metrics"]
    assert len(table) == len(spec) and all(_verdict(out, f"{l.split()[0]}:{l.split()[1]}") for l in table)
    assert {t for l in table for t in l.split() if t in STATUSES} <= STATUSES
    assert [l for l in table if " FAIL " in l] == [_line(out, "structure/digits/test_resnet/regroup:sparsity")]
    assert lines.count(RULE) == 1 and lines.index(RULE) == len(table) + 2
    assert lines[-1].startswith("check: FAIL: ") and " 1 FAIL" in lines[-1]


def test_the_test_set_floors_a_cell_whose_runs_agree(tmp_path, capsys):
    """Four runs with the same accuracy (sd 0) on 359 test examples: the allowed drop is the test set's
    standard error, z * sqrt(p(1-p)/N) * sqrt(1/n_seeds + 1/n_baseline), not the 0.5-point constant floor."""
    name = "pretrain/digits/test_resnet:test_acc"
    p = 0.97

    def same_acc(root, seeds):
        make_results(root, seeds, test_n=DIGITS_TEST)
        for s in seeds:
            _edit(_metrics(root, "pretrain", f"seed{s}"), test_acc=p)
        return root

    base = tmp_path / "b.json"
    pinned_from = same_acc(tmp_path / "a", range(4))
    assert main(["check", "--accept", "--baselines", str(base), "--results", str(pinned_from)]) == 0
    entry = json.loads(base.read_text())["metrics"][name]
    assert entry["sd"] == 0 and entry["n_test"] == DIGITS_TEST
    expected = 4.0 * math.sqrt(p * (1 - p) / DIGITS_TEST) * math.sqrt(1 / 3 + 1 / 4)
    tol = allowed(entry, 3, 4.0, floor_of(name), DIGITS_TEST)
    assert tol == pytest.approx(expected) and tol > allowed(entry, 3, 4.0, floor_of(name))
    assert allowed({**entry, "sd": 0.05}, 3, 4.0, floor_of(name), DIGITS_TEST) > expected  # a floor, never a cap

    run = same_acc(tmp_path / "run", range(3))
    code, out, _ = _check(base, run, capsys)
    assert code == 0 and _allowed(out, name) == (pytest.approx(100 * expected, abs=0.006), "test set")
    for delta, verdict in ((tol - 0.001, "ok"), (tol + 0.001, "DROP")):
        for s in range(3):
            _edit(_metrics(run, "pretrain", f"seed{s}"), test_acc=p - delta)
        code, out, _ = _check(base, run, capsys)
        assert _verdict(out, name) == verdict and code == (verdict != "ok"), out
    # A run that does not record its test set is judged on the size the baselines recorded.
    for s in range(3):
        path = _metrics(run, "pretrain", f"seed{s}")
        data = json.loads(path.read_text())
        data.pop("test_correct")
        path.write_text(json.dumps(data))
    code, out, _ = _check(base, run, capsys)
    assert _verdict(out, name) == "DROP" and _allowed(out, name)[1] == "test set"


def test_without_a_test_set_size_the_constant_floor_stays(tmp_path, capsys):
    a = make_results(tmp_path / "a", range(4))
    base = tmp_path / "b.json"
    assert main(["check", "--accept", "--baselines", str(base), "--results", str(a)]) == 0
    assert not any("n_test" in e for e in json.loads(base.read_text())["metrics"].values())
    entry = {"kind": "accuracy", "mean": 0.97, "sd": 0.0, "n": 4}
    assert allowed(entry, 3, 4.0, 0.005) == allowed(entry, 3, 4.0, 0.005, None) == pytest.approx(
        4.0 * 0.005 * math.sqrt(1 / 3 + 1 / 4))


def test_a_3_point_drop_in_every_main_cell_fails_with_the_test_set_floor(tmp_path, capsys):
    a = make_results(tmp_path / "native", range(4), test_n=DIGITS_TEST)
    b = make_results(tmp_path / "avx2", range(4), shift=0.002, test_n=DIGITS_TEST)
    base = tmp_path / "baselines.json"
    assert main(["check", "--accept", "--baselines", str(base), "--results", str(a), "--results", str(b)]) == 0
    run = make_results(tmp_path / "run", range(3), shift=-MAIN_DROP, test_n=DIGITS_TEST)
    code, out, _ = _check(base, run, capsys)
    main_acc = [n for n in json.loads(base.read_text())["metrics"]
                if n.endswith(":test_acc") and is_main(n.rsplit(":", 1)[0])]
    assert code == 1 and len(main_acc) == 4
    for name in main_acc:
        assert _verdict(out, name) == "DROP" and _allowed(out, name)[1] == "test set", _line(out, name)
