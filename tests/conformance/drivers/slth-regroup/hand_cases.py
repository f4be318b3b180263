"""Hand-made matrices through the released Structure-LTH `pruning_utils.regroup` (defaults t1=1.5, nn=32, B2=16, cn=8).

Writes DIR/fixtures/slth-regroup/<case>/ for the four cases below (DIR holds released/slth-regroup):
    python tests/conformance/drivers/slth-regroup/hand_cases.py --work DIR [case ...]   (no case = all four)

Each matrix: M = |synth.values(seed, 0, shape)| > base_thr, then for every planted (rows, cols, thr):
M[r, c] = True where synth.values(seed, 1, shape)[r, c] > thr; then `empty` rows are zeroed and `dense` rows set to
all True. The partition (a part id per row, -1 for empty rows) is chosen by hand and handed to the released code by
the shmetis stub (SLTH_PARTITION), one id per non-empty row in ascending row order (= the released vertex order).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

DRIVER = "tests/conformance/drivers/slth-regroup/hand_cases.py"
OUT = None  # DIR/fixtures/slth-regroup, bound by _setup()
c = None  # the sibling _slth_common helper, bound by _setup() in main(): importing this file only defines things


def _setup(work: str) -> None:
    """Import the sibling _slth_common helper and bind the --work folder's paths (and synth)."""
    global c, OUT
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _slth_common
    _slth_common.configure(work)
    c = _slth_common
    OUT = os.path.join(c.ROOT, "fixtures", "slth-regroup")


def _cases():
    cases = {}
    # 1) one part of 34 rows (> nn=32: split into rows[:32] and rows[32:]), one of 4 rows (<= B2: no block),
    #    two empty rows (no part). Part 5 appears first in row order but is smaller, so it is processed second.
    rows_a = [i for i in range(40) if i not in (0, 9, 18, 27, 7, 22)]
    part = [3] * 40
    for i in (0, 9, 18, 27):
        part[i] = 5
    for i in (7, 22):
        part[i] = -1
    cases["hand_chunk_split"] = dict(
        seed=11, shape=[40, 30], base_thr=0.75, planted=[[rows_a, [1, 4, 6, 9, 13, 17, 21, 26], -0.8]],
        empty=[7, 22], dense=[], part=part,
        purpose="a part with 34 > nn=32 rows -> blocks rows[:32] and rows[32:] with the same columns; a 4-row part "
                "(<= B2=16) -> no block; empty rows 7, 22 get no part and stay empty")
    # 2) parts of 17 (block, no split), 16 (== B2: no block although planted) and 7 rows.
    part = [6 if i % 5 in (0, 2) else 1 if i % 5 in (1, 3) else 4 for i in range(40)]
    part[39] = 6
    rows6 = [i for i in range(40) if part[i] == 6]
    rows1 = [i for i in range(40) if part[i] == 1]
    cases["hand_part_sizes"] = dict(
        seed=12, shape=[40, 30], base_thr=0.8,
        planted=[[rows6, [0, 3, 7, 8, 15, 22, 29], -0.7], [rows1, [2, 5, 11, 12, 19, 24], -0.7]],
        empty=[], dense=[], part=part,
        purpose="parts of 17 rows (> B2=16: one block, <= nn=32: no split), 16 rows (== B2: no block even though it "
                "has planted dense columns) and 7 rows (no block)")
    # 3) no part forms a block: 20 fully dense rows (the released column loop never passes for them: widths run to
    #    ncols-1 = 29 only, and stale row counts keep failing), a 12-row and an 8-row part (<= B2).
    part = [2 if i < 20 else 0 if i < 32 else 7 for i in range(40)]
    cases["hand_no_block"] = dict(
        seed=13, shape=[40, 30], base_thr=0.7, planted=[], empty=[], dense=list(range(20)), part=part,
        purpose="no part yields a block: the 20-row part is fully dense yet the released loop finds no width "
                "(the 3rd row's count is still stale at i = ncols-1), the others have <= 16 rows -> the function "
                "returns its input object unchanged")
    # 4) a part of exactly 64 = 2*nn rows: the released split appends rows[:64] AND an empty rows[64:] block.
    part = [0 if i % 9 != 4 else 1 for i in range(72)]
    rows0 = [i for i in range(72) if part[i] == 0]
    cases["hand_exact_multiple"] = dict(
        seed=14, shape=[72, 24], base_thr=0.8, planted=[[rows0, [1, 2, 3, 10, 14, 20], -0.9]],
        empty=[], dense=[], part=part,
        purpose="a part of exactly 64 rows (a multiple of nn=32): blocks (rows[:64], cols) and ([], cols) -- the "
                "released code appends a block with no rows; an 8-row part gives no block")
    return cases


