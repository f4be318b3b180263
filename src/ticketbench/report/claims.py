"""Each paper's headline claims, evaluated on whatever the grid ran, with the numbers behind the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .results import Cell, Results, mean

Verdict = tuple[str, bool | None]  # (measured, holds); holds None = cannot be judged on this cell


@dataclass(frozen=True)
class Claim:
    paper: str
    text: str
    paper_value: str
    phase: str
    judge: Callable[[Results, Cell], Verdict | None]  # None: the grid did not run it for this cell


CLAIMS: list[Claim] = []


def claim(paper: str, text: str, paper_value: str, phase: str):
    def deco(fn):
        CLAIMS.append(Claim(paper, text, paper_value, phase, fn))
        return fn
    return deco


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


@claim("PrAC", "PrAC-IMP finds tickets with at most half the training iterations of full-data IMP, at matching accuracy",
       "83.93% saved (ResNet-20, CIFAR-10); 63.54-92.77% across networks", "prac")
def _prac_saving(res: Results, cell: Cell) -> Verdict | None:
    found = res.extra("prac", cell, "savings")
    if not found:
        return None
    s = found[0]
    if s.get("saving") is None:
        return "no sparsity where the PrAC ticket matches", False
    return (f"{_pct(s['saving'])} saved up to sparsity {_pct(s['matched_sparsity'])} "
            f"(tolerance {_pct(s['tolerance'])})"), s["saving"] >= 0.5


@claim("PrAC", "The PrAC set is a minority of the training set", "35.32-37.07% of CIFAR-10, 69.55-78.19% of CIFAR-100",
       "prac")
def _prac_size(res: Results, cell: Cell) -> Verdict | None:
    rows = res.rounds("prac", cell)
    if not rows:
        return None
    frac = mean(r.get("prac_trained_fraction") for r in rows)
    return f"{_pct(frac)} on average over {len(rows)} rounds", frac < 0.5


@claim("PrAC", "IMP tickets beat random pruning and random re-initialisation at the highest sparsity",
       "matching sparsity 79.03% vs 48.80% for both random baselines (CIFAR-10)", "imp")
def _imp_vs_random(res: Results, cell: Cell) -> Verdict | None:
    imp = res.rounds("imp", cell, "full")
    rp, ri = res.rounds("imp", cell, "random_prune"), res.rounds("imp", cell, "random_reinit")
    if not imp or not (rp or ri):
        return None
    last = imp[-1]
    parts, holds = [f"IMP {_pct(last['test_acc'])}"], True
    for name, rows in (("random pruning", rp), ("random re-init", ri)):
        if rows:
            parts.append(f"{name} {_pct(rows[-1]['test_acc'])}")
            holds &= last["test_acc"] >= rows[-1]["test_acc"]
    return f"at sparsity {_pct(last['sparsity'])}: " + ", ".join(parts), holds


@claim("Lottery-Jackpots", "A 90%-sparse jackpot matches the dense model (within 2 points) with no weight change",
       "VGGNet-19 on CIFAR-10 at 10% of the weights reaches dense accuracy", "jackpot")
def _jackpot_matches(res: Results, cell: Cell) -> Verdict | None:
    runs = res.get("jackpot", cell, "magnitude-s0.9")
    dense = res.dense(cell)
    if not runs or dense is None:
        return None
    acc = mean(r["test_acc"] for r in runs)
    unchanged = all(r.get("weights_unchanged") for r in runs)
    return (f"{_pct(acc)} vs dense {_pct(dense)} ({100 * (acc - dense):+.2f} points), weights unchanged: "
            f"{unchanged}"), acc >= dense - 0.02 and unchanged


@claim("Lottery-Jackpots", "Of the pruning criteria, magnitude pruning overlaps most with the jackpot mask",
       "stated in the abstract (no table public)", "jackpot")
def _overlap(res: Results, cell: Cell) -> Verdict | None:
    found = [v for _, _, _, v in res.extras_like("jackpot", "overlap-s", cell)]
    if not found:
        return None
    rows = {r["criterion"]: r["overlap"] for r in found[0]["rows"] if not r["criterion"].startswith("imp")}
    best = max(rows, key=rows.get)
    return ", ".join(f"{k} {_pct(v)}" for k, v in sorted(rows.items(), key=lambda kv: -kv[1])), best == "magnitude"


@claim("Lottery-Jackpots", "Magnitude initialisation makes the search at least 3x cheaper than random initialisation",
       ">= 3x lower search cost", "jackpot")
def _cost(res: Results, cell: Cell) -> Verdict | None:
    found = [v for _, _, _, v in res.extras_like("jackpot", "cost-s", cell)]
    if not found:
        return None
    c = found[0]
    if c.get("factor") is None:
        return f"magnitude init never reached random init's {_pct(c['target_val_acc'])}", False
    return (f"{c['factor']:.2f}x: random init needs {c['random_epochs']} epochs to reach val "
            f"{_pct(c['target_val_acc'])}, magnitude init {c['magnitude_epochs']}"), c["factor"] >= 3


def _extreme(rows: list[dict], dense: float, tol: float = 0.01) -> dict | None:
    ok = [r for r in rows if r["test_acc"] >= dense - tol]
    return max(ok, key=lambda r: r["sparsity"]) if ok else None


@claim("Structure-LTH", "Channel-wise (refill) tickets save >= 60% of the dense latency at the highest sparsity "
       "within 1 point of dense", "up to 64.93% time saving (GPU)", "structure")
def _refill_speed(res: Results, cell: Cell) -> Verdict | None:
    dense = res.dense(cell)
    best = None
    for method in ("refill", "refill_plus"):
        r = _extreme(res.rounds("structure", cell, method), dense) if dense is not None else None
        if r and (best is None or r["time_saving"] > best[1]["time_saving"]):
            best = (method, r)
    if dense is None or not (res.rounds("structure", cell, "refill") or res.rounds("structure", cell, "refill_plus")):
        return None
    if best is None:
        return "no refilled ticket within 1 point of dense", False
    method, r = best
    return (f"{method} round {r['round']}: {_pct(r['time_saving'])} saved at sparsity {_pct(r['sparsity'])}, "
            f"accuracy {_pct(r['test_acc'])} (dense {_pct(dense)})"), r["time_saving"] >= 0.6


@claim("Structure-LTH", "Group-wise (regroup) tickets stay accurate to higher sparsity than channel-wise ones",
       "extreme group-wise sparsity 56-80% vs channel-wise 0-67% (CIFAR)", "structure")
def _regroup_vs_refill(res: Results, cell: Cell) -> Verdict | None:
    dense = res.dense(cell)
    rg, rf = res.rounds("structure", cell, "regroup"), res.rounds("structure", cell, "refill")
    if dense is None or not rg or not rf:
        return None
    a, b = _extreme(rg, dense), _extreme(rf, dense)
    sa, sb = (a["sparsity"] if a else 0.0), (b["sparsity"] if b else 0.0)
    return f"regroup {_pct(sa)} vs refill {_pct(sb)} (highest sparsity within 1 point of dense)", sa >= sb


def evaluate(res: Results) -> list[dict]:
    """One row per claim and grid cell; claims with no run on any cell get a single 'not run' row."""
    out = []
    for c in CLAIMS:
        rows = []
        for cell in res.cells(c.phase):
            verdict = c.judge(res, cell)
            if verdict is not None:
                rows.append({"paper": c.paper, "claim": c.text, "paper_value": c.paper_value,
                             "cell": f"{cell[0]} x {cell[1]}", "measured": verdict[0],
                             "verdict": {True: "holds", False: "does not hold", None: "undecided"}[verdict[1]]})
        out.extend(rows or [{"paper": c.paper, "claim": c.text, "paper_value": c.paper_value, "cell": "-",
                             "measured": "not run", "verdict": "not run"}])
    return out
