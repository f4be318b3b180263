"""The smoke grid end to end in a fresh clone, as a user runs it: a killed job resumes to the same result, `make
smoke` meets the accuracy baselines, `make push` shares its artifacts through a local folder, a real S3 server and a
real SSH server and `make pull` in another clone rebuilds the report byte for byte without a single training job, a
failed transfer is one line that leaves the cache alone. With a SLURM cluster up, `make smoke` itself goes through
the SLURM profile on the AVX2 kernel path (`.ci/run` starts the cluster and the servers on loopback; without them
the smoke grid runs locally, those tests skip, and TICKETBENCH_REQUIRE_SERVERS=1 makes a skip a failure)."""

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SMOKE = ["--configfile", "config/smoke.yaml"]
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
       "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid", "GIT_COMMITTER_NAME": "ci",
       "GIT_COMMITTER_EMAIL": "ci@example.invalid", "DVC_NO_ANALYTICS": "1"}
PRETRAIN = Path("results/smoke/pretrain/digits/test_resnet/seed0")
# The Makefile's targets on this suite's own environment: `-o install` skips the install (it would point the
# environment's editable install at the throwaway clone).
MAKE = ["make", "--no-print-directory", "-o", "install", f"VENV={sys.prefix}", "CORES=2"]
REQUIRE_SERVERS = os.environ.get("TICKETBENCH_REQUIRE_SERVERS") == "1"
TRAINING_RULES = {"pretrain", "pretrain_paper", "prac", "prac_ablation", "imp", "instability", "jackpot",
                  "jackpot_search",
                  "jackpot_overlap", "structure", "timing"}


def sh(*cmd, cwd, check=True, timeout=900, env=None):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _stable(metrics: dict) -> dict:
    """Everything but the clock: wall times differ between runs, results must not."""
    out = {k: v for k, v in metrics.items() if k not in ("wall_seconds", "versions")}
    out["epochs"] = [{k: v for k, v in e.items() if k != "seconds"} for e in out.get("epochs", [])]
    return out


def _jobs_run(log: str) -> dict[str, int]:
    """The rules of the last Job stats table Snakemake printed (the jobs it ran) and their counts."""
    table = log.rsplit("Job stats:", 1)[-1]
    jobs = {}
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def _missing(what: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"{what} is not running, and TICKETBENCH_REQUIRE_SERVERS=1 (.ci/run starts it)")
    pytest.skip(f"{what} is not running (.ci/run starts it)")


@pytest.fixture(scope="module")
def servers() -> dict[str, str]:
    """The loopback S3 and SSH servers of `.ci/remotes.sh start`: their addresses and throwaway credentials."""
    env_file = Path(os.environ.get("TICKETBENCH_REMOTES_ENV",
                                   Path(os.environ.get("TMPDIR", "/tmp")) / "ticketbench-remotes" / "remotes.env"))
    if not env_file.is_file():
        _missing(f"the S3 and SSH test servers ({env_file})")
    values = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


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
               "--configfile", "config/smoke.yaml", cwd=a, check=False)  # as `make check`: every seed of the grid
    print(check.stdout)
    return check


@pytest.fixture(scope="module")
def smoke(work) -> tuple[Path, str, bool]:
    """Clone A after `make smoke`: the smoke grid in results/smoke/, Snakemake's log, and whether it ran on SLURM.

    With the test cluster up, `make smoke` submits through the SLURM profile on the AVX2 kernel path (the
    environment reaches the jobs): one grid run then tests the profile, another CPU's kernels against the gate, and
    the artifacts the remote tests share. Without it, the grid runs locally and the AVX2 test below runs its own.
    """
    a = work / "a"
    slurm = _slurm_up()
    args, env = [], {}
    if slurm:
        # The test cluster's account and partition, its fake GPUs (so the GPU request path runs) and sizes that fit
        # its one node; the profile polls for a real cluster's minute-long jobs, these take seconds.
        site = work / "slurm-test.yaml"  # a site file, outside the checkout as a lab's would be
        site.write_text("gpu: 1\ncluster: {account: ticketbench, partition: debug, mem_mb: 2000, runtime: 30}\n")
        args = ["PROFILE=slurm", f"CONFIGS={site}",
                "SNAKEMAKE_FLAGS=--slurm-init-seconds-before-status-checks 1 --latency-wait 5"]
        env = AVX2
    run = sh(*MAKE, "smoke", *args, cwd=a, timeout=2400, env=env)
    assert (a / "results/smoke/report/README.md").exists(), run.stdout[-2000:]
    return a, run.stdout + run.stderr, slurm


