"""The results contract: metrics.json with the same core keys everywhere, checkpoints with metadata."""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any

from . import storage
from .errors import ArtifactError

if TYPE_CHECKING:
    import torch

CORE_KEYS = ("method", "dataset", "backbone", "seed", "sparsity", "test_acc", "val_acc", "train_iterations",
             "wall_seconds", "versions")


def write_metrics(path, *, method: str, dataset: str, backbone: str, seed: int, sparsity: float,
                  test_acc: float | None, val_acc: float | None, train_iterations: int, wall_seconds: float,
                  test_correct: Any = None, **extra: Any) -> dict:
    """Write ``metrics.json``; refuses values that break the contract instead of writing them.

    ``test_correct`` (bool per test example, or an already packed record) is stored bit-packed, so the report can
    compare two methods paired over the same test examples without re-running anything.
    """
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
    if test_correct is not None:
        data["test_correct"] = test_correct if isinstance(test_correct, dict) else pack_bits(test_correct)
    storage.write_json(path, data)
    return data


def pack_bits(flags) -> dict:
    """``{"n": N, "bits": base64}`` of a bool vector (a tensor or array), 8 examples per byte."""
    import numpy as np

    arr = np.asarray(flags.cpu() if hasattr(flags, "cpu") else flags, dtype=bool).reshape(-1)
    return {"n": int(arr.size), "bits": base64.b64encode(np.packbits(arr).tobytes()).decode("ascii")}


def unpack_bits(record: dict):
    """The bool array that :func:`pack_bits` packed."""
    import numpy as np

    raw = np.frombuffer(base64.b64decode(record["bits"]), dtype=np.uint8)
    return np.unpackbits(raw, count=int(record["n"])).astype(bool)


def read_metrics(path) -> dict:
    data = storage.read_json(path)
    missing = [k for k in CORE_KEYS if k not in data]
    if missing:
        raise ArtifactError(path, f"metrics file lacks the core keys {missing}")
    return data


def save_checkpoint(path, state: dict[str, torch.Tensor], *, method: str, source_hash: str = "",
                    sparsity: float = 0.0, config: dict | None = None, **extra: Any) -> str:
    """Save a state dict as safetensors with JSON metadata; returns its content hash."""
    digest = storage.state_hash(state)
    storage.save_tensors(path, state, {"kind": "checkpoint", "method": method, "source_hash": source_hash,
                                  "sparsity": sparsity, "config": config or {}, "state_hash": digest, **extra})
    return digest


def load_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    state, meta = storage.load_tensors(path)
    if meta.get("kind") != "checkpoint":
        raise ArtifactError(path, f"is not a ticketbench checkpoint (kind={meta.get('kind')!r})")
    return state, meta
