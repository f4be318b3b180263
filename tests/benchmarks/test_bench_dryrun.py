"""Snakemake's dry run of the paper grid, against the dry run of the embedded default grid in the same run."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _dry(*extra):
    t0 = time.perf_counter()
    # --forceall: the whole DAG is built and counted even where results already exist in the checkout.
    r = subprocess.run([SNAKEMAKE, "-n", "--forceall", "--quiet", "rules", *extra], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    log = r.stdout + r.stderr
    jobs = next(int(line.split()[-1]) for line in log.splitlines() if line.startswith("total"))
    return time.perf_counter() - t0, jobs


@pytest.mark.benchmark(group="dry-run")
def test_paper_grid_dry_run(benchmark):
    if benchmark.disabled:
        pytest.skip("timed only under `make bench`; tests/test_pipeline.py dry-runs the paper grid")
    base_s, base_jobs = _dry()
    paper_s, paper_jobs = _dry("--configfile", "config/paper.yaml")
    benchmark.extra_info.update(default_s=base_s, default_jobs=base_jobs, paper_s=paper_s, paper_jobs=paper_jobs,
                                ratio=paper_s / base_s, target_s=10.0)
    benchmark.pedantic(_dry, args=("--configfile", "config/paper.yaml"), rounds=1)
    assert paper_s < 10.0
