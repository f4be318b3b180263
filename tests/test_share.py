"""`ticketbench share`: which stages a push takes, and DVC's failure report turned into one line."""

import subprocess
import sys
from pathlib import Path

import pytest

from ticketbench.cli import main
from ticketbench.share import reason, stage_outputs, stages_to_push

ROOT = Path(__file__).resolve().parents[1]


def _repo(tmp_path: Path, *present: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    for folder in present:
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


SMOKE = [f"results/smoke/{p}" for p in ("pretrain", "prac", "imp", "jackpot", "structure")]
# The default grid runs the instability of IMP's tickets; the smoke grid does not.
GRID = [f"results/{p}" for p in ("pretrain", "prac", "imp", "instability", "jackpot", "structure")]


def test_every_grid_has_a_stage_of_its_own_folders():
    stages = stage_outputs(ROOT / "dvc.yaml")
    assert stages == {"grid": GRID, "smoke": SMOKE}


def test_push_takes_the_grids_that_ran_here(tmp_path):
    # make push after make smoke in a fresh clone: the default grid's folders are absent (DVC-managed)
    assert stages_to_push(_repo(tmp_path, *SMOKE), []) == ["smoke"]
    assert stages_to_push(_repo(tmp_path / "both", *SMOKE, *GRID), []) == ["grid", "smoke"]
    assert stages_to_push(_repo(tmp_path / "named", *SMOKE, *GRID), ["grid"]) == ["grid"]


@pytest.mark.parametrize("present, named, message", [
    ([], [], "no grid's results to share here: run `make reproduce` or `make smoke` first"),
    (SMOKE[:2], [], "stage 'smoke' is not complete: results/smoke/imp does not exist (3 of 5 folders missing)"),
    (SMOKE, ["grid"], "stage 'grid' is not complete: results/pretrain does not exist (6 of 6 folders missing)"),
])
def test_push_refuses_half_a_grid_in_one_line(tmp_path, capsys, present, named, message):
    repo = _repo(tmp_path, *present)
    code = main(["share", "push", "--root", str(repo), *[f"--stage={n}" for n in named]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"ticketbench share: error: {message}"), err


def test_an_unknown_stage_is_named_with_the_known_ones(tmp_path, capsys):
    code = main(["share", "pull", "--root", str(_repo(tmp_path)), "--stage", "smok"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "ticketbench share: error: --stage='smok' is not allowed; a stage of dvc.yaml: grid, smoke"


@pytest.mark.parametrize("output, want", [
    # DVC 3.67's words for the failures the end-to-end tests provoke (server down, wrong key, no bucket)
    ('ERROR: unexpected error - Could not connect to the endpoint URL: "http://127.0.0.1:9/b/files"\n\n'
     "Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n",
     'Could not connect to the endpoint URL: "http://127.0.0.1:9/b/files"'),
    ("ERROR: failed to connect to ssh (/srv/files/md5) - [Errno 111] Connect call failed ('127.0.0.1', 9)\n"
     "ERROR: failed to pull data from the cloud - 4 files failed to download\n",
     "[Errno 111] Connect call failed ('127.0.0.1', 9)"),
    ("ERROR: unexpected error - : : \n", "the remote did not answer (timed out)"),
    ("ERROR: unexpected error - The specified bucket does not exist: An error occurred (NoSuchBucket)\n",
     "The specified bucket does not exist: An error occurred (NoSuchBucket)"),
])
def test_dvcs_failure_report_becomes_its_reason(output, want):
    assert reason(output) == want


def test_a_repo_without_a_remote_says_how_to_add_one(tmp_path, capsys):
    repo = _repo(tmp_path, *SMOKE)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    code = main(["share", "pull", "--root", str(repo), "--stage", "smoke"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("ticketbench share: error: no DVC remote is set: `dvc remote add -d"), err


def test_a_remote_url_is_logged_without_its_password():
    from ticketbench.share import _without_userinfo

    assert _without_userinfo("https://alice:s3cret@dav.lab.example/tickets") == "https://dav.lab.example/tickets"
    assert _without_userinfo("s3://bucket/path") == "s3://bucket/path"
