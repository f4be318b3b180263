"""Shared helpers for the Structure-LTH (VITA-Group/Structure-LTH @ 8b10a76) conformance drivers.

Imports the *released* code from the extracted checkout DIR/released/slth (pruning_utils.py and
models/{resnets,resnet,vgg}.py). Nothing from the released repository is copied here. ``configure(work)`` (called
from each driver's ``main``) binds RELEASED = DIR/released/slth, FIXTURES = DIR/fixtures/slth and imports
tests/conformance/synth.py (found relative to this file); importing this module only defines things.

Shims (only for imports the released files make and never use on these paths, or a third-party helper):
- ``advertorch`` is not installed: ``advertorch.utils.NormalizeByChannelMeanStd`` is provided by a small stand-in
  with advertorch's behaviour (buffers ``mean``/``std``; forward ``(x - mean[None, :, None, None]) / std[...]``).
  resnets.py (resnet20) builds it but its forward does not call it (``#x = self.normalize(x)``); resnet.py and
  vgg.py call it in forward.
- ``torchvision.models.utils`` no longer exists in torchvision 0.29; resnet.py / vgg.py import
  ``load_state_dict_from_url`` from it (only used for ``pretrained=True``, never here): it is aliased to
  ``torch.hub.load_state_dict_from_url``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTH_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))  # tests/conformance (synth.py)

REPOSITORY = "VITA-Group/Structure-LTH"
COMMIT = "8b10a76c99d7e33042035c9dc6933003fce46ce8"

SHIMS = ("advertorch is not installed: advertorch.utils.NormalizeByChannelMeanStd is a stand-in with advertorch's "
         "behaviour (buffers mean/std, forward (x-mean)/std per channel); torchvision.models.utils (gone in "
         "torchvision 0.29, imported by models/resnet.py and models/vgg.py for pretrained=True only) is aliased to "
         "torch.hub. No released code is modified or copied.")

# Bound by configure(--work DIR).
RELEASED = None  # DIR/released/slth
FIXTURES = None  # DIR/fixtures/slth
synth = None  # tests/conformance/synth.py


def configure(work: str) -> None:
    global RELEASED, FIXTURES, synth
    work = os.path.abspath(work)
    RELEASED = os.path.join(work, "released", "slth")
    FIXTURES = os.path.join(work, "fixtures", "slth")
    if not os.path.isdir(RELEASED):
        raise SystemExit(f"{RELEASED} missing: extract {REPOSITORY} @ {COMMIT} there (see drivers/README.md)")
    sys.path.insert(0, SYNTH_DIR)
    import synth as _synth
    synth = _synth


def command(driver: str, *args: str) -> str:
    """The case.json 'command': the portable invocation, with the literal placeholder <DIR> for --work."""
    return " ".join(["python", driver, "--work", "<DIR>", *args])


def _install_shims() -> None:
    if "advertorch" not in sys.modules:
        class NormalizeByChannelMeanStd(torch.nn.Module):
            def __init__(self, mean, std):
                super().__init__()
                if not isinstance(mean, torch.Tensor):
                    mean = torch.tensor(mean)
                if not isinstance(std, torch.Tensor):
                    std = torch.tensor(std)
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)

            def forward(self, tensor):
                return (tensor - self.mean[None, :, None, None]) / self.std[None, :, None, None]

        adv = types.ModuleType("advertorch")
        adv_utils = types.ModuleType("advertorch.utils")
        adv_utils.NormalizeByChannelMeanStd = NormalizeByChannelMeanStd
        adv.utils = adv_utils
        sys.modules["advertorch"] = adv
        sys.modules["advertorch.utils"] = adv_utils
    try:
        import torchvision.models.utils  # noqa: F401
    except ImportError:
        import torchvision.models
        tvu = types.ModuleType("torchvision.models.utils")
        tvu.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        sys.modules["torchvision.models.utils"] = tvu
        torchvision.models.utils = tvu


def import_released():
    """The released pruning_utils module and model constructors."""
    _install_shims()
    if RELEASED not in sys.path:
        sys.path.insert(0, RELEASED)
    import pruning_utils  # released pruning_utils.py
    from models.resnet import resnet18  # released models/resnet.py
    from models.resnets import resnet20  # released models/resnets.py
    from models.vgg import vgg16_bn  # released models/vgg.py
    from advertorch.utils import NormalizeByChannelMeanStd
    return types.SimpleNamespace(pu=pruning_utils, resnet18=resnet18, resnet20=resnet20, vgg16_bn=vgg16_bn,
                                 Normalize=NormalizeByChannelMeanStd)


# utils.py:setup_model_dataset (dataset cifar10, use_sparse_conv False): the constructor calls for
# --arch res20s / vgg16_bn / res18, then `model.normalize = NormalizeByChannelMeanStd(cifar10 mean/std)`.
ARCH_OF = {"resnet20": "res20s", "vgg16": "vgg16_bn", "resnet18": "res18"}
CONSTRUCTOR_CALL = {
    "resnet20": "models/resnets.py:resnet20(number_class=10)",
    "vgg16": "models/vgg.py:vgg16_bn(num_classes=10, use_sparse_conv=False)",
    "resnet18": "models/resnet.py:resnet18(num_classes=10, imagenet=False, use_sparse_conv=False)",
}


def build(rel, net: str, init_seed: int = 0):
    torch.manual_seed(init_seed)  # released init only; every conv weight used is overwritten from synth
    if net == "resnet20":
        model = rel.resnet20(number_class=10)
    elif net == "vgg16":
        model = rel.vgg16_bn(num_classes=10, use_sparse_conv=False)
    elif net == "resnet18":
        model = rel.resnet18(num_classes=10, imagenet=False, use_sparse_conv=False)
    else:
        raise ValueError(net)
    model.normalize = rel.Normalize(mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616])
    return model


def layer_list(model):
    """[name.weight, shape, kind] for every Conv2d / Linear module, in named_modules() order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            out.append([name + ".weight", list(m.weight.shape), "conv"])
        elif isinstance(m, torch.nn.Linear):
            out.append([name + ".weight", list(m.weight.shape), "linear"])
    return out


def conv_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]


def released_selection(rel, net: str) -> list[str]:
    """Conv module names the released code selects with conv1=False, found by running it: the modules that carry a
    weight_mask after pruning_utils.pruning_model(scratch model, 0.0, conv1=False) (amount 0 removes nothing)."""
    scratch = build(rel, net)
    rel.pu.pruning_model(scratch, 0.0, conv1=False)
    return [n for n, m in scratch.named_modules() if hasattr(m, "weight_mask")]


def conv_shapes(model):
    """{module.weight: shape} for every Conv2d (pruned or not), module order: the synth.weights streams."""
    return {n + ".weight": tuple(m.weight.shape) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def synth_images(seed: int, n: int, classes: int = 10):
    x = synth.values(seed, 0, (n, 3, 32, 32), None, 1.0)
    y = synth.labels(seed, 1, n, classes)
    return torch.from_numpy(x), torch.from_numpy(y)


def environment():
    return {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads()}


def write_case(case: str, payload: dict, tensors: dict | None = None):
    folder = os.path.join(FIXTURES, case)
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    with open(os.path.join(folder, "case.json"), "w") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    if tensors:
        import tensorjson  # beside synth.py (on sys.path since setup)
        tensorjson.save(os.path.join(folder, "expected.tensors.json"), tensors)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"wrote {folder} ({size} bytes)")
    assert size < 1_000_000, size
