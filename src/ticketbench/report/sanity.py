"""The report's sanity section: each ticket beside the controls the field expects of it.

A reviewer of a lottery-ticket result asks whether the ticket beats what should not work: its mask shuffled within
each layer (same per-layer counts), its ranking inverted, the rewind-point weights pruned by magnitude (no training
signal), its mask with fresh weights, one-shot pruning, training at a low learning rate (Ma et al., NeurIPS 2021),
and whether its training is stable (Frankle et al., ICML 2020). Pruning-at-initialisation masks are expected to
survive the same shuffle, re-initialisation and inversion (Frankle et al., ICLR 2021). Each comparison is paired by
seed and test example at the ticket's extreme matching sparsity (PrAC's rule, as the IMP-vs-random claims use).

Which runs are controls of which ticket comes from the run kinds (:mod:`ticketbench.runs`: the IMP run a folder
follows) and the method registry (a variant's ``control`` label); nothing here names a method.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..methods.registry import IMP_VARIANTS
from ..runs import imp_run, parse
from .matching import WITHIN_1_OF_DENSE, mean_extreme, round_by_seed
from .paper.framework import NO_BITS, diff_text, mean_sparsities, nearest_round, paired_vs
from .render import Table, fmt, pct
from .results import Cell, Results
from .stats import FAILS, FRACTION, HOLDS, LEVEL, Estimate, accuracy_cell, decide, seed_interval, value_cell

#: The error barrier under which a ticket's training is stable (Frankle et al. 2020; the instability stage's rule).
STABLE_BARRIER = 0.02
RULE = WITHIN_1_OF_DENSE
SANITY_INTRO = ("Each ticket beside the controls a reviewer expects of it: its mask shuffled within each layer, its "
                "ranking inverted, the rewind-point weights pruned by magnitude, its mask with fresh weights, "
                "one-shot pruning, a low learning rate and the stability of its training (docs/methods.md "
                "\"Sanity checks\"). A cell lists the controls its grid ran.")
EXPECTED = ("Expected: IMP's ticket beats every control (Frankle & Carbin 2019; Frankle et al. 2021 for the shuffle "
            "and inversion); a mask made at initialisation (SNIP, GraSP, SynFlow) does not beat its own shuffled, "
            "re-initialised or inverted mask, since only its per-layer ratios matter (Frankle et al., ICLR 2021); "
            "IMP at a low learning rate finds weaker tickets (Ma et al. 2021).")


@dataclass(frozen=True)
class Comparison:
    """One control of one ticket at the ticket's comparison round."""

    ticket: str  # the ticket's IMP folder
    control: str  # the control's folder
    label: str
    round: int
    sparsity: float
    acc: str
    est: Estimate | None
    seeds: int

    @property
    def verdict(self) -> str:
        return "inconclusive" if self.est is None else {HOLDS: "beats", FAILS: "loses to"}.get(
            decide(self.est, 0.0), "inconclusive")

    def line(self) -> str:
        if self.est is None:
            return f"undecided: {NO_BITS}"
        one = " (one seed)" if self.seeds == 1 else ""
        diff = diff_text(self.est)
        if self.verdict == "beats":
            return f"the ticket beats its {self.label} by {diff}{one}"
        if self.verdict == "loses to":
            return f"its {self.label} beats the ticket: ticket minus {self.label} {diff}{one}"
        return f"undecided: ticket minus {self.label} {diff}{one}"


def _label(folder: str) -> str | None:
    """A control's label: its variant's registered one, or the LT setting an IMP run trains under."""
    found = parse("imp", folder)
    if found and found[0].pattern == "full-{setting}":
        return f"IMP under PrAC's {found[1]['setting']} setting"
    variant, _ = imp_run(folder)
    return IMP_VARIANTS.spec(variant).control or None if variant in IMP_VARIANTS else None


def _follows(folder: str) -> str | None:
    """The IMP folder of the same cell that a control controls: the run it follows, full IMP for a setting."""
    found = parse("imp", folder)
    return "full" if found and found[0].pattern == "full-{setting}" else imp_run(folder)[1]


