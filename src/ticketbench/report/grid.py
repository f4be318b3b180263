"""Tables of this grid's own results, one per experiment family, shaped like the papers' tables.

Every number that can vary by seed is a mean over seeds with its interval (report.stats); a number that every seed
shares (a sparsity fixed by the pruning schedule) is shown once, plainly. A run that is missing says "not run".
"""

from __future__ import annotations

from typing import Iterable

from ..methods.registry import STRUCTURE_METHODS
from ..runs import folder, recipe_of
from .matching import AT_LEAST_DENSE, WITHIN_1_OF_DENSE, Rule, mean_extreme
from .render import Table, fmt
from .results import Cell, Results, overlap_init
from .stats import FRACTION, GAP, LEVEL, Estimate, accuracy_cell, seed_interval, value_cell

INTERVALS = (f"Each cell: mean ± {LEVEL:.0%} t-interval over n seeds; test ± = {LEVEL:.0%} Wilson interval over test "
             f"examples; 'not run' = no seed ran it.")


def _acc(rows: list[dict]) -> str:
    return accuracy_cell(rows) if rows else fmt(None)


def _val(values: Iterable[float | None], scale: float = 100, digits: int = 2,
         bounds: tuple[float, float] | None = FRACTION) -> str:
    """A number over seeds; shown in percent (``scale`` 100) it is a fraction, whose interval stays in [0, 100]."""
    vals = [v for v in values if v is not None]
    return value_cell(vals, scale, digits, bounds=bounds if scale == 100 else None) if vals else fmt(None)


def _fixed(values: Iterable[float | None], scale: float = 100, digits: int = 2) -> str:
    """Plain when every seed gives the same number (fixed by construction), else mean ± interval: it is never
    hidden that seeds differed."""
    vals = [v for v in values if v is not None]
    shown = {f"{scale * v:.{digits}f}" for v in vals}
    return shown.pop() if len(shown) == 1 else _val(vals, scale, digits)


def _covered(rows: Iterable[dict]) -> str:
    """The share of the body's conv and linear weights the run's pruning policy covers; runs written before it was
    recorded say n/a."""
    vals = [r.get("policy_coverage") for r in rows]
    return _fixed(vals) if any(v is not None for v in vals) else "n/a"


# --- time savings of structured tickets -----------------------------------------------------------------------------
# A saving is one only where the ticket lost FLOPs or parameters (``structure_removed``); rows written before that
# key existed count as before. A run whose timing interval never got tight says so beside the number.

NO_STRUCTURE = "no structure removed"
COVERED = ("Covered = share of the body's conv and linear weights (the classifier's left out) that the run's pruning "
           "policy may prune; n/a: not recorded.")
TIMING_INTERVAL = "timing interval"  # an Estimate's test: one seed's run's own interval, not one over seeds
ONE_SEED_TIMING = f"(n=1, {TIMING_INTERVAL})"
NOISY = "noisy"  # a run's timing_verdict (ticketbench.timing.NOISY; the report stays torch-free)
NOISY_NOTE = ("'noisy': the run's 95% interval of the time ratio was still wider than 5 points when timing stopped; "
              "'timing interval': one seed, shown with its own run's 95% interval of the saving.")


def timed_rows(rows: Iterable[dict]) -> tuple[list[dict], list[dict]]:
    """(rows whose time saving counts, rows whose model lost no structure)."""
    rows = list(rows)
    none = [r for r in rows if r.get("structure_removed") is False]
    return [r for r in rows if r.get("time_saving") is not None and r.get("structure_removed") is not False], none


def saving_estimate(counted: list[dict]) -> Estimate | None:
    """The mean saving over seeds with its t interval; one seed has none, so its run's timing interval stands in."""
    est = seed_interval(r["time_saving"] for r in counted)
    if est is not None and est.n == 1 and counted[0].get("time_saving_low") is not None:
        return Estimate(est.mean, counted[0]["time_saving_low"], counted[0]["time_saving_high"], 1, TIMING_INTERVAL)
    return est


