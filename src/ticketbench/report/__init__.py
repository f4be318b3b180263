"""``ticketbench report``: every paper table beside our numbers, our grid's own tables, figures and claims.

Everything is derived from the results folder and config/paper_tables/; the output holds no
timestamps, so the same results always give byte-identical files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import sequential, storage
from ..codeversion import code_version, dvc_status
from ..config import DEFAULT_CONFIG
from ..stage import STAGES, Stage
from .deviations import DEVIATIONS, deviations_table
from .grid import grid_tables
from .matching import rules_text
from .needs import PaperOnly, Reading
from .paper import PaperTable, evaluate as evaluate_claims, load_tables, needs_of, ours
from . import page
from .render import NOT_RUN, PAPER_ONLY, Table, csv_text, fmt, latex, markdown
from .results import Results
from .sanity import SANITY_INTRO, sanity_tables
from .stats import LEVEL as STATS_LEVEL, RULE as STATS_RULE, SEEDS_RULE, TOO_GOOD


def paper_table(t: PaperTable, res: Results) -> tuple[Table, int]:
    """Paper value, our value and the difference for every value column of every row.

    Also returns how many rows have at least one value of ours.
    """
    columns = [t.headers.get(k, k) for k in t.key_columns]
    for v in t.value_columns:
        h = t.headers.get(v, v)
        columns += [f"{h} (paper)", f"{h} (ours)"] + ([f"{h} Δ"] if t.kind == "results" else [])
    rows, with_results = [], 0
    for row in t.rows:
        mine, needs = ours(t, row, res), needs_of(t, row)
        with_results += any(v is not None for v in mine.values())
        out = [fmt(row.get(k), t.units.get(k, "")) for k in t.key_columns]
        for v in t.value_columns:
            unit = t.units.get(v, "")
            paper, our = row.get(v), mine.get(v)
            shown = PAPER_ONLY if isinstance(needs[v], PaperOnly) else fmt(our, unit)
            out += [fmt(paper, unit) if paper is not None else "—", shown]
            if t.kind == "results":
                both = isinstance(paper, (int, float)) and isinstance(our, (int, float))
                delta = fmt(our - paper, unit) if both else ""
                out.append(f"{delta} {TOO_GOOD}" if both and v in t.higher_is_better and too_good(our, paper)
                           else delta)
        rows.append(out)
    fixed = ", ".join(f"{k}: {v}" for k, v in t.fixed.items())
    caption = f"{t.paper}, {t.source}" + (f" ({fixed})" if fixed else "") + \
        ". Units: " + ", ".join(f"{t.headers.get(k, k)} in {u}" for k, u in t.units.items() if u not in ("text",)) + \
        ". Ours: mean ± 95% t-interval over n seeds; test ± = Wilson interval over test examples."
    notes = [t.notes] if t.notes else []
    # Where our column stands on our reading of something the paper leaves open, the table says which.
    readings = sorted({n.deviation for row in t.rows for n in needs_of(t, row).values() if isinstance(n, Reading)})
    for d in (d for d in DEVIATIONS if d.key in readings):
        notes.append(f"Ours rests on our reading of the {d.topic} (Deviations: {d.key}): {d.ours}")
    return Table(t.id, f"{t.paper} {t.source}: {t.title}", columns, rows, caption, notes), with_results


def too_good(ours: float, paper: float) -> bool:
    """Ours above the paper's value by more than our own interval (the seeds', or with one seed the test set's): a
    reproduction rarely beats the original by more than its noise, so the cell asks to be checked."""
    half = getattr(ours, "half", None)
    half = getattr(ours, "test_half", None) if half is None else half
    return half is not None and ours - paper > half


def claims_table(res: Results, plan: sequential.Plan | None = None) -> tuple[Table, list[dict]]:
    """The headline claims on every cell, decided at ``plan``'s level when ``ticketbench decide`` extended the
    results (a correction for its repeated looks), else at the single look's."""
    level = plan.level if plan else STATS_LEVEL
    rows = evaluate_claims(res, level)
    t = Table("claims", "Headline claims evaluated on this grid",
              ["paper", "claim", "paper's number", "grid cell", f"measured ({100 * level:.4g}% interval)", "test",
               "seeds", "verdict", "seeds needed"],
              [[r["paper"], r["claim"], r["paper_value"], r["cell"], r["measured"], r["test"], r["seeds"] or "-",
                r["verdict"], r["seeds_needed"]] for r in rows],
              f"{STATS_RULE} {rules_text()} Each claim is judged only on cells the grid ran; 'not run' means no cell "
              f"could test it. {SEEDS_RULE}" + (f" {plan.text()}" if plan else ""))
    return t, rows