@pytest.mark.slow
def test_smoke_grid_meets_baselines(smoke):
    check = _check(smoke[0], "results/smoke")
    assert check.returncode == 0, check.stdout[-4000:]
    assert "MAIN CELL TOO NOISY" not in check.stdout


def _add_remote(repo: Path, kind: str, name: str, work: Path, servers: dict, **change) -> None:
    """A DVC remote of one kind in a clone's local config (never committed: it may hold credentials)."""
    s = {**servers, **change}
    dvc = [BIN / "dvc", "remote"]
    if kind == "local":
        sh(*dvc, "add", "--local", "--force", name, work / "remote-folder", cwd=repo)
    elif kind == "s3":
        sh(*dvc, "add", "--local", "--force", name, f"s3://{s['TICKETBENCH_S3_BUCKET']}/{name}", cwd=repo)
        sh(*dvc, "modify", "--local", name, "endpointurl", s["TICKETBENCH_S3_ENDPOINT"], cwd=repo)
    else:
        sh(*dvc, "add", "--local", "--force", name,
           f"ssh://{s['TICKETBENCH_SSH_HOST']}{s['TICKETBENCH_SSH_PATH']}/{name}", cwd=repo)
        for key, value in (("port", s["TICKETBENCH_SSH_PORT"]), ("user", s["TICKETBENCH_SSH_USER"]),
                           ("keyfile", s["TICKETBENCH_SSH_KEY"]), ("timeout", "20")):
            sh(*dvc, "modify", "--local", name, key, value, cwd=repo)


