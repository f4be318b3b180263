"""`ticketbench --help` and the light stages' --help against `python -c pass`, timed in the same run (issue 12).

Target: at most 0.5 s more than a bare interpreter, which only holds while these commands import no torch, timm or
torchvision (tests/test_cli_startup.py checks that property; this file measures what it buys).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticketbench.timing import paired

TARGET_S = 0.5
PYTHON = sys.executable
TICKETBENCH = str(Path(sys.executable).with_name("ticketbench"))


def _run(*cmd: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.benchmark(group="cli-startup")
@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["collect", "--help"], ["report", "--help"]],
                         ids=lambda argv: "-".join(a.lstrip("-") for a in argv))
def test_cli_starts_fast(benchmark, argv):
    enabled = not benchmark.disabled
    cli = [TICKETBENCH, *argv]
    t = paired(lambda: _run(PYTHON, "-c", "pass"), lambda: _run(*cli), rounds=10 if enabled else 1,
               warmup=1 if enabled else 0)
    overhead = t.test_s - t.base_s
    benchmark.extra_info.update(python_s=t.base_s, cli_s=t.test_s, overhead_s=overhead, target_s=TARGET_S)
    benchmark.pedantic(_run, args=tuple(cli), rounds=5 if enabled else 1)
    if enabled and os.environ.get("TICKETBENCH_BENCH_ENFORCE", "1") == "1":
        assert overhead <= TARGET_S, f"`ticketbench {' '.join(argv)}` takes {overhead:.2f} s > {TARGET_S} s more " \
                                     f"than `python -c pass`"
