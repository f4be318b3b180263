"""Shared helpers of the conformance tests: fixtures of the released code, inputs rebuilt from their seeds, and the
mapping of a released network's layers onto ticketbench's network of the same architecture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ticketbench.report.deviations import DEVIATIONS

from . import synth

FIXTURES = Path(__file__).parent / "fixtures"


def case(paper: str, name: str) -> dict:
    return json.loads((FIXTURES / paper / name / "case.json").read_text())


def cases(paper: str, prefix: str = "") -> list[str]:
    return sorted(p.name for p in (FIXTURES / paper).iterdir() if p.is_dir() and p.name.startswith(prefix))


def tensors(paper: str, name: str) -> dict[str, torch.Tensor]:
    from . import tensorjson

    return {k: torch.from_numpy(v) for k, v in tensorjson.load(FIXTURES / paper / name / "expected.tensors.json").items()}


def layer_map(model: torch.nn.Module, layers: list) -> dict[str, str]:
    """ticketbench parameter name -> released name, by module order and shape of the conv and linear weights."""
    from ticketbench.models import conv_linear_layers

    ours = [(f"{n}.weight", tuple(m.weight.shape)) for n, m in conv_linear_layers(model).items()]
    theirs = [(name, tuple(shape)) for name, shape, *_ in layers]
    assert [s for _, s in ours] == [s for _, s in theirs], "the two networks' conv and linear layers differ"
    return {o: t for (o, _), (t, _) in zip(ours, theirs)}


def digests(masks: dict[str, torch.Tensor]) -> dict[str, dict]:
    return synth.digests({n: m.numpy() for n, m in masks.items()})


def differing(ours: dict[str, dict], expected: dict[str, dict]) -> list[str]:
    """Layers whose mask digest differs (names of the expected side), or that one side lacks."""
    return sorted(n for n in set(ours) | set(expected) if ours.get(n) != expected.get(n))


def declared(key: str) -> None:
    """A difference from the released code is acceptable only as a declared deviation."""
    assert key in {d.key for d in DEVIATIONS}, f"undeclared difference from the released code: {key}"


def as_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))
