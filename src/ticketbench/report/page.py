"""The report as one HTML page (``index.html``), from the same tables the Markdown report shows.

The page opens with a summary of the claims, per paper: how many verdicts hold, do not hold or are inconclusive, then
each claim with its grid cells' verdicts; the details (full measurement, seeds, the test) fold out. Then every table, in
the Markdown report's order, grouped by section and by paper. It is self-contained (inline CSS, no script, no external
file but the figures beside it) and deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

from .. import storage
from .render import GREYED, NOT_RUN, PAGE, Table, html_table, verdict_class
from .sanity import SANITY_INTRO

# The summary's counts: a verdict class, and how a count of it reads (one, several).
COUNTS = (("v-holds", "holds", "hold"), ("v-fails", "does not hold", "do not hold"),
          ("v-open", "inconclusive", "inconclusive"), ("v-notrun", NOT_RUN, NOT_RUN))


def _esc(s: object) -> str:
    return html.escape(str(s), quote=False)


def _inline(s: str) -> str:
    """Markdown's inline marks in running text (``code``, **bold**) as HTML."""
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", _esc(s))
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _badge(text: str, cls: str = "") -> str:
    cls = cls or verdict_class(text)
    return f"<span class=\"badge {cls}\">{_esc(text)}</span>" if cls else f"<span class=\"badge\">{_esc(text)}</span>"


def _counts(rows: list[dict]) -> str:
    """Coloured badges counting the rows' verdicts (not run only when there is one), and the flagged rows."""
    classes = [verdict_class(r.get("verdict", "")) for r in rows]
    out = []
    for cls, one, many in COUNTS:
        n = classes.count(cls)
        if n or cls != "v-notrun":
            out.append(_badge(f"{n} {one if n == 1 else many}", cls + ("" if n else " zero")))
    flagged = sum(1 for r in rows if r.get("flag"))
    if flagged:
        out.append(_badge(f"{flagged} to check", "v-check"))
    return "".join(out)


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _short(measured: str) -> str:
    """The first clause of a measurement (up to its first "; "), for the one-line view of a row."""
    head, sep, _ = str(measured).partition("; ")
    return head + (" …" if sep else "")


def _row(r: dict, shared_test: bool) -> str:
    verdict, flag = str(r.get("verdict", "")), str(r.get("flag", "") or "")
    cell = r.get("cell", "-")
    line = (_badge(verdict) + (" " + _badge(flag, verdict_class(flag) or "v-check") if flag else "") +
            f"<span class=\"cell\">{_esc(cell if cell not in ('-', '') else 'no grid cell')}</span>"
            f"<span class=\"measured\">{_esc(_short(r.get('measured', '')))}</span>")
    needed = r.get("seeds_needed")
    if needed not in (None, "", "-"):
        # What an undecided row would take, on its line: the number, or that no number of seeds will do.
        count = str(needed).split(" ", 1)[0]
        line += f"<span class=\"needed\">seeds needed: {_esc(count if count.isdigit() else 'none')}</span>"
    more = [("measured", r.get("measured", "")), ("seeds", r.get("seeds") or "-")]
    if needed not in (None, "", "-"):
        more.append(("seeds needed", needed))
    if flag:
        more.append(("flag", flag))
    if not shared_test:
        more.append(("test", r.get("test", "")))
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in more)
    return f"<li><details><summary>{line}</summary><dl class=\"more\">{dl}</dl></details></li>"


def _claim(rows: list[dict]) -> str:
    """One claim: its text and the paper's number, a line per grid cell, and its test, once."""
    values, tests = _unique([r.get("paper_value", "") for r in rows]), _unique([r.get("test", "") for r in rows])
    head = f"<p class=\"claim-text\">{_esc(rows[0].get('claim', ''))}</p>"
    head += "".join(f"<p class=\"paper-value\"><span class=\"lbl\">paper</span>{_esc(v)}</p>" for v in values if v)
    body = "".join(_row(r, len(tests) == 1) for r in rows)
    test = (f"<details class=\"test\"><summary>How it is tested</summary><p>{_esc(tests[0])}</p></details>"
            if len(tests) == 1 and tests[0] else "")
    return f"<div class=\"claim\">{head}<ul class=\"rows\">{body}</ul>{test}</div>"


def _summary(claims: Table, rows: list[dict], papers: list[str]) -> str:
    parts = [f"<p class=\"counts\"><span class=\"lbl\">all papers</span>{_counts(rows)}"
             f"<span class=\"aside\">verdicts of {len(rows)} claim × grid cell pairs</span></p>",
             f"<details class=\"rule\"><summary>How a verdict is decided</summary><p>{_esc(claims.caption)}</p>"
             f"</details>"]
    for p in papers:
        mine = [r for r in rows if r.get("paper") == p]
        if not mine:
            continue
        by_claim: dict[str, list[dict]] = {}
        for r in mine:
            by_claim.setdefault(str(r.get("claim", "")), []).append(r)
        parts.append(f"<div class=\"paper\" id=\"summary-{_slug(p)}\"><h3>{_esc(p)} <span class=\"counts\">"
                     f"{_counts(mine)}</span></h3>" + "".join(_claim(c) for c in by_claim.values()) + "</div>")
    # The claims as one table, for reference: its rule and tests are above, once.
    keep = [i for i, c in enumerate(claims.columns) if c != "test"]
    table = replace(claims, columns=[claims.columns[i] for i in keep], rows=[[r[i] for i in keep] for r in claims.rows],
                    caption="", notes=[*claims.notes, "The rule is under 'How a verdict is decided' and each claim's "
                                       "test under the claim, above."])
    parts.append(html_table(table, fold="closed", aside=f"{len(claims.rows)} rows: every claim on every grid cell"))
    return f"<section id=\"summary\"><h2>Claims</h2>{''.join(parts)}</section>"


