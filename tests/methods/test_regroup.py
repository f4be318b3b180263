import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ticketbench.methods.structure.blocksparse import BlockSparseConv2d, to_blocksparse
from ticketbench.errors import ConfigError
from ticketbench.masks import Mask
from ticketbench.methods.structure.regroup import (Block, RegroupResult, blocks_from_json, blocks_to_mask, extract_blocks,
                                         partition_rows, regroup)


def _planted(rows, cols, nblocks, block_rows, block_cols, noise=0.01, seed=0):
    """A mask made of dense blocks on shuffled rows/cols plus random noise; returns (mask, planted part)."""
    g = torch.Generator().manual_seed(seed)
    planted = torch.zeros(rows, cols, dtype=torch.bool)
    r, c = torch.randperm(rows, generator=g), torch.randperm(cols, generator=g)
    for b in range(nblocks):
        planted[r[b * block_rows:(b + 1) * block_rows, None], c[b * block_cols:(b + 1) * block_cols][None]] = True
    return planted | (torch.rand(rows, cols, generator=g) < noise), planted


def _channel_planted(c_out, c_in, nblocks, channels, taps=9, seed=0):
    """Blocks of output rows x whole input channels (all taps), the layout a gathered conv runs fastest."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(c_out, c_in, taps, dtype=torch.bool)
    rows = torch.randperm(c_out, generator=g).chunk(nblocks)
    for r in rows:
        mask[r[:, None], torch.randperm(c_in, generator=g)[:channels][None]] = True
    return mask.reshape(c_out, -1)


def test_blocks_follow_size_rules_and_mask_is_their_union():
    matrix, _ = _planted(200, 144, 4, 50, 30, noise=0.02)
    blocks = extract_blocks(matrix, parts=4, row_threshold=15, granularity=32, seed=0)
    ids = partition_rows(matrix, 4, seed=0)
    sizes = torch.bincount(ids[ids >= 0]).tolist()
    assert max(sizes) > 32  # so the split rule is exercised
    expected = []
    for n in sizes:
        if n >= 16:
            expected += [n] if n <= 32 or n % 32 == 0 else [n // 32 * 32, n % 32]
    assert sorted(len(b.rows) for b in blocks) == sorted(expected)
    rows = torch.cat([b.rows for b in blocks])
    assert len(rows) == len(torch.unique(rows))  # row-disjoint
    for b in blocks:
        assert len(torch.unique(ids[b.rows])) == 1 and torch.equal(b.rows, b.rows.sort().values)
        siblings = [o for o in blocks if torch.equal(o.cols, b.cols)]
        assert len(b.rows) >= 16 or len(siblings) == 2  # only a remainder chunk may be smaller
    union = blocks_to_mask(matrix.shape, blocks)
    assert int(union.sum()) == sum(b.numel for b in blocks)
    res = regroup(Mask({"conv.weight": matrix.reshape(200, 16, 3, 3)}), parts=4, row_threshold=15, seed=0)
    assert torch.equal(res.mask["conv.weight"].reshape(200, -1), union)
    assert res.blocks["conv.weight"] == blocks and res.fallback == []


def test_regroup_recovers_planted_blocks():
    matrix, planted = _planted(128, 288, 4, 32, 72, noise=0.01, seed=1)
    res = regroup(Mask({"c.weight": matrix.reshape(128, 32, 3, 3)}), parts=4, row_threshold=15)
    union = res.mask["c.weight"].reshape(128, -1)
    hit = int((union & planted).sum())
    # The column rule stops at width ~0.6 * (planted width + noise), so ~60% of a dense block is kept.
    assert hit / int(planted.sum()) >= 0.6
    assert hit / int(union.sum()) >= 0.95  # blocks are (almost) only planted weights
    assert len(res.blocks["c.weight"]) == 4 and res.group_sparsity()["c.weight"] > 0.8


def test_layers_without_blocks_fall_back_to_their_unstructured_mask():
    g = torch.Generator().manual_seed(0)
    mask = Mask({"small.weight": torch.rand(8, 4, 3, 3, generator=g) < 0.3,
                 "big.weight": _channel_planted(64, 16, 2, 4).reshape(64, 16, 3, 3),
                 "skip.weight": torch.rand(64, 16, 3, 3, generator=g) < 0.3,
                 "fc.weight": torch.rand(10, 64, generator=g) < 0.5})
    res = regroup(mask, layers=["small.weight", "big.weight", "fc.weight"], parts=2)
    assert res.fallback == ["small.weight", "skip.weight", "fc.weight"]
    for name in res.fallback:
        assert torch.equal(res.mask[name], mask[name]) and res.blocks[name] == []
    assert res.blocks["big.weight"] and set(res.mask) == set(mask)
    sparsity = res.group_sparsity()
    assert sparsity["small.weight"] == pytest.approx(1 - mask["small.weight"].float().mean().item())
    assert sparsity["big.weight"] == pytest.approx(1 - sum(b.numel for b in res.blocks["big.weight"]) / 64 / 144)
    data = json.loads(json.dumps(res.to_json()))
    assert data["fallback"] == res.fallback and blocks_from_json(data["blocks"]) == res.blocks
    with pytest.raises(ConfigError, match="layers"):
        regroup(mask, layers=["nope.weight"])
    with pytest.raises(ConfigError, match="parts"):
        regroup(mask, parts=0)


def test_partition_is_deterministic_for_a_seed():
    matrix, _ = _planted(96, 200, 3, 32, 50, noise=0.05, seed=2)
    first = partition_rows(matrix, 8, seed=3)
    assert torch.equal(first, partition_rows(matrix, 8, seed=3))
    for seed in (0, 1):  # other seeds may give other partitions, but each is a valid balanced one
        ids = partition_rows(matrix, 8, seed=seed)
        assert set(ids.tolist()) == set(range(8)) and int(torch.bincount(ids).max()) <= 1.1 * 96 / 8 + 1
    assert torch.equal(first, partition_rows(matrix, 8, seed=3))  # no state carried over between calls


def test_degenerate_inputs():
    assert torch.equal(partition_rows(torch.zeros(20, 9, dtype=torch.bool)), torch.full((20,), -1))
    assert extract_blocks(torch.zeros(20, 9, dtype=torch.bool)) == []
    few = torch.zeros(6, 9, dtype=torch.bool)
    few[:5, :4] = True  # 5 non-empty rows, fewer than 8 parts: one part, row 5 empty
    assert partition_rows(few, 8).tolist() == [0, 0, 0, 0, 0, -1]
    # Width 3 leaves one weight per row outside, and 3 > 1.5 * 1 already: the 4th column is dropped.
    assert extract_blocks(few, row_threshold=4) == [Block(torch.arange(5), torch.arange(3))]
    diagonal = torch.eye(40, dtype=torch.bool)  # no column shared by two rows: round-robin
    assert partition_rows(diagonal, 8).tolist() == [i % 8 for i in range(40)]
    res = regroup(Mask({"a.weight": torch.zeros(32, 3, 3, 3, dtype=torch.bool)}))
    assert res.fallback == ["a.weight"] and res.group_sparsity() == {"a.weight": 1.0}


def _random_blocks(c_out, n, seed, taps):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(c_out, generator=g)
    blocks = []
    for chunk in (rows[: c_out // 3], rows[c_out // 3: c_out // 3 * 2]):  # the last third is in no block
        # Whole channels plus scattered single taps, so gathered weights contain zero-filled taps.
        ch = torch.randperm(n // taps, generator=g)[:2]
        cols = torch.cat([(ch[:, None] * taps + torch.arange(taps)).flatten(), torch.randperm(n, generator=g)[:5]])
        blocks.append(Block(chunk, torch.unique(cols)))
    return blocks


@pytest.mark.parametrize("c_in,c_out,k,stride,pad,dil,bias", [
    (6, 40, 3, 1, 1, 1, True), (6, 40, 3, 2, 1, 1, False), (5, 33, 3, 1, 0, 1, True),
    (7, 24, 3, 1, 2, 2, True), (16, 48, 1, 1, 0, 1, True), (16, 48, 1, 2, 0, 1, False)])
@pytest.mark.parametrize("max_work", [1.0, 0.0])  # per-block convs, and the dense masked fallback
def test_blocksparse_conv_equals_masked_conv(c_in, c_out, k, stride, pad, dil, bias, max_work):
    # min_macs=0: these layers are far below the default size threshold, and the per-block path is under test.
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dil, bias=bias)
    blocks = _random_blocks(c_out, c_in * k * k, seed=c_in + c_out, taps=k * k)
    union = blocks_to_mask((c_out, c_in * k * k), blocks).reshape(conv.weight.shape)
    sparse = BlockSparseConv2d.from_conv(conv, blocks, max_work=max_work, min_macs=0)
    assert sparse.dense == (max_work == 0.0)
    x = torch.randn(2, c_in, 11, 9)
    with torch.no_grad():
        ref = F.conv2d(x, conv.weight * union, conv.bias, stride, pad, dil)
        assert (sparse(x) - ref).abs().max() <= 1e-4


def test_blocksparse_rejects_overlapping_rows():
    conv = nn.Conv2d(2, 8, 1)
    with pytest.raises(ValueError, match="share"):
        BlockSparseConv2d.from_conv(conv, [Block([0, 1], [0]), Block([1, 2], [1])])
    with pytest.raises(ValueError, match="outside"):
        BlockSparseConv2d.from_conv(conv, [Block([0, 1], [2])])
    sparse = BlockSparseConv2d.from_conv(conv, [Block([0, 1], [1])], max_work=1.0, min_macs=0)
    assert not sparse.dense
    x = torch.randn(2, 5, 5)  # unbatched
    with torch.no_grad():
        ref = F.conv2d(x[None], conv.weight * blocks_to_mask((8, 2), [Block([0, 1], [1])])[..., None, None],
                       conv.bias)[0]
        assert (sparse(x) - ref).abs().max() <= 1e-5


def _masked(model, mask):
    return mask.apply_(copy.deepcopy(model)).eval()


def test_to_blocksparse_sequential_matches_masked_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 48, 3, padding=1), nn.ReLU(), nn.Conv2d(48, 40, 1, bias=False),
                          nn.ReLU(), nn.Conv2d(40, 64, 3, stride=2, padding=1))
    mask = Mask({"0.weight": _channel_planted(48, 8, 2, 2).reshape(48, 8, 3, 3),
                 "2.weight": _channel_planted(40, 48, 2, 10, taps=1, seed=1).reshape(40, 48, 1, 1),
                 "4.weight": _channel_planted(64, 40, 2, 6, seed=2).reshape(64, 40, 3, 3)})
    res = regroup(mask, parts=2, row_threshold=15, granularity=16)
    assert not res.fallback
    # Every layer regrouped: no need to mask first. min_macs=0: all three are smaller than the default threshold.
    sparse = to_blocksparse(model, res.blocks, min_macs=0).eval()
    assert all(isinstance(sparse[i], BlockSparseConv2d) and not sparse[i].dense for i in (0, 2, 4))
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert (sparse(x) - _masked(model, res.mask)(x)).abs().max() <= 1e-4
    assert isinstance(model[0], nn.Conv2d)  # the original is untouched


def test_to_blocksparse_resnet20_matches_masked_model():
    from ticketbench.models import create_model

    torch.manual_seed(0)
    model = create_model("cifar_resnet20", num_classes=10).eval()
    params = dict(model.named_parameters())
    names = ["layer3.1.conv1.weight", "layer3.1.conv2.weight", "layer3.2.conv1.weight"]
    mask = Mask({n: _channel_planted(64, 64, 2, 12, seed=i).reshape(params[n].shape) for i, n in enumerate(names)})
    mask["layer1.0.conv1.weight"] = torch.rand(16, 16, 3, 3) < 0.2  # 8-row parts: stays unstructured
    res = regroup(mask, parts=2)
    assert res.fallback == ["layer1.0.conv1.weight"]
    masked = _masked(model, res.mask)
    sparse = to_blocksparse(masked, res.blocks).eval()  # masked first, so the fallback layer is masked too
    swapped = [m for m in sparse.modules() if isinstance(m, BlockSparseConv2d)]
    assert len(swapped) == 3 and not any(m.dense for m in swapped)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (sparse(x) - masked(x)).abs().max() <= 1e-4
    with pytest.raises(ConfigError):
        to_blocksparse(model, {"nope.weight": res.blocks[names[0]]})


def test_regroup_result_json_is_plain():
    res = RegroupResult(Mask({"a": torch.ones(2, 2, dtype=torch.bool)}), {"a": [Block([1, 0], [0])]}, [])
    assert res.to_json()["blocks"] == {"a": [{"rows": [0, 1], "cols": [0]}]}


# --- issue 14.6: explicit constants, the released code's "more than 16 rows", a deterministic block-sparse rule ---


def _groups(sizes, cols_each=12):
    """Row groups that share nothing: group i keeps exactly its own columns, so a zero-cut partition exists."""
    matrix = torch.zeros(sum(sizes), cols_each * len(sizes), dtype=torch.bool)
    start = 0
    for i, n in enumerate(sizes):
        matrix[start:start + n, i * cols_each:(i + 1) * cols_each] = True
        start += n
    return matrix


def test_released_row_rule_needs_more_than_16_rows():
    # The defaults are the released code's constants. One part (parts=1 skips the partitioner): exactly 16 rows
    # form no block, 17 rows do.
    assert extract_blocks(_groups([16]), parts=1) == []
    assert [len(b.rows) for b in extract_blocks(_groups([17]), parts=1)] == [17]
    # The same through KaHyPar: parts of 16 and 17 rows, only the larger one becomes a block.
    matrix = _groups([16, 17])
    ids = partition_rows(matrix, 2, seed=0)
    assert sorted(torch.bincount(ids).tolist()) == [16, 17]
    blocks = extract_blocks(matrix, parts=2, seed=0)
    assert [b.rows.tolist() for b in blocks] == [list(range(16, 33))]
    assert len(extract_blocks(matrix, parts=2, seed=0, row_threshold=15)) == 2
    with pytest.raises(ConfigError, match="row_threshold"):
        extract_blocks(matrix, row_threshold=-1)
    from ticketbench.methods.structure.regroup import RELEASED

    assert RELEASED.row_threshold == 16


def _narrow_layer(seed=0):
    """A 16-channel CIFAR ResNet-20 conv mask at 70% sparsity, as IMP leaves layer1."""
    return torch.rand(16, 16, 3, 3, generator=torch.Generator().manual_seed(seed)) < 0.3


def test_released_preset_forms_no_block_on_a_narrow_layer_where_adaptive_does():
    from ticketbench.methods.structure.stage import StructureHparams, regroup_with

    mask = Mask({"layer1.0.conv1.weight": _narrow_layer(), "fc.weight": torch.ones(10, 64, dtype=torch.bool)})
    adaptive = regroup_with(StructureHparams(method="regroup"), mask, seed=0)
    released = regroup_with(StructureHparams(method="regroup", regroup_preset="released"), mask, seed=0)
    # Released: 8 parts of about 2 rows, none above 16, so the layer keeps its unstructured mask.
    assert released.fallback == ["layer1.0.conv1.weight", "fc.weight"]
    assert torch.equal(released.mask["layer1.0.conv1.weight"], mask["layer1.0.conv1.weight"])
    # Adaptive: 16 // 16 = 1 part of 16 rows, which the default threshold (more than 15) admits.
    blocks = adaptive.blocks["layer1.0.conv1.weight"]
    assert adaptive.fallback == ["fc.weight"] and [len(b.rows) for b in blocks] == [16]


def test_regroup_presets_are_named_and_checked():
    from ticketbench.methods.structure.regroup import ADAPTIVE, RELEASED, RegroupConstants
    from ticketbench.methods.structure.stage import StructureHparams

    assert StructureHparams().regroup_constants() == ADAPTIVE
    assert StructureHparams(regroup_preset="released").regroup_constants() == RELEASED
    assert RELEASED == RegroupConstants(parts=8, adaptive_parts=False, row_threshold=16, granularity=32,
                                        column_factor=1.5, imbalance=0.1, loop="released")
    assert ADAPTIVE.loop == "paper"
    # The adaptive preset reads the individual keys.
    custom = StructureHparams(parts=4, fixed_parts=True, row_threshold=7).regroup_constants()
    assert (custom.parts, custom.adaptive_parts, custom.row_threshold) == (4, False, 7)
    # Restating a released value is fine; changing a constant the preset fixes is an error, not silently ignored.
    assert StructureHparams.from_dict({"regroup_preset": "released", "fixed_parts": True, "row_threshold": 16})
    with pytest.raises(ConfigError, match=r"structure\.parts=4 .*regroup_preset=released"):
        StructureHparams.from_dict({"regroup_preset": "released", "parts": 4})
    with pytest.raises(ConfigError, match=r"structure\.regroup_preset='paper' .*adaptive, released"):
        StructureHparams.from_dict({"regroup_preset": "paper"})
    for key, value in (("row_threshold", -1), ("blocksparse_min_macs", -1), ("blocksparse_max_work", -0.1)):
        with pytest.raises(ConfigError, match=rf"structure\.{key}="):
            StructureHparams.from_dict({key: value})


def _rule_model():
    """A large layer with cheap blocks, a large layer whose blocks gather most channels, and a small layer."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(64, 16, 3, padding=1))
    halves = torch.arange(64).chunk(2)
    blocks = {"0.weight": [Block(halves[0], torch.arange(72)), Block(halves[1], torch.arange(72, 144))],  # work 1/8
              "2.weight": [Block(torch.arange(64), torch.arange(48 * 9))],  # work 48/64 = 0.75
              "4.weight": [Block(torch.arange(16), torch.arange(8 * 9))]}  # 16*64*9 = 9216 MACs per position
    return model, blocks