def controls(res: Results, cell: Cell, ticket: str) -> list[tuple[str, str]]:
    """(folder, label) of every control of ``ticket`` the cell ran: the variants that follow its masks and carry a
    control label, and, for full IMP, IMP under another learning-rate setting."""
    return [(v, _label(v)) for v in res.variants("imp", cell) if _label(v) and _follows(v) == ticket]


def tickets(res: Results, cell: Cell) -> list[str]:
    """The IMP folders of ``cell`` that have controls: full IMP first, then the masks others follow."""
    found = {_follows(v) for v in res.variants("imp", cell) if _label(v)}
    return sorted((t for t in found if t and res.seeds("imp", cell, t)), key=lambda t: (t != "full", t))


def comparison_round(res: Results, cell: Cell, ticket: str) -> tuple[int, float, str] | None:
    """(round, mean sparsity, how it was chosen): the ticket's extreme matching round on its seed-mean curve, or its
    last round where it matches nowhere."""
    found = mean_extreme(res, cell, "imp", ticket, RULE)
    if found is None:
        return None
    ext = found.extreme
    if ext.point is not None:
        return ext.point.round, ext.point.sparsity, "extreme matching sparsity" + (" (capped)" if ext.capped else "")
    rounds = mean_sparsities(res.per_round("imp", cell, ticket))
    last = rounds[-1]
    return last["round"], last["sparsity"], "last round (the ticket matches dense at no sparsity run)"


def compare(res: Results, cell: Cell, ticket: str) -> list[Comparison]:
    """Every control of ``ticket`` in ``cell`` at the ticket's comparison round; memoised per report."""
    memo = res.__dict__.setdefault("_sanity", {})
    key = (cell, ticket)
    if key in memo:
        return memo[key]
    out = []
    at = comparison_round(res, cell, ticket)
    if at is not None:
        r, sparsity, _ = at
        mine = round_by_seed(res, "imp", cell, ticket, r)
        for folder, label in controls(res, cell, ticket):
            # A control under another recipe (a learning-rate setting) may prune on another schedule: its round of
            # the same sparsity.
            row = nearest_round(mean_sparsities(res.per_round("imp", cell, folder)), 100 * sparsity)
            if row is None:
                continue
            theirs = round_by_seed(res, "imp", cell, folder, row["round"])
            common = sorted(set(mine) & set(theirs))
            if not common:
                continue
            est = paired_vs({s: mine[s] for s in common}, {s: theirs[s] for s in common})
            out.append(Comparison(ticket, folder, label, row["round"], row["sparsity"],
                                  accuracy_cell([theirs[s] for s in common]), est, len(common)))
    memo[key] = out
    return out


#: Liu et al.'s baselines for a structured ticket, by the budget field of its ``<method>-scratch_<budget>`` folder.
SCRATCH = {"e": "Scratch-E (slimmed, fresh init, same epochs)", "b": "Scratch-B (slimmed, fresh init, dense compute)"}


def scratch_runs(res: Results, cell: Cell) -> dict[str, dict[str, str]]:
    """{structure method: {budget: folder}} of the cell's Scratch runs whose structured ticket ran too."""
    out: dict[str, dict[str, str]] = {}
    for v in res.variants("structure", cell):
        found = parse("structure", v)
        if found and found[0].pattern == "{method}-scratch_{budget}" and res.seeds("structure", cell,
                                                                                   found[1]["method"]):
            out.setdefault(found[1]["method"], {})[found[1]["budget"]] = v
    return out


def paired_round(res: Results, cell: Cell, phase: str, ticket: str, control: str, r: int) -> tuple[Estimate | None,
                                                                                               list[dict], int]:
    """Ticket minus control at round ``r`` of both, paired by seed and test example: (estimate, the control's rows,
    seeds)."""
    mine, theirs = round_by_seed(res, phase, cell, ticket, r), round_by_seed(res, phase, cell, control, r)
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None, [], 0
    return (paired_vs({s: mine[s] for s in common}, {s: theirs[s] for s in common}), [theirs[s] for s in common],
            len(common))


