"""A method is one class plus one registry line, or an outside package's entry point: either way it appears in the
CLI, planned_runs, the schema, the figure order and the report's grid tables with no other edit, and runs in the
grid beside the papers' methods."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ticketbench import runs
from ticketbench.cli import main
from ticketbench.config import check_config, load_config_files, schema
from ticketbench.errors import ConfigError
from ticketbench.methods.registry import IMP_VARIANTS, STRUCTURE_METHODS, Method, figure_order

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGE = Path(__file__).resolve().parent / "outside_package"


@pytest.fixture
def registered():
    """A toy IMP variant and a toy structure method, each one registry line (removed again afterwards)."""
    lines = ((IMP_VARIANTS, Method("line_prune", "ticketbench.methods.imp:RandomPruneLayerwise")),
             (STRUCTURE_METHODS, Method("line_refill", "ticketbench.methods.structure.stage:RefillPlus",
                                        "structure_lth", channels=True)))
    for methods, line in lines:
        methods.add(line)
    runs.refresh()
    yield
    for methods, line in lines:
        del methods._own[line.name]
    runs.refresh()


def _config(variant: str, method: str) -> dict:
    config = load_config_files(["config/config.yaml", "config/smoke.yaml"])
    config["experiments"] = {**config["experiments"], "imp_baselines": ["random_prune", variant],
                             "structure_methods": ["refill", method]}
    return config


def test_a_registry_line_puts_a_method_everywhere(registered, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    for stage, name in (("imp", "line_prune"), ("structure", "line_refill")):
        with pytest.raises(SystemExit):
            main([stage, "--help"])
        assert f"  {name}: " in capsys.readouterr().out
    config = _config("line_prune", "line_refill")
    check_config(config, data=False)
    planned = runs.planned_runs(config)
    cell = "results/smoke/{}/digits/test_resnet/seed0/{}/metrics.json"
    assert planned[cell.format("imp", "line_prune")] == "imp"
    assert planned[cell.format("structure", "line_refill")] == "structure"
    assert runs.imp_run("line_prune") == ("line_prune", "full")
    assert runs.structure_run("line_refill-rho0.3") == ("line_refill", {"structure": {"rho": 0.3}})
    experiments = schema()["properties"]["experiments"]["properties"]
    assert "line_prune" in experiments["imp_baselines"]["description"]
    assert "line_refill" in experiments["structure_methods"]["description"]
    order = figure_order()
    assert order.index("random_prune") < order.index("line_prune") < order.index("prac_transfer")
    assert order.index("regroup") < order.index("line_refill") < order.index("jackpot")


def test_unregistered_names_are_refused_in_one_line():
    with pytest.raises(Exception) as e:
        check_config(_config("line_prune", "refill"), data=False)
    assert "experiments.imp_baselines" in str(e.value) and "line_prune" in str(e.value)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The toy package installed offline into a folder of its own, as a lab installs its package."""
    tmp = tmp_path_factory.mktemp("outside")
    shutil.copytree(PACKAGE, tmp / "pkg")  # pip builds in the source tree
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
                    "--no-deps", "--disable-pip-version-check", "--target", str(tmp / "site"), str(tmp / "pkg")],
                   check=True, capture_output=True, text=True, timeout=600)
    return tmp / "site"


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HF_HUB_OFFLINE": "1"}


def _run(*cmd, env, timeout=1500) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_an_outside_package_runs_in_the_smoke_grid_beside_the_papers_methods(site, tmp_path):
    env = _env(site)
    assert "  toy_prune: toy: the rewind point's largest weights" in _run(BIN / "ticketbench", "imp", "--help",
                                                                         env=env).stdout
    assert "  toy_refill: Refill that re-activates half" in _run(BIN / "ticketbench", "structure", "--help",
                                                                env=env).stdout
    _run(BIN / "ticketbench", "schema", "--out", tmp_path / "schema.yaml", env=env)
    experiments = yaml.safe_load((tmp_path / "schema.yaml").read_text())["properties"]["experiments"]["properties"]
    assert "toy_prune" in experiments["imp_baselines"]["description"]
    assert "toy_refill" in experiments["structure_methods"]["description"]
    order = _run(sys.executable, "-c", "from ticketbench.methods.registry import figure_order; print(figure_order())",
                 env=env).stdout
    assert "'toy_prune'" in order and "'toy_refill'" in order

    # One seed of the smoke grid with the toy methods beside full IMP, Structure-LTH's IMP and refill.
    results = tmp_path / "results"
    overlay = tmp_path / "toy.yaml"
    overlay.write_text(yaml.safe_dump({
        "results": str(results), "grid": {"datasets": ["digits"], "backbones": ["test_resnet"], "seeds": [0]},
        "experiments": {"prac": False, "imp_baselines": ["toy_prune"], "jackpot_sparsities": [],
                        "jackpot_random_sparsities": [], "structure_methods": ["refill", "toy_refill"]}}))
    planned = _run(sys.executable, "-c", "import sys; from ticketbench.config import load_config_files; "
                   "from ticketbench.runs import planned_runs; print('\\n'.join(planned_runs(load_config_files("
                   "sys.argv[1:]))))", "config/config.yaml", "config/smoke.yaml", overlay, env=env).stdout.split()
    cell = f"{results}/{{}}/digits/test_resnet/seed0/{{}}/metrics.json"
    assert cell.format("imp", "toy_prune") in planned and cell.format("structure", "toy_refill") in planned
    _run(BIN / "snakemake", "--cores", "2", "--configfile", "config/smoke.yaml", overlay, env=env)
    metrics = json.loads(Path(cell.format("imp", "toy_prune")).read_text())
    assert metrics["method"] == "toy_prune" and metrics["rounds"][0]["toy"] is True
    refill = json.loads(Path(cell.format("structure", "toy_refill")).read_text())
    assert refill["method"] == "toy_refill"
    tables = results / "report" / "tables"
    assert "toy_prune" in (tables / "grid_imp_digits_test_resnet.md").read_text()
    assert "toy_refill acc (%)" in (tables / "grid_structure_digits_test_resnet.md").read_text()


def test_a_method_without_the_released_codes_settings_has_no_released_run(registered):
    config = _config("random_prune", "refill")
    config["experiments"]["structure_ablations"] = {"line_refill-released": ["digits/test_resnet"]}
    with pytest.raises(ConfigError) as e:
        check_config(config, data=False)
    assert e.value.key == "experiments.structure_ablations" and "refill, refill_plus, regroup" in str(e.value)
