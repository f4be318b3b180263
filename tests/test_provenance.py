"""Safe to share, part 2: provenance is checked and damaged results never pass (issue 25).

Checkpoints, masks and results travel between labs, and the gate is what a lab's CI trusts. Each numbered group is
one finding of the issue's probes and fails on the code before the fix: (1) provenance that was recorded but never
checked, (2) the gate, (3) the report, (4) inputs between stages, (5) CLI values, (6) an interrupted --overwrite.
Fuzz tests close it: damaged metrics.json, hparams.json and safetensors metadata, and CLI values, are either
refused in one line naming the file or key with nothing written, or keep the contract.

The runs are real and tiny (test_resnet, one epoch of the synthetic data); every refusal happens before training.
"""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import pretrain_synthetic
from ticketbench import artifacts, paths
from ticketbench.cli import main
from ticketbench.errors import TicketbenchError
from ticketbench.methods.common import load_pretrained
from ticketbench.report.results import Results

ROOT = Path(__file__).resolve().parents[1]
CELL = ("synthetic", "test_resnet")
SEEDS = (0, 1, 2)
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, argv, *, says=(), out: Path | None = None) -> str:
    """The command exits 2 with one line that holds every word of ``says``, a traceback nowhere, nothing in ``out``."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and len(_lines(err)) == 1 and "Traceback" not in err, err
    for word in says:
        assert word in err, err
    if out is not None:
        assert _files(out) == [], f"a refused run wrote {_files(out)}"
    return err


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A results tree of three seeds (pretrain and 2-round IMP), another dense network of seed 0 with an IMP run from
    it, and baselines pinned from the tree."""
    root = tmp_path_factory.mktemp("provenance")
    results = root / "results"
    for s in SEEDS:
        pre = pretrain_synthetic(Path(paths.run_dir("pretrain", *CELL, s, root=str(results))), epochs=1,
                                 extra=("--seed", str(s)))
        assert main(["imp", "--pretrain", str(pre), "--rounds", "2", "--no-progress", "--out",
                     paths.run_dir("imp", *CELL, s, root=str(results)) + "/full"]) == 0
    other = pretrain_synthetic(root / "other_pre", epochs=2)
    assert main(["imp", "--pretrain", str(other), "--rounds", "2", "--no-progress", "--out", str(root / "other_imp")]) == 0
    base = root / "baselines.json"
    main(["check", "--accept", "--results", str(results), "--baselines", str(base)])  # 1: one epoch is noisy
    assert base.is_file()
    return {"root": root, "results": results, "base": base, "other_imp": root / "other_imp",
            "pre": [Path(paths.run_dir("pretrain", *CELL, s, root=str(results))) for s in SEEDS],
            "imp": [Path(paths.run_dir("imp", *CELL, s, root=str(results))) / "full" for s in SEEDS]}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite(path: Path, tensors=None, meta=None) -> None:
    """Rewrite a safetensors file with the safetensors library, as a user would: new tensors and/or metadata."""
    with safe_open(str(path), "pt") as f:
        header = f.metadata() or {}
    t = load_file(str(path))
    save_file(tensors(t) if tensors else t, str(path), metadata=meta(header) if meta else header)


def _edit_json(path: Path, fn) -> None:
    path.write_text(json.dumps(fn(json.loads(path.read_text()))))


def _imp(pre, out, *extra):
    return ["imp", "--pretrain", pre, "--rounds", "1", "--no-progress", "--out", out, *extra]


def _follow(pre, ref, out):
    return ["imp", "--pretrain", pre, "--variant", "random_prune", "--reference", ref, "--rounds", "2",
            "--no-progress", "--out", out]


# 1. Provenance is checked: hashes recomputed, sources compared, settings agree with what the weights record -------

@pytest.mark.parametrize("change,says", [
    (lambda t: {k: v * float("nan") if v.is_floating_point() else v for k, v in t.items()}, "NaN"),
    (lambda t: {k: v * 0.5 if v.is_floating_point() else v for k, v in t.items()}, "state_hash"),
], ids=["nan-weights", "weights-changed"])
def test_weights_that_are_not_the_ones_their_metadata_names_are_refused(grid, tmp_path, capsys, change, says):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    _rewrite(pre / "model.safetensors", tensors=change)
    _refused(capsys, _imp(pre, tmp_path / "out"), says=("model.safetensors", says), out=tmp_path / "out")