def _chosen(model):
    return sorted(n for n, m in model.named_modules() if isinstance(m, BlockSparseConv2d) and not m.dense)


def test_blocksparse_choice_is_a_fixed_rule_and_timing_is_only_reported(monkeypatch):
    import random

    import ticketbench.timing as timing
    from ticketbench.methods.structure.stage import StructureHparams, blocksparse_ticket

    model, blocks = _rule_model()
    x = torch.randn(2, 64, 8, 8)
    rng = random.Random(0)

    def noisy(base, test, *, rounds=20, warmup=3, device=None):
        # Timings as a loaded shared machine gives them: block-sparse anywhere between 4x faster and 4x slower.
        base(), test()
        return timing.PairedTiming(1e-3, 1e-3 * rng.choice([0.25, 0.5, 2.0, 4.0]), rounds)

    monkeypatch.setattr(timing, "paired", noisy)
    st = StructureHparams(method="regroup", timing_rounds=1)
    runs = [blocksparse_ticket(model, blocks, st, x) for _ in range(4)]
    reported = [[row["speedup"] for row in rows] for _, rows in runs]
    assert len({tuple(r) for r in reported}) > 1, "the stub gave different timings to the runs"
    for fast, rows in runs:
        # Only the large layer with cheap blocks passes both thresholds, whatever the timing said.
        assert _chosen(fast) == ["0"]
        assert [(r["layer"], r["blocksparse"]) for r in rows] == [("0.weight", True), ("2.weight", False),
                                                                  ("4.weight", False)]
        assert rows[1]["work"] == pytest.approx(0.75) and rows[2]["macs"] == 9216
        assert all({"dense_ms", "blocks_ms", "speedup"} <= set(r) for r in rows)
    # The thresholds are settings: lowering them admits the other layers, again independently of the timing.
    loose = StructureHparams(method="regroup", timing_rounds=1, blocksparse_max_work=0.8, blocksparse_min_macs=0)
    fast, _ = blocksparse_ticket(model, blocks, loose, x)
    assert _chosen(fast) == ["0", "2", "4"]
    union = {n: blocks_to_mask((m.shape[0], m[0].numel()), blocks[n]).reshape(m.shape)
             for n, m in model.state_dict().items() if n in blocks}
    with torch.no_grad():
        assert (fast.eval()(x) - _masked(model, Mask(union))(x)).abs().max() <= 1e-4


