import os

import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class TinyNet(nn.Module):
    """A 3-layer CNN that trains in well under a second on the synthetic dataset."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture(scope="session")
def synthetic_splits():
    from ticketbench.data import load_splits

    return load_splits("synthetic")


def pretrain_synthetic(out, *, epochs: int, rewind_epochs: str = "0,1", extra=()):
    """A finished `ticketbench pretrain` run of test_resnet on the synthetic data (batches of 64), for method tests."""
    from ticketbench.cli import main

    assert main(["pretrain", "--dataset", "synthetic", "--backbone", "test_resnet", "--epochs", str(epochs),
                 "--batch-size", "64", "--rewind-epochs", rewind_epochs, *extra, "--no-progress", "--out", str(out)]) == 0
    return out


def as_contract(metrics_path, data: dict) -> dict:
    """A hand-written run's metrics with the core keys of the results contract filled in where a test leaves them
    out: phase (as method), dataset, backbone and seed from the path ``<phase>/<dataset>/<backbone>/seed<k>/...``,
    the last round's numbers, and neutral facts. What the test states wins."""
    from pathlib import Path

    parts = Path(metrics_path).parts
    i = max(k for k, p in enumerate(parts) if p.startswith("seed") and p[4:].isdigit())
    rows = [{"sparsity": 0.0, "test_acc": r.get("test_acc"), "val_acc": r.get("test_acc"), **r}
            for r in data.get("rounds", [])]
    last = rows[-1] if rows else {}
    core = {"method": parts[i - 3], "dataset": parts[i - 2], "backbone": parts[i - 1], "seed": int(parts[i][4:]),
            "sparsity": last.get("sparsity", 0.0), "test_acc": last.get("test_acc"), "val_acc": last.get("val_acc"),
            "train_iterations": 0, "wall_seconds": 0.0, "versions": {}}
    return {**core, **data, **({"rounds": rows} if rows else {})}
