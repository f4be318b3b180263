"""IMP-Regroup (Chen et al., ICML 2022): turn an unstructured conv mask into a union of dense blocks.

Each conv mask is viewed as a ``C_out x (C_in*kh*kw)`` 0/1 matrix. Its non-empty rows are partitioned with
KaHyPar (one hyperedge per column, holding the rows that keep a weight in that column), and every large enough
part becomes a dense block: all rows of the part times the columns most of them use. Blocks are what a
group-wise sparse kernel (:mod:`ticketbench.methods.structure.blocksparse`) executes densely.

Rules for inputs KaHyPar cannot or need not partition (see :func:`partition_rows`): no non-empty row -> no part;
fewer non-empty rows than parts (or ``parts == 1``) -> all of them in part 0; no column shared by two rows ->
rows assigned round-robin in index order, since any partition is then equally good.

Constants. The paper (Alg. 3) names its partition constants but gives no values. The released code uses 8 parts
(hMETIS UBfactor 10), a column factor of 1.5, 32-row chunks and keeps a part only if it has MORE than 16 rows;
:data:`RELEASED` holds exactly these, and its column loop (:func:`_grow_columns_released`), which differs from
the paper's rule (:func:`_grow_columns`, the functions' default loop): see its docstring. A balanced 8-way partition gives
every part at most ``1.1 * ceil(C_out / 8)`` rows, so with them no block can form on a layer of fewer than 121
output channels, i.e. on no layer of a CIFAR ResNet-20 (16/32/64 channels: parts of at most 2, 4 and 8 rows).
:data:`ADAPTIVE` (the ``structure`` stage's default) therefore lowers the part count per layer to
``C_out // (row_threshold + 1)`` and accepts parts of at least 16 rows, so a 16-channel layer forms one 16-row block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Iterable, Mapping

import torch

from ...errors import ConfigError
from ...masks import Mask

#: KaHyPar context shipped with the package (the kahypar wheel ships none).
KAHYPAR_INI = "kahypar_km1.ini"


@dataclass(frozen=True)
class RegroupConstants:
    """The partition and block-size constants of one IMP-Regroup variant (see the module docstring)."""

    parts: int = 8  # KaHyPar parts per layer (at most, with adaptive_parts)
    adaptive_parts: bool = False  # min(parts, C_out // (row_threshold + 1)) parts per layer
    row_threshold: int = 16  # a part forms a block only with MORE rows than this
    granularity: int = 32  # row chunk size of the kernels
    column_factor: float = 1.5  # column growth rule of _grow_columns
    imbalance: float = 0.1  # KaHyPar epsilon; hMETIS UBfactor 10 in the released code
    loop: str = "paper"  # column growth: "paper" (_grow_columns) or "released" (_grow_columns_released)


#: The released code's constants (``pruning_utils.regroup``: cn = 8, UBfactor 10, t1 = 1.5, nn = 32, ``> B2 = 16``)
#: and its column loop.
RELEASED = RegroupConstants(loop="released")
#: This suite's default: adaptive part count and parts of at least 16 rows, so narrow layers can form blocks.
ADAPTIVE = RegroupConstants(adaptive_parts=True, row_threshold=15)
LOOPS = ("paper", "released")
PRESETS = {"adaptive": ADAPTIVE, "released": RELEASED}


@dataclass(frozen=True, eq=False)
class Block:
    """A dense block of a layer's mask matrix: ``rows x cols``, both sorted ascending."""

    rows: torch.Tensor  # output-channel indices
    cols: torch.Tensor  # indices into the flattened C_in*kh*kw axis

    def __post_init__(self):
        # Accept lists (e.g. from JSON) and keep one canonical form, so equal blocks compare equal.
        for name in ("rows", "cols"):
            value = torch.as_tensor(getattr(self, name), dtype=torch.long).flatten().cpu()
            object.__setattr__(self, name, torch.sort(value).values)

    @property
    def numel(self) -> int:
        """Number of weights inside the block."""
        return len(self.rows) * len(self.cols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Block) and torch.equal(self.rows, other.rows) and torch.equal(self.cols, other.cols)

    __hash__ = None  # tensors are mutable

    def to_json(self) -> dict:
        """``{"rows": [...], "cols": [...]}`` as plain ints."""
        return {"rows": self.rows.tolist(), "cols": self.cols.tolist()}