def saving_marks(counted: list[dict], none: list[dict]) -> str:
    """`` (noisy on 1/3 seeds; no structure removed on 1/4 seeds)``, or empty."""
    parts = []
    noisy = sum(r.get("timing_verdict") == NOISY for r in counted)
    if noisy:
        parts.append(NOISY if noisy == len(counted) else f"{NOISY} on {noisy}/{len(counted)} seeds")
    if none and counted:
        parts.append(f"{NO_STRUCTURE} on {len(none)}/{len(none) + len(counted)} seeds")
    return f" ({'; '.join(parts)})" if parts else ""


def saving_cell(rows: Iterable[dict], unit: str = "", missing: str = fmt(None)) -> str:
    """A time-saving cell over seeds: ``21.00 ± 1.20 (n=3)``, ``21.00 [19.80, 22.10] (n=1, timing interval)``,
    marked noisy where a run's timing was, or ``no structure removed``."""
    counted, none = timed_rows(rows)
    if not counted:
        return NO_STRUCTURE if none else missing
    est = saving_estimate(counted)
    if est.test == TIMING_INTERVAL:
        text = f"{100 * est.mean:.2f}{unit} {est.range()} {ONE_SEED_TIMING}"
    else:
        text = est.fmt(unit=unit)
    return text + saving_marks(counted, none)


def timing_notes(per: dict[str, list[dict]]) -> list[str]:
    """Why each model's tickets lost no structure, once per distinct reason, and what 'noisy' means where a run was
    timed that way."""
    out = []
    for name, rows in per.items():
        for reason in sorted({r.get("no_structure_reason") or "no reason recorded" for r in timed_rows(rows)[1]}):
            out.append(f"{name}: {NO_STRUCTURE}: {reason}")
    if any("timing_verdict" in r for rows in per.values() for r in rows):
        out.append(NOISY_NOTE)
    return out


def _seeds_with(rows: list[dict], key: str) -> str:
    flags = [r[key] for r in rows if key in r]
    return f"{sum(bool(f) for f in flags)}/{len(flags)} seeds" if flags else fmt(None)


def extremes_note(res: Results, cell: Cell, runs: dict[str, tuple[str, str]], rule: Rule) -> str | None:
    """Each run's extreme matching sparsity under ``rule`` on its seed-mean curve, in one sentence."""
    parts = []
    for label, (phase, variant) in runs.items():
        found = mean_extreme(res, cell, phase, variant, rule)
        if found is not None:
            parts.append(f"{label} {found.extreme.describe()}")
    if not parts:
        return None
    return (f"Extreme matching sparsity by {rule.paper}'s rule (the highest sparsity whose seed-mean test accuracy "
            f"is {rule.name}; 'capped' = the rule still holds at the highest sparsity run): {', '.join(parts)}.")


def imp_table(res: Results, cell: Cell) -> Table | None:
    full = res.per_round("imp", cell, "full")
    if not full:
        return None
    prac = res.per_round("prac", cell)
    others = {v: res.per_round("imp", cell, v) for v in res.variants("imp", cell) if v != "full"}
    cols = ["round", "sparsity (%)", "covered (%)", "IMP acc (%)", *(f"{v} acc (%)" for v in others),
            "PrAC ticket acc (%)", "PrAC set (%)", "IMP iterations to find", "PrAC iterations to find"]
    rows = []
    for r, imp in full.items():
        p = prac.get(r, [])
        rows.append([r, _fixed(x["sparsity"] for x in imp), _covered(imp), _acc(imp),
                     *(_acc(o.get(r, [])) for o in others.values()),
                     _acc(p), _val(x.get("prac_trained_fraction") for x in p),
                     _fixed((x.get("find_iterations") for x in imp), 1, 0),
                     _fixed((x.get("find_iterations") for x in p), 1, 0)])
    imp_hp = (res.settings("imp", cell, "full") or {}).get("imp", {})
    rate = imp_hp.get("rate")
    schedule = "" if rate is None else (
        f" Each round prunes {rate:.0%} of the remaining weights ({imp_hp.get('scope', 'global')}, policy "
        f"{imp_hp.get('policy')}, rewind {imp_hp.get('rewind')})" + ("" if rate == 0.2 else
                                                                      "; the papers prune 20% per round") + ".")
    # PrAC's rule for PrAC's comparisons; Structure-LTH's own IMP runs are read with its rule in the structure table.
    runs = {"IMP": ("imp", "full"), **{v: ("imp", v) for v in others if recipe_of("imp", v) != "structure_lth"},
            **({"PrAC ticket": ("prac", "")} if prac else {})}
    note = extremes_note(res, cell, runs, WITHIN_1_OF_DENSE)
    return Table(f"grid_imp_{cell[0]}_{cell[1]}", f"IMP, PrAC-IMP and baselines: {cell[0]} x {cell[1]}", cols, rows,
                 f"Dense test accuracy (%): {_acc(res.dense_runs(cell))}.{schedule} Iterations to find a round's "
                 f"ticket count every training step before it, the shared dense run included. {COVERED} "
                 f"(full-data IMP's policy).",
                 [*([note] if note else []), INTERVALS])


