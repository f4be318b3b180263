"""Shared helpers for the PrAC-LTH conformance drivers.

Everything released is loaded at run time from the extracted checkout (ast for definitions and for the inline
statements of ``main()``); nothing released is copied here. Shims (documented in every fixture's notes):
- ``advertorch.utils.NormalizeByChannelMeanStd``: advertorch is not installed; a stand-in module with the same
  (mean, std) buffers. It only normalises inputs and has no effect on which weights are pruned.
- ``torchvision.models.utils.load_state_dict_from_url``: gone from current torchvision; aliased to torch.hub's.

Paths: ``configure(work)`` (called from each driver's ``main``) binds RELEASED = DIR/released/prac and
FIXTURES = DIR/fixtures/prac and imports tests/conformance/synth.py (found relative to this file). Importing this
module only defines things.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import types
from pathlib import Path

import torch
import torch.nn as nn

SYNTH_DIR = Path(__file__).resolve().parents[2]  # tests/conformance (synth.py)
REPO = "VITA-Group/PrAC-LTH"
COMMIT = "c65fd67b06da3e870ac4087d3820ad07a23e1405"

# Bound by configure(--work DIR).
RELEASED: Path = None  # DIR/released/prac
FIXTURES: Path = None  # DIR/fixtures/prac
synth = None  # tests/conformance/synth.py


def configure(work: str) -> None:
    global RELEASED, FIXTURES, synth
    work = Path(work).resolve()
    RELEASED = work / "released" / "prac"
    FIXTURES = work / "fixtures" / "prac"
    if not RELEASED.is_dir():
        raise SystemExit(f"{RELEASED} missing: extract {REPO} @ {COMMIT} there (see drivers/README.md)")
    sys.path.insert(0, str(SYNTH_DIR))
    import synth as _synth
    synth = _synth


def commit() -> str:
    return COMMIT


def install_shims() -> None:
    if "advertorch" not in sys.modules:
        class NormalizeByChannelMeanStd(nn.Module):  # shim, not released code
            def __init__(self, mean, std):
                super().__init__()
                self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
                self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

            def forward(self, x):
                return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

        adv = types.ModuleType("advertorch")
        advu = types.ModuleType("advertorch.utils")
        advu.NormalizeByChannelMeanStd = NormalizeByChannelMeanStd
        adv.utils = advu
        sys.modules["advertorch"] = adv
        sys.modules["advertorch.utils"] = advu
    if "torchvision.models.utils" not in sys.modules:
        import torchvision.models  # noqa: F401
        tmu = types.ModuleType("torchvision.models.utils")
        tmu.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        sys.modules["torchvision.models.utils"] = tmu
    if str(RELEASED) not in sys.path:
        sys.path.insert(0, str(RELEASED))


def _parse(rel: str) -> tuple[ast.Module, str, str]:
    path = RELEASED / rel
    src = path.read_text()
    return ast.parse(src, filename=str(path)), src, str(path)


def load_defs(rel: str, names: list[str], namespace: dict) -> dict:
    """exec the top-level ``def``/``class`` nodes called ``names`` of a released file into ``namespace``."""
    tree, _, path = _parse(rel)
    nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
    missing = set(names) - {n.name for n in nodes}
    if missing:
        raise LookupError(f"{rel}: no top-level {sorted(missing)}")
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), namespace)
    return namespace


def main_loops(rel: str = "main_PrAC_imp.py"):
    """main()'s `for state in ...` loop node and its `for epoch in ...` loop node."""
    tree, src, path = _parse(rel)
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    state_loop = next(n for n in main.body if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                      and n.target.id == "state")
    epoch_loop = next(n for n in state_loop.body if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                      and n.target.id == "epoch")
    return state_loop, epoch_loop, src, path


def stmts_between(body: list, src: str, first_prefix: str, last_contains: str) -> tuple[list, int, int]:
    """The statements of ``body`` from the first whose source starts with ``first_prefix`` to the first after it
    whose source contains ``last_contains``."""
    segs = [ast.get_source_segment(src, n) or "" for n in body]
    i = next(k for k, s in enumerate(segs) if s.startswith(first_prefix))
    j = next(k for k in range(i, len(segs)) if last_contains in segs[k])
    return body[i:j + 1], body[i].lineno, body[j].end_lineno


def compile_stmts(nodes: list, path: str):
    return compile(ast.Module(body=nodes, type_ignores=[]), path, "exec")


def write_case(case: str, *, driver: str, command: str, released_function: str, inputs: dict, expected: dict,
               notes: str, tensors: dict | None = None) -> Path:
    d = FIXTURES / case
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    meta = {"repository": REPO, "commit": commit(), "command": command, "driver": driver,
            "released_function": released_function, "inputs": inputs, "expected": expected, "notes": notes}
    (d / "case.json").write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
    if tensors:
        import tensorjson  # beside synth.py (on sys.path since setup)
        tensorjson.save(d / "expected.tensors.json", tensors)
    return d


class quiet:
    """Silence the released code's prints."""

    def __enter__(self):
        self._out = sys.stdout
        sys.stdout = open(os.devnull, "w")

    def __exit__(self, *a):
        sys.stdout.close()
        sys.stdout = self._out