def _check(parts: int, row_threshold: int = 0, granularity: int = 1, column_factor: float = 1.0,
           imbalance: float = 0.0) -> None:
    for key, value, low in (("parts", parts, 1), ("row_threshold", row_threshold, 0), ("granularity", granularity, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(key, value, "a positive integer" if low else "a non-negative integer")
    if not column_factor > 0:
        raise ConfigError("column_factor", column_factor, "a positive number")
    if not imbalance >= 0:
        raise ConfigError("imbalance", imbalance, "a non-negative number (KaHyPar's epsilon, e.g. 0.1)")


def _as_matrix(matrix: torch.Tensor) -> torch.Tensor:
    if matrix.dim() != 2:
        raise ValueError(f"expected a 2-D mask matrix, got shape {tuple(matrix.shape)}")
    return matrix.detach().cpu().bool()


def partition_rows(matrix: torch.Tensor, parts: int = 8, *, seed: int = 0, imbalance: float = 0.1) -> torch.Tensor:
    """Partition the rows of a mask matrix with KaHyPar (km1 objective), deterministically for a seed.

    Args:
        matrix: ``C_out x n`` boolean mask matrix (True = kept).
        parts: Number of parts k.
        seed: KaHyPar's random seed; the same seed gives the same partition.
        imbalance: KaHyPar's epsilon: a part may hold up to ``(1 + imbalance) * ceil(rows / parts)`` rows.

    Returns:
        Long tensor of length ``C_out``: the part id of each row, -1 for all-zero rows. The degenerate cases of
        the module docstring are handled without KaHyPar.
    """
    _check(parts, imbalance=imbalance)
    m = _as_matrix(matrix)
    part = torch.full((m.shape[0],), -1, dtype=torch.long)
    rows = m.any(1).nonzero().flatten()
    if len(rows) == 0:
        return part
    if parts == 1 or len(rows) < parts:
        part[rows] = 0
        return part
    sub = m[rows]
    # A column kept by a single row cannot be cut, so it carries no information for the partitioner.
    edges = (sub.sum(0) >= 2).nonzero().flatten()
    if len(edges) == 0:
        part[rows] = torch.arange(len(rows)) % parts
        return part
    pairs = sub[:, edges].t().nonzero()  # (edge, vertex), ordered by edge then vertex
    index = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sub[:, edges].sum(0), 0)])

    import kahypar

    hypergraph = kahypar.Hypergraph(len(rows), len(edges), index.tolist(), pairs[:, 1].tolist(), parts)
    context = kahypar.Context()
    with resources.as_file(resources.files(__package__) / KAHYPAR_INI) as ini:
        context.loadINIconfiguration(str(ini))
    context.setK(parts)
    context.setEpsilon(float(imbalance))
    context.setSeed(int(seed))
    context.suppressOutput(True)
    kahypar.partition(hypergraph, context)
    part[rows] = torch.tensor([hypergraph.blockID(v) for v in range(len(rows))], dtype=torch.long)
    return part


def _grow_columns(sub: torch.Tensor, column_factor: float) -> torch.Tensor:
    """Columns of one part's block: the first i by descending non-zero count (ties: lower index first), with i
    the smallest width for which every row has fewer than ``i / column_factor`` non-zeros left outside."""
    counts = sub.sum(0)
    order = torch.sort(counts, descending=True, stable=True).indices
    remaining = sub.sum(1, keepdim=True) - torch.cumsum(sub[:, order].long(), 1)
    width = torch.arange(1, sub.shape[1] + 1)
    done = (width > column_factor * remaining).all(0)
    # Once every non-zero column is in, nothing remains, so some width always satisfies the rule.
    i = int(done.nonzero()[0]) + 1
    return order[:i]


