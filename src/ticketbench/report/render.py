"""Tables as Markdown, LaTeX, CSV and HTML; one Table type feeds all four."""

from __future__ import annotations

import csv
import html
import io as _io
from dataclasses import dataclass, field
from typing import Any

NOT_RUN = "not run"
# Our column of a cell that states a fact of the paper alone (a model size): nothing to run.
PAPER_ONLY = "paper only"
GREYED = (NOT_RUN, PAPER_ONLY)


@dataclass
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return NOT_RUN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if unit in ("samples", "count", "epochs"):
            return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
        if unit in ("percent", "points"):
            return f"{value:.2f}"
        if unit == "x":
            return f"{value:.2f}x"
        return f"{value:.4g}"
    return str(value)


def pct(x: float | None) -> str:
    """A fraction as a percentage in running text (a claim's value, a verdict): ``0.8393`` -> ``83.93%``."""
    return "-" if x is None else f"{100 * x:.2f}%"


def markdown(t: Table) -> str:
    lines = [f"### {t.title}", ""]
    if t.caption:
        lines += [t.caption, ""]
    lines.append("| " + " | ".join(t.columns) + " |")
    lines.append("|" + "---|" * len(t.columns))
    for row in t.rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    for note in t.notes:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


def _tex_escape(s: Any) -> str:
    out = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        out = out.replace(a, b)
    return out


def latex(t: Table) -> str:
    spec = "l" * len(t.columns)
    body = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex_escape(t.title)}}}", rf"\label{{tab:{t.id}}}",
            rf"\begin{{tabular}}{{{spec}}}", r"\hline", " & ".join(_tex_escape(c) for c in t.columns) + r" \\", r"\hline"]
    body += [" & ".join(_tex_escape(c) for c in row) + r" \\" for row in t.rows]
    body += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(body) + "\n"


def csv_text(t: Table) -> str:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.columns)
    w.writerows(t.rows)
    return buf.getvalue()


# A verdict's text -> the class that colours it, the one place this is decided: the claims' verdicts (holds, does not
# hold, inconclusive, not run, each perhaps with a suffix such as " (one seed)"), the sanity checks' (the ticket beats
# its control, a control beats the ticket, stable, unstable, undecided) and a claim's "better than expected" flag.
# Text containing a mark is of the mark's class, wherever it stands (a paper table's difference "+1.20 better than
# expected: check", a sanity verdict "its Scratch-B ... beats the ticket: ..."); other text by how it starts.
VERDICT_MARKS = (("better than expected", "v-check"), ("beats the ticket", "v-fails"))
VERDICT_CLASSES = (("holds", "v-holds"), ("does not hold", "v-fails"), ("inconclusive", "v-open"),
                   ("undecided", "v-open"), (NOT_RUN, "v-notrun"), ("the ticket beats", "v-holds"),
                   ("stable", "v-holds"), ("unstable", "v-fails"))
# Each class's text and background colour; the page's CSS is made from these.
VERDICT_COLOURS = {"v-holds": ("#0b5a1e", "#cdeed5"), "v-fails": ("#8c1010", "#f8d2d2"),
                   "v-open": ("#454b54", "#e4e7eb"), "v-notrun": ("#707070", "#f6f6f6"),
                   "v-check": ("#6b4700", "#ffdf80")}
# Columns whose cells are verdicts.
VERDICT_COLUMNS = ("verdict", "flag")


def verdict_class(text: Any) -> str:
    """The class of a verdict (``VERDICT_MARKS``, ``VERDICT_CLASSES``), or "" for text that is no verdict."""
    s = str(text).strip().lower()
    return next((c for mark, c in VERDICT_MARKS if mark in s), "") or next(
        (c for prefix, c in VERDICT_CLASSES if s.startswith(prefix)), "")


def html_table(t: Table, fold: str = "", aside: str = "") -> str:
    """The table as a <section id=t.id>. ``fold`` "open" or "closed" puts it in a <details> whose summary is its title
    (and ``aside``, a short note beside it). Cells of a verdict column carry their verdict's class, greyed cells
    (not run, paper only) the class nr, a value marked better than expected v-check; a cell has at most one class."""
    verdicts = [str(c).lower() in VERDICT_COLUMNS for c in t.columns]

    def td(c: Any, verdict: bool) -> str:
        v = verdict_class(c)
        cls = (v if verdict or v == "v-check" else "") or ("nr" if c in GREYED else "")
        return (f"<td class=\"{cls}\">" if cls else "<td>") + f"{html.escape(str(c))}</td>"

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(td(c, v) for c, v in zip(row, verdicts)) + "</tr>" for row in t.rows)
    cap = f"<p class=\"cap\">{html.escape(t.caption)}</p>" if t.caption else ""
    notes = "".join(f"<p class=\"note\">{html.escape(n)}</p>" for n in t.notes)
    title = f"<h3>{html.escape(t.title)}</h3>"
    table = f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    inner = f"{cap}{table}{notes}"
    if fold:
        aside_html = f" <span class=\"aside\">{html.escape(aside)}</span>" if aside else ""
        return (f"<section id=\"{t.id}\" class=\"tbl\"><details{' open' if fold == 'open' else ''}><summary>{title}"
                f"{aside_html}</summary>{inner}</details></section>")
    return f"<section id=\"{t.id}\" class=\"tbl\">{title}{inner}</section>"


