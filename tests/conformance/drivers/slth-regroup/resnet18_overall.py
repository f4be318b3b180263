"""Overall density of the released regroup over all 19 prunable convs of the released CIFAR ResNet-18, per IMP density.

    python tests/conformance/drivers/slth-regroup/resnet18_overall.py --work DIR

(after the eight resnet18_imp.py runs with the same --work DIR: --rounds {10,7} x --group {g12,g3,g4a,g4b})
aggregates DIR/fixtures/slth-regroup/resnet18_r<rounds>_<group>/case.json into
DIR/fixtures/slth-regroup/resnet18_overall/.
It calls no released code itself; every number comes from the released runs recorded in those folders.
"""
import argparse
import json
import os
import sys


DRIVER = "tests/conformance/drivers/slth-regroup/resnet18_overall.py"
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
GROUPS = ("g12", "g3", "g4a", "g4b")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True,
                    help="folder holding released/slth-regroup; fixtures go to fixtures/slth-regroup")
    _setup(ap.parse_args().work)
    summary, layers_ref, seconds = {}, None, {}
    for rounds in (10, 7):
        rows, kb, ka, numel, imp = [], 0, 0, 0, None
        for g in GROUPS:
            with open(os.path.join(OUT, f"resnet18_r{rounds}_{g}", "case.json")) as f:
                cj = json.load(f)
            assert cj["commit"] == c.COMMIT
            layers_ref = layers_ref or cj["inputs"]["layers"]
            assert cj["inputs"]["layers"] == layers_ref
            imp = cj["inputs"]["imp"]
            for L in cj["expected"]["layers"]:
                n = 1
                for s in L["shape"]:
                    n *= s
                kb += L["kept_before"]
                ka += L["kept_after"]
                numel += n
                rows.append({"name": L["name"], "matrix_shape": L["matrix_shape"],
                             "density_before": round(L["density_before"], 6),
                             "density_after": round(L["density_after"], 6),
                             "kept_before": L["kept_before"], "kept_after": L["kept_after"],
                             "blocks": len(L["blocks"]),
                             "blocks_with_rows": sum(1 for b in L["blocks"] if b["rows"]),
                             "rows_in_blocks": sum(len(b["rows"]) for b in L["blocks"]),
                             "return_path": L["return_path"]})
                seconds[f"r{rounds}:{L['name']}"] = L["seconds_released_call"]
        assert [r["name"] for r in rows] == [x[0] for x in layers_ref]
        assert kb == imp["kept_after_each_round"][-1] and numel == imp["total_prunable"]
        summary[f"rounds_{rounds}"] = {
            "imp_density": imp["density"], "kept_before": kb, "kept_after": ka, "numel": numel,
            "density_before": kb / numel, "density_after": ka / numel, "layers": rows}
    case = {
        "repository": c.REPOSITORY, "commit": c.COMMIT,
        "command": c.command(DRIVER),
        "driver": DRIVER,
        "released_function": "pruning_utils.py:regroup over all masks as main_imp_regroup.py:236-241 does "
                             "(aggregated from the resnet18_r<rounds>_<group> folders)",
        "inputs": {"layers": layers_ref, "source_cases": [f"resnet18_r{r}_{g}" for r in (10, 7) for g in GROUPS],
                   "weights": {"synth": "weights", "seed": 0, "levels": None},
                   "hyperparameters": {"t1": 1.5, "nn": 32, "B2": 16, "cn": 8}},
        "expected": summary,
        "notes": "Density = kept mask entries / weights over the 19 prunable convs (stem excluded, as "
                 "check_sparsity(conv1=False)). With synth weights (uniform, scaled 1/sqrt(fan_in)) the global "
                 "magnitude threshold removes whole high-fan-in layers at 10.7% (the three 512x4608 convs are "
                 "all-zero) and leaves the 64-channel layers at ~60%; see FINDINGS.md. seconds_released_call per "
                 "layer is in each group folder.",
    }
    os.makedirs(os.path.join(OUT, "resnet18_overall"), exist_ok=True)
    c.dump_json(case, os.path.join(OUT, "resnet18_overall", "case.json"))
    for k, v in summary.items():
        print(k, f"imp {v['imp_density']:.4f}: {v['density_before']:.4f} -> {v['density_after']:.4f}")


if __name__ == "__main__":
    main()