def code_of_runs(res: Results) -> dict:
    """Which code produced the runs (``versions.code`` and ``versions.git`` of each metrics.json) against the code
    rendering the report: stale when any run came from other source (or recorded none)."""
    current = code_version()
    counts: dict[tuple[str, str], int] = {}
    for m in res.runs.values():
        v = m.get("versions") or {}
        key = (str(v.get("code") or "not recorded"), str(v.get("git") or ""))
        counts[key] = counts.get(key, 0) + 1
    runs = [{"code": c, "git": g, "runs": n} for (c, g), n in sorted(counts.items(), key=lambda kv: -kv[1])]
    other = sum(r["runs"] for r in runs if r["code"] != current["code"])
    return {"report": current, "runs": runs, "stale": bool(other), "runs_by_other_code": other}


def code_text(code: dict) -> str:
    def one(c: dict) -> str:
        git = c["git"] or "no git checkout"
        return f"source {c['code']} (commit {git})"

    parts = [f"{one(r)}: {r['runs']} run(s)" for r in code["runs"]] or ["no runs"]
    head = (f"**Stale:** {code['runs_by_other_code']} run(s) came from other code than this report's; re-run the grid "
            f"(`make reproduce`) to bring them up to date. " if code["stale"] else "")
    return (f"{head}Code: the runs were produced by {'; '.join(parts)}; this report was rendered by "
            f"{one(code['report'])}. `ticketbench report --status` also asks DVC whether the grid's dependencies "
            f"changed since `dvc.lock` recorded them.")


