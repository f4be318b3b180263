"""Tables of this grid's own results, one per experiment family, shaped like the papers' tables."""

from __future__ import annotations

from .render import Table, fmt
from .results import Cell, Results


def _p(x) -> str:
    return fmt(None if x is None else 100 * x, "percent")


def _acc(rows: list[dict], r: int) -> str:
    row = next((x for x in rows if x["round"] == r), None)
    return _p(row["test_acc"]) if row else fmt(None)


def imp_table(res: Results, cell: Cell) -> Table | None:
    full = res.rounds("imp", cell, "full")
    if not full:
        return None
    prac = res.rounds("prac", cell)
    others = {v: res.rounds("imp", cell, v) for v in res.variants("imp", cell) if v != "full"}
    cols = ["round", "sparsity (%)", "IMP acc (%)", *(f"{v} acc (%)" for v in others), "PrAC ticket acc (%)",
            "PrAC set (%)", "IMP iterations to find", "PrAC iterations to find"]
    rows = []
    for r in full:
        p = next((x for x in prac if x["round"] == r["round"]), None)
        rows.append([r["round"], _p(r["sparsity"]), _p(r["test_acc"]), *(_acc(o, r["round"]) for o in others.values()),
                     _p(p["test_acc"]) if p else fmt(None), _p(p.get("prac_trained_fraction")) if p else fmt(None),
                     fmt(r["find_iterations"], "count"), fmt(p["find_iterations"], "count") if p else fmt(None)])
    dense = res.dense(cell)
    return Table(f"grid_imp_{cell[0]}_{cell[1]}", f"IMP, PrAC-IMP and baselines: {cell[0]} x {cell[1]}", cols, rows,
                 f"Dense test accuracy {_p(dense)}%. Seeds averaged where several ran. Iterations to find a round's "
                 f"ticket count every training step before it, the shared dense run included.")


def prac_sets_table(res: Results, cell: Cell) -> Table | None:
    rows = res.rounds("prac", cell)
    if not rows:
        return None
    return Table(f"grid_prac_sets_{cell[0]}_{cell[1]}", f"PrAC sets per round (as PrAC Table A3): {cell[0]} x {cell[1]}",
                 ["sparsity (%)", "CEP", "CET", "PrAC", "overlap |CEP∩CET|/|CEP| (%)", "early stop"],
                 [[_p(r["sparsity"]), fmt(r.get("cep_size"), "count"), fmt(r.get("cet_size"), "count"),
                   fmt(r.get("prac_size"), "count"), _p(r.get("overlap_rate")),
                   fmt(r.get("stopped_early", 0) > 0.5 if "stopped_early" in r else None)] for r in rows])


def savings_table(res: Results) -> Table | None:
    rows = []
    for cell in res.cells("prac"):
        for s in res.extra("prac", cell, "savings"):
            rows.append([f"{cell[0]} x {cell[1]}", _p(s.get("matched_sparsity")), _p(s.get("saving")),
                         _p(s.get("tolerance"))])
    if not rows:
        return None
    return Table("grid_prac_savings", "PrAC-IMP training-iteration savings over full-data IMP",
                 ["cell", "highest matching sparsity (%)", "iterations saved (%)", "tolerance (points)"], rows,
                 "Paper: 83.93% (ResNet-20, CIFAR-10). Matching = PrAC ticket within one std of the IMP ticket "
                 "(the tolerance when only one seed ran).")


def structure_table(res: Results, cell: Cell) -> Table | None:
    methods = [m for m in ("refill", "refill_plus", "regroup") if res.rounds("structure", cell, m)]
    if not methods:
        return None
    imp = res.rounds("imp", cell, "full")
    per = {m: {r["round"]: r for r in res.rounds("structure", cell, m)} for m in methods}
    rounds = sorted({r for m in methods for r in per[m]})
    cols = ["round", "IMP remaining (%)", "IMP acc (%)"]
    for m in methods:
        cols += [f"{m} remaining (%)", f"{m} acc (%)", f"{m} time saving (%)"]
    rows = []
    for r in rounds:
        i = next((x for x in imp if x["round"] == r), None)
        row = [r, _p(1 - i["sparsity"]) if i else fmt(None), _p(i["test_acc"]) if i else fmt(None)]
        for m in methods:
            s = per[m].get(r)
            row += [_p(1 - s["sparsity"]), _p(s["test_acc"]), _p(s.get("time_saving"))] if s else [fmt(None)] * 3
        rows.append(row)
    return Table(f"grid_structure_{cell[0]}_{cell[1]}", f"Structured tickets (as Structure-LTH Tables A5-A7): "
                 f"{cell[0]} x {cell[1]}", cols, rows,
                 f"Dense accuracy {_p(res.dense(cell))}%. Time saving = 1 - T/T_dense, end-to-end CPU latency at batch "
                 f"64: refill tickets physically slimmed, regroup tickets run block-sparse.")


