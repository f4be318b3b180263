"""The whole chain on one backbone of every family: pretrain -> PrAC -> IMP -> jackpot -> refill, refill+, regroup
-> slim timing -> report, on the embedded digits at the smallest settings (issue 16's matrix).

Each backbone asserts what a user of its numbers relies on: every saved mask holds in its saved weights, every
reported sparsity is its mask's, the policy covers at least 80% of the conv and linear weights, the slimmed and the
masked refill tickets compute the same function, and refill physically removes at least 15% of the channels (of the
MLP hidden units on the ViT) with a FLOPs ratio below 1. Runs in-process (one import of torch and timm).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import torch

from ticketbench import artifacts
from ticketbench.cli import main
from ticketbench.data import make_loader
from ticketbench.masks import MIN_COVERAGE, Mask
from ticketbench.methods.common import load_pretrained
from ticketbench.methods.structure.slim import load_slim
from ticketbench.storage import load_tensors, read_json

BACKBONES = ["test_resnet", "test_convnext", "test_efficientnet", "test_vit", "mobilenetv3_small_050", "regnetx_002",
             "cifar_resnet20"]
#: Issue 16's minimum outcome holds on these; the CIFAR ResNet's option-A shortcuts pad channels, which keeps every
#: residual stream whole (refill still removes its blocks' inner channels: about 15%, not asserted).
REMOVES_15 = {"test_resnet", "test_convnext", "test_efficientnet", "mobilenetv3_small_050", "regnetx_002"}
JACKPOT = "magnitude-s0.36"
STRUCTURE = ("refill", "refill_plus", "regroup")
QUICK = ["--epochs", "1", "--no-progress", "--overwrite"]
TIMING = ["--timing-rounds", "3", "--timing-max-seconds", "0.5"]
#: The CIFAR ResNet (full resolution through its first stage) trains on 16x16 digits: a third of its time at 32x32.
IMAGE_SIZE = {"cifar_resnet20": 16}


def _cell(root: Path, phase: str, backbone: str) -> Path:
    return root / phase / "digits" / backbone / "seed0"


def _ok(argv: list[str]) -> None:
    assert main(argv) == 0, " ".join(argv)


@lru_cache(maxsize=None)
def chain(root: Path, backbone: str) -> Path:
    """Every stage for ``backbone`` into the phase-first layout the report reads; returns ``root``."""
    pre, prac = _cell(root, "pretrain", backbone), _cell(root, "prac", backbone)
    imp, jp = _cell(root, "imp", backbone) / "structure_lth", _cell(root, "jackpot", backbone) / JACKPOT
    st = _cell(root, "structure", backbone)
    _ok(["pretrain", "--dataset", "digits", "--backbone", backbone, "--epochs", "2", "--rewind-epochs", "0,1",
         "--rewind-iterations", "5%", "--image-size", str(IMAGE_SIZE.get(backbone, 32)), "--no-progress",
         "--out", str(pre)])
    _ok(["prac", "--pretrain", str(pre), "--rounds", "2", "--skip-ticket-eval", *QUICK, "--out", str(prac)])
    _ok(["imp", "--pretrain", str(pre), "--rounds", "2", "--variant", "structure_lth", *QUICK, "--out", str(imp)])
    _ok(["jackpot", "--pretrain", str(pre), "--sparsity", "0.36", *QUICK, "--out", str(jp)])
    for method in STRUCTURE:
        _ok(["structure", "--pretrain", str(pre), "--imp", str(imp), "--method", method, "--rounds", "2", *TIMING,
             *QUICK, "--out", str(st / method)])
    _ok(["timing", "--pretrain", str(pre), "--imp", str(imp), "--refill", str(st / "refill"), "--regroup",
         str(st / "regroup"), "--timing-rounds", "3", "--timing-max-seconds", "0.5", "--no-progress", "--overwrite",
         "--out", str(st / "timing")])
    return root


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("matrix")


def _masked_runs(root: Path, backbone: str) -> list[Path]:
    """Every folder holding a mask and the model trained under it."""
    runs = [d for phase in ("prac", "imp", "jackpot", "structure")
            for d in _cell(root, phase, backbone).rglob("*") if (d / "mask.safetensors").is_file()]
    assert len(runs) >= 2 + 2 + 1 + 3
    return runs


def _assert_masks_hold(run: Path) -> None:
    mask, meta = Mask.load(run / "mask.safetensors")
    state, _ = artifacts.load_checkpoint(run / "model.safetensors")
    for n, m in mask.items():
        assert bool((state[n][~m] == 0).all()), f"{run}: pruned weights of {n} are not zero"
    reported = artifacts.read_metrics(run / "metrics.json")
    assert reported["sparsity"] == pytest.approx(mask.sparsity(), abs=1e-12), run
    assert meta["sparsity"] == pytest.approx(mask.sparsity(), abs=1e-12), run
    assert reported["policy_coverage"] >= MIN_COVERAGE, run


def _slim_equals_masked(root: Path, backbone: str, method: str) -> None:
    run = _cell(root, "structure", backbone) / method / "round2"
    pre = load_pretrained(_cell(root, "pretrain", backbone))
    state, _ = artifacts.load_checkpoint(run / "model.safetensors")
    masked = pre.model_from(state).eval()
    slim, _ = load_slim(run / "slim.safetensors")
    x = next(iter(make_loader(pre.splits.test, 64, shuffle=False)))[0]
    with torch.inference_mode():
        a, b = masked(x), slim(x)
        # fp32 sums in another order once channels are gone; 1e-5 is the bound at logits of order 1, and it scales
        # with them (test_efficientnet's reach 30: 1.1e-5 apart, 2e-14 in fp64).
        assert float((a - b).abs().max()) <= 1e-5 * max(1.0, float(a.abs().max())), (backbone, method)
        a64, b64 = masked.double()(x.double()), slim.double()(x.double())
        assert float((a64 - b64).abs().max()) <= 1e-9, (backbone, method)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_the_whole_chain_runs_and_its_numbers_hold(matrix, backbone):
    root = chain(matrix, backbone)
    for run in _masked_runs(root, backbone):
        _assert_masks_hold(run)
    for method in ("refill", "refill_plus"):
        _slim_equals_masked(root, backbone, method)
        row = artifacts.read_metrics(_cell(root, "structure", backbone) / method / "round2" / "metrics.json")
        assert row["flops_fraction"] < 1 and row["params_fraction"] < 1 and row["structure_removed"], (backbone, row)
        assert row["time_saving_low"] is None or row["time_saving_low"] <= row["time_saving"] <= row["time_saving_high"]
        assert row["timing_verdict"] in ("tight", "noisy")
        if method == "refill":
            _, meta = load_tensors(_cell(root, "structure", backbone) / method / "round2" / "slim.safetensors")
            if backbone == "test_vit":
                model = load_pretrained(_cell(root, "pretrain", backbone)).new_model()
                hidden = {n: m.out_features for n, m in model.named_modules() if n.endswith("mlp.fc1")}
                removed = sum(len(i) for n, i in meta["plan"] if n in hidden)
                assert removed >= 0.15 * sum(hidden.values()), (removed, sum(hidden.values()))
            elif backbone in REMOVES_15:
                assert row["units_removed_fraction"] >= 0.15, (backbone, row["units_removed_fraction"])
    regroup = artifacts.read_metrics(_cell(root, "structure", backbone) / "regroup" / "round2" / "metrics.json")
    assert regroup["max_abs_diff"] <= 1e-5 * 100  # block-sparse vs masked: logits well under 100 here
    timing = read_json(_cell(root, "structure", backbone) / "timing" / "timing.json")
    assert timing["end_to_end"]["imp_masked"]["structure_removed"] is False
    assert timing["end_to_end"]["refill_slim"]["structure_removed"] is True


def test_refill_slims_resnet18(matrix):
    """resnet18 is the issue's sixth minimum-outcome backbone; the whole chain on it would cost CI two minutes, so it
    runs the part the outcome is about: Structure-LTH's IMP and refill."""
    pre, imp = _cell(matrix, "pretrain", "resnet18"), _cell(matrix, "imp", "resnet18") / "structure_lth"
    refilled = _cell(matrix, "structure", "resnet18") / "refill"
    _ok(["pretrain", "--dataset", "digits", "--backbone", "resnet18", "--epochs", "2", "--rewind-epochs", "0,1",
         "--rewind-iterations", "5%", "--no-progress", "--out", str(pre)])
    _ok(["imp", "--pretrain", str(pre), "--rounds", "2", "--variant", "structure_lth", *QUICK, "--out", str(imp)])
    _ok(["structure", "--pretrain", str(pre), "--imp", str(imp), "--method", "refill", "--rounds", "2", *TIMING,
         *QUICK, "--out", str(refilled)])
    _assert_masks_hold(refilled / "round2")
    _slim_equals_masked(matrix, "resnet18", "refill")
    row = artifacts.read_metrics(refilled / "round2" / "metrics.json")
    assert row["units_removed_fraction"] >= 0.15 and row["flops_fraction"] < 1, row