def scratch_comparisons(res: Results, cell: Cell) -> list[Comparison]:
    """Each structured ticket against its Scratch runs at the ticket's extreme matching round (the same rule as the
    IMP tickets' controls), or its last round where it matches at none."""
    out = []
    for method, budgets in scratch_runs(res, cell).items():
        rounds = res.per_round("structure", cell, method)
        found = mean_extreme(res, cell, "structure", method, RULE)
        if not rounds or found is None:
            continue
        r = found.extreme.point.round if found.extreme.point is not None else max(rounds)
        sparsity = sum(x["sparsity"] for x in rounds[r]) / len(rounds[r])
        for budget, folder in sorted(budgets.items()):
            est, rows, n = paired_round(res, cell, "structure", method, folder, r)
            if n:
                out.append(Comparison(method, folder, SCRATCH[budget], r, sparsity, accuracy_cell(rows), est, n))
    return out


def scratch_table(res: Results, cell: Cell) -> Table | None:
    runs = scratch_runs(res, cell)
    rows = []
    for method, budgets in runs.items():
        for r, seeds in res.per_round("structure", cell, method).items():
            row = [method, r, value_cell((x["sparsity"] for x in seeds), bounds=FRACTION), accuracy_cell(seeds)]
            for budget in SCRATCH:
                folder = budgets.get(budget)
                est, theirs, n = paired_round(res, cell, "structure", method, folder, r) if folder else (None, [], 0)
                epochs = sorted({x.get("scratch_epochs") for x in theirs} - {None})
                row += [accuracy_cell(theirs) if theirs else fmt(None), ", ".join(map(str, epochs)) or "-",
                        diff_text(est) if est else fmt(None) if not n else NO_BITS]
            rows.append(row)
    if not rows:
        return None
    return Table(f"grid_scratch_{cell[0]}_{cell[1]}", f"Structured tickets against Scratch-E and Scratch-B: "
                 f"{cell[0]} x {cell[1]}",
                 ["method", "round", "sparsity (%)", "ticket acc (%)", "Scratch-E acc (%)", "Scratch-E epochs",
                  "ticket minus Scratch-E", "Scratch-B acc (%)", "Scratch-B epochs", "ticket minus Scratch-B"], rows,
                 "Liu et al. (ICLR 2019): each round's structured ticket beside its slimmed architecture trained from "
                 "a fresh initialisation, for the recipe's epochs (Scratch-E) or for the dense run's compute "
                 "(Scratch-B: epochs scaled by dense over slimmed MACs, capped by structure.scratch_b_max_factor); "
                 f"differences paired by seed and test example, {LEVEL:.0%} interval.")


def beaten_text(res: Results, cell: Cell, ticket: str = "full") -> str:
    """``; of its sanity controls here it beats: a, b; undecided: c`` for a claim about the ticket, or empty."""
    found = compare(res, cell, ticket)
    if not found:
        return ""
    parts = []
    for verdict, words in (("beats", "it beats"), ("inconclusive", "undecided"), ("loses to", "it loses to")):
        names = [c.label for c in found if c.verdict == verdict]
        if names:
            parts.append(f"{words}: {', '.join(names)}")
    return f"; of its sanity controls on this cell ({pct(found[0].sparsity)} sparsity), {'; '.join(parts)}"


def barrier_verdict(est: Estimate | None) -> str:
    if est is None:
        return fmt(None)
    v = decide(est, STABLE_BARRIER, above=False)
    return {HOLDS: "stable", FAILS: "unstable"}.get(v, "inconclusive") + (" (one seed)" if est.n == 1 else "")