def build_report(results_root: str | Path, tables_dir: str | Path, out: str | Path) -> dict:
    from . import figures  # matplotlib, pandas and seaborn: imported by a report run, not by `report --help`

    res = Results.scan(results_root)
    out = Path(out)
    tables = load_tables(tables_dir)
    built = [paper_table(t, res) for t in tables]
    paper = [t for t, _ in built]
    grid = grid_tables(res)
    sanity = sanity_tables(res)
    plan = sequential.read(results_root)
    claims, claim_rows = claims_table(res, plan)
    deviations = deviations_table()
    for t in [*paper, *grid, *sanity, claims, deviations]:
        storage.write_text(out / "tables" / f"{t.id}.md", markdown(t))
        storage.write_text(out / "tables" / f"{t.id}.tex", latex(t))
        storage.write_text(out / "tables" / f"{t.id}.csv", csv_text(t))
    figs = [f for f in (figures.accuracy_vs_sparsity(res, out / "figures", tables),
                        figures.prac_set_size(res, out / "figures"),
                        figures.time_saving(res, out / "figures"), figures.search_cost(res, out / "figures"),
                        figures.instability(res, out / "figures"))
            if f] + figures.overlap_heatmaps(res, out / "figures") + figures.layer_speedups(res, out / "figures")
    storage.write_json(out / "claims.json", claim_rows)
    # Everything under tables/ and figures/ is generated here: a file this run did not write is left over from an
    # older grid or report version and would be shown as if current.
    current = {f"{t.id}.{ext}" for t in [*paper, *grid, *sanity, claims, deviations] for ext in ("md", "tex", "csv")} | set(figs)
    for folder in (out / "tables", out / "figures"):
        for stale in folder.glob("*") if folder.is_dir() else ():
            if stale.is_file() and stale.name not in current:
                stale.unlink()

    code = code_of_runs(res)
    cells = ", ".join(f"{d} x {b}" for d, b in res.cells()) or "none"
    ran = sum(n for _, n in built)
    intro = (f"Generated by `ticketbench report` from `{results_root}` and `{tables_dir}`. Grid cells with results: "
             f"{cells}. Every paper value is transcribed from the paper; every 'ours' value comes from a run of this "
             f"grid, and cells the grid did not run say '{NOT_RUN}'. Accuracies are test accuracy at the "
             f"best-validation epoch.")
    md = ["# ticketbench report", "", intro, "", code_text(code), "", "## Claims", "", markdown(claims)]
    if sanity:
        md += ["## Sanity checks", "", SANITY_INTRO, ""] + [markdown(t) for t in sanity]
    md += ["## Figures", ""]
    md += [f"![{f}](figures/{f})" for f in figs]
    md += ["", "## This grid's results", ""] + [markdown(t) for t in grid]
    md += ["## Paper tables, paper vs ours", ""] + [markdown(t) for t in paper]
    md += ["## Deviations", "", markdown(deviations)]
    storage.write_text(out / "README.md", "\n".join(md) + "\n")

    page.write(out / "index.html", intro=intro, code=code_text(code), claims=claims, claim_rows=claim_rows,
               sanity=sanity, figures=figs, grid=grid, paper=paper, deviations=deviations)
    summary = {"paper_tables": [t.id for t in paper], "grid_tables": [t.id for t in grid], "figures": figs,
               **({"sanity_tables": [t.id for t in sanity]} if sanity else {}),
               "claims": claim_rows, "cells": res.cells(), "paper_rows_with_results": ran,
               "deviations": [d.key for d in DEVIATIONS], "code": code}
    if res.notes:  # only when there is something to say, so a clean folder's report.json stays as it was
        summary["skipped"] = res.notes
    storage.write_json(out / "report.json", summary)
    return summary


@STAGES.register("report")
class Report(Stage):
    name = "report"
    help = "regenerate every paper table (paper vs ours), this grid's tables, seaborn figures and the claims"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--results", default="results", metavar="DIR", help="results folder to read")
        parser.add_argument("--tables", default="config/paper_tables", metavar="DIR", help="the papers' tables as YAML")
        parser.add_argument("--out", default="results/report", metavar="DIR", help="report folder to write")
        g = parser.add_argument_group("coverage (dry: reads no results, writes nothing)")
        g.add_argument("--coverage", action="store_true",
                       help="list, for every cell of every paper table, the job(s) of the config that fill it, or "
                       "why none does; exit 1 if a cell is unmapped")
        g.add_argument("--configfile", dest="configfiles", action="append", default=[], metavar="FILE",
                       help=f"with --coverage: a config file layered on {DEFAULT_CONFIG}, as `snakemake "
                       f"--configfile FILE` layers it; repeat to layer more")
        parser.add_argument("--status", action="store_true",
                            help="read the report in --out and say whether it is stale: its runs came from other "
                            "code than this checkout's, or `dvc status` says the DVC stage's dependencies changed "
                            "since dvc.lock; exit 1 if so (writes nothing)")
        parser.add_argument("--dvc-stage", default=None, metavar="STAGE",
                            help="with --status: the dvc.yaml stage of these results (default: grid for results/, "
                            "smoke for results/smoke)")
        g.add_argument("--left-out", action="store_true",
                       help="with --coverage: print only the cells the config leaves out (unmapped), as a Markdown "
                       "page, and exit 0 (docs/paper-mini.md is this page for the paper grid in miniature)")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        if args.coverage:
            return _coverage(args)
        if args.status:
            return _status(args)
        s = build_report(args.results, args.tables, args.out)
        for line in s.get("skipped", []):
            print(f"note: {line}")
        count = {v: sum(1 for c in s["claims"] if c["verdict"].startswith(v))
                 for v in ("holds", "does not hold", "inconclusive")}
        print(f"report -> {args.out}: {len(s['paper_tables'])} paper tables ({s['paper_rows_with_results']} rows with "
              f"our results), {len(s['grid_tables'])} grid tables, {len(s['figures'])} figures, claims: "
              f"{count['holds']} hold, {count['does not hold']} do not, {count['inconclusive']} inconclusive")
        return 0


