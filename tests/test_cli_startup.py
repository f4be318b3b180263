"""Start-up cost (issue 12): `ticketbench --help` and the stages that only read JSON never import torch, timm or
torchvision; only the stage named on the command line is imported, and its --help still lists every option."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ticketbench
from ticketbench.cli import STAGE_MODULES, build_parser
from ticketbench.stage import STAGES

from test_check import make_results
from test_report import TABLES, results  # noqa: F401  (results: the report test's results-folder fixture)

HEAVY = ("torch", "timm", "torchvision")
# Runs the CLI in a fresh interpreter, then says on the last line of stderr which heavy modules it imported.
PROBE = f"""
import sys
from ticketbench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("imported:", *sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _run(*argv) -> tuple[int, list[str], str]:
    """Exit code, heavy modules imported and stdout of ``ticketbench ARGV`` in a new process."""
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    last = r.stderr.splitlines()[-1] if r.stderr else ""
    assert last.startswith("imported:"), r.stderr[-2000:]
    return r.returncode, last.split()[1:], r.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["check", "--help"], ["collect", "--help"],
                                  ["report", "--help"], ["bench-summary", "--help"], ["check-config", "--help"]])
def test_help_imports_no_torch(argv):
    code, heavy, out = _run(*argv)
    assert (code, heavy) == (0, [])
    if argv == ["--help"]:
        assert all(name in out for name in STAGE_MODULES)


def test_check_and_collect_run_without_torch(tmp_path):
    # As test_check's `pinned`: baselines from two folders of four seeds, then a 3-seed run checked against them.
    a = make_results(tmp_path / "native", range(4))
    b = make_results(tmp_path / "avx2", range(4), shift=0.002)
    run = make_results(tmp_path / "run", range(3))
    base = tmp_path / "baselines.json"
    assert _run("check", "--accept", "--baselines", base, "--results", a, "--results", b)[:2] == (0, [])
    assert _run("check", "--results", run, "--baselines", base)[:2] == (0, [])
    assert _run("collect", "--results", run, "--out", tmp_path / "summary")[:2] == (0, [])
    assert (tmp_path / "summary" / "summary.csv").is_file()


def test_report_runs_without_torch(results, tmp_path):  # noqa: F811
    out = tmp_path / "report"
    assert _run("report", "--results", results, "--tables", TABLES, "--out", out)[:2] == (0, [])
    assert (out / "README.md").is_file()


def test_stage_table_matches_the_registered_stages():
    source = Path(ticketbench.__file__).parent
    registered = {m for f in source.rglob("*.py") for m in re.findall(r"STAGES\.register\(\"([\w-]+)\"\)",
                                                                       f.read_text())}
    assert registered == set(STAGE_MODULES)
    build_parser()  # imports every stage module
    assert {n: (STAGES.get(n).__module__, STAGES.get(n).help) for n in STAGES.names()} == STAGE_MODULES


def _options(parser) -> dict[str, list[str]]:
    sub = next(a for a in parser._actions if a.dest == "stage")
    return {name: sorted(s for a in p._actions for s in a.option_strings) for name, p in sub.choices.items()}


def test_a_stage_parsed_alone_has_every_option():
    full = _options(build_parser())
    for name in STAGE_MODULES:
        assert _options(build_parser([name]))[name] == full[name], name
    assert _options(build_parser([]))["pretrain"] == ["--help", "-h"]  # the others are only listed