def sanity_table(res: Results, cell: Cell) -> Table | None:
    rows = []
    for ticket in tickets(res, cell):
        at = comparison_round(res, cell, ticket)
        if at is None:
            continue
        r, sparsity, how = at
        ticket_acc = accuracy_cell(list(round_by_seed(res, "imp", cell, ticket, r).values()))
        for c in compare(res, cell, ticket):
            rows.append([ticket, c.label, f"imp/{c.control}", c.round, pct(c.sparsity), ticket_acc, c.acc,
                         "-" if c.est is None else diff_text(c.est), c.line()])
        barrier = res.per_round("instability", cell, ticket).get(r, [])
        if barrier:
            est = seed_interval(x["error_barrier"] for x in barrier)
            rows.append([ticket, "instability of its training", f"instability/{ticket}", r,
                         pct(sparsity), ticket_acc, "-", f"barrier {est.fmt(unit=' points')}",
                         f"{barrier_verdict(est)} under the {100 * STABLE_BARRIER:.0f}-point rule"])
    for c in scratch_comparisons(res, cell):
        ticket_acc = accuracy_cell(list(round_by_seed(res, "structure", cell, c.ticket, c.round).values()))
        rows.append([c.ticket, c.label, f"structure/{c.control}", c.round, pct(c.sparsity), ticket_acc, c.acc,
                     "-" if c.est is None else diff_text(c.est), c.line()])
    if not rows:
        return None
    return Table(f"sanity_{cell[0]}_{cell[1]}", f"Sanity checks: {cell[0]} x {cell[1]}",
                 ["ticket", "control", "run", "round", "sparsity (%)", "ticket acc (%)", "control acc (%)",
                  "ticket minus control", "verdict"], rows,
                 f"Each control at its ticket's {RULE.paper} extreme matching sparsity (the highest sparsity whose "
                 f"seed-mean test accuracy is {RULE.name}; the last round where it matches at none), paired by seed "
                 f"and test example; 'beats' when the {LEVEL:.0%} interval of ticket minus control lies above 0.",
                 [EXPECTED, "Structured tickets (refill, refill+) are compared with Scratch-E/B by the same rule "
                  "(Liu et al., ICLR 2019: structured architectures trained from scratch often match them); every "
                  "round is in the grid_scratch table.",
                  "Instability: the error barrier on the line between two copies of the ticket trained "
                  "from its rewind point with different data orders (Frankle et al. 2020); stable when its interval "
                  f"lies below {100 * STABLE_BARRIER:.0f} points, as the paper's rule."])


def instability_table(res: Results, cell: Cell) -> Table | None:
    rows = []
    for source in res.variants("instability", cell):
        runs = res.get("instability", cell, source)
        rewind = sorted({str(m.get("rewind")) for m in runs})
        for r, seeds in res.per_round("instability", cell, source).items():
            est = seed_interval(x["error_barrier"] for x in seeds)
            rows.append([source, ", ".join(rewind), r, value_cell((x["sparsity"] for x in seeds), bounds=FRACTION),
                         accuracy_cell(seeds), accuracy_cell(seeds, "copy_b_test_acc"),
                         est.fmt(unit=" points") if est else fmt(None),
                         ", ".join(f"{100 * x['error_barrier']:.2f}" for x in seeds), barrier_verdict(est)])
    if not rows:
        return None
    points = sorted({m.get("points") for s in res.variants("instability", cell)
                     for m in res.get("instability", cell, s)} - {None})
    bn = sorted({str(m.get("batchnorm")) for s in res.variants("instability", cell)
                 for m in res.get("instability", cell, s)})
    return Table(f"grid_instability_{cell[0]}_{cell[1]}", f"Instability of IMP's tickets: {cell[0]} x {cell[1]}",
                 ["IMP run", "rewind", "round", "sparsity (%)", "copy A acc (%)", "copy B acc (%)", "error barrier",
                  "per seed (points)", "verdict"], rows,
                 f"Two copies of each round's ticket trained from the IMP run's rewind point, differing in data order "
                 f"only (copy A repeats the IMP round's own); the networks at {', '.join(map(str, points))} points of "
                 f"the line between their final weights are evaluated on the test set (BatchNorm statistics: "
                 f"{', '.join(bn)}). Error barrier = the highest error on the line minus the mean of its ends. Round 0 "
                 f"is the dense network trained the same way.",
                 [f"Stable when the barrier's {LEVEL:.0%} interval over seeds lies below {100 * STABLE_BARRIER:.0f} "
                  f"points (Frankle et al. 2020), unstable when above; copy accuracies at the best-validation epoch, "
                  f"the barrier on the final weights."])


def sanity_tables(res: Results) -> list[Table]:
    tables = []
    for cell in res.cells():
        tables += [sanity_table(res, cell), instability_table(res, cell), scratch_table(res, cell)]
    return [t for t in tables if t is not None]
