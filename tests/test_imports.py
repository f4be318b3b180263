"""The package's import graph, read from the source (imports inside functions count): no circle, and no paper's
package imports another's, so that the IMP base and each paper can be read, tested and replaced alone."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ticketbench"
PAPERS = ("prac", "jackpot", "structure")


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _graph() -> nx.DiGraph:
    mods = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                names = [target, *(f"{target}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            # A module's own parent packages are initialised before it in any case: not an edge of the design.
            g.add_edges_from((m, n) for n in names if n in mods and n != m and not m.startswith(n + "."))
    return g


def test_the_package_has_no_import_circle():
    g = _graph()
    assert len(g) > 50
    assert [sorted(c) for c in nx.simple_cycles(g)] == []


def test_no_paper_package_imports_another_and_the_base_imports_none():
    g = _graph()
    crossing = []
    for m, t in g.edges:
        if m.startswith("ticketbench.methods.") and t.startswith("ticketbench.methods."):
            own, other = m.split(".")[2], t.split(".")[2]
            if other in PAPERS and other != own:
                crossing.append(f"{m} -> {t}")
    assert crossing == []
