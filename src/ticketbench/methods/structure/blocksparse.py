"""Executable group-wise sparse convolution for IMP-Regroup masks.

A regrouped conv layer keeps only dense blocks ``rows x cols`` of its ``C_out x (C_in*kh*kw)`` weight matrix.
:class:`BlockSparseConv2d` computes exactly ``F.conv2d(x, weight * union_of_blocks, bias, ...)``.

Implementation, chosen by measurement on CPU (torch 2.14.1, 1 thread, batch 64, 3x3 convs at padding 1, blocks
of 32 or 64 rows covering 20% of the weights, median of 7 calls; speedup = dense masked conv time / candidate time):

* (a) per block, gather the input channels its columns touch and run one ``F.conv2d`` with the block's weight
  (zero where a tap of a gathered channel is outside the block), then ``index_copy_`` into the block's output
  rows. Blocks made of whole channels: 1.8-4.2x (64->64 @32x32: 2.4x, 128->128 @16x16: 2.3x, 256->256 @8x8:
  3.3x, 64->128 stride 2: 4.2x, with 2 blocks). Columns scattered over all channels: 0.5-0.96x, because the
  gathered conv then does nearly the dense work on top of the gather.
* (b) im2col restricted to the block's columns (one ``index_select`` of a flat index, a per-tap slice +
  ``torch.cat``, or a batch-last layout) and one matmul per block: 0.14-1.9x, below (a) on every aligned case and
  below 1x on most scattered ones; oneDNN's direct convolution beats gather + GEMM at this density.

So the module uses (a), and runs one dense conv with the masked weight instead (exact as well, ~1.0x) when the
gathered work ``sum(|rows| * |channels|) / (C_out * C_in)`` exceeds ``max_work``. With 32-row channel-aligned
blocks, (a) ran at 1.20-1.52x for work 0.5, 0.95-1.26x for work 0.6 and 0.72-0.87x for work 0.8, hence the
default 0.55. It does the same when the layer is small: fewer than ``min_macs`` dense multiply-adds per output
position (``C_out * C_in * kh * kw``, independent of batch and resolution), where the gather and the extra kernel
calls cost more than the skipped weights save. Default 36864, a 64->64 3x3 conv: the smallest layer the benchmark
(tests/benchmarks/test_bench_blocksparse.py, results/bench/summary.md) ran faster on the 2-core reference CPU
(2.9x at 32x32 and batch 64, 2.5-3.0x for the wider ones), whereas in the recorded grid
(results/structure/digits/cifar_resnet20/seed*/timing/timing.json) the 16- and 32-channel layers of CIFAR
ResNet-20 (2304 and 9216) scattered between 0.2x and 3.8x with no consistent sign. Its 64-channel layers at 8x8
(36864) ran at 0.8-1.3x there, so for them the default is borderline: measure the device.

Both thresholds are settings (``structure.blocksparse_max_work``, ``structure.blocksparse_min_macs``), not
measurements made during a run: the same blocks always give the same model. The benchmark prints the values a
device wants; per-layer timings (:func:`time_layers`) are reported next to the choice, never used to make it.
The module is meant for inference and latency studies: training it would also update the zero-filled taps
inside gathered channels.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ... import timing
from ...errors import ConfigError
from .regroup import Block, blocks_to_mask

#: Gathered-work fraction above which one dense masked conv is faster than per-block convs.
MAX_WORK = 0.55
#: Dense multiply-adds per output position (C_out*C_in*kh*kw) below which a layer stays one dense masked conv.
MIN_MACS = 64 * 64 * 3 * 3


class BlockSparseConv2d(nn.Module):
    """A conv whose weight is non-zero only inside row-disjoint dense blocks.

    Build it with :meth:`from_conv`. Holds, per block, the output rows, the gathered input channels and the
    ``|rows| x |channels| x kh x kw`` weight; or, when per-block convs would not pay off, the dense masked weight.
    """

    def __init__(self, conv: nn.Conv2d, blocks: Sequence[Block], max_work: float = MAX_WORK,
                 min_macs: int = MIN_MACS):
        super().__init__()
        if type(conv) is not nn.Conv2d or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("BlockSparseConv2d needs a plain nn.Conv2d with groups=1 and zero padding")
        weight = conv.weight.detach()
        c_out, c_in, kh, kw = weight.shape
        taps = kh * kw
        self.in_channels, self.out_channels, self.kernel_size = c_in, c_out, (kh, kw)
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        _check_blocks(blocks, c_out, c_in * taps)
        union = blocks_to_mask((c_out, c_in * taps), blocks).reshape(weight.shape).to(weight.device)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        channels = [torch.unique(b.cols // taps) for b in blocks]
        work = sum(len(b.rows) * len(ch) for b, ch in zip(blocks, channels)) / (c_out * c_in)
        self.macs = c_out * c_in * taps
        self.dense = not blocks or work > max_work or self.macs < min_macs
        self.work = work
        self.num_blocks = 0 if self.dense else len(blocks)
        self.dense_weight = nn.Parameter(weight * union) if self.dense else None
        self.weights = nn.ParameterList()
        for i, (block, ch) in enumerate(zip([] if self.dense else blocks, channels)):
            rows = block.rows.to(weight.device)
            ch = ch.to(weight.device)
            inside = torch.zeros(c_in * taps, dtype=torch.bool, device=weight.device)
            inside[block.cols.to(weight.device)] = True
            inside = inside.reshape(c_in, kh, kw)[ch]
            self.weights.append(nn.Parameter(weight[rows][:, ch] * inside))
            self.register_buffer(f"rows_{i}", rows)
            # None marks "all channels": then the input is used as is instead of being copied.
            self.register_buffer(f"channels_{i}", None if len(ch) == c_in else ch)
        covered = torch.zeros(c_out, dtype=torch.bool)
        for block in blocks:
            covered[block.rows] = True
        self.register_buffer("uncovered", (~covered).nonzero().flatten().to(weight.device))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, blocks: Sequence[Block], *, max_work: float = MAX_WORK,
                  min_macs: int = MIN_MACS) -> "BlockSparseConv2d":
        """Block-sparse copy of ``conv``: only the entries of ``conv.weight`` inside ``blocks`` are used.

        Args:
            conv: A plain ``nn.Conv2d`` with ``groups=1`` and zero padding.
            blocks: Row-disjoint blocks over ``conv.weight.reshape(C_out, -1)``.
            max_work: Use one dense masked conv when the per-block convs would do more than this fraction of the
                dense multiply-adds (see the module docstring).
            min_macs: Use one dense masked conv when the layer does fewer dense multiply-adds per output position
                (``C_out * C_in * kh * kw``) than this.

        Raises:
            ValueError: If the conv is unsupported, or blocks overlap in rows or index outside the weight.
        """
        return cls(conv, blocks, max_work, min_macs)

    def extra_repr(self) -> str:
        mode = "dense-masked" if self.dense else f"blocks={self.num_blocks}"
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, {mode}, work={self.work:.3f}, macs={self.macs}, bias={self.bias is not None}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # unbatched input, as nn.Conv2d accepts
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if self.dense:
            return F.conv2d(x, self.dense_weight, self.bias, self.stride, self.padding, self.dilation)
        out = None
        for i in range(self.num_blocks):
            rows, ch = getattr(self, f"rows_{i}"), getattr(self, f"channels_{i}")
            y = F.conv2d(x if ch is None else x.index_select(1, ch), self.weights[i],
                         None if self.bias is None else self.bias[rows], self.stride, self.padding, self.dilation)
            if out is None:
                out = y.new_empty((x.shape[0], self.out_channels) + y.shape[2:])
            out.index_copy_(1, rows, y)
            del y  # before the next block's conv allocates its own: lower peak memory
        if len(self.uncovered):
            # Rows outside every block see a zero weight, so their output is the bias alone.
            fill = out.new_zeros(()) if self.bias is None else self.bias[self.uncovered].view(1, -1, 1, 1)
            out.index_copy_(1, self.uncovered, fill.expand(out.shape[0], len(self.uncovered), *out.shape[2:]))
        return out


def _check_blocks(blocks: Sequence[Block], rows: int, cols: int) -> None:
    seen = torch.zeros(rows, dtype=torch.bool)
    for b in blocks:
        if not len(b.rows) or not len(b.cols):
            raise ValueError("every block needs at least one row and one column")
        if int(b.rows.min()) < 0 or int(b.rows.max()) >= rows:
            raise ValueError(f"block rows outside [0, {rows})")
        if int(b.cols.min()) < 0 or int(b.cols.max()) >= cols:
            raise ValueError(f"block columns outside [0, {cols})")
        if seen[b.rows].any() or len(torch.unique(b.rows)) != len(b.rows):
            raise ValueError("blocks must not share output rows")
        seen[b.rows] = True


def _is_plain(conv: nn.Module) -> bool:
    return type(conv) is nn.Conv2d and conv.groups == 1 and conv.padding_mode == "zeros"


def _conv_name(model: nn.Module, name: str) -> str:
    """The module name of the conv whose weight is ``name``; ConfigError if there is none."""
    module_name, _, leaf = name.rpartition(".")
    try:
        model.get_submodule(module_name)
    except AttributeError:
        leaf = None
    if leaf != "weight":
        raise ConfigError("blocks", name, f"weight names of conv layers of {type(model).__name__}")
    return module_name


def to_blocksparse(model: nn.Module, blocks: Mapping[str, Sequence[Block]], *,
                   max_work: float = MAX_WORK, min_macs: int = MIN_MACS) -> nn.Module:
    """Deep copy of ``model`` with the named convs replaced by :class:`BlockSparseConv2d`.

    Which layers run per-block convs is decided by ``max_work`` and ``min_macs`` alone (see
    :meth:`BlockSparseConv2d.from_conv`); nothing is timed, so the same arguments always give the same model.

    Args:
        model: The network; it is not modified.
        blocks: Parameter name (``layer1.0.conv1.weight``) -> blocks, e.g. ``RegroupResult.blocks``.
        max_work, min_macs: See :meth:`BlockSparseConv2d.from_conv`.

    Returns:
        The copy. Layers with no blocks, and convs that are not plain ``nn.Conv2d`` with ``groups=1`` and zero
        padding, stay dense as they are: apply the regrouped mask to ``model`` first so that they are masked too.

    Raises:
        ConfigError: If a name is not the weight of a module of ``model``.
    """
    new = copy.deepcopy(model)
    for name, layer_blocks in blocks.items():
        if not layer_blocks:
            continue
        module_name = _conv_name(new, name)
        conv = new.get_submodule(module_name)
        if not _is_plain(conv):
            continue
        replacement = BlockSparseConv2d.from_conv(conv, layer_blocks, max_work=max_work, min_macs=min_macs)
        if not module_name:
            return replacement
        parent_name, _, child = module_name.rpartition(".")
        setattr(new.get_submodule(parent_name), child, replacement)
    return new


def layer_choices(model: nn.Module) -> dict[str, dict]:
    """Per :class:`BlockSparseConv2d` of ``model``, by weight name: whether it runs per-block convs and why."""
    return {f"{n}.weight" if n else "weight": {"blocksparse": not m.dense, "work": m.work, "macs": m.macs}
            for n, m in model.named_modules() if isinstance(m, BlockSparseConv2d)}


def time_layers(model: nn.Module, blocks: Mapping[str, Sequence[Block]], example: torch.Tensor, *, rounds: int = 5,
                device: torch.device | str | None = None) -> dict[str, dict]:
    """Per layer with blocks, on the input it receives for ``example``: its dense conv against the per-block path.

    The per-block path is timed whatever :func:`to_blocksparse` chose for the layer, so a report shows what a
    threshold gave up or gained. For reporting only: the choice never depends on these numbers.

    Returns:
        Weight name -> ``{"dense_ms", "blocks_ms", "speedup"}`` (speedup = dense time / per-block time).
    """
    device = torch.device(device) if device is not None else example.device
    names = {_conv_name(model, n): n for n, b in blocks.items() if b}
    model, x = timing.for_inference(copy.deepcopy(model).to(device), example.to(device))
    inputs = timing.layer_inputs(model, x, list(names))
    out = {}
    for module_name, name in names.items():
        conv = model.get_submodule(module_name)
        if module_name not in inputs or not _is_plain(conv):
            continue
        path = BlockSparseConv2d.from_conv(conv, blocks[name], max_work=math.inf, min_macs=0)
        path = path.to(memory_format=torch.channels_last)
        xi = inputs[module_name]
        with torch.inference_mode():
            t = timing.paired(lambda: conv(xi), lambda: path(xi), rounds=rounds, warmup=1, device=device)
        out[name] = {"dense_ms": t.base_s * 1e3, "blocks_ms": t.test_s * 1e3, "speedup": 1.0 / t.ratio}
    return out