def jackpot_table(res: Results, cell: Cell) -> Table | None:
    runs = [(v, res.get("jackpot", cell, v)) for v in res.variants("jackpot", cell)]
    runs = [(v, m) for v, m in runs if m]
    if not runs:
        return None
    dense = res.dense(cell)
    rows = []
    for v, ms in runs:
        m = ms[0]
        acc = sum(x["test_acc"] for x in ms) / len(ms)
        rows.append([m["init"], _p(m["sparsity"]), len(m.get("epochs", [])), _p(acc),
                     fmt(None if dense is None else 100 * (acc - dense), "points"), _p(m.get("magnitude_overlap")),
                     fmt(all(x.get("weights_unchanged") for x in ms))])
    return Table(f"grid_jackpot_{cell[0]}_{cell[1]}", f"Lottery jackpots: {cell[0]} x {cell[1]}",
                 ["init", "sparsity (%)", "search epochs", "test acc (%)", "Δ vs dense (points)",
                  "overlap with magnitude mask (%)", "weights unchanged"], rows, f"Dense accuracy {_p(dense)}%.")


def overlap_table(res: Results) -> Table | None:
    rows = []
    for (d, b), seed, _, data in res.extras_like("jackpot", "overlap-s"):
        for r in data["rows"]:
            rows.append([f"{d} x {b}", seed, r["criterion"], _p(r["sparsity"]), _p(r["overlap"]), _p(r["iou"])])
    if not rows:
        return None
    return Table("grid_mask_overlap", "Overlap of the jackpot mask with other criteria' masks",
                 ["cell", "seed", "criterion", "sparsity (%)", "overlap (%)", "IoU (%)"], rows,
                 "Overlap = share of the jackpot's kept weights that the criterion also keeps, at the jackpot's "
                 "per-layer budgets (the IMP mask is taken as it is, at its own sparsity). The paper's own metric "
                 "and numbers are not public.")


def timing_table(res: Results) -> Table | None:
    rows = []
    for (d, b), seed, _, data in res.extras_like("structure", "timing"):
        for model, e in data["end_to_end"].items():
            rows.append([f"{d} x {b}", seed, data["round"], model, fmt(e["dense_ms"], "points"),
                         fmt(e["ms"], "points"), _p(e["time_saving"]), f"{data['device']}, batch {data['batch']}, "
                         f"{data['threads']} thread(s)"])
    if not rows:
        return None
    return Table("grid_timing", "End-to-end inference latency against dense",
                 ["cell", "seed", "round", "model", "dense (ms)", "model (ms)", "time saving (%)", "setting"], rows,
                 "Median of alternating timed calls. An unstructured mask runs the dense kernels, so it saves nothing.")


def numerics_table(res: Results) -> Table | None:
    """How the runs computed: precision, memory layout, compilation, determinism and device, per phase."""
    counts: dict[tuple, int] = {}
    for (phase, *_), m in sorted(res.runs.items()):
        n = m.get("numerics") or {}
        v = m.get("versions") or {}
        key = (phase, n.get("precision", "not recorded"), n.get("layout", "not recorded"),
               "yes" if n.get("compile") else "no", {True: "yes", False: "no"}.get(n.get("deterministic"), "not recorded"),
               v.get("gpu", f"CPU, {v.get('cpu_threads', '?')} thread(s)"), v.get("torch", "?"))
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    return Table("grid_numerics", "How the numbers were computed",
                 ["phase", "precision", "layout", "compiled", "deterministic", "device", "torch", "runs"],
                 [[*k, n] for k, n in counts.items()],
                 "From each run's metrics.json. Runs of one phase with different settings here are comparable "
                 "only within the seed spread, not to the last digit.")


def grid_tables(res: Results) -> list[Table]:
    tables = []
    for cell in res.cells():
        tables += [imp_table(res, cell), prac_sets_table(res, cell), structure_table(res, cell), jackpot_table(res, cell)]
    tables += [savings_table(res), overlap_table(res), timing_table(res), numerics_table(res)]
    return [t for t in tables if t is not None]