def test_the_report_shows_every_backbone_with_its_cover(matrix):
    root = matrix
    for b in BACKBONES:
        chain(root, b)
    assert main(["report", "--results", str(root), "--out", str(root / "report")]) == 0
    text = "\n".join(p.read_text() for p in (root / "report").rglob("*.md"))
    for b in BACKBONES:
        assert b in text
    assert "covered (%)" in text


#: Fixed-size transformers at CIFAR's 32x32, rebuilt by create_model for it (img_size; DeiT's patch 16 -> 4 keeps 8x8
#: patches; Swin's window 7 -> 4 divides its 8x8 first map). They train on the CIFAR-10 replica of `fake-data`
#: (36 images), as digits at 32x32 would cost CI minutes per epoch.
FIXED_SIZE = {"deit_tiny_patch16_224": {"patch_embed.proj.weight": (192, 3, 4, 4)},
              "swin_tiny_patch4_window7_224": {"layers.0.blocks.0.attn.relative_position_bias_table": (49, 3)}}


@pytest.fixture(scope="module")
def cifar_replica(tmp_path_factory) -> Path:
    from ticketbench.data.fake import make_fake_data

    root = tmp_path_factory.mktemp("replica")
    make_fake_data(root, ["cifar10"])
    return root


@pytest.mark.parametrize("backbone", sorted(FIXED_SIZE))
def test_fixed_size_transformers_prune_and_refill_at_32(matrix, cifar_replica, backbone):
    """Policy cover, Structure-LTH's IMP and refill on a model timm builds for 224x224, at the data's 32x32."""
    cell = matrix / "fixed" / backbone
    pre, imp, refilled = cell / "pretrain", cell / "imp", cell / "refill"
    _ok(["pretrain", "--dataset", "cifar10", "--data-root", str(cifar_replica), "--backbone", backbone, "--epochs",
         "1", "--batch-size", "16", "--rewind-epochs", "0,1", "--rewind-iterations", "5%", "--no-progress",
         "--out", str(pre)])
    shapes = load_pretrained(pre).shapes
    for name, shape in FIXED_SIZE[backbone].items():
        assert shapes[name] == shape, (name, shapes[name])
    _ok(["imp", "--pretrain", str(pre), "--rounds", "2", "--variant", "structure_lth", *QUICK, "--out", str(imp)])
    _ok(["structure", "--pretrain", str(pre), "--imp", str(imp), "--method", "refill", "--rounds", "2", *TIMING,
         *QUICK, "--out", str(refilled)])
    for run in (imp / "round1", imp / "round2", refilled / "round2"):
        _assert_masks_hold(run)
    row = artifacts.read_metrics(refilled / "round2" / "metrics.json")
    assert row["flops_fraction"] < 1 and row["params_fraction"] < 1, row
    run = refilled / "round2"
    pre_run = load_pretrained(pre)
    state, _ = artifacts.load_checkpoint(run / "model.safetensors")
    masked = pre_run.model_from(state).eval()
    slim, _ = load_slim(run / "slim.safetensors")
    x = next(iter(make_loader(pre_run.splits.test, 8, shuffle=False)))[0]
    with torch.inference_mode():
        a64, b64 = masked.double()(x.double()), slim.double()(x.double())
        assert float((a64 - b64).abs().max()) <= 1e-9, backbone