def prac_sets_table(res: Results, cell: Cell) -> Table | None:
    rounds = res.per_round("prac", cell)
    if not rounds:
        return None
    return Table(f"grid_prac_sets_{cell[0]}_{cell[1]}", f"PrAC sets per round (as PrAC Table A3): {cell[0]} x {cell[1]}",
                 ["sparsity (%)", "CEP", "CET", "PrAC", "overlap |CEP∩CET|/|CEP| (%)", "early stop"],
                 [[_fixed(r["sparsity"] for r in rows), *(_val((r.get(k) for r in rows), 1, 0)
                                                          for k in ("cep_size", "cet_size", "prac_size")),
                   _val(r.get("overlap_rate") for r in rows), _seeds_with(rows, "stopped_early")]
                  for rows in rounds.values()], notes=[INTERVALS])


def savings_table(res: Results) -> Table | None:
    rows = []
    for cell in res.cells("prac"):
        # The claims table's rule: matching = the PrAC ticket's seed mean within one std (over seeds) of full-data
        # IMP's, so the table and the verdict read the same numbers.
        s = res.savings(cell)
        if s is None:
            continue
        matched = s["saving"] is not None
        rows.append([f"{cell[0]} x {cell[1]}", _fixed([s["matched_sparsity"]]) if matched else "no match",
                     fmt(s["capped"]) if matched else "-", _val(s["seed_savings"]) if matched else "no match",
                     _fixed([next(r["tolerance"] for r in s["rows"] if r["round"] == s["matched_round"])])
                     if matched else "-", s["seeds"]])
    if not rows:
        return None
    return Table("grid_prac_savings", "PrAC-IMP training-iteration savings over full-data IMP",
                 ["cell", "highest matching sparsity (%)", "capped", "iterations saved (%)",
                  "matching tolerance (points)", "seeds"], rows,
                 "Paper: 83.93% (ResNet-20, CIFAR-10), 63.54-92.77% across networks. Matching = the PrAC ticket's "
                 "mean accuracy within one standard deviation over seeds of full-data IMP's (1 point with one seed); "
                 "the saving counts the iterations each method spent finding the matching round's ticket. 'capped' = "
                 "the tickets still match at the last round both ran, so the saving at the true highest matching "
                 "sparsity is unknown.",
                 [INTERVALS])


