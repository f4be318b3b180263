"""The GPU check in one go (docs/performance.md "GPU"): the CUDA tests, the GPU epoch benchmark and the CIFAR-10
part of the paper grid in miniature, on a machine with a CUDA GPU, torch and timm, and neither Snakemake nor an
installed ticketbench (the source tree is put on the path).

Prepared on any machine with the project installed (Snakemake plans the jobs; the list is committed):

    python tests/gpu/run.py --prepare          # writes tests/gpu/paper-mini-cifar10.json

Run from the repository root on the GPU machine:

    python tests/gpu/run.py --out results/gpu [--jobs 4] [--deps DIR]

1. the CUDA tests (tests/test_cuda_paths.py, the step-loop sync test of tests/test_device_batches.py), with pytest;
2. tests/benchmarks/gpu_epoch.py (one CIFAR-10-sized epoch of cifar_resnet20, bf16 + channels-last);
3. the replicas of `ticketbench fake-data` and every CIFAR-10 job of the miniature, in dependency order, --jobs at
   a time on the one GPU, each command as Snakemake would run it.

Every step runs even when an earlier one fails; the summary (``--out``/summary.json) gives each step's status,
time and figures, and the exit status is 1 if any failed. ``--deps DIR`` puts a folder of packages the GPU machine
lacks on the path (the lent machines' image has pytest, safetensors, scipy and PyYAML, not jsonschema or
Torch-Pruning: install their wheels with ``pip install --target DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS_FILE = Path(__file__).with_name("paper-mini-cifar10.json")
MINI = ["config/paper.yaml", "config/paper-mini.yaml"]
CUDA_TESTS = ["tests/test_cuda_paths.py", "tests/test_device_batches.py::test_cuda_step_loop_never_synchronises"]
# Imports the stages need beyond torch and timm; checked first, so a missing one is one line, not 60 failed jobs.
NEEDS = ["numpy", "scipy", "safetensors", "yaml", "jsonschema", "tqdm", "PIL", "torch_pruning", "pytest"]


def cifar10_jobs(log: str) -> list[dict]:
    """The CIFAR-10 jobs of a dry run's log (`snakemake -n -p`), but the transfers, which read ImageNet's runs:
    [{"output", "inputs", "shell"}] in the order the dry run lists them, which is an order Snakemake may run them."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", log):
        output = re.search(r"^\s+output: ([^,\n]+)", block, re.M)
        shell = re.search(r"^Shell command: (ticketbench .*)$", block, re.M)
        if not (output and shell) or "/cifar10/" not in output.group(1) or "-transfer-" in output.group(1):
            continue
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        # Snakemake passes the --configfile files by absolute path: relative to the checkout, the plan runs in any
        jobs.append({"output": output.group(1).strip(),
                     "inputs": [i.strip() for i in inputs.group(1).split(",")] if inputs else [],
                     "shell": shell.group(1).strip().replace(f"={ROOT}{os.sep}", "=")})
    return jobs


def prepare() -> int:
    """Plan the miniature with Snakemake here and keep its CIFAR-10 jobs in JOBS_FILE."""
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    r = subprocess.run([snakemake, "-n", "-p", "--forceall", "--configfile", *MINI], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if r.returncode:
        print(r.stderr[-3000:], file=sys.stderr)
        return 1
    jobs = cifar10_jobs(r.stdout + r.stderr)
    JOBS_FILE.write_text(json.dumps(jobs, indent=1) + "\n")
    print(f"{len(jobs)} CIFAR-10 jobs of the miniature -> {JOBS_FILE.relative_to(ROOT)}")
    return 0


def _env(deps: str | None) -> dict[str, str]:
    path = [str(ROOT / "src"), *([deps] if deps else []), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), "HF_HUB_OFFLINE": "1"}


def _shim(folder: Path) -> None:
    """A `ticketbench` command on PATH that runs the source tree's CLI with this Python."""
    exe = folder / "ticketbench"
    exe.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m ticketbench \"$@\"\n")
    exe.chmod(0o755)


