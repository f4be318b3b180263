"""The workflow: lint, dry-runs of every config, config errors before any job, schema in step with the CLI."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ticketbench.pipeline import BLOCKS, check_config, schema, schema_text
from ticketbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [str(Path(sys.executable).with_name("snakemake"))]


def _snakemake(*args, cwd=ROOT, timeout=300):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_schema_file_is_generated_from_the_dataclasses():
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text() == schema_text()
    props = schema()["properties"]
    for name, cls in BLOCKS.items():
        assert set(props[name]["properties"]) == {f.name for f in cls._fields()}


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for key, value in yaml.safe_load((ROOT / "config" / name).read_text()).items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    check_config(config)


def test_lint_is_clean():
    r = _snakemake("--lint")
    assert r.returncode == 0 and "good condition" in r.stdout + r.stderr, r.stdout + r.stderr


def test_paper_dag_builds_fast():
    t0 = time.perf_counter()
    r = _snakemake("-n", "--forceall", "--configfile", "config/paper.yaml", "--quiet", "rules")
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    for rule in ("pretrain", "prac", "imp", "jackpot", "jackpot_cost", "jackpot_overlap", "structure", "evaluate"):
        assert rule in r.stdout
    print(f"paper DAG dry-run: {elapsed:.1f}s")


@pytest.mark.parametrize("override,key", [
    ({"grid": {"datasets": ["digits"], "backbones": ["resnet_nope"], "seeds": [0]}}, "backbone"),
    ({"grid": {"datasets": ["mnist"], "backbones": ["test_resnet"], "seeds": [0]}}, "grid.datasets"),
    ({"experiments": {"structure_methods": ["prune_all"]}}, "experiments.structure_methods"),
    ({"experiments": {"jackpot_sparsities": [1.5]}}, "experiments.jackpot_sparsities"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"imp": {"rate": 1.2}}, "imp.rate"),
    ({"jackpot": {"sparsity": 0.5}}, "jackpot.sparsity"),
])
def test_bad_configs_fail_before_any_job(tmp_path, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    r = _snakemake("-n", "--configfile", str(bad))
    assert r.returncode != 0
    line = next(l for l in (r.stdout + r.stderr).splitlines() if "ticketbench config error" in l)
    assert key in line, line
    assert "pretrain" not in r.stdout


def test_check_config_unknown_block_key():
    with pytest.raises(ConfigError, match="imp.round="):
        check_config({"grid": {"datasets": ["digits"], "backbones": ["test_resnet"], "seeds": [0]},
                      "imp": {"round": 3}})