_VERDICT_CSS = "\n".join(f".{c} {{{{ color: {fg}; background: {bg}; }}}}" for c, (fg, bg) in VERDICT_COLOURS.items())
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
*, *::before, *::after {{ box-sizing: border-box; }}
html {{ scroll-padding-top: 3.2em; }}
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; font-size: 15px;
  line-height: 1.45; max-width: 1200px; margin: 0 auto; padding: 0 16px 4em; color: #222; overflow-wrap: anywhere; }}
h1 {{ margin: 0.8em 0 0.3em; font-size: 1.7em; }}
h2 {{ margin: 1.6em 0 0.5em; padding-bottom: 0.2em; border-bottom: 2px solid #e3e3e3; font-size: 1.35em; }}
h3 {{ font-size: 1.05em; margin: 1em 0 0.4em; }}
code {{ font-size: 0.92em; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }}
a {{ color: #1a56a8; text-decoration: none; }} a:hover {{ text-decoration: underline; }}
.intro {{ color: #444; font-size: 14px; margin: 0.3em 0; }}
.stale {{ background: #fff4d6; border-left: 4px solid #e0a800; padding: 4px 8px; }}
nav.bar {{ position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid #ddd; padding: 6px 0;
  display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 14px; font-weight: 600; }}
nav.toc {{ margin: 0.6em 0 0.8em; font-size: 13px; line-height: 1.6; }}
nav.toc div {{ display: flex; gap: 0 10px; padding: 1px 0; border-bottom: 1px dotted #e3e3e3; }}
nav.toc a.h {{ flex: 0 0 9.5em; font-weight: 600; }}
nav.toc span {{ display: flex; flex-wrap: wrap; gap: 0 12px; min-width: 0; }}
.badge {{ display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600;
  white-space: nowrap; border: 1px solid rgba(0, 0, 0, 0.12); }}
.badge.v-notrun {{ border-style: dashed; }} .badge.zero {{ opacity: 0.5; }}
.counts {{ display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 0.3em 0 0.6em; }}
.paper h3 {{ display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; font-size: 1.15em;
  margin: 1.2em 0 0.4em; }}
.claim {{ border: 1px solid #e3e3e3; border-radius: 6px; padding: 6px 10px; margin: 6px 0; }}
.claim-text {{ font-weight: 600; margin: 0; }}
.paper-value {{ margin: 2px 0 4px; color: #444; font-size: 14px; }}
.lbl {{ color: #777; font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; margin-right: 4px; }}
ul.rows {{ list-style: none; margin: 0; padding: 0; }}
ul.rows > li {{ margin: 2px 0; }}
ul.rows summary {{ font-size: 14px; display: flex; flex-wrap: wrap; gap: 2px 8px; align-items: baseline;
  list-style: none; }}
ul.rows summary::-webkit-details-marker {{ display: none; }}
ul.rows summary::before {{ content: "\\25B8"; color: #666; flex: 0 0 0.8em; }}
ul.rows details[open] > summary::before {{ content: "\\25BE"; }}
ul.rows summary > .badge:first-of-type {{ flex: 0 0 auto; min-width: 9.5em; text-align: center; }}
ul.rows .cell {{ flex: 0 0 14em; margin: 0; }}
ul.rows .measured {{ flex: 1 1 12em; min-width: 0; }}
.cell {{ font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; color: #333; margin: 0 6px; }}
.measured {{ color: #333; }}
ul.rows .needed {{ flex: 0 0 auto; font-size: 12px; color: #555; white-space: nowrap; margin-left: 6px; }}
dl.more {{ display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 4px 0 6px 22px;
  font-size: 13px; color: #333; }}
dl.more dt {{ color: #777; }} dl.more dd {{ margin: 0; }}
details.test, details.rule {{ font-size: 13px; color: #444; margin: 4px 0 2px; }}
details.test p, details.rule p {{ margin: 4px 0 4px 22px; }}
summary {{ cursor: pointer; }}
section.tbl summary h3 {{ display: inline; }}
.aside {{ color: #777; font-size: 13px; margin-left: 6px; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; font-variant-numeric: tabular-nums;
  overflow-wrap: normal; }}
th, td {{ border: 1px solid #d5d5d5; padding: 3px 7px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} td.nr {{ color: #999; font-style: italic; }}
.cap, .note {{ font-size: 13px; color: #555; }}
figure {{ margin: 0; }} figcaption {{ font-size: 12px; color: #666; }}
.figures {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px; }}
img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
""" + _VERDICT_CSS + """
td.v-holds, td.v-fails, td.v-check {{ font-weight: 600; }}
</style></head><body>
{body}
</body></html>
"""