def structure_table(res: Results, cell: Cell) -> Table | None:
    methods = [m for m in STRUCTURE_METHODS.names() if res.per_round("structure", cell, m)]
    if not methods:
        return None
    source = res.structure_imp(cell)
    imp = res.per_round("imp", cell, source)
    per = {m: res.per_round("structure", cell, m) for m in methods}
    # Each group's covered share follows its accuracy so that the IMP columns keep their places.
    cols = ["round", "IMP remaining (%)", "IMP acc (%)", "IMP covered (%)"]
    for m in methods:
        cols += [f"{m} remaining (%)", f"{m} acc (%)", f"{m} covered (%)", f"{m} time saving (%)"]
    rows = []
    for r in sorted({r for m in methods for r in per[m]}):
        i = imp.get(r, [])
        row = [r, _fixed(1 - x["sparsity"] for x in i), _acc(i), _covered(i) if i else fmt(None)]
        for m in methods:
            s = per[m].get(r, [])
            row += [_fixed(1 - x["sparsity"] for x in s), _acc(s), _covered(s), saving_cell(s)] if s \
                else [fmt(None)] * 4
        rows.append(row)
    notes = timing_notes({m: [x for xs in per[m].values() for x in xs] for m in methods})
    note = extremes_note(res, cell, {"IMP": ("imp", source), **{m: ("structure", m) for m in methods}},
                         AT_LEAST_DENSE)
    return Table(f"grid_structure_{cell[0]}_{cell[1]}", f"Structured tickets (as Structure-LTH Tables A5-A7): "
                 f"{cell[0]} x {cell[1]}", cols, rows,
                 f"Dense test accuracy (%): {_acc(res.dense_runs(cell))}. IMP = the IMP run the structured tickets "
                 f"come from ({source}). Time saving = 1 - T/T_dense, end-to-end CPU latency at batch 64: refill "
                 f"tickets physically slimmed, regroup tickets run block-sparse; '{NO_STRUCTURE}': the slimmed model "
                 f"has as many FLOPs and parameters as dense, so no saving is reported. {COVERED}",
                 [*([note] if note else []), *notes, INTERVALS])


#: The structure run with the released Structure-LTH settings beside the paper's regroup (runs'
#: ``<method>-released``; deviation slth-regroup-loop).
RELEASED_REGROUP = folder("structure", "{method}-released", method="regroup")


def regroup_loop_table(res: Results, cell: Cell) -> Table | None:
    """Regroup with the paper's column rule against the released loop, round by round on the same IMP masks."""
    paper, released = (res.by_seed("structure", cell, v) for v in ("regroup", RELEASED_REGROUP))
    seeds = sorted(set(paper) & set(released))
    if not seeds:
        return None
    rounds = lambda m: {row["round"]: row for row in m.get("rounds", [])}  # noqa: E731
    rows = []
    for r in sorted({r for k in seeds for r in rounds(paper[k])} & {r for k in seeds for r in rounds(released[k])}):
        a = [rounds(paper[k]).get(r) for k in seeds]
        b = [rounds(released[k]).get(r) for k in seeds]
        pairs = [(x, y) for x, y in zip(a, b) if x and y]
        rows.append([r, _fixed(1 - x["imp_sparsity"] for x, _ in pairs if x.get("imp_sparsity") is not None),
                     _fixed(1 - x["sparsity"] for x, _ in pairs), _fixed(1 - y["sparsity"] for _, y in pairs),
                     _acc([x for x, _ in pairs]), _acc([y for _, y in pairs]),
                     _val((y["test_acc"] - x["test_acc"] for x, y in pairs
                           if x.get("test_acc") is not None and y.get("test_acc") is not None), bounds=GAP)])
    return Table(f"grid_regroup_loop_{cell[0]}_{cell[1]}", f"Regroup: the paper's column rule against the released "
                 f"loop: {cell[0]} x {cell[1]}",
                 ["round", "IMP remaining (%)", "paper rule remaining (%)", "released loop remaining (%)",
                  "paper rule acc (%)", "released loop acc (%)", "released minus paper (points)"], rows,
                 f"Both regroup the same IMP masks with the same KaHyPar partitions; the paper rule's run uses this "
                 f"grid's regroup settings, the released loop's the released code's constants "
                 f"(structure.regroup_preset: released; deviations slth-regroup-loop, slth-regroup-parts). "
                 f"Differences are paired by seed ({len(seeds)} seeds).", [INTERVALS])