def _grow_columns_released(sub: torch.Tensor, column_factor: float) -> torch.Tensor | None:
    """The released code's column loop (``pruning_utils.regroup`` at Structure-LTH 8b10a76), reproduced exactly.

    Columns are ranked as in :func:`_grow_columns`, but at width ``i`` each row's count is decremented for column
    ``i`` of the *natural* order (not the i-th ranked column), the rows are checked in order and the check stops
    at the first row that fails (the rows after it are not decremented for that width, so their counts go stale),
    and widths run from 1 to ``n - 1`` only. None when no width passes: the part forms no block.
    """
    counts = sub.sum(0)
    order = torch.sort(counts, descending=True, stable=True).indices
    left = sub.sum(1).tolist()
    cells = sub.tolist()
    for i in range(1, sub.shape[1]):
        for j, row in enumerate(cells):
            if row[i]:
                left[j] -= 1
            if i <= column_factor * left[j]:
                break
        else:
            return order[:i]
    return None


def _split_rows(rows: torch.Tensor, granularity: int) -> list[torch.Tensor]:
    """Kernels process rows in tiles of ``granularity``: a multiple-of-granularity chunk plus the remainder."""
    full = (len(rows) // granularity) * granularity
    if len(rows) <= granularity or full == len(rows):
        return [rows]
    return [rows[:full], rows[full:]]


def _groups(ids: torch.Tensor, parts: int, loop: str) -> list[torch.Tensor]:
    """Rows of each part, largest first. Equal sizes keep part-id order, or (released) the order in which a part
    first appears among the rows, as the released code's dict of clusters does."""
    present = [int(p) for p in ids[ids >= 0].tolist()]
    labels = list(dict.fromkeys(present)) if loop == "released" else list(range(parts))
    groups = [(ids == p).nonzero().flatten() for p in labels]
    groups.sort(key=len, reverse=True)  # stable
    return groups


def extract_blocks(matrix: torch.Tensor, *, parts: int = 8, row_threshold: int = 16, granularity: int = 32,
                   column_factor: float = 1.5, seed: int = 0, imbalance: float = 0.1, loop: str = "paper",
                   partition: torch.Tensor | None = None) -> list[Block]:
    """Dense blocks of one layer's mask matrix (steps 1-4 of IMP-Regroup). Defaults: the released code's constants.

    Args:
        matrix: ``C_out x n`` boolean mask matrix (``mask.reshape(C_out, -1)`` of a conv mask).
        parts: Number of KaHyPar parts.
        row_threshold: Only a part with more rows than this yields a block (released code: 16).
        granularity: A part with more rows is split into a multiple-of-``granularity`` chunk and the remainder.
        column_factor: Column-growth threshold (see :func:`_grow_columns`).
        seed: KaHyPar seed.
        imbalance: KaHyPar epsilon.
        loop: ``paper`` (:func:`_grow_columns`) or ``released`` (:func:`_grow_columns_released`).
        partition: The part id of every row (-1 for empty rows) instead of KaHyPar's, e.g. a released run's
            hMETIS partition.

    Returns:
        Blocks ordered by part size (largest first); rows of different blocks are disjoint. Empty if no part
        has more than ``row_threshold`` rows.
    """
    _check(parts, row_threshold, granularity, column_factor, imbalance)
    if loop not in LOOPS:
        raise ConfigError("loop", loop, f"one of {', '.join(LOOPS)}")
    m = _as_matrix(matrix)
    if partition is None:
        ids = partition_rows(m, parts, seed=seed, imbalance=imbalance)
    else:
        ids = torch.as_tensor(partition, dtype=torch.long).flatten().cpu()
        if ids.shape != (m.shape[0],) or bool(((ids >= 0) != m.any(1)).any()):
            raise ValueError(f"a partition gives every non-empty row of the {tuple(m.shape)} matrix a part id and "
                             "every empty row -1")
    blocks = []
    for rows in _groups(ids, parts, loop):
        if len(rows) <= row_threshold:
            break
        cols = _grow_columns(m[rows], column_factor) if loop == "paper" else _grow_columns_released(m[rows], column_factor)
        if cols is not None:
            blocks.extend(Block(chunk, cols) for chunk in _split_rows(rows, granularity))
    return blocks


def blocks_to_mask(shape: tuple[int, int], blocks: Iterable[Block]) -> torch.Tensor:
    """The ``shape`` boolean matrix that is True exactly inside the blocks."""
    mask = torch.zeros(tuple(shape), dtype=torch.bool)
    for block in blocks:
        mask[block.rows[:, None], block.cols[None, :]] = True
    return mask


@dataclass
class RegroupResult:
    """A regrouped mask and how it was made."""

    mask: Mask  # new mask, same keys and shapes as the input
    blocks: dict[str, list[Block]] = field(default_factory=dict)  # per layer; empty where the layer fell back
    fallback: list[str] = field(default_factory=list)  # layers that kept their unstructured mask

    def group_sparsity(self) -> dict[str, float]:
        """Per layer: 1 - (weights inside blocks) / (all weights); the unstructured sparsity for fallbacks."""
        # The new mask is exactly the union of the blocks for regrouped layers and the old mask for the rest.
        return {n: 1.0 - int(m.sum()) / m.numel() if m.numel() else 0.0 for n, m in self.mask.items()}

    def to_json(self) -> dict:
        """Plain-JSON summary for metadata and metrics files."""
        return {"blocks": {n: [b.to_json() for b in bs] for n, bs in self.blocks.items()},
                "fallback": list(self.fallback), "group_sparsity": self.group_sparsity()}


def blocks_from_json(data: Mapping[str, list[dict]]) -> dict[str, list[Block]]:
    """Inverse of ``RegroupResult.to_json()["blocks"]``."""
    return {n: [Block(b["rows"], b["cols"]) for b in bs] for n, bs in data.items()}


def regroup(mask: Mapping[str, torch.Tensor], *, layers: Iterable[str] | None = None, parts: int = 8,
            row_threshold: int = 16, granularity: int = 32, column_factor: float = 1.5, seed: int = 0,
            imbalance: float = 0.1, adaptive_parts: bool = False, loop: str = "paper",
            partitions: Mapping[str, torch.Tensor] | None = None) -> RegroupResult:
    """Regroup every 4-D (conv) entry of ``mask``, or only the named ones. Defaults: the released code's constants.

    Args:
        mask: Parameter name -> boolean mask.
        layers: Names to regroup (default: all). Entries that are not 4-D are never regrouped.
        parts, row_threshold, granularity, column_factor, seed, imbalance: See :func:`extract_blocks`.
        adaptive_parts: Use min(parts, C_out // (row_threshold + 1)) parts per layer (at least one), so that
            layers narrower than parts * (row_threshold + 1) can still form blocks.
        loop: Column growth, see :func:`extract_blocks`.
        partitions: Per layer, a given row partition instead of KaHyPar's (see :func:`extract_blocks`).

    Returns:
        The new mask (union of blocks per regrouped layer). A layer that is not regrouped, is not 4-D or yields
        no block keeps its mask unchanged and is listed in ``fallback``.
    """
    _check(parts, row_threshold, granularity, column_factor, imbalance)
    selected = set(mask) if layers is None else set(layers)
    unknown = sorted(selected - set(mask))
    if unknown:
        raise ConfigError("layers", unknown, f"names of masked layers ({', '.join(mask)})")
    result = RegroupResult(Mask())
    for name, m in mask.items():
        result.blocks[name] = []
        if name in selected and m.dim() == 4:
            matrix = m.reshape(m.shape[0], -1)
            k = max(1, min(parts, m.shape[0] // (row_threshold + 1))) if adaptive_parts else parts
            blocks = extract_blocks(matrix, parts=k, row_threshold=row_threshold, granularity=granularity,
                                    column_factor=column_factor, seed=seed, imbalance=imbalance, loop=loop,
                                    partition=(partitions or {}).get(name))
            if blocks:
                result.mask[name] = blocks_to_mask(tuple(matrix.shape), blocks).reshape(m.shape)
                result.blocks[name] = blocks
                continue
        result.mask[name] = m.detach().cpu().bool().clone()
        result.fallback.append(name)
    return result
