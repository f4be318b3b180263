"""Which code produced a run: a hash of the installed ticketbench source and, where there is one, its git commit.

Every run records both in ``metrics.json`` (``versions.code``, ``versions.git``); the report shows them at its top
and calls itself stale when its runs came from other code than the one rendering it. ``ticketbench report
--status`` adds DVC's view (``dvc status`` of the stage that owns the results). Torch-free: the report imports it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: Paths (relative to a checkout's root) whose uncommitted changes make a run's commit "dirty": what the grid runs.
TRACKED = ("src/ticketbench", "workflow", "Snakefile", "config")


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """sha256 (first 16 hex digits) over the package's source files, by relative path and content.

    Byte caches are left out: they change with the interpreter, not the code.
    """
    h = hashlib.sha256()
    for f in sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and p.suffix not in (".pyc", ".pyo")):
        rel = f.relative_to(PACKAGE).as_posix().encode()
        h.update(len(rel).to_bytes(4, "big") + rel + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if not git:
        return None
    try:
        done = subprocess.run([git, "-C", str(PACKAGE), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` if a :data:`TRACKED` path has uncommitted changes; "" outside git
    (an installed wheel, the device machine's copy)."""
    commit = _git("rev-parse", "HEAD")
    root = _git("rev-parse", "--show-toplevel")
    if not commit or not root:
        return ""
    paths = [p for p in TRACKED if (Path(root) / p).exists()]
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *[str(Path(root) / p) for p in paths])
    return commit + ("+dirty" if dirty else "")


def code_version() -> dict[str, str]:
    return {"code": source_hash(), "git": git_commit()}


def dvc_status(stage: str, cwd: str | Path = ".") -> list[str] | None:
    """The dependencies of ``stage`` that ``dvc status`` says changed since ``dvc.lock`` recorded it (e.g.
    ``src/ticketbench: modified``); [] when none did; None when DVC, ``dvc.yaml`` or the stage is not there to ask.
    Outputs missing from the cache are DVC's business (``dvc pull``), not a sign of stale results."""
    # The environment's own dvc first: `make` runs ticketbench from the venv without putting it on PATH.
    dvc = shutil.which("dvc", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not dvc or not (Path(cwd) / "dvc.yaml").is_file():
        return None
    try:
        done = subprocess.run([dvc, "status", stage, "--json"], cwd=cwd, capture_output=True, text=True, timeout=300)
        data = json.loads(done.stdout or "{}") if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    out = []
    for entries in data.values():
        for entry in entries if isinstance(entries, list) else [entries]:
            changes = entry.get("changed deps") if isinstance(entry, dict) else None
            if isinstance(changes, dict):
                out += [f"{path}: {what if isinstance(what, str) else 'modified'}" for path, what in changes.items()]
    return out
