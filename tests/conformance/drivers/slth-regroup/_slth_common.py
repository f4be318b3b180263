"""Shared helpers of the slth-regroup drivers (no released code here: it is imported from the extracted checkout).

* `configure(work)` (called from each driver's `main`) binds ROOT = DIR, RELEASED_DIR = DIR/released/slth-regroup,
  imports tests/conformance/synth.py (found relative to this file) and sets torch to one thread; importing this
  module only defines things.
* `pruning_utils()` / `released_resnet18()` import `pruning_utils` (and, for the model, `models.resnet`) from
  DIR/released/slth-regroup (Structure-LTH at COMMIT). Shims: `advertorch.utils`
  (NormalizeByChannelMeanStd -> a parameter-free nn.Module) and `torchvision.models.utils`
  (load_state_dict_from_url, gone from current torchvision; never called) are stubbed so models/resnet.py imports.
* `run_regroup(matrix, ...)` calls the released `pruning_utils.regroup` unchanged, in a fresh temporary working
  directory that holds `./shmetis`: a two-line /bin/sh wrapper that execs drivers/slth-regroup/shmetis (a stub:
  KaHyPar or a given partition, never hMETIS) with this interpreter (sys.executable). The released function's
  local `blocks` (and `clusters`, `nonempty_rows`) are read at its return through sys.settrace with line events
  off (observation only; nothing in the function is changed).
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTH_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))  # tests/conformance (synth.py)
REPOSITORY = "VITA-Group/Structure-LTH"
COMMIT = "8b10a76c99d7e33042035c9dc6933003fce46ce8"
STUB = os.path.join(HERE, "shmetis")
SHIMS = ("advertorch.utils.NormalizeByChannelMeanStd stubbed as a parameter-free nn.Module; "
         "torchvision.models.utils.load_state_dict_from_url stubbed (removed from torchvision, never called)")

# Bound by configure(--work DIR).
ROOT = None  # DIR
RELEASED_DIR = None  # DIR/released/slth-regroup
synth = None  # tests/conformance/synth.py


def configure(work: str) -> None:
    global ROOT, RELEASED_DIR, synth
    ROOT = os.path.abspath(work)
    RELEASED_DIR = os.path.join(ROOT, "released", "slth-regroup")
    if not os.path.isdir(RELEASED_DIR):
        raise SystemExit(f"{RELEASED_DIR} missing: extract {REPOSITORY} @ {COMMIT} there (see drivers/README.md)")
    sys.path.insert(0, SYNTH_DIR)
    import synth as _synth
    synth = _synth
    torch.set_num_threads(1)


def command(driver: str, *args: str) -> str:
    """The case.json 'command': the portable invocation, with the literal placeholder <DIR> for --work."""
    return " ".join(["python", driver, "--work", "<DIR>", *args])


def _write_stub_wrapper(path: str) -> None:
    """`./shmetis` for the released os.system call: exec the stub with this interpreter (it needs kahypar)."""
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(STUB)} \"$@\"\n")
    os.chmod(path, 0o755)


def _install_shims() -> None:
    import torch.nn as nn
    if "advertorch.utils" not in sys.modules:
        class NormalizeByChannelMeanStd(nn.Module):
            def __init__(self, mean, std):
                super().__init__()

            def forward(self, x):
                return x
        adv = types.ModuleType("advertorch")
        advu = types.ModuleType("advertorch.utils")
        advu.NormalizeByChannelMeanStd = NormalizeByChannelMeanStd
        adv.utils = advu
        sys.modules["advertorch"], sys.modules["advertorch.utils"] = adv, advu
    import torchvision.models
    if "torchvision.models.utils" not in sys.modules:
        tmu = types.ModuleType("torchvision.models.utils")

        def load_state_dict_from_url(*a, **k):
            raise RuntimeError("shim: not available")
        tmu.load_state_dict_from_url = load_state_dict_from_url
        sys.modules["torchvision.models.utils"] = tmu
        torchvision.models.utils = tmu


def pruning_utils():
    if RELEASED_DIR not in sys.path:
        sys.path.insert(0, RELEASED_DIR)
    import pruning_utils as pu
    assert os.path.dirname(os.path.abspath(pu.__file__)) == RELEASED_DIR, pu.__file__
    return pu


def released_resnet18():
    _install_shims()
    pruning_utils()
    from models.resnet import resnet18
    return resnet18(num_classes=10, imagenet=False, use_sparse_conv=False)


def prunable_convs(model):
    """(module name, module) of every nn.Conv2d but the stem 'conv1', in named_modules order (as pruning_model)."""
    import torch.nn as nn
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and n != "conv1"]


def run_regroup(matrix: torch.Tensor, partition: list[int] | None = None, cn: int = 8, trace: bool = True):
    """Call the released regroup(matrix) (defaults t1=1.5, nn=32, B2=16, cn=8 unless cn given) with the stub.

    Returns dict(out, is_input, blocks, clusters, nonempty_rows, stub, seconds, leftover_files).
    """
    pu = pruning_utils()
    code = pu.regroup.__code__
    captured = {}

    def local(frame, event, arg):
        if event == "return":
            loc = frame.f_locals
            captured["blocks"] = [([int(r) for r in b[0]], [int(c) for c in b[1]]) for b in loc.get("blocks", [])]
            captured["has_blocks_local"] = "blocks" in loc
            if "clusters" in loc and isinstance(loc["clusters"], list):
                captured["clusters"] = [[int(i) for i in c] for c in loc["clusters"]]
            captured["nonempty_rows"] = [int(i) for i in loc.get("nonempty_rows", [])]
        return local

    def glob_tracer(frame, event, arg):
        if event == "call" and frame.f_code is code:
            frame.f_trace_lines = False
            return local
        return None

    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="slth_regroup_") as wd:
        _write_stub_wrapper(os.path.join(wd, "shmetis"))
        env_backup = {k: os.environ.get(k) for k in ("SLTH_PARTITION", "SLTH_STUB_LOG")}
        os.environ["SLTH_STUB_LOG"] = wd
        if partition is not None:
            with open(os.path.join(wd, "given_partition.txt"), "w") as f:
                f.write("".join(f"{int(p)}\n" for p in partition))
            os.environ["SLTH_PARTITION"] = os.path.join(wd, "given_partition.txt")
        else:
            os.environ.pop("SLTH_PARTITION", None)
        os.chdir(wd)
        try:
            if trace:
                sys.settrace(glob_tracer)
            t0 = time.perf_counter()
            try:
                out = pu.regroup(matrix) if cn == 8 else pu.regroup(matrix, cn=cn)
            finally:
                seconds = time.perf_counter() - t0
                sys.settrace(None)
        finally:
            os.chdir(old)
            for k, v in env_backup.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        with open(os.path.join(wd, "stub_calls.jsonl")) as f:
            stub = [json.loads(line) for line in f]
        leftover = sorted(n for n in os.listdir(wd) if n not in ("shmetis", "stub_calls.jsonl", "given_partition.txt"))
    assert len(stub) == 1, stub
    return dict(out=out, is_input=out is matrix, seconds=seconds, stub=stub[0], leftover_files=leftover, **captured)


def blocks_mask(shape, blocks) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    for rows, cols in blocks:
        if rows and cols:
            m[np.ix_(rows, cols)] = True
    return m


def dump_json(obj, path) -> None:
    """JSON with indented dicts but lists of scalars on one line (readable and small)."""
    def enc(o, ind):
        pad = " " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f'{pad} {json.dumps(str(k))}: {enc(v, ind + 1)}' for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(x, (dict, list, tuple)) for x in o):
                return json.dumps(list(o), separators=(",", ":"))
            return "[\n" + ",\n".join(f"{pad} {enc(x, ind + 1)}" for x in o) + "\n" + pad + "]"
        return json.dumps(o)
    with open(path, "w") as f:
        f.write(enc(obj, 0) + "\n")