def test_to_blocksparse_never_times(monkeypatch):
    import ticketbench.timing as timing

    def refuse(*args, **kwargs):
        raise AssertionError("to_blocksparse must not time anything")

    monkeypatch.setattr(timing, "paired", refuse)
    model, blocks = _rule_model()
    assert _chosen(to_blocksparse(model, blocks)) == ["0"]
    assert _chosen(to_blocksparse(model, blocks, max_work=1.0, min_macs=0)) == ["0", "2", "4"]


def test_released_loop_differs_from_the_paper_rule_on_a_known_matrix():
    """Hand-checked: the released loop decrements by natural column index, stops at the first failing row and
    never takes the full width, so on a part whose rows all use every column it forms no block."""
    from ticketbench.methods.structure.regroup import _grow_columns, _grow_columns_released

    full = torch.ones(3, 4, dtype=torch.bool)
    assert _grow_columns(full, 1.5).tolist() == [0, 1, 2]  # one column left out: 3 > 1.5 * 1
    assert _grow_columns_released(full, 1.5) is None  # row 0 fails at widths 1-3, and width 4 is never tried
    # Ranked columns 1, 0, 3, 2. Paper: width 2 leaves row 1 one weight (column 3), 2 > 1.5: block [1, 0].
    # Released: width 1 subtracts column 1 from row 0 only, which fails, so row 1 keeps a stale count of 2;
    # width 2 subtracts natural column 2 (empty) and row 1 fails on 2 <= 1.5 * 2; width 3 subtracts column 3.
    m = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 1]], dtype=torch.bool)
    assert _grow_columns(m, 1.5).tolist() == [1, 0]
    assert _grow_columns_released(m, 1.5).tolist() == [1, 0, 3]


def test_given_partition_replaces_kahypar_and_is_checked():
    matrix = torch.zeros(40, 6, dtype=torch.bool)
    matrix[:34, :3] = True
    part = torch.full((40,), -1)
    part[:34] = 0
    blocks = extract_blocks(matrix, partition=part, loop="released")
    # 34 rows > 32: a 32-row chunk and the 2-row rest. Stale counts widen the block: rows 2-33 are never
    # decremented (each width stops at row 0 or 1), so only width 5 > 1.5 * 3 passes: columns 0-4, where the paper rule takes 0-1.
    assert [len(b.rows) for b in blocks] == [32, 2] and blocks[0].cols.tolist() == [0, 1, 2, 3, 4]
    assert extract_blocks(matrix, partition=part)[0].cols.tolist() == [0, 1]  # 2 > 1.5 * 1 left outside
    with pytest.raises(ValueError, match="partition"):
        extract_blocks(matrix, partition=torch.zeros(40, dtype=torch.long))
