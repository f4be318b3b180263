"""Structure-LTH Table A2: structured tickets found on one dataset, retrained on another
(`ticketbench structure --transfer-from`)."""

import pytest
import torch

from ticketbench import paths, storage
from ticketbench.artifacts import load_checkpoint, read_metrics
from ticketbench.cli import main
from ticketbench.data.base import DATASETS
from ticketbench.data.synthetic import build_synthetic
from ticketbench.masks import Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.structure.stage import StructureHparams, transferred_round

from conftest import pretrain_synthetic

# Structure runs time every ticket; these tests assert no speed, so one second of timing each is plenty.
FAST_TIMING = ("--timing-max-seconds", "1")

ROUNDS = 2
REGROUP = ["--row-threshold", "7", "--blocksparse-min-macs", "0", "--blocksparse-max-work", "0.9"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """IMP runs of one backbone on the synthetic data (10 classes, the source) and on a 4-class variant (the target)."""
    root = tmp_path_factory.mktemp("transfer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(DATASETS._items, "synthetic4", lambda **kw: build_synthetic(num_classes=4, **kw))
        made = {}
        for dataset in ("synthetic", "synthetic4"):
            pre = pretrain_synthetic(root / dataset / "pre", epochs=2, extra=("--dataset", dataset))
            imp = root / dataset / "imp"
            assert main(["imp", "--pretrain", str(pre), "--out", str(imp), "--rounds", str(ROUNDS), "--policy",
                         "structure_lth", "--no-progress"]) == 0
            made[dataset] = (pre, imp)
        yield root, made


def _structure(pre, imp, out, method, *extra):
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", method, "--timing-rounds", "2",
                 *(REGROUP if method == "regroup" else []), "--no-progress", "--out", str(out), *extra]) == 0
    return read_metrics(paths.metrics(out))


def _source(runs, method):
    """The source run of ``method`` on the 10-class data, made once per module."""
    root, made = runs
    source = root / f"{method}_source"
    if not paths.metrics(source).is_file():
        _structure(*made["synthetic"], source, method)
    return source


@pytest.mark.parametrize("method", ["refill", "regroup"])
def test_transferred_tickets_keep_the_source_conv_masks(runs, method):
    root, made = runs
    pre, imp = made["synthetic4"]
    source = _source(runs, method)
    out = root / f"{method}_transferred"
    m = _structure(pre, imp, out, method, "--transfer-from", str(source))
    assert m["dataset"] == "synthetic4" and m["transfer_source_dataset"] == "synthetic"
    assert m["transfer_from"] == str(source) and len(m["rounds"]) == ROUNDS
    assert storage.read_json(paths.hparams(out))["settings"]["transfer_from"] == str(source)
    for r in range(1, ROUNDS + 1):
        src_mask, _ = Mask.load(source / f"round{r}" / "mask.safetensors")
        mask, _ = Mask.load(out / f"round{r}" / "mask.safetensors")
        own, _ = Mask.load(imp / f"round{r}" / "mask.safetensors")
        assert set(mask) == set(src_mask) and all(torch.equal(mask[n], src_mask[n]) for n in mask)
        assert any(not torch.equal(mask[n], own[n]) for n in mask)  # not this dataset's own IMP mask
        row = read_metrics(out / f"round{r}" / "metrics.json")
        assert row["transfer_dense_layers"]["fc.weight"] == "not in the source mask" and "fc.weight" not in mask
        state, _ = load_checkpoint(out / f"round{r}" / "model.safetensors")
        assert state["fc.weight"].shape[0] == 4 and bool((state["fc.weight"] != 0).all())
        assert all(torch.all(state[n][~mask[n]] == 0) for n in mask)
        assert 0 <= row["test_acc"] <= 1 and row["max_abs_diff"] <= 1e-4
        assert row["imp_test_acc"] == read_metrics(imp / f"round{r}" / "metrics.json")["test_acc"]


def test_layers_of_another_shape_stay_dense_and_are_reported(runs, tmp_path):
    _, made = runs
    pre_dir, _ = made["synthetic4"]
    pre = load_pretrained(pre_dir)
    params = dict(pre.new_model().named_parameters())
    src = Mask({"layer1.0.conv1.weight": torch.rand(params["layer1.0.conv1.weight"].shape) > 0.5,
                "layer1.0.conv2.weight": torch.ones(8, 32, 3, 3, dtype=torch.bool),
                "fc.weight": torch.ones(10, params["fc.weight"].shape[1], dtype=torch.bool)})
    (tmp_path / "round1").mkdir()
    src.save(tmp_path / "round1" / "mask.safetensors", method="refill")
    mask, bn, facts = transferred_round(pre, tmp_path, 1, StructureHparams(), torch.zeros(1, 3, 16, 16))
    assert list(mask) == ["layer1.0.conv1.weight"] and torch.equal(mask["layer1.0.conv1.weight"],
                                                                   src["layer1.0.conv1.weight"])
    dense = facts["transfer_dense_layers"]
    assert dense["layer1.0.conv2.weight"].startswith("shape [8, 32, 3, 3]") and dense["fc.weight"] == "the classifier"
    assert dense["layer2.0.conv1.weight"] == "not in the source mask"
    assert set(bn) == {"layer1.0.bn1.weight", "layer1.0.bn1.bias"}


def test_transfer_source_must_match_method_and_backbone(runs, capsys):
    root, made = runs
    pre, imp = made["synthetic4"]
    assert main(["structure", *FAST_TIMING, "--pretrain", str(pre), "--imp", str(imp), "--method", "refill_plus", "--transfer-from",
                 str(_source(runs, "refill")), "--no-progress", "--out", str(root / "bad")]) == 2
    assert "transfer_from" in capsys.readouterr().err and not (root / "bad").exists()