def _paper_of(t: Table, names: list[str]) -> str:
    """The paper of a paper table, from its title "<paper> <source>: <title>"."""
    return next((n for n in names if t.title.startswith(n + " ")), t.title.split(" ", 1)[0])


def _ours_rows(t: Table) -> int:
    """How many rows of a paper table hold a value of ours."""
    ours = [i for i, c in enumerate(t.columns) if str(c).endswith("(ours)")]
    return sum(1 for r in t.rows if any(r[i] not in GREYED and r[i] != "" for i in ours))


def _marked(t: Table) -> int:
    """How many cells of a table are marked better than expected."""
    return sum(1 for r in t.rows for c in r if verdict_class(c) == "v-check")


def _rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def write(path: Path, *, intro: str, code: str, claims: Table, claim_rows: list[dict], sanity: list[Table],
          figures: list[str], grid: list[Table], paper: list[Table], deviations: Table) -> None:
    names = _unique([str(r.get("paper", "")) for r in claim_rows if r.get("paper")])
    groups: dict[str, list[Table]] = {}
    for t in paper:
        groups.setdefault(_paper_of(t, names), []).append(t)
    papers = [n for n in names if n in groups] + [n for n in groups if n not in names]  # the claims' papers first

    # Sections: (anchor, heading, [(anchor, label, title)] for the contents, body).
    sections = []
    sections.append(("summary", "Claims",
                     [(f"summary-{_slug(p)}", p, f"{p}: its claims") for p in names] +
                     [("claims", "all claims as one table", claims.title)], _summary(claims, claim_rows, names)))
    if sanity:
        sections.append(("sec-sanity", "Sanity", [(t.id, t.id.removeprefix("sanity_"), t.title) for t in sanity],
                         f"<p class=\"intro\">{_inline(SANITY_INTRO)}</p>" + "".join(html_table(t) for t in sanity)))
    stems = [f.rsplit(".", 1)[0] for f in figures]
    figs = "".join(f"<figure id=\"fig-{_esc(s)}\"><a href=\"figures/{_esc(f)}\"><img src=\"figures/{_esc(f)}\" "
                   f"alt=\"{_esc(f)}\"></a><figcaption>{_esc(f)}</figcaption></figure>" for f, s in zip(figures, stems))
    sections.append(("sec-figures", "Figures", [(f"fig-{s}", s, f) for f, s in zip(figures, stems)],
                     f"<div class=\"figures\">{figs}</div>" if figures else "<p class=\"intro\">No figures.</p>"))
    sections.append(("sec-grid", "Grid", [(t.id, t.id.removeprefix("grid_"), t.title) for t in grid],
                     "<p class=\"intro\">This grid's own tables; the first is open, the others fold out.</p>" +
                     "".join(html_table(t, fold="closed" if i else "open", aside=_rows(len(t.rows)))
                             for i, t in enumerate(grid))))
    for p in papers:
        body = []
        for t in groups[p]:
            n, marked = _ours_rows(t), _marked(t)
            aside = f"{_rows(len(t.rows))}, " + (f"{n} with values of ours" if n else f"ours {NOT_RUN} on this grid")
            aside += f", {marked} better than expected: check" if marked else ""
            body.append(html_table(t, fold="open" if n else "closed", aside=aside))
        sections.append((f"sec-paper-{_slug(p)}", p, [(t.id, t.id, t.title) for t in groups[p]],
                         "<p class=\"intro\">Paper vs ours; a table with no value of ours is folded.</p>" +
                         "".join(body)))
    sections.append(("sec-deviations", "Deviations", [(deviations.id, deviations.id, deviations.title)],
                     html_table(deviations, fold="closed", aside=_rows(len(deviations.rows)))))

    bar = "".join(f"<a href=\"#{a}\">{_esc(h)}</a>" for a, h, _, _ in sections)
    toc = "".join(f"<div><a class=\"h\" href=\"#{a}\">{_esc(h)}</a><span>" +
                  "".join(f"<a href=\"#{_esc(i)}\" title=\"{html.escape(str(title))}\">{_esc(label)}</a>"
                          for i, label, title in links) + "</span></div>" for a, h, links, _ in sections)
    # The code that produced the runs: a warning in view when the runs are stale, the record folded.
    stale, sep, record = code.partition("Code: ")
    code_html = (f"<p class=\"intro stale\">{_inline(stale.strip())}</p>" if sep and stale.strip() else "") + (
        f"<details class=\"rule\"><summary>Code: which source produced the runs</summary>"
        f"<p>{_inline(record)}</p></details>" if sep else f"<p class=\"intro\">{_inline(code)}</p>")
    body = [f"<h1>ticketbench report</h1><p class=\"intro\">{_inline(intro)}</p>{code_html}",
            f"<nav class=\"bar\" aria-label=\"sections\">{bar}<a href=\"#contents\">Contents</a></nav>"]
    for a, h, _, content in sections:
        body.append(content if a == "summary" else f"<section id=\"{a}\"><h2>{_esc(h)}</h2>{content}</section>")
        if a == "summary":  # every table by section and paper, after the claims
            body.append(f"<nav class=\"toc\" id=\"contents\" aria-label=\"contents\"><h2>Contents</h2>{toc}</nav>")
    storage.write_text(path, PAGE.format(title="ticketbench report", body="\n".join(body)))