def test_a_changed_rewind_snapshot_is_refused(grid, tmp_path, capsys):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    _rewrite(pre / "rewind" / "ep1.safetensors", tensors=lambda t: {k: torch.zeros_like(v) for k, v in t.items()})
    _refused(capsys, _imp(pre, tmp_path / "out", "--rewind", "ep1"), says=("ep1.safetensors", "state_hash"),
             out=tmp_path / "out")


@pytest.mark.parametrize("which", ["another seed", "another dense network"])
def test_a_reference_or_imp_run_of_another_dense_run_is_refused(grid, tmp_path, capsys, which):
    source = grid["imp"][1] if which == "another seed" else grid["other_imp"]
    _refused(capsys, _follow(grid["pre"][0], source, tmp_path / "out"), says=("reference=", "started from"),
             out=tmp_path / "out")
    _refused(capsys, ["structure", "--pretrain", grid["pre"][0], "--imp", source, "--rounds", "1", "--no-progress",
                      "--out", tmp_path / "st"], says=("imp=", "started from"), out=tmp_path / "st")


@pytest.mark.parametrize("key,change", [
    ("seed", lambda h: {**h, "settings": {**h["settings"], "seed": 7}}),
    ("data.dataset", lambda h: {**h, "settings": {**h["settings"], "data": {**h["settings"]["data"], "dataset": "digits"}}}),
    ("model.backbone", lambda h: {**h, "settings": {**h["settings"], "model": {"backbone": "cifar_resnet20"}}}),
])
def test_an_edited_hparams_json_cannot_relabel_a_run(grid, tmp_path, capsys, key, change):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    _edit_json(pre / "hparams.json", change)
    _refused(capsys, _imp(pre, tmp_path / "out"), says=(key,), out=tmp_path / "out")


def test_an_edited_mask_is_refused(grid, tmp_path, capsys):
    ref = _copy(grid["imp"][0], tmp_path / "ref")

    def flip(t):
        name = sorted(t)[0]
        t[name] = t[name].clone()
        t[name].view(-1)[0] = ~t[name].view(-1)[0]
        return t

    _rewrite(ref / "round1" / "mask.safetensors", tensors=flip)
    _refused(capsys, _follow(grid["pre"][0], ref, tmp_path / "out"), says=("mask.safetensors", "state_hash"),
             out=tmp_path / "out")


def test_the_unchanged_runs_still_chain(grid, tmp_path):
    """The checks refuse what is wrong, not what is right: a reference run of the same dense run is followed."""
    assert main([str(a) for a in _follow(grid["pre"][0], grid["imp"][0], tmp_path / "out")]) == 0


# 2. The gate: every value in the contract, every seed in every cell, rounds agree, artifacts exist ---------------

def _pre_metrics(res: Path, s: int) -> Path:
    return Path(paths.run_dir("pretrain", *CELL, s, root=str(res))) / "metrics.json"


def _imp_metrics(res: Path, s: int) -> Path:
    return Path(paths.run_dir("imp", *CELL, s, root=str(res))) / "full" / "metrics.json"


def _hide_a_drop(res):
    for s in (1, 2):
        _edit_json(_pre_metrics(res, s), lambda m: {**m, "test_acc": m["test_acc"] - 0.10})
    _edit_json(_pre_metrics(res, 0), lambda m: {**m, "test_acc": 1.5})