def step_imports(env: dict) -> dict:
    code = "import importlib, sys\nmissing = []\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n" \
           "    except Exception:\n        missing.append(m)\nprint(' '.join(missing))"
    r = subprocess.run([sys.executable, "-c", code, *NEEDS, "torch", "timm"], env=env, capture_output=True, text=True)
    missing = r.stdout.split()
    info = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda, "
                           "torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"],
                          env=env, capture_output=True, text=True)
    return {"ok": not missing and info.returncode == 0, "missing": missing, "torch": info.stdout.strip()}


def step_tests(env: dict, out: Path) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *CUDA_TESTS,
           f"--junitxml={out / 'cuda-tests.xml'}"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    (out / "cuda-tests.log").write_text(r.stdout + r.stderr)
    return {"ok": r.returncode == 0, "tail": (r.stdout + r.stderr)[-1500:]}


def step_epoch(env: dict, out: Path) -> dict:
    r = subprocess.run([sys.executable, "tests/benchmarks/gpu_epoch.py", "--out", str(out / "gpu_epoch.json")],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    (out / "gpu_epoch.log").write_text(r.stdout + r.stderr)
    figures = json.loads((out / "gpu_epoch.json").read_text()) if (out / "gpu_epoch.json").is_file() else None
    return {"ok": r.returncode == 0, "figures": figures, "tail": (r.stdout + r.stderr)[-1500:]}


def step_mini(env: dict, out: Path, parallel: int) -> dict:
    jobs = json.loads(JOBS_FILE.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        _shim(Path(tmp))
        env = {**env, "PATH": f"{tmp}{os.pathsep}{env['PATH']}"}
        made = subprocess.run(["ticketbench", "fake-data", "--out", "data/paper-mini", "--datasets", "cifar10"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if made.returncode:
            return {"ok": False, "tail": made.stderr[-1500:]}
        done, failed, running, times = set(), {}, {}, {}
        pending = list(jobs)
        start = time.time()
        while pending or running:
            for job in [j for j in pending if set(j["inputs"]) <= done and len(running) < parallel]:
                if any(i in failed for i in job["inputs"]):
                    failed[job["output"]] = "an input failed"
                    pending.remove(job)
                    continue
                Path(ROOT / "logs").mkdir(exist_ok=True)
                proc = subprocess.Popen(["bash", "-c", "set -euo pipefail; " + job["shell"]], cwd=ROOT, env=env)
                running[job["output"]] = (proc, time.time())
                pending.remove(job)
            for output, (proc, t0) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[output]
                times[output] = round(time.time() - t0, 1)
                if proc.returncode == 0:
                    done.add(output)
                else:
                    failed[output] = f"exit {proc.returncode}"
            if pending and not running and not any(set(j["inputs"]) <= done for j in pending):
                for j in pending:
                    failed[j["output"]] = "its inputs were never made"
                pending = []
            time.sleep(0.2)
    return {"ok": not failed, "jobs": len(jobs), "done": len(done), "failed": failed,
            "wall_seconds": round(time.time() - start, 1), "job_seconds": times}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", action="store_true", help="plan the miniature's CIFAR-10 jobs here (needs Snakemake)")
    p.add_argument("--out", default="results/gpu", help="folder of the summary and logs")
    p.add_argument("--jobs", type=int, default=4, help="miniature jobs at once on the GPU (default: 4)")
    p.add_argument("--deps", help="folder of extra pure-Python packages to put on the path")
    p.add_argument("--skip", default="", help="comma-separated steps to skip: tests, epoch, mini")
    args = p.parse_args()
    if args.prepare:
        return prepare()
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    env = _env(args.deps)
    summary = {"imports": step_imports(env)}
    print("imports:", summary["imports"], flush=True)
    steps = {"tests": lambda: step_tests(env, out), "epoch": lambda: step_epoch(env, out),
             "mini": lambda: step_mini(env, out, args.jobs)}
    for name, run in steps.items():
        if name in args.skip.split(","):
            continue
        t0 = time.time()
        try:
            summary[name] = run()
        except Exception as e:  # noqa: BLE001 - one step's crash must not hide the others' figures
            summary[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        summary[name]["seconds"] = round(time.time() - t0, 1)
        print(f"{name}: {'ok' if summary[name]['ok'] else 'FAILED'} in {summary[name]['seconds']} s", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: {kk: v for kk, v in s.items() if kk != "job_seconds"} for k, s in summary.items()},
                     indent=1))
    return 0 if all(s["ok"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
