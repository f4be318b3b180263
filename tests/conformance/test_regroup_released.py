"""Structure-LTH (8b10a76) IMP-Regroup against ours with the same row partition: the released `regroup` ran with a
stub in place of hMETIS that wrote the partition recorded in each fixture (drivers/slth-regroup; hMETIS itself is not
available, deviation slth-partitioner). Our `released` loop must give the released masks bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ticketbench.methods.structure.regroup import RELEASED, extract_blocks, blocks_to_mask

from . import synth
from .common import case, cases, declared, tensors

KW = dict(parts=RELEASED.parts, row_threshold=RELEASED.row_threshold, granularity=RELEASED.granularity,
          column_factor=RELEASED.column_factor, loop="released")


def _regrouped(matrix: torch.Tensor, partition: torch.Tensor, **kw) -> torch.Tensor:
    blocks = extract_blocks(matrix, partition=partition, **{**KW, **kw})
    # No block: the released function returns its input (ours lists the layer as a fallback and keeps its mask).
    return blocks_to_mask(tuple(matrix.shape), blocks) if blocks else matrix


def _digest(m: torch.Tensor) -> dict:
    return {k: v for k, v in synth.digest(m.numpy()).items() if k != "shape"}


@pytest.mark.parametrize("name", cases("slth-regroup", "hand_"))
def test_hand_made_matrices(name):
    t = tensors("slth-regroup", name)
    out = _regrouped(t["input"], t["partition"])
    assert torch.equal(out, t["output"])


def _input_masks(c: dict) -> dict[str, torch.Tensor]:
    i = c["inputs"]
    names = i["weights"]["names_in_order"]
    shapes = {name: tuple(shape) for name, shape, _ in i["layers"]}
    raw = synth.weights(i["weights"]["seed"], {n: shapes[n] for n in names}, levels=i["weights"]["levels"])
    rule = i["input_mask_rule"]
    threshold = np.frombuffer(bytes.fromhex(rule["threshold_float32_hex"]), dtype="<f4")[0]
    masks = {n: np.abs(raw[n]) > threshold for n in names}
    for index, flat in rule["tied_kept"]:  # torch.topk kept these of the weights tied at the threshold
        masks[names[index]].reshape(-1)[flat] = True
    return {n: torch.from_numpy(m) for n, m in masks.items()}


@pytest.mark.parametrize("name", [n for n in cases("slth-regroup", "resnet18_r") if "_g" in n])
def test_resnet18_layers_regroup_as_the_released_loop(name):
    c, t = case("slth-regroup", name), tensors("slth-regroup", name)
    masks = _input_masks(c)
    for layer in c["expected"]["layers"]:
        m = masks[layer["name"]]
        assert _digest(m) == {k: v for k, v in layer["input_digest"].items() if k != "shape"}
        matrix = m.reshape(m.shape[0], -1)
        out = _regrouped(matrix, t[f"{layer['name']}.partition"])
        assert _digest(out) == {k: v for k, v in layer["output_digest"].items() if k != "shape"}, layer["name"]
        paper = _regrouped(matrix, t[f"{layer['name']}.partition"], loop="paper")
        if not torch.equal(paper, out):
            declared("slth-regroup-loop")

