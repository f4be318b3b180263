"""Share a grid's artifacts through the project's DVC remote: `ticketbench share push|pull` (the Makefile's
`make push` and `make pull`).

DVC does the work; this picks the stages whose results are there to share, and turns a failed transfer into one
line that names the remote and the reason instead of DVC's multi-line report. A push commits before it uploads, so a
failed one leaves the commit (dvc.lock and the cache hold what Snakemake produced) and the next push resumes; a
failed pull keeps what the cache held and adds only objects that arrived whole.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, TicketbenchError
from .stage import STAGES, Stage

HELP = ("share a grid's checkpoints and masks through the DVC remote: push records what Snakemake produced and "
        "uploads it, pull downloads it (one line on failure)")


class ShareError(TicketbenchError):
    """Nothing to share, or a transfer that failed outside the project (remote down, credentials)."""


def stage_outputs(dvc_yaml: Path) -> dict[str, list[str]]:
    """Each dvc.yaml stage and the artifact folders it caches (its `outs`; metrics ride along in git or not)."""
    doc = yaml.safe_load(dvc_yaml.read_text()) or {}
    return {name: [next(iter(e)) if isinstance(e, dict) else str(e) for e in stage.get("outs") or []]
            for name, stage in (doc.get("stages") or {}).items()}


def known_stages(root: Path, named: list[str]) -> dict[str, list[str]]:
    """dvc.yaml's stages, once every named one is checked to be among them."""
    stages = stage_outputs(root / "dvc.yaml")
    for name in named:
        if name not in stages:
            raise ConfigError("--stage", name, f"a stage of dvc.yaml: {', '.join(stages)}")
    return stages


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})


def stages_to_push(root: Path, named: list[str]) -> list[str]:
    """The named stages, or every stage whose artifact folders all exist; a stage with only some of them is an
    error (committing it would fail on the missing ones, and pushing the rest would share half a grid)."""
    stages = known_stages(root, named)
    chosen = []
    for name in named or stages:
        missing = [p for p in stages[name] if not (root / p).exists()]
        if not missing:
            chosen.append(name)
        elif named or len(missing) < len(stages[name]):
            raise ShareError(f"stage {name!r} is not complete: {missing[0]} does not exist "
                             f"({len(missing)} of {len(stages[name])} folders missing); finish its grid first")
    if not chosen:
        raise ShareError("no grid's results to share here: run `make reproduce` or `make smoke` first")
    return chosen


def remote_of(root: Path, name: str | None) -> tuple[str, str]:
    """The remote a transfer uses (the named one or the default) and its URL, from DVC's merged config."""
    from dvc.config import Config, ConfigError as DvcConfigError

    try:
        conf = Config(dvc_dir=str(root / ".dvc"))  # repo, local (credentials), global and system levels, merged
    except DvcConfigError as e:
        raise ShareError(f"DVC's config cannot be read: {str(e).splitlines()[0]}") from None
    remote = name or conf["core"].get("remote")
    remotes = conf.get("remote", {})
    if not remote:
        raise ShareError("no DVC remote is set: `dvc remote add -d <name> <url>` (docs/sharing.md, \"Sharing "
                         "artifacts with DVC\")")
    if remote not in remotes:
        raise ConfigError("remote", remote, f"a remote of .dvc/config: {', '.join(remotes) or 'none is defined'}")
    return remote, _without_userinfo(remotes[remote]["url"])


def _without_userinfo(url: str) -> str:
    """A URL fit for a log: a password or token in it (https://user:token@host) is left out."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# DVC's last words on a failure are a support link and a blank line; the reason is the first ERROR line.
_ERROR = re.compile(r"^ERROR:\s*(.*)$")


def reason(output: str) -> str:
    """The one reason DVC gave, without its support footer or a traceback."""
    lines = [line.strip() for line in output.splitlines()]
    errors = [m.group(1) for line in lines if (m := _ERROR.match(line))]
    text = errors[0] if errors else next((line for line in reversed(lines) if line), "")
    # `unexpected error - <cause>`, `failed to connect to s3 (<path>) - <cause>`: the cause is what one can act on
    text = re.sub(r"^(?:failed to (?:push|pull) data (?:to|from) the cloud|unexpected error|"
                  r"failed to connect to \w+ \([^)]*\))\s*-\s*", "", text)
    text = text.strip(".: ")
    # an SSH server that accepts but never answers times out with an empty message
    return text or "the remote did not answer (timed out)"


def transfer(root: Path, verb: str, stages: list[str], remote: tuple[str, str], jobs: int | None) -> str:
    name, url = remote
    r = _dvc(root, verb, "--remote", name, *(["--jobs", str(jobs)] if jobs else []), *stages)
    if r.returncode != 0:
        # a push commits first (dvc.lock and the cache record what Snakemake produced); only the upload failed
        cache = ("the commit stays in dvc.lock and .dvc/cache" if verb == "push" else
                 "the files already fetched stay in the cache")
        raise ShareError(f"dvc {verb} {'to' if verb == 'push' else 'from'} remote {name!r} ({url}) failed: "
                         f"{reason(r.stdout + r.stderr)}; {cache}; fix the remote and run it again")
    return f"{verb}ed {', '.join(stages)} {'to' if verb == 'push' else 'from'} remote {name!r} ({url})"


def commit(root: Path, stages: list[str]) -> None:
    r = _dvc(root, "commit", "--force", *stages)
    if r.returncode != 0:
        raise ShareError(f"dvc commit {' '.join(stages)} failed: {reason(r.stdout + r.stderr)}")


@STAGES.register("share")
class Share(Stage):
    name = "share"
    help = HELP

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["push", "pull"],
                            help="push: dvc commit and push the stages; pull: dvc pull them")
        parser.add_argument("--stage", dest="stages", action="append", default=[], metavar="NAME",
                            help="a dvc.yaml stage (grid, smoke); repeat for several (push default: every stage "
                            "whose results exist; pull default: grid)")
        parser.add_argument("--remote", default=None, metavar="NAME",
                            help="DVC remote to use (default: the one `dvc remote default` names)")
        parser.add_argument("--jobs", type=int, default=None, help="parallel transfers (default: DVC's)")
        parser.add_argument("--root", default=".", metavar="DIR", help="the project checkout (default: .)")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict[str, Any]) -> int:
        root = Path(args.root).resolve()
        if args.action == "push":
            stages = stages_to_push(root, args.stages)
        else:
            known_stages(root, args.stages)
            stages = args.stages or ["grid"]
        remote = remote_of(root, args.remote)  # before anything is committed: a missing remote changes nothing
        if args.action == "push":
            commit(root, stages)
        print(transfer(root, args.action, stages, remote, args.jobs))
        return 0