def build(spec):
    shape = tuple(spec["shape"])
    m = np.abs(c.synth.values(spec["seed"], 0, shape)) > spec["base_thr"]
    fill = c.synth.values(spec["seed"], 1, shape)
    for rows, cols, thr in spec["planted"]:
        sub = fill[np.ix_(rows, cols)] > thr
        m[np.ix_(rows, cols)] |= sub
    m[spec["empty"], :] = False
    m[spec["dense"], :] = True
    return m


def run_case(name, spec):
    m = build(spec)
    part = np.array(spec["part"], dtype=np.int64)
    nonempty = np.flatnonzero(m.any(1))
    assert np.array_equal(nonempty, np.flatnonzero(part >= 0)), "partition must cover exactly the non-empty rows"
    given = part[nonempty].tolist()
    matrix = torch.from_numpy(m.astype(np.float32))  # the released loop passes a float weight_mask view
    r = c.run_regroup(matrix, partition=given)
    out = r["out"]
    out_np = out.detach().numpy() != 0
    assert r["nonempty_rows"] == nonempty.tolist()
    assert r["stub"]["partition"] == given
    union = c.blocks_mask(m.shape, r["blocks"])
    assert np.array_equal(union, out_np) if r["blocks"] else np.array_equal(out_np, m)
    parts_order = [int(part[nonempty[cl[0]]]) for cl in r["clusters"]]
    expected = {
        "returns_input_object": r["is_input"],
        "output_dtype": str(out.dtype),
        "output_values": sorted({float(v) for v in out.unique().tolist()}),
        "blocks": [{"rows": b[0], "cols": b[1]} for b in r["blocks"]],
        "blocks_note": "in the released order: parts largest first, chunk rows[:len//32*32] then rows[len//32*32:] "
                       "for parts > 32 rows; cols in ranked order cc[:i] (not sorted)",
        "clusters_processed": [{"part": p, "rows": [int(nonempty[i]) for i in cl]} for p, cl in
                               zip(parts_order, r["clusters"])],
        "kept_before": int(m.sum()), "kept_after": int(out_np.sum()),
        "density_before": float(m.mean()), "density_after": float(out_np.mean()),
        "output_digest": c.synth.digest(out_np),
        "hypergraph": {k: r["stub"][k] for k in ("n_edges", "n_vertices", "pins", "hgr_sha256")},
        "stub_argv_tail": r["stub"]["argv"][1:],
        "seconds_released_call": round(r["seconds"], 4),
    }
    case = {
        "repository": c.REPOSITORY, "commit": c.COMMIT,
        "command": c.command(DRIVER, name),
        "driver": DRIVER,
        "released_function": "pruning_utils.py:regroup (lines 382-491; defaults t1=1.5, nn=32, B2=16, cn=8); "
                             "shmetis call at line 412 replaced by the stub drivers/slth-regroup/shmetis",
        "inputs": {
            "construction": {k: spec[k] for k in ("seed", "shape", "base_thr", "planted", "empty", "dense")},
            "construction_rule": "M = |synth.values(seed,0,shape)| > base_thr; for (rows, cols, thr) in planted: "
                                 "M[rows x cols] |= synth.values(seed,1,shape)[rows x cols] > thr; M[empty]=False; "
                                 "M[dense]=True. Also stored as expected.tensors.json['input'] (bool).",
            "matrix_dtype_passed": "float32 0/1 (torch)",
            "partition_per_row": spec["part"],
            "partition_per_nonempty_row": given,
            "partition_note": "hand-chosen; -1 = empty row (not a vertex). The stub writes partition_per_nonempty_row "
                              "as <tmpfile>.part.8",
            "hyperparameters": {"t1": 1.5, "nn": 32, "B2": 16, "cn": 8},
        },
        "expected": expected,
        "notes": spec["purpose"] + ". " + ("Shims: none needed (pruning_utils imports torch/os/uuid only)."),
    }
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    __import__('tensorjson').save(os.path.join(folder, "expected.tensors.json"), {"input": m, "output": out_np, "partition": part})
    print(name, "blocks", [(len(b[0]), len(b[1])) for b in r["blocks"]], "is_input", r["is_input"],
          "density", round(float(m.mean()), 4), "->", round(float(out_np.mean()), 4), f"{r['seconds']:.3f}s")


def main() -> None:
    cases = _cases()
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True,
                    help="folder holding released/slth-regroup; fixtures go to fixtures/slth-regroup")
    ap.add_argument("cases", nargs="*", help=f"any of {', '.join(cases)} (default: all four)")
    a = ap.parse_args()
    unknown = [n for n in a.cases if n not in cases]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(cases)}")
    _setup(a.work)
    for name in (a.cases or list(cases)):
        run_case(name, cases[name])


if __name__ == "__main__":
    main()