DAMAGE = {
    "test_acc 1.5 hides a drop": (_hide_a_drop, 2, "test_acc"),
    "test_acc 1e308": (lambda res: _edit_json(_pre_metrics(res, 0), lambda m: {**m, "test_acc": 1e308}), 2, "test_acc"),
    "test_acc as a string": (lambda res: _edit_json(_pre_metrics(res, 0), lambda m: {**m, "test_acc": "0.10"}), 2,
                             "test_acc"),
    "accuracies deleted": (lambda res: _edit_json(_pre_metrics(res, 2), lambda m: {
        k: v for k, v in m.items() if k not in ("test_acc", "val_acc")}), 2, "test_acc"),
    "a seed deleted from one cell": (lambda res: shutil.rmtree(_imp_metrics(res, 2).parent), 1, "missing seed 2"),
    "round2 disagrees": (lambda res: _edit_json(_imp_metrics(res, 0).parent / "round2" / "metrics.json",
                                                lambda m: {**m, "test_acc": m["test_acc"] - 0.10}), 2, "round2"),
    "weights removed": (lambda res: [p.unlink() for p in list(res.rglob("*.safetensors"))], 2, "model.safetensors"),
    "weights replaced": (lambda res: shutil.copy(_pre_metrics(res, 1).parent / "model.safetensors",
                                                 _pre_metrics(res, 0).parent / "model.safetensors"), 2, "other weights"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_gate_fails_damaged_results(grid, tmp_path, capsys, damage):
    change, code, says = DAMAGE[damage]
    res = _copy(grid["results"], tmp_path / "results")
    change(res)
    got = main(["check", "--results", str(res), "--baselines", str(grid["base"])])
    cap = capsys.readouterr()
    assert got == code and says in (cap.err if code == 2 else cap.out), cap.err + cap.out
    if code == 2:
        assert len(_lines(cap.err)) == 1 and "Traceback" not in cap.err


def test_the_gate_expects_every_seed_of_the_grid(grid, tmp_path, capsys):
    res = _copy(grid["results"], tmp_path / "results")
    for phase in ("pretrain", "imp"):
        shutil.rmtree(Path(paths.run_dir(phase, *CELL, 2, root=str(res))))
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("grid:\n  seeds: [0, 1, 2]\n")
    assert main(["check", "--results", str(res), "--baselines", str(grid["base"]), "--configfile", str(grid_file)]) == 1
    assert "missing seed 2" in capsys.readouterr().out


def test_a_backup_folder_is_skipped_with_a_note(grid, tmp_path, capsys):
    res = _copy(grid["results"], tmp_path / "results")
    seed0 = _imp_metrics(res, 0).parent.parent
    shutil.copytree(seed0, seed0.with_name("seed0_old"))
    _edit_json(seed0.with_name("seed0_old") / "full" / "metrics.json", lambda m: {**m, "test_acc": "old"})
    main(["check", "--results", str(res), "--baselines", str(grid["base"])])
    out = capsys.readouterr().out
    assert "note: skipped" in out and "seed0_old" in out and "Traceback" not in out


# 3. The report validates every metrics.json against the contract before it computes anything ---------------------

@pytest.mark.parametrize("change,key", [
    (lambda m: {**m, "test_acc": float("nan")}, "test_acc"),
    (lambda m: {**m, "test_acc": "0.9"}, "test_acc"),
    (lambda m: {**m, "test_acc": 1.5}, "test_acc"),
    (lambda m: {k: v for k, v in m.items() if k != "val_acc"}, "val_acc"),
    (lambda m: {**m, "rounds": [{k: v for k, v in r.items() if k != "round"} for r in m["rounds"]]}, "round"),
    (lambda m: {**m, "rounds": "1,2"}, "rounds"),
    (lambda m: {**m, "rounds": [{**r, "sparsity": -0.1} for r in m["rounds"]]}, "sparsity"),
    (lambda m: [m], "the file"),
], ids=["nan", "string", "above-one", "missing-key", "missing-round", "rounds-string", "negative-sparsity", "list"])
def test_the_report_refuses_a_metrics_file_outside_the_contract(grid, tmp_path, capsys, change, key):
    res = _copy(grid["results"], tmp_path / "results")
    path = _imp_metrics(res, 1)
    _edit_json(path, change)
    _refused(capsys, ["report", "--results", res, "--tables", ROOT / "config" / "paper_tables", "--out",
                      tmp_path / "report"], says=(str(path), key), out=tmp_path / "report")


def test_deep_json_is_one_line(grid, tmp_path, capsys):
    res = _copy(grid["results"], tmp_path / "results")
    path = _pre_metrics(res, 0)
    path.write_text("[" * 50_000 + "]" * 50_000)
    _refused(capsys, ["report", "--results", res, "--out", tmp_path / "report"], says=(str(path), "nested too deeply"),
             out=tmp_path / "report")


def test_an_accuracy_above_one_cannot_flip_a_claim(grid, tmp_path):
    """The claim "a jackpot matches dense" read 1.5 as a winning accuracy; now no reader gets that far."""
    res = _copy(grid["results"], tmp_path / "results")
    _edit_json(_imp_metrics(res, 0), lambda m: {**m, "rounds": [{**r, "test_acc": 1.5} for r in m["rounds"]]})
    with pytest.raises(TicketbenchError, match="above the maximum 1"):
        Results.scan(res)


# 4. Inputs between stages are checked before anything is written ------------------------------------------------

def _mask_change(name):
    def wrong_shape(t):
        k = sorted(t)[0]
        return {**t, k: t[k].reshape(-1)[:-1].clone()}

    return {
        "wrong shape": (wrong_shape, "shape"),
        "extra layer": (lambda t: {**t, "extra.weight": torch.ones(3, 3, dtype=torch.bool)}, "extra.weight"),
        "float dtype": (lambda t: {k: v.float() for k, v in t.items()}, "not bool"),
        "all zero": (lambda t: {k: torch.zeros_like(v) for k, v in t.items()}, "keeps no weight"),
    }[name]


@pytest.mark.parametrize("name", ["wrong shape", "extra layer", "float dtype", "all zero"])
def test_a_reference_mask_that_does_not_fit_is_one_line(grid, tmp_path, capsys, name):
    ref = _copy(grid["imp"][0], tmp_path / "ref")
    change, says = _mask_change(name)
    path = ref / "round1" / "mask.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["ticketbench"])
    meta.pop("state_hash")  # as a mask written before masks recorded their hash: the fit is what refuses it
    _rewrite(path, tensors=change, meta=lambda h: {"ticketbench": json.dumps(meta)})
    _refused(capsys, _follow(grid["pre"][0], ref, tmp_path / "out"), says=("mask.safetensors", says),
             out=tmp_path / "out")


def test_a_reference_of_another_backbone_is_one_line(grid, tmp_path, capsys):
    ref = _copy(grid["imp"][0], tmp_path / "ref")
    _edit_json(ref / "metrics.json", lambda m: {**m, "backbone": "cifar_resnet20"})
    _edit_json(ref / "hparams.json", lambda h: {**h, "settings": {**h["settings"], "pretrain": "f" * 64}})
    _refused(capsys, _follow(grid["pre"][0], ref, tmp_path / "out"), says=("reference=",), out=tmp_path / "out")


@pytest.mark.parametrize("text,says", [
    (lambda h: json.dumps([h]), "not the hparams.json of a run"),
    (lambda h: json.dumps({"run_id": h["run_id"]}), "not the hparams.json of a run"),
    (lambda h: json.dumps({**h, "settings": {k: v for k, v in h["settings"].items() if k != "train"}}), "'train'"),
    (lambda h: "[" * 50_000 + "]" * 50_000, "nested too deeply"),
], ids=["list", "no-settings", "no-train", "deep"])
def test_a_damaged_hparams_json_is_one_line_and_blocks_no_retry(grid, tmp_path, capsys, text, says):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    (pre / "hparams.json").write_text(text(json.loads((pre / "hparams.json").read_text())))
    _refused(capsys, _imp(pre, tmp_path / "out"), says=("hparams.json", says), out=tmp_path / "out")


def test_deep_metadata_json_is_one_line(grid, tmp_path, capsys):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    _rewrite(pre / "model.safetensors", meta=lambda h: {"ticketbench": "[" * 50_000 + "]" * 50_000})
    _refused(capsys, _imp(pre, tmp_path / "out"), says=("model.safetensors", "nested too deeply"),
             out=tmp_path / "out")


def test_a_refused_input_leaves_the_folder_free_for_the_corrected_retry(grid, tmp_path, capsys):
    ref = _copy(grid["imp"][0], tmp_path / "ref")
    _rewrite(ref / "round1" / "mask.safetensors", tensors=lambda t: {k: torch.zeros_like(v) for k, v in t.items()})
    out = tmp_path / "out"
    _refused(capsys, _follow(grid["pre"][0], ref, out), out=out)
    assert main([str(a) for a in _follow(grid["pre"][0], grid["imp"][0], out)] + ["--lr", "0.05"]) == 0


# 5. CLI values: finite floats, ints in range, --out a place of its own -------------------------------------------

@pytest.mark.parametrize("flags,key", [
    (["--lr", "inf"], "train.lr"), (["--weight-decay", "inf"], "train.weight_decay"), (["--gamma", "nan"], "train.gamma"),
    (["--momentum", "nan"], "train.momentum"), (["--seed", str(2 ** 70)], "seed"),
    (["--image-size", "100000"], "data.image_size"), (["--threads", str(2 ** 70)], "threads"),
    (["--epochs", str(2 ** 40)], "train.epochs"),
])
def test_cli_values_outside_what_a_run_can_use_are_one_line(tmp_path, capsys, flags, key):
    out = tmp_path / "out"
    _refused(capsys, ["pretrain", "--dataset", "synthetic", "--epochs", "1", *flags, "--no-progress", "--out", out],
             says=(f"{key}=",), out=out)


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, ["pretrain", "--dataset", "synthetic", "--epochs", "1", "--out", ""], says=("out=",))
    assert _files(tmp_path) == []


@pytest.mark.parametrize("where", ["the pretrain run", "a folder holding it"])
def test_out_can_never_be_an_input_run(grid, tmp_path, capsys, where):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    before = _digest(tmp_path)
    out = pre if where == "the pretrain run" else tmp_path
    _refused(capsys, _imp(pre, out, "--overwrite"), says=("out=", "--pretrain"))
    assert _digest(tmp_path) == before


# 6. An interrupted --overwrite leaves a folder no reader accepts, and no temporaries ------------------------------

def test_a_folder_claimed_by_an_overwrite_that_never_finished_is_refused(grid, tmp_path, capsys, monkeypatch):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    import ticketbench.pretrain as pretrain_stage

    def killed(*args, **kwargs):  # the job dies right after it claimed the folder
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_stage, "pretrain", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["pretrain", "--dataset", "synthetic", "--epochs", "2", "--overwrite", "--no-progress", "--out", str(pre)])
    monkeypatch.undo()
    _refused(capsys, _imp(pre, tmp_path / "out"), says=("pretrain=", "no metrics.json"), out=tmp_path / "out")


