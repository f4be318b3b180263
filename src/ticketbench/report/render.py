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


def html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td class=\"{'nr' if c in GREYED else ''}\">{html.escape(str(c))}</td>"
                                    for c in row) + "</tr>" for row in t.rows)
    cap = f"<p class=\"cap\">{html.escape(t.caption)}</p>" if t.caption else ""
    notes = "".join(f"<p class=\"note\">{html.escape(n)}</p>" for n in t.notes)
    return (f"<section id=\"{t.id}\"><h3>{html.escape(t.title)}</h3>{cap}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}</section>")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f3f3f3; }} td.nr {{ color: #999; font-style: italic; }}
.holds {{ color: #176d2c; font-weight: bold; }} .fails {{ color: #a31515; font-weight: bold; }}
img {{ max-width: 100%; border: 1px solid #eee; }} .cap, .note {{ font-size: 13px; color: #555; }}
nav a {{ margin-right: 1em; }}
</style></head><body>
{body}
</body></html>
"""
