"""Every CUDA path of the pipeline, on a GPU (skipped without one; `python tests/gpu/run.py` runs them there).

Each stage runs through the CLI on the GPU in bf16 autocast with channels-last, with the data held in GPU memory
(`DeviceBatches`), and every training step loop of `ticketbench.train` (dense training, IMP rounds, PrAC rounds,
ADMM, retraining of structured tickets) runs under `torch.cuda.set_sync_debug_mode("error")`, which raises on any
host synchronisation inside the loop. Outside the loop (pruning-at-init scoring, evaluation, timing) syncs are
allowed, but the stage must run on the GPU: the saved masks and metrics are checked as on the CPU.

TICKETBENCH_TEST_DEVICE=cpu runs the same chain on the CPU (without the sync check), to try the test itself on a
machine without a GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import ticketbench.train as train_mod
from ticketbench.artifacts import read_metrics
from ticketbench.cli import main
from ticketbench.masks import Mask

DEVICE = os.environ.get("TICKETBENCH_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")
DATA = ["--dataset", "synthetic", "--image-size", "32"]  # 32x32: the CPU's bf16 1x1-map problem never arises
RUN = ["--device", DEVICE, "--no-progress", "--overwrite"]


class StrictSteps:
    """Training batches served with sync debugging on: a host sync inside the step loop raises."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        it = iter(self.inner)
        if DEVICE != "cuda":
            yield from it
            return
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield from it
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.fixture
def strict(monkeypatch):
    real = train_mod.make_batches
    monkeypatch.setattr(train_mod, "make_batches",
                        lambda *a, **k: StrictSteps(real(*a, **k)) if k.get("shuffle") else real(*a, **k))


def _ok(*argv: str) -> None:
    assert main(list(argv)) == 0, " ".join(argv)


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cuda") / "pretrain"
    real = train_mod.make_batches
    train_mod.make_batches = lambda *a, **k: StrictSteps(real(*a, **k)) if k.get("shuffle") else real(*a, **k)
    try:
        _ok("pretrain", *DATA, "--backbone", "test_resnet", "--epochs", "2", "--batch-size", "32",
            "--rewind-epochs", "0,1", "--rewind-iterations", "5%", "--precision", "bf16", "--layout",
            "channels_last", *RUN, "--out", str(out))
    finally:
        train_mod.make_batches = real
    return out


def test_dense_training_runs_on_the_gpu_without_a_sync(dense):
    m = read_metrics(dense / "metrics.json")
    assert m["numerics"]["precision"] == "bf16" and 0 <= m["test_acc"] <= 1


@pytest.mark.parametrize("variant", ["full", "snip", "grasp", "synflow", "admm", "random_prune"])
def test_imp_and_pruning_at_init_run_on_the_gpu(dense, variant, strict, tmp_path):
    """Full IMP, the pruning-at-init scores (SNIP, GraSP, SynFlow), ADMM and random pruning, each two rounds."""
    full = dense.parent / "imp-full"
    if variant == "full" or not (full / "metrics.json").exists():
        _ok("imp", "--pretrain", str(dense), "--rounds", "2", "--rate", "0.5", "--epochs", "1", *RUN,
            "--out", str(full))
    out = full if variant == "full" else tmp_path / variant
    if variant != "full":
        _ok("imp", "--pretrain", str(dense), "--rounds", "2", "--rate", "0.5", "--epochs", "1", "--variant", variant,
            "--reference", str(full), "--admm-epochs", "1", *RUN, "--out", str(out))
    m = read_metrics(out / "metrics.json")
    assert [round(r["sparsity"], 2) for r in m["rounds"]][-1] == pytest.approx(0.75, abs=0.01)
    mask, _ = Mask.load(out / "round2" / "mask.safetensors")
    assert mask.sparsity() == pytest.approx(m["rounds"][-1]["sparsity"], abs=1e-6)


def test_prac_runs_on_the_gpu(dense, strict, tmp_path):
    _ok("prac", "--pretrain", str(dense), "--rounds", "2", "--epochs", "1", *RUN, "--out", str(tmp_path / "prac"))
    assert read_metrics(tmp_path / "prac" / "metrics.json")["rounds"]


def test_jackpot_search_runs_on_the_gpu(dense, tmp_path):
    # The swap update decides from the scores which weights to swap: one sync per step by construction
    # (docs/performance.md), so this search runs without the sync check.
    _ok("jackpot", "--pretrain", str(dense), "--sparsity", "0.5", "--epochs", "1", *RUN, "--out",
        str(tmp_path / "jp"))
    assert read_metrics(tmp_path / "jp" / "metrics.json")["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_structured_tickets_and_their_timing_run_on_the_gpu(dense, strict, tmp_path):
    imp = tmp_path / "imp"
    _ok("imp", "--pretrain", str(dense), "--rounds", "2", "--rate", "0.5", "--epochs", "1", "--variant",
        "structure_lth", *RUN, "--out", str(imp))
    for method in ("refill", "regroup"):
        _ok("structure", "--pretrain", str(dense), "--imp", str(imp), "--method", method, "--rounds", "2",
            "--epochs", "1", "--timing-rounds", "3", "--timing-max-seconds", "0.5", *RUN,
            "--out", str(tmp_path / method))
    _ok("timing", "--pretrain", str(dense), "--imp", str(imp), "--refill", str(tmp_path / "refill"), "--regroup",
        str(tmp_path / "regroup"), "--timing-rounds", "3", "--timing-max-seconds", "0.5", "--device", DEVICE, "--no-progress",
        "--overwrite", "--out", str(tmp_path / "timing"))
    assert (tmp_path / "timing" / "timing.json").is_file()
