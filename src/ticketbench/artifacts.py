"""The results contract: metrics.json with the same core keys everywhere, checkpoints with metadata."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import io
from .errors import ArtifactError

if TYPE_CHECKING:
    import torch

CORE_KEYS = ("method", "dataset", "backbone", "seed", "sparsity", "test_acc", "val_acc", "train_iterations",
             "wall_seconds", "versions")


def write_metrics(path, *, method: str, dataset: str, backbone: str, seed: int, sparsity: float,
                  test_acc: float | None, val_acc: float | None, train_iterations: int, wall_seconds: float,
                  **extra: Any) -> dict:
    """Write ``metrics.json``; refuses values that break the contract instead of writing them."""
    from .runtime import numerics, versions  # torch, timm: only the stages that train write metrics

    for key, value in (("sparsity", sparsity), ("test_acc", test_acc), ("val_acc", val_acc)):
        if value is not None and not (0.0 <= value <= 1.0 and math.isfinite(value)):
            raise ValueError(f"metrics {key}={value!r} must be a fraction in [0, 1]")
    core = {"method": method, "dataset": dataset, "backbone": backbone, "seed": int(seed), "sparsity": float(sparsity),
            "test_acc": test_acc, "val_acc": val_acc, "train_iterations": int(train_iterations),
            "wall_seconds": round(float(wall_seconds), 3), "versions": versions(), "numerics": numerics()}
    clash = set(core) & set(extra)
    if clash:
        raise ValueError(f"method keys {sorted(clash)} would overwrite core metrics keys")
    data = {**core, **extra}
    io.write_json(path, data)
    return data


def read_metrics(path) -> dict:
    data = io.read_json(path)
    missing = [k for k in CORE_KEYS if k not in data]
    if missing:
        raise ArtifactError(path, f"metrics file lacks the core keys {missing}")
    return data


def save_checkpoint(path, state: dict[str, torch.Tensor], *, method: str, source_hash: str = "",
                    sparsity: float = 0.0, config: dict | None = None, **extra: Any) -> str:
    """Save a state dict as safetensors with JSON metadata; returns its content hash."""
    digest = io.state_hash(state)
    io.save_tensors(path, state, {"kind": "checkpoint", "method": method, "source_hash": source_hash,
                                  "sparsity": sparsity, "config": config or {}, "state_hash": digest, **extra})
    return digest


def load_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    state, meta = io.load_tensors(path)
    if meta.get("kind") != "checkpoint":
        raise ArtifactError(path, f"is not a ticketbench checkpoint (kind={meta.get('kind')!r})")
    return state, meta
