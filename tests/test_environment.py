"""The pip path (Makefile) and the conda path (environment.yml) must install the same pinned set."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORE = {"torch": "2.14.1", "torchvision": "0.29.1", "timm": "1.0.31", "snakemake": "9.27.1", "dvc": "3.67.1",
        "pytest-benchmark": "5.3.1", "seaborn": "0.13.2"}
ALSO = ["scikit-learn", "safetensors", "kahypar", "torch-pruning", "tqdm", "pytest"]


def _norm(name: str) -> str:
    """A distribution's canonical name: case and -_. folded, extras (`moto[server]`) dropped."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"unpinned line in requirements.lock: {line}"
            pins[_norm(name)] = version
    return pins


def test_lock_pins_core_versions():
    pins = _lock()
    for name, version in CORE.items():
        assert pins[name] == version
    for name in ALSO:
        assert name in pins


def test_pyproject_dependencies_are_in_lock():
    pins = _lock()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name, _, version = dep.partition("==")
        assert _norm(name) in pins, f"{name} missing from requirements.lock"
        if version:
            assert pins[_norm(name)] == version, f"{name}: pyproject {version} != lock {pins[_norm(name)]}"


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.lock" in pip
    # Nothing else may be pinned beside the lock, or the two paths could drift apart.
    assert all(line.startswith("-r ") or line.startswith("-e ") for line in pip)
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    assert set(conda_pkgs) == {"python=3.11", "pip"}
