"""Load the released Lottery Jackpots code (zyxxmu/lottery-jackpots @ 1b802ea) for the conformance drivers.

Nothing here copies released code. The released modules are imported from the extracted checkout
DIR/released/jackpot (bound, with DIR itself as ROOT, by `configure(work)` from each driver's main; synth.py is found
relative to this file; importing this module only defines things); cifar.py has module-level side effects (argparse + yaml at import via utils.options, a
checkpoint directory, a log file, the CIFAR data loaders), so only its import lines, the loss selection
(`if args.label_smoothing is None: ...`), the `args.gpus = [...]` line and the needed `def`s are taken from
its AST and executed in a namespace. Shims (recorded in every case.json):
  * sys.argv = ["cifar.py", "--config", <yaml>, "--gpus", "0"] before importing utils.options (the README's
    command line), so the yaml config is read exactly as the released parser reads it;
  * `from data import cifar10, cifar100` is skipped (no dataset); `device = 'cpu'`; `logger` = a silent logger;
    `checkpoint = utils.checkpoint(args)` (creates job dirs) is skipped.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import logging
import sys
from pathlib import Path

import numpy as np

SYNTH_DIR = Path(__file__).resolve().parents[2]  # tests/conformance (synth.py)
REPO = "zyxxmu/lottery-jackpots"
COMMIT = "1b802ea6f39f50020553bdb3a9bf89f058287156"

# Bound by configure(--work DIR).
ROOT: Path = None  # DIR (fixtures go to DIR/fixtures/jackpot)
RELEASED: Path = None  # DIR/released/jackpot


def configure(work: str) -> None:
    global ROOT, RELEASED
    ROOT = Path(work).resolve()
    RELEASED = ROOT / "released" / "jackpot"
    if not RELEASED.is_dir():
        raise SystemExit(f"{RELEASED} missing: extract {REPO} @ {COMMIT} there (see drivers/README.md)")


def command(driver: str) -> str:
    """The case.json 'command': the portable invocation, with the literal placeholder <DIR> for --work."""
    return f"python {driver} --work <DIR>"


def work_arg() -> str:
    """Parse the drivers' only option, --work DIR."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="folder holding released/jackpot; fixtures go to fixtures/jackpot")
    return ap.parse_args().work
DEFAULT_CONFIG = "configs/resnet32_cifar10/90sparsity30epoch.yaml"

CIFAR_DEFS = ("adjust_rate", "pop_up", "train", "validate", "generate_pr_cfg", "get_prune_rate", "get_model",
              "get_optimizer")

SHIMS = ("utils.options imported with sys.argv = ['cifar.py', '--config', <yaml>, '--gpus', '0'] (README command); "
         "cifar.py not imported: its imports, the `args.gpus = [...]` line, the loss_func selection and the defs "
         f"{', '.join(CIFAR_DEFS)} are AST-extracted and executed in a namespace with device='cpu' and a silent "
         "logger; `from data import cifar10, cifar100`, the checkpoint dir and log file are skipped.")


def synth():
    if str(SYNTH_DIR) not in sys.path:
        sys.path.insert(0, str(SYNTH_DIR))
    import synth as s  # noqa: E402
    return s


def quiet():
    """Swallow the released code's prints (get_builder, freeze_model_weights)."""
    return contextlib.redirect_stdout(io.StringIO())


def silent_logger() -> logging.Logger:
    lg = logging.getLogger("jackpot-conformance")
    lg.handlers[:] = [logging.NullHandler()]
    lg.propagate = False
    return lg


def deterministic(torch):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def load(config: str = DEFAULT_CONFIG) -> dict:
    """Import the released modules and return the cifar.py namespace (functions + globals they use)."""
    sys.argv = ["cifar.py", "--config", str(RELEASED / config), "--gpus", "0"]
    if str(RELEASED) not in sys.path:
        sys.path.insert(0, str(RELEASED))
    with quiet():
        import utils.options  # noqa: F401  (parses sys.argv + yaml)
    tree = ast.parse((RELEASED / "cifar.py").read_text())
    keep = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "data":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            keep.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name in CIFAR_DEFS:
            keep.append(node)
        elif isinstance(node, ast.If) and "label_smoothing" in ast.unparse(node.test):
            keep.append(node)
        elif isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "args.gpus":
            keep.append(node)
    ns: dict = {"__name__": "released_cifar", "device": "cpu", "logger": silent_logger()}
    mod = ast.Module(body=keep, type_ignores=[])
    with quiet():
        exec(compile(mod, str(RELEASED / "cifar.py"), "exec"), ns)
    return ns


def apply_config(ns: dict, config: str) -> None:
    """Switch to another yaml config after import (e.g. VGG-19): the yaml's keys override args, as options.py does."""
    import yaml
    ns["args"].__dict__.update(yaml.load((RELEASED / config).read_text(), Loader=yaml.FullLoader))
    ns["args"].gpus = [0]


def prunable(model):
    """The released prunable modules (those with set_prune_rate), in named_modules order."""
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "set_prune_rate")]


def layer_list(model) -> list:
    """[[weight name, shape, kind], ...] in module order; the classifier is a 1x1 PretrainConv in the released code."""
    out = []
    for n, m in prunable(model):
        kind = "linear" if n in ("fc", "classifier") else "conv"
        out.append([f"{n}.weight", list(m.weight.shape), kind])
    return out


def pretrained_state(model, seed: int = 0, levels=None):
    """synth weights for every conv/classifier weight (module order), classifier bias = 0; BN left at defaults."""
    import torch
    s = synth()
    shapes = {f"{n}.weight": tuple(m.weight.shape) for n, m in prunable(model)}
    w = s.weights(seed, shapes, levels=levels)
    sd = {k: torch.from_numpy(v.copy()) for k, v in w.items()}
    for n, m in prunable(model):
        if m.bias is not None:
            sd[f"{n}.bias"] = torch.zeros_like(m.bias.detach())
    return sd, shapes


def build_on_pretrained(ns: dict, arch: str, sd: dict, prune_rate: float, freeze: bool = True):
    """The released cifar.py:get_model sequence *without* its second `models.__dict__[args.arch]()` (which throws the
    loaded weights away): construct, load_state_dict(strict=False), generate_pr_cfg, set_model_prune_rate,
    freeze_model_weights. This is exactly imagenet.py:get_model's order (which has no re-instantiation)."""
    args = ns["args"]
    args.arch = arch
    args.prune_rate = prune_rate
    with quiet():
        model = ns["models"].__dict__[arch]().to("cpu")
        model.load_state_dict(sd, strict=False)
        pr_cfg = ns["generate_pr_cfg"](model)
        ns["set_model_prune_rate"](model, pr_cfg, ns["logger"])
        if freeze and args.freeze_weights:
            ns["freeze_model_weights"](model)
    return model, pr_cfg


def b_masks(model) -> dict:
    return {f"{n}.weight": m.b_mask.detach().cpu().numpy().astype(bool) for n, m in prunable(model)}


def digests(model) -> dict:
    return synth().digests(b_masks(model))


def sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def write_case(folder: Path, case: dict) -> None:
    import json
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "case.json").write_text(json.dumps(case, indent=1) + "\n")
