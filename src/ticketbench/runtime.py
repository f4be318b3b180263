"""Determinism, devices and the version stamp that goes into every metrics.json."""

from __future__ import annotations

import hashlib
import os
import platform
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed every RNG the suite uses and return a generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def layer_generator(seed: int, name: str) -> torch.Generator:
    """A generator for one named tensor, independent of the order in which tensors are visited.

    The name enters through a fixed hash (not Python's ``hash``, which changes per process).
    """
    key = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)
    return torch.Generator().manual_seed(key)


def make_deterministic(on: bool = True) -> None:
    """Ask torch for bitwise-reproducible kernels (``on``) or for the fastest ones; must run before CUDA initialises.

    Off, cuDNN autotunes its convolutions and TF32 is allowed: faster on a GPU, but the last bits then vary
    between runs and GPU generations.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.benchmark = not on
    torch.backends.cudnn.deterministic = on
    # TF32 changes numerics between GPU generations; comparisons across machines need it off.
    torch.backends.cuda.matmul.allow_tf32 = not on
    torch.backends.cudnn.allow_tf32 = not on
    _NUMERICS["deterministic"] = on


# How this process runs the numbers, recorded in every metrics.json: set by setup_runtime and train().
_NUMERICS: dict[str, object] = {"precision": "fp32", "layout": "contiguous", "compile": False, "deterministic": False}


def note_numerics(**settings: object) -> None:
    _NUMERICS.update(settings)


def numerics() -> dict[str, object]:
    """Precision, memory layout, compilation and determinism mode of this process's training and evaluation."""
    return dict(_NUMERICS)


def resolve_device(name: str = "auto") -> torch.device:
    from .errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", name, "this machine has no CUDA device; use cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ConfigError("device", name, "one of auto, cpu, cuda, cuda:N")
    return torch.device(name)


def versions() -> dict[str, str]:
    import timm
    import torchvision

    from . import __version__
    from .codeversion import code_version

    out = {
        "ticketbench": __version__,
        **code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "cpu_threads": str(torch.get_num_threads()),
    }
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name(0)
    return out
