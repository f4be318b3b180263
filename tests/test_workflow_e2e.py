"""The smoke grid end to end in a fresh clone: a killed job resumes to the same result, the accuracy baselines
hold, and a DVC push/pull round trip regenerates the report byte for byte without a single training job."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMOKE = ["--configfile", "config/smoke.yaml", "--config", "results=results"]
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
       "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid", "GIT_COMMITTER_NAME": "ci",
       "GIT_COMMITTER_EMAIL": "ci@example.invalid", "DVC_NO_ANALYTICS": "1"}
PRETRAIN = Path("results/pretrain/digits/test_resnet/seed0")


def sh(*cmd, cwd, check=True, timeout=900):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stable(metrics: dict) -> dict:
    """Everything but the clock: wall times differ between runs, results must not."""
    out = {k: v for k, v in metrics.items() if k not in ("wall_seconds", "versions")}
    out["epochs"] = [{k: v for k, v in e.items() if k != "seconds"} for e in out.get("epochs", [])]
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    if not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    base = tmp_path_factory.mktemp("e2e")
    sh("git", "clone", "--quiet", ROOT, base / "a", cwd=base)
    return base


@pytest.mark.slow
def test_killed_job_resumes_to_the_same_result(work):
    a = work / "a"
    target = PRETRAIN / "metrics.json"
    # Targets go before --config, which would swallow them as more key=value pairs.
    proc = subprocess.Popen([BIN / "snakemake", str(target), "--cores", "1", *SMOKE], cwd=a, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (a / PRETRAIN / "hparams.json").exists():  # the training job has started
        assert proc.poll() is None and time.time() < deadline, "the pretrain job never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # as hard as a power cut: no clean-up runs
    proc.wait()
    assert not (a / target).exists(), "the job finished before it could be killed"
    sh(BIN / "snakemake", "--unlock", *SMOKE, cwd=a)  # a hard kill leaves Snakemake's lock behind
    sh(BIN / "snakemake", target, "--cores", "1", "--rerun-incomplete", *SMOKE, cwd=a)
    ref = work / "reference"
    sh(BIN / "ticketbench", "pretrain", "--config", "config/config.yaml", "--config", "config/smoke.yaml",
       "--dataset", "digits", "--backbone", "test_resnet", "--seed", "0", "--threads", "1", "--no-progress",
       "--out", ref, cwd=a)
    resumed = json.loads((a / target).read_text())
    uninterrupted = json.loads((ref / "metrics.json").read_text())
    assert _stable(resumed) == _stable(uninterrupted)
    assert _sha(a / PRETRAIN / "model.safetensors") == _sha(ref / "model.safetensors")


def _check(a: Path, results: str) -> subprocess.CompletedProcess:
    check = sh(BIN / "ticketbench", "check", "--results", results, "--baselines", "tests/baselines/smoke.json",
               cwd=a, check=False)
    print(check.stdout)
    return check


@pytest.mark.slow
def test_smoke_grid_meets_baselines_and_round_trips_through_dvc(work):
    a, b, remote = work / "a", work / "b", work / "remote"
    run = sh(BIN / "snakemake", "--cores", "2", "--rerun-incomplete", *SMOKE, cwd=a)
    assert (a / "results/report/README.md").exists(), run.stdout[-2000:]
    check = _check(a, "results")
    assert check.returncode == 0, check.stdout[-4000:]
    assert "MAIN CELL TOO NOISY" not in check.stdout

    sh(BIN / "dvc", "remote", "add", "--local", "-d", "e2e", remote, cwd=a)
    sh(BIN / "dvc", "commit", "--force", "grid", cwd=a)
    sh(BIN / "dvc", "push", cwd=a)
    sh("git", "add", "-A", cwd=a)
    sh("git", "commit", "--quiet", "-m", "smoke results", cwd=a)
    report_bytes = {p.relative_to(a): p.read_bytes() for p in (a / "results/report").rglob("*") if p.is_file()}

    sh("git", "clone", "--quiet", a, b, cwd=work)
    assert not (b / PRETRAIN / "model.safetensors").exists(), "artifacts must come from DVC, not git"
    sh(BIN / "dvc", "remote", "add", "--local", "-d", "e2e", remote, cwd=b)
    sh(BIN / "dvc", "pull", cwd=b)
    assert _sha(b / PRETRAIN / "model.safetensors") == _sha(a / PRETRAIN / "model.safetensors")
    sh(BIN / "snakemake", "--cores", "1", "--touch", *SMOKE, cwd=b)
    dry = sh(BIN / "snakemake", "-n", *SMOKE, cwd=b)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    regen = sh(BIN / "snakemake", "--cores", "1", "--forcerun", "report", *SMOKE, cwd=b)
    log = regen.stdout + regen.stderr  # Snakemake prints its job table to stderr
    ran = [l.split()[0] for l in log.splitlines() if l.strip() and l.split()[-1].isdigit()
           and l.split()[0] in ("pretrain", "imp", "prac", "jackpot", "structure", "timing", "report")]
    assert ran == ["report"], log[-3000:]
    for rel, data in report_bytes.items():
        assert (b / rel).read_bytes() == data, f"{rel} differs after the round trip"


@pytest.mark.slow
def test_smoke_grid_meets_baselines_on_an_emulated_older_cpu(work):
    """Another machine, emulated: ATen and oneDNN stepped down to AVX2 give other bits and other models."""
    a = work / "a"
    env = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    r = subprocess.run([str(BIN / "snakemake"), "evaluate", "--cores", "2", "--rerun-incomplete", "--configfile",
                        "config/smoke.yaml", "--config", "results=results-avx2"], cwd=a, env={**ENV, **env},
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    check = _check(a, "results-avx2")
    assert check.returncode == 0, check.stdout[-4000:]


@pytest.mark.slow
def test_the_gate_catches_what_it_promises_on_the_smoke_results(work, tmp_path, capsys):
    """On the real smoke results: a drop past a main cell's allowance, a NaN, a cut-short metrics.json and a
    missing cell each fail; a drop inside the allowance passes."""
    import shutil

    from ticketbench.check import compare, samples, tested_on
    from ticketbench.cli import main
    from ticketbench.report.results import Results

    src = work / "a" / "results"
    if not (src / "imp").exists():
        pytest.skip("needs the smoke results of the test above")
    baselines = str(work / "a" / "tests/baselines/smoke.json")
    spec = json.loads(Path(baselines).read_text())
    name = "imp/digits/test_resnet/full#round2:test_acc"
    seeds = sorted(int(p.name[4:]) for p in (src / "imp/digits/test_resnet").glob("seed*"))
    res = Results.scan(src)
    # The gate's own row: its allowance includes the test-set floor of the runs' recorded test set.
    row = next(r for r in compare(spec, samples(res), tested_on(res)) if r["metric"] == name)
    tol = row["allowed"]

    def check_with(edit) -> tuple[int, str]:
        run = tmp_path / "r"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(src, run, ignore=shutil.ignore_patterns("*.safetensors"))
        edit(run)
        capsys.readouterr()
        code = main(["check", "--results", str(run), "--baselines", baselines])
        cap = capsys.readouterr()
        return code, cap.out + cap.err

    def shift_round2(delta):
        def edit(run):
            for s in seeds:  # the same drop in every seed moves the seed mean by exactly delta
                path = run / f"imp/digits/test_resnet/seed{s}/full/metrics.json"
                m = json.loads(path.read_text())
                m["rounds"][1]["test_acc"] -= delta
                path.write_text(json.dumps(m))
        return edit

    base_code, base_out = check_with(lambda run: None)
    assert base_code == 0, base_out
    margin = row["got"] - (spec["metrics"][name]["mean"] - tol)  # how far the run sits above the gate
    code, out = check_with(shift_round2(margin - 0.002))
    assert code == 0, out
    code, out = check_with(shift_round2(margin + 0.002))
    assert code == 1 and f"FAILED {name}: DROP" in out
    assert tol < 0.03, "a 3-point drop in a main cell is always caught"

    def nan(run):
        path = run / "pretrain/digits/test_resnet/seed1/metrics.json"
        path.write_text(path.read_text().replace('"test_acc": 0.', '"test_acc": NaN, "was": 0.'))
    code, out = check_with(nan)
    assert code == 1 and "FAILED pretrain/digits/test_resnet:test_acc: NaN" in out

    def truncate(run):
        path = run / "prac/digits/test_resnet/seed0/metrics.json"
        path.write_text(path.read_text()[:100])
    code, out = check_with(truncate)
    assert code == 2 and "prac/digits/test_resnet/seed0/metrics.json" in out and len(out.strip().splitlines()) == 1

    code, out = check_with(lambda run: shutil.rmtree(run / "structure"))
    line = next(l for l in out.splitlines() if l.split()[:2] == ["structure/digits/test_resnet/regroup", "sparsity"])
    assert code == 1 and line.split()[-1] == "missing" and " FAIL " in line
