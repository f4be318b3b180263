"""Seeded randomness must not depend on the process: the same seed gives the same bytes in a fresh interpreter."""

import hashlib
import subprocess
import sys

import torch

from ticketbench.storage import load_tensors, save_tensors
from ticketbench.masks import Mask

# A mask with many layers, so that a per-process layer order would almost surely show up.
LAYERS = {f"stage{i % 4}.block{i}.conv.weight": (8, 4, 3, 3) for i in range(24)}

RANDOM_PRUNE = """
import hashlib, sys
from ticketbench.masks import Mask
from ticketbench.methods.imp import random_like
ref, _ = Mask.load(sys.argv[1])
out = random_like(ref, 1234)
h = hashlib.sha256()
for name in sorted(out):
    h.update(name.encode()); h.update(out[name].numpy().tobytes())
print(h.hexdigest())
"""


def _reference_mask(path):
    g = torch.Generator().manual_seed(0)
    mask = Mask({n: torch.rand(shape, generator=g) < 0.3 for n, shape in LAYERS.items()})
    mask.save(path, method="imp")
    return mask


def test_random_prune_masks_are_identical_across_processes(tmp_path):
    path = tmp_path / "mask.safetensors"
    ref = _reference_mask(path)
    digests = {subprocess.run([sys.executable, "-c", RANDOM_PRUNE, str(path)], capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(2)}
    assert len(digests) == 1, "random_prune gave different masks for the same seed in different processes"

    from ticketbench.methods.imp import random_like

    out = random_like(Mask.load(path)[0], 1234)
    assert {n: int(m.sum()) for n, m in out.items()} == {n: int(m.sum()) for n, m in ref.items()}
    assert any(not torch.equal(out[n], ref[n]) for n in ref)
    assert random_like(ref, 1234).keys() == out.keys()
    assert all(torch.equal(random_like(ref, 1234)[n], out[n]) for n in out), "layer order must not matter"


def test_loaded_tensors_come_back_in_name_order(tmp_path):
    names = list(LAYERS)[::-1]
    save_tensors(tmp_path / "t.safetensors", {n: torch.zeros(1) for n in names}, {})
    tensors, _ = load_tensors(tmp_path / "t.safetensors")
    assert list(tensors) == sorted(names)
