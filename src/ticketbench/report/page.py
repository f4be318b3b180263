"""The report as one HTML page (``index.html``), from the same tables the Markdown report shows."""

from __future__ import annotations

from pathlib import Path

from .. import storage
from .render import PAGE, Table, html_table
from .sanity import SANITY_INTRO


def write(path: Path, *, intro: str, code: str, claims: Table, claim_rows: list[dict], sanity: list[Table],
          figures: list[str], grid: list[Table], paper: list[Table], deviations: Table) -> None:
    nav = "".join(f"<a href=\"#{t.id}\">{t.id}</a>" for t in [claims, *sanity, *grid, *paper, deviations])
    code_html = code.replace("**Stale:**", "<strong>Stale:</strong>").replace("`", "")
    body = [f"<h1>ticketbench report</h1><p>{intro}</p><p>{code_html}</p><nav>{nav}</nav>", "<h2>Claims</h2>",
            html_table(claims).replace(">holds", " class=\"holds\">holds").replace(">does not hold",
                                                                                   " class=\"fails\">does not hold"),
            *([f"<h2>Sanity checks</h2><p>{SANITY_INTRO}</p>"] + [html_table(t) for t in sanity] if sanity else []),
            "<h2>Figures</h2>"] + [f"<p><img src=\"figures/{f}\" alt=\"{f}\"></p>" for f in figures]
    body += ["<h2>This grid's results</h2>"] + [html_table(t) for t in grid]
    body += ["<h2>Paper tables, paper vs ours</h2>"] + [html_table(t) for t in paper]
    body += ["<h2>Deviations</h2>", html_table(deviations)]
    storage.write_text(path, PAGE.format(title="ticketbench report", body="\n".join(body)))
