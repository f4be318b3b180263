"""The results contract: metrics.json with the same core keys everywhere, checkpoints with metadata."""

from __future__ import annotations

import base64
import functools
import math
from typing import TYPE_CHECKING, Any

from . import storage
from .errors import ArtifactError, short_repr
from .hparams import SEED_MAX

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


# The results contract as a JSON schema: what every reader of a metrics.json may rely on. The gate and the report
# average these numbers, so a value outside the contract (an accuracy of 1.5, a string, NaN) must stop them, not
# move a mean or flip a claim.
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_ACCURACY = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_SCORED = {  # what a run and each of its rounds may record about its own ticket
    "sparsity": _FRACTION, "test_acc": _ACCURACY, "val_acc": _ACCURACY, "train_iterations": _COUNT,
    "channel_sparsity": _FRACTION, "prac_trained_fraction": _FRACTION,
    "state_hash": {"type": "string", "minLength": 1, "maxLength": 200},
    "test_correct": {"type": "object", "required": ["n", "bits"],
                     "properties": {"n": _COUNT, "bits": {"type": "string"}}},
}
ROUND_SCHEMA = {"type": "object", "required": ["round", "sparsity", "test_acc", "val_acc"],
                "properties": {"round": _COUNT, **_SCORED}}
METRICS_SCHEMA = {
    "type": "object",
    "required": list(CORE_KEYS),
    "properties": {
        "method": _NAME, "dataset": _NAME, "backbone": _NAME,
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
        "wall_seconds": {"type": "number", "minimum": 0}, "versions": {"type": "object"},
        "run_id": {"type": "string"}, "rounds": {"type": "array", "items": ROUND_SCHEMA},
        **_SCORED,
    },
}
_FINITE_KEYS = tuple(k for k, v in _SCORED.items() if v.get("type") in ("number", ["number", "null"]))


def check_metrics(data: Any, path) -> dict:
    """``data`` if it keeps the results contract (:data:`METRICS_SCHEMA`), else one line naming the file and key."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the file"
        raise ArtifactError(path, f"breaks the results contract at {where}: {_said(error)}")
    # JSON's NaN and Infinity are numbers to the schema and compare false with every bound.
    for label, row in [("", data), *((f"rounds/{i}/", r) for i, r in enumerate(data.get("rounds", [])))]:
        for key in _FINITE_KEYS + ("wall_seconds",):
            value = row.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise ArtifactError(path, f"breaks the results contract at {label}{key}: {value} is not a finite "
                                    "number")
    return data


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(METRICS_SCHEMA)


def _said(error) -> str:
    """jsonschema's reason with the offending value cut to a readable length."""
    v = error.validator
    shown = short_repr(error.instance)
    if v == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"lacks the key {missing[0]!r}" if missing else error.message
    if v == "type":
        want = error.validator_value
        return f"{shown} is not of type {' or '.join(want) if isinstance(want, list) else want}"
    if v in ("minimum", "maximum"):
        return f"{shown} is {'below' if v == 'minimum' else 'above'} the {v} {error.validator_value}"
    if v in ("pattern", "minLength", "maxLength"):
        return f"{shown} is not a valid value ({v} {short_repr(error.validator_value)})"
    return f"{shown} is not allowed ({v})"


def read_metrics(path) -> dict:
    return check_metrics(storage.read_json(path), path)


def save_checkpoint(path, state: dict[str, torch.Tensor], *, method: str, source_hash: str = "",
                    sparsity: float = 0.0, config: dict | None = None, **extra: Any) -> str:
    """Save a state dict as safetensors with JSON metadata; returns its content hash."""
    digest = storage.state_hash(state)
    storage.save_tensors(path, state, {"kind": "checkpoint", "method": method, "source_hash": source_hash,
                                  "sparsity": sparsity, "config": config or {}, "state_hash": digest, **extra})
    return digest


def load_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """A checkpoint whose weights are the ones its metadata names: the content hash is recomputed, not trusted, and
    weights that are not finite (a run that diverged, a damaged or edited file) are refused."""
    state, meta = storage.load_tensors(path)
    if meta.get("kind") != "checkpoint":
        raise ArtifactError(path, f"is not a ticketbench checkpoint (kind={meta.get('kind')!r})")
    check_state(path, state, meta.get("state_hash"))
    return state, meta


def check_state(path, state: dict[str, torch.Tensor], claimed: Any) -> None:
    """Refuse weights that are not finite or whose content hash is not the one recorded for them."""
    import torch

    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ArtifactError(path, f"tensor {name!r} holds NaN or infinite values; these weights cannot be used")
    if storage.state_hash(state) != claimed:
        raise ArtifactError(path, f"its weights do not hash to the state_hash its metadata records "
                            f"({short_repr(claimed)}): the file was changed after it was written; re-run the stage or "
                            "`dvc pull` it")