def _status(args: argparse.Namespace) -> int:
    from ..errors import ArtifactError

    path = Path(args.out) / "report.json"
    try:
        code = (storage.read_json(path) or {}).get("code")
    except (OSError, ValueError) as e:
        raise ArtifactError(path, f"cannot be read ({e}); run `ticketbench report` first") from None
    if not isinstance(code, dict) or not isinstance(code.get("runs"), list):
        raise ArtifactError(path, "records no code version: it was written by an older ticketbench; regenerate it "
                            "with `ticketbench report`")
    now = code_version()
    stale = []
    if code.get("stale"):
        stale.append(f"{code.get('runs_by_other_code')} of its runs came from other code than the report's")
    if any(r.get("code") != now["code"] for r in code["runs"]):
        codes = ", ".join(sorted({str(r.get("code")) for r in code["runs"]}))
        stale.append(f"its runs came from source {codes}; this checkout's is {now['code']}")
    results = Path(args.results).as_posix().rstrip("/")
    stage = args.dvc_stage or {"results": "grid", "results/smoke": "smoke"}.get(results)
    changed = dvc_status(stage) if stage else None
    if changed:
        stale.append(f"`dvc status {stage}`: " + ", ".join(changed))
    dvc_line = ("dvc: not asked (no stage for these results)" if not stage else
                "dvc: not available" if changed is None else f"dvc status {stage}: " +
                ("dependencies unchanged since dvc.lock" if not changed else "dependencies changed"))
    print(f"report {path}: " + ("STALE: " + "; ".join(stale) if stale else
                                f"up to date with this checkout's code ({now['code']})") + f"; {dvc_line}")
    return 1 if stale else 0


def _coverage(args: argparse.Namespace) -> int:
    from ..config import load_config_files
    from .coverage import UNMAPPED, coverage, summary

    config = load_config_files([DEFAULT_CONFIG, *args.configfiles])
    if args.left_out:
        print(left_out_markdown(config, args.tables, args.configfiles), end="")
        return 0
    cells = coverage(config, args.tables)
    for c in cells:
        print(f"{c.table} | {c.row} | {c.column} | {c.status}: {c.detail}")
    print(f"coverage of {' + '.join([DEFAULT_CONFIG, *args.configfiles])}: {summary(cells)}")
    return 1 if any(c.status == UNMAPPED for c in cells) else 0


def left_out_markdown(config: dict, tables: str | Path, files: list[str]) -> str:
    """The paper-table cells a config does not map to a job (``report --coverage``'s unmapped cells), as a page."""
    from .coverage import MAPPED, UNMAPPED, coverage

    cells = coverage(config, tables)
    out = [c for c in cells if c.status == UNMAPPED]
    command = " ".join(["ticketbench report --coverage --left-out", *(f"--configfile {f}" for f in files)])
    lines = [f"# Paper-table cells left out by {' + '.join(files) or DEFAULT_CONFIG}", "",
             f"Generated by `{command}`. The config maps {sum(c.status == MAPPED for c in cells)} of the papers' "
             f"{len(cells)} table cells to its jobs, and its report fills them; these {len(out)} it does not run, "
             "and its report shows them as 'not run'. The reason is the coverage check's.", "",
             "| table | row | column | why |", "|---|---|---|---|"]
    lines += [f"| {c.table} | {c.row} | {c.column} | {c.detail} |".replace("\n", " ") for c in out]
    return "\n".join(lines) + "\n"


__all__ = ["build_report", "left_out_markdown", "Report"]