def _s3_env(servers: dict) -> dict:
    """S3 credentials come from the environment, as a user's would."""
    return {k: servers[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION") if k in servers}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "s3", "ssh"])
def test_make_pull_in_a_fresh_clone_rebuilds_the_report_from_a_remote(kind, smoke, work, request):
    servers = request.getfixturevalue("servers") if kind != "local" else {}
    env = _s3_env(servers) if kind == "s3" else {}
    a, b, name = smoke[0], work / f"b-{kind}", f"e2e-{kind}"
    _add_remote(a, kind, name, work, servers)
    # Only the smoke grid exists in A: make push picks its stage alone (the default grid's folders are absent).
    push = sh(*MAKE, "push", f"REMOTE={name}", cwd=a, env=env)
    assert f"pushed smoke to remote '{name}'" in push.stdout, push.stdout + push.stderr
    sh("git", "add", "-A", cwd=a)  # dvc.lock's smoke stage and DVC's .gitignore entries
    sh("git", "commit", "--quiet", "--allow-empty", "-m", "smoke results", cwd=a)

    sh("git", "clone", "--quiet", a, b, cwd=work)
    assert not (b / PRETRAIN / "model.safetensors").exists(), "artifacts must come from DVC, not git"
    assert not (b / ".dvc/config.local").exists(), "remote settings and credentials stay out of git"
    _add_remote(b, kind, name, work, servers)
    pull = sh(*MAKE, "pull", "GRID=smoke", f"REMOTE={name}", cwd=b, env=env)
    log = pull.stdout + pull.stderr  # Snakemake prints its job table to stderr
    assert _jobs_run(log) == {"evaluate": 1, "report": 1, "all": 1}, log[-3000:]
    # Every artifact, the summary and the report, byte for byte.
    got, want = _tree(b / "results/smoke"), _tree(a / "results/smoke")
    assert got == want, sorted(set(got.items()) ^ set(want.items()))[:5]


def _one_error_line(r: subprocess.CompletedProcess, verb: str, name: str) -> str:
    assert r.returncode != 0
    # make's own "make: *** [push] Error 2" (make[1] under CI's make test) follows the one line
    lines = [l for l in r.stderr.splitlines() if l.strip() and not re.match(r"make(\[\d+\])?: \*\*\*", l)]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"ticketbench share: error: dvc {verb} ") and f"remote '{name}'" in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_a_failed_push_or_pull_is_one_line_and_leaves_the_cache_alone(smoke, work, servers):
    a = smoke[0]
    # make push commits before it uploads; what a failed upload must leave alone is that commit
    sh(BIN / "dvc", "commit", "--force", "smoke", cwd=a)
    cache, lock = _tree(a / ".dvc/cache"), (a / "dvc.lock").read_bytes()
    fast = {"AWS_MAX_ATTEMPTS": "1"}  # one try: the SDK's retries only delay the same answer
    _add_remote(a, "s3", "s3-wrong-key", work, servers)
    r = sh(*MAKE, "push", "REMOTE=s3-wrong-key", cwd=a, check=False,
           env={**_s3_env(servers), **fast, "AWS_SECRET_ACCESS_KEY": "not-the-key"})
    assert "403" in _one_error_line(r, "push", "s3-wrong-key")
    _add_remote(a, "s3", "s3-down", work, servers, TICKETBENCH_S3_ENDPOINT="http://127.0.0.1:9")
    r = sh(*MAKE, "push", "REMOTE=s3-down", cwd=a, check=False, env={**_s3_env(servers), **fast})
    assert "Could not connect" in _one_error_line(r, "push", "s3-down")
    _add_remote(a, "ssh", "ssh-down", work, servers, TICKETBENCH_SSH_PORT="9")
    r = sh(*MAKE, "push", "REMOTE=ssh-down", cwd=a, check=False)
    assert "Connect call failed" in _one_error_line(r, "push", "ssh-down")
    assert _tree(a / ".dvc/cache") == cache and (a / "dvc.lock").read_bytes() == lock
    assert (a / PRETRAIN / "model.safetensors").exists()

    # A pull with a key the server does not know, into a clone that has half the cache already.
    c = work / "c-wrong-key"
    sh("git", "clone", "--quiet", a, c, cwd=work)
    (c / ".dvc/cache").mkdir(parents=True, exist_ok=True)
    some = sorted((a / ".dvc/cache").rglob("*"))[: len(cache) // 2]
    for p in (p for p in some if p.is_file()):
        (c / p.relative_to(a)).parent.mkdir(parents=True, exist_ok=True)
        (c / p.relative_to(a)).write_bytes(p.read_bytes())
    before = _tree(c / ".dvc/cache")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work / "not-authorised", cwd=work)
    _add_remote(c, "ssh", "ssh-wrong-key", work, servers, TICKETBENCH_SSH_KEY=str(work / "not-authorised"))
    r = sh(*MAKE, "pull", "GRID=smoke", "REMOTE=ssh-wrong-key", cwd=c, check=False)
    assert "Permission denied" in _one_error_line(r, "pull", "ssh-wrong-key")
    assert _tree(c / ".dvc/cache") == before


AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _slurm_up() -> bool:
    """A SLURM controller answers and has a node that can run jobs (`.ci/slurm.sh start`)."""
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and bool(re.search(r"^(idle|mixed|allocated)", r.stdout, re.M))


@pytest.mark.slow
def test_smoke_grid_meets_baselines_on_an_emulated_older_cpu(smoke, work):
    """Another machine, emulated: ATen and oneDNN stepped down to AVX2 give other bits and other models."""
    if smoke[2]:
        pytest.skip("make smoke ran on the SLURM test cluster under this kernel path, and met the baselines")
    a = work / "a"
    r = subprocess.run([str(BIN / "snakemake"), "evaluate", "--cores", "2", "--rerun-incomplete", "--configfile",
                        "config/smoke.yaml", "--config", "results=results-avx2"], cwd=a, env={**ENV, **AVX2},
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    check = _check(a, "results-avx2")
    assert check.returncode == 0, check.stdout[-4000:]


def _sacct(ids: list[str]) -> dict[str, dict[str, str]]:
    fields = ["JobID", "Comment", "State", "ExitCode", "Elapsed", "AllocTRES", "Account", "Partition"]
    r = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", ",".join(fields)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [dict(zip(fields, line.split("|"))) for line in r.stdout.splitlines() if line.strip()]
    return {row["JobID"]: row for row in rows}


@pytest.mark.slow
def test_make_smoke_through_the_slurm_profile_submits_every_model_job(smoke):
    """`make smoke PROFILE=slurm` on a real (single-node) cluster: every job that runs a model goes through sbatch
    with the config's resources and finishes COMPLETED in sacct, and the rest run beside Snakemake. Its results met
    the gate above (under the AVX2 kernel path), as a local run's do."""
    a, log, slurm = smoke
    if not slurm:
        _missing("the SLURM test cluster")
    stats = _jobs_run(log)
    model_jobs = sum(n for rule, n in stats.items() if rule in TRAINING_RULES)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert model_jobs > 0 and len(submitted) == model_jobs, (stats, len(submitted))
    assert re.findall(r"^localrule (\w+):", log, re.M), "collecting and the report run beside Snakemake"
    assert not set(re.findall(r"^localrule (\w+):", log, re.M)) & TRAINING_RULES
    acct = _sacct(list(submitted.values()))
    print("\n".join(" ".join(row.values()) for row in acct.values()))
    assert set(acct) == set(submitted.values()), sorted(set(submitted.values()) - set(acct))
    node_cpus = len(os.sched_getaffinity(0))  # what nproc, and so the test cluster, counts
    for jobid, row in acct.items():
        assert row["State"] == "COMPLETED" and row["ExitCode"] == "0:0", row
        assert row["Account"] == "ticketbench" and row["Partition"] == "debug", row
        tres = dict(item.split("=", 1) for item in row["AllocTRES"].split(","))
        if row["Comment"].startswith("rule_timing"):  # a whole node: every CPU and GPU of it
            assert int(tres["cpu"]) == node_cpus, row
        else:  # the config's gpu: 1 reached sbatch as a GPU request, and threads: 1 as one CPU
            assert tres.get("gres/gpu") == "1" and tres["cpu"] == "1", row
    assert sum(row["Comment"].startswith("rule_timing") for row in acct.values()) == stats["timing"]


@pytest.mark.slow
def test_the_gate_catches_what_it_promises_on_the_smoke_results(work, tmp_path, capsys):
    """On the real smoke results: a drop past a main cell's allowance, a NaN (one line naming the file), a cut-short
    metrics.json, a missing cell and lost weights each fail; a drop inside the allowance passes."""
    import shutil

    from ticketbench.check import compare, samples, tested_on
    from ticketbench.cli import main
    from ticketbench.report.results import Results

    src = work / "a" / "results/smoke"
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
        shutil.copytree(src, run)  # with the weights: the gate fails a folder whose weights are gone
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
                own = path.parent / "round2" / "metrics.json"  # the round's own file says the same, or the gate
                own.write_text(json.dumps({**json.loads(own.read_text()), "test_acc": m["rounds"][1]["test_acc"]}))
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
    assert code == 2 and "seed1/metrics.json" in out and "test_acc" in out and len(out.strip().splitlines()) == 1

    def truncate(run):
        path = run / "prac/digits/test_resnet/seed0/metrics.json"
        path.write_text(path.read_text()[:100])
    code, out = check_with(truncate)
    assert code == 2 and "prac/digits/test_resnet/seed0/metrics.json" in out and len(out.strip().splitlines()) == 1

    code, out = check_with(lambda run: shutil.rmtree(run / "structure"))
    line = next(l for l in out.splitlines() if l.split()[:2] == ["structure/digits/test_resnet/regroup", "sparsity"])
    assert code == 1 and line.split()[-1] == "missing" and " FAIL " in line

    code, out = check_with(lambda run: [p.unlink() for p in list(run.rglob("*.safetensors"))])
    assert code == 2 and "model.safetensors: missing" in out and len(out.strip().splitlines()) == 1
