"""Every artifact file name, spelled once. The CLI and the Snakemake rules both use these."""

from __future__ import annotations

from pathlib import Path


def run_dir(phase: str, dataset: str, backbone: str, seed: int | str, root: str = "results") -> str:
    """Phase-first layout: ``results/<phase>/<dataset>/<backbone>/seed<k>``."""
    return f"{root}/{phase}/{dataset}/{backbone}/seed{seed}"


def metrics(d) -> Path:
    return Path(d) / "metrics.json"


def hparams(d) -> Path:
    return Path(d) / "hparams.json"


def model(d) -> Path:
    """Best-validation weights of a training run."""
    return Path(d) / "model.safetensors"


def final(d) -> Path:
    """Weights after the last epoch (what IMP prunes)."""
    return Path(d) / "final.safetensors"


def rewind(d, point: str) -> Path:
    """A rewind snapshot, ``point`` like ``ep3`` or ``it500``."""
    return Path(d) / "rewind" / f"{point}.safetensors"


def dynamics(d) -> Path:
    """Per-sample training correctness, one row per epoch (for forgetting events)."""
    return Path(d) / "dynamics.safetensors"


def mask(d) -> Path:
    return Path(d) / "mask.safetensors"