def test_metrics_of_another_run_beside_the_settings_are_refused(grid, tmp_path, capsys):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    _edit_json(pre / "metrics.json", lambda m: {**m, "run_id": "0123456789ab"})
    _refused(capsys, _imp(pre, tmp_path / "out"), says=("mixes two runs",), out=tmp_path / "out")


def test_a_rerun_removes_the_temporaries_of_a_killed_writer(grid, tmp_path):
    pre = _copy(grid["pre"][0], tmp_path / "pre")
    (pre / ".model.safetensors.abc123.tmp").write_bytes(b"partial")
    (pre / "rewind" / ".ep1.safetensors.abc123.tmp").write_bytes(b"partial")
    assert main(["pretrain", "--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", "1", "--batch-size",
                 "64", "--rewind-epochs", "0,1", "--no-progress", "--out", str(pre)]) == 0
    assert list(pre.rglob("*.tmp")) == []


# Fuzz: damaged files and CLI values ----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
ACCURACY_KEYS = ("test_acc", "val_acc", "sparsity")


def _within_contract(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


@pytest.fixture(scope="module")
def fuzz_root(grid, tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(key=st.sampled_from(["test_acc", "val_acc", "sparsity", "seed", "rounds", "method", "train_iterations",
                            "wall_seconds", "round.test_acc", "round.round", "round.sparsity", "test_correct"]),
       value=JSON_VALUES, delete=st.booleans())
def test_fuzz_damaged_metrics_never_pass_outside_the_contract(grid, fuzz_root, capsys, key, value, delete):
    res = fuzz_root / "results"
    shutil.rmtree(res, ignore_errors=True)
    shutil.copytree(grid["results"], res)
    path = _imp_metrics(res, 1)
    data = json.loads(path.read_text())
    row = data["rounds"][-1] if key.startswith("round.") else data
    name = key.removeprefix("round.")
    if delete:
        row.pop(name)
    else:
        row[name] = value
    path.write_text(json.dumps(data))
    code = main(["check", "--results", str(res), "--baselines", str(grid["base"])])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    if code == 2:
        assert len(_lines(cap.err)) == 1 and str(path.parent) in cap.err
        with pytest.raises(TicketbenchError):  # the report reads through the same validation, and refuses too
            Results.scan(res)
        return
    if name in ACCURACY_KEYS and not delete:  # accepted: then the value kept the contract
        assert _within_contract(value) or value is None and name != "sparsity"
    for m in Results.scan(res).runs.values():  # and every number the report would draw is a fraction
        for row in [m, *m.get("rounds", [])]:
            assert all(_within_contract(row[k]) for k in ACCURACY_KEYS if row.get(k) is not None)


@FUZZ
@given(where=st.sampled_from(["settings", "settings.seed", "settings.data", "settings.data.dataset", "run_id",
                              "settings.model.backbone", "settings.train.epochs", "<root>"]),
       value=JSON_VALUES)
def test_fuzz_damaged_hparams_are_refused_or_agree_with_the_weights(grid, fuzz_root, where, value):
    pre = fuzz_root / "pre"
    shutil.rmtree(pre, ignore_errors=True)
    shutil.copytree(grid["pre"][0], pre)
    h = json.loads((pre / "hparams.json").read_text())
    if where == "<root>":
        h = value
    else:
        *parents, last = where.split(".")
        node = h
        for p in parents:
            node = node[p]
        node[last] = value
    (pre / "hparams.json").write_text(json.dumps(h))
    try:
        loaded = load_pretrained(pre)
    except TicketbenchError as e:
        assert "\n" not in str(e)
        return
    assert (loaded.seed, loaded.data_hp.dataset, loaded.model_hp.backbone) == (0, *CELL)


@FUZZ
@given(value=st.text(max_size=40) | JSON_VALUES.map(json.dumps))
def test_fuzz_damaged_safetensors_metadata_is_refused_or_read_as_written(grid, fuzz_root, value):
    path = fuzz_root / "model.safetensors"
    shutil.copy(paths.model(grid["pre"][0]), path)
    _rewrite(path, meta=lambda h: {"ticketbench": value})
    try:
        state, meta = artifacts.load_checkpoint(path)
    except TicketbenchError as e:
        assert "\n" not in str(e)
        return
    raise AssertionError(f"a checkpoint with metadata {value!r} loaded")  # none of these names its weights' hash


BAD_FLOATS = st.sampled_from(["inf", "-inf", "nan", "1e309", "-1e309"])
BAD_INTS = st.integers(2 ** 33, 2 ** 80).map(str) | st.integers(-2 ** 80, -2 ** 31 - 1).map(str)


@FUZZ
@given(flag=st.sampled_from(["--lr", "--momentum", "--weight-decay", "--gamma", "--label-smoothing"]) | st.sampled_from(
    ["--epochs", "--batch-size", "--warmup-epochs", "--image-size", "--workers", "--seed", "--threads"]), data=st.data())
def test_fuzz_cli_values_outside_what_a_run_can_use(fuzz_root, capsys, flag, data):
    floats = flag in ("--lr", "--momentum", "--weight-decay", "--gamma", "--label-smoothing")
    value = data.draw(BAD_FLOATS if floats else BAD_INTS)
    out = fuzz_root / "cli"
    shutil.rmtree(out, ignore_errors=True)
    code = main(["pretrain", "--dataset", "synthetic", "--epochs", "1", f"{flag}={value}", "--no-progress",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(_lines(err)) == 1 and "Traceback" not in err and _files(out) == []