def jackpot_table(res: Results, cell: Cell) -> Table | None:
    dense = dict(zip(res.seeds("pretrain", cell), res.dense_runs(cell)))
    rows = []
    for v in res.variants("jackpot", cell):
        seeds, ms = res.seeds("jackpot", cell, v), res.get("jackpot", cell, v)
        if not ms:
            continue
        # Seed k's jackpot is searched in seed k's dense model, so the gap to dense is paired by seed.
        gaps = [m["test_acc"] - dense[s]["test_acc"] for s, m in zip(seeds, ms)
                if s in dense and m.get("test_acc") is not None and dense[s].get("test_acc") is not None]
        rows.append([ms[0]["init"], _fixed(m["sparsity"] for m in ms), _covered(ms),
                     _fixed((len(m.get("epochs", [])) for m in ms), 1, 0), _acc(ms), _val(gaps, bounds=GAP),
                     _val(m.get("magnitude_overlap") for m in ms), fmt(all(x.get("weights_unchanged") for x in ms))])
    if not rows:
        return None
    return Table(f"grid_jackpot_{cell[0]}_{cell[1]}", f"Lottery jackpots: {cell[0]} x {cell[1]}",
                 ["init", "sparsity (%)", "covered (%)", "search epochs", "test acc (%)", "Δ vs dense (points)",
                  "overlap with magnitude mask (%)", "weights unchanged"], rows,
                 f"Dense test accuracy (%): {_acc(res.dense_runs(cell))}. Δ vs dense pairs each seed's jackpot with "
                 f"the same seed's dense model. {COVERED}", [INTERVALS])


def overlap_table(res: Results) -> Table | None:
    groups: dict[tuple, list[dict]] = {}
    for (d, b), _, name, data in res.extras_like("jackpot", "overlap-"):
        for r in data["rows"]:
            groups.setdefault((f"{d} x {b}", overlap_init(name), r["criterion"]), []).append(r)
    if not groups:
        return None
    rows = [[c, init, crit, _fixed(r["sparsity"] for r in rs), _val(r["overlap"] for r in rs),
             _val(r["iou"] for r in rs)] for (c, init, crit), rs in sorted(groups.items(), key=lambda kv: kv[0][:2])]
    return Table("grid_mask_overlap", "Overlap of the jackpot mask with other criteria' masks",
                 ["cell", "search initialised from", "criterion", "sparsity (%)", "overlap (%)", "IoU (%)"], rows,
                 "Overlap = share of the jackpot's kept weights that the criterion also keeps, at the jackpot's "
                 "per-layer budgets (the IMP mask is taken as it is, at its own sparsity). A search initialised "
                 "from the magnitude mask starts at 100% magnitude overlap, so only the random-initialised search "
                 "says which criterion the search agrees with; the claim uses that one. The paper's own metric and "
                 "numbers are not public.", [INTERVALS])



def timing_table(res: Results) -> Table | None:
    groups: dict[tuple, list[dict]] = {}
    settings: dict[tuple, set[str]] = {}
    for (d, b), _, _, data in res.extras_like("structure", "timing"):
        for model, e in data["end_to_end"].items():
            key = (f"{d} x {b}", data["round"], model)
            groups.setdefault(key, []).append(e)
            settings.setdefault(key, set()).add(f"{data['device']}, batch {data['batch']}, {data['threads']} thread(s)")
    if not groups:
        return None
    rows = [[*key, _val((e["dense_ms"] for e in es), 1), _val((e["ms"] for e in es), 1),
             saving_cell(es), "; ".join(sorted(settings[key]))] for key, es in groups.items()]
    return Table("grid_timing", "End-to-end inference latency against dense",
                 ["cell", "round", "model", "dense (ms)", "model (ms)", "time saving (%)", "setting"], rows,
                 "Per seed, the median of alternating timed calls. An unstructured mask runs the dense kernels, so it "
                 "saves nothing.",
                 [*timing_notes(_by_model(groups)), INTERVALS])


def _by_model(groups: dict[tuple, list]) -> dict[str, list]:
    """Every cell's rows of each timed model together, so that no cell's reason is lost."""
    out: dict[str, list] = {}
    for (_, _, model), es in groups.items():
        out.setdefault(model, []).extend(es)
    return out


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
        tables += [imp_table(res, cell), prac_sets_table(res, cell), structure_table(res, cell),
                   regroup_loop_table(res, cell), jackpot_table(res, cell)]
    tables += [savings_table(res), overlap_table(res), timing_table(res), numerics_table(res)]
    return [t for t in tables if t is not None]
