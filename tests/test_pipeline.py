"""The workflow: lint, the paper grid's DAG, config errors before any job, schema in step with the CLI."""

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ticketbench.cli import build_parser, main
from ticketbench.errors import ConfigError
from ticketbench.config import block_classes, check_config, load_config_files, schema, schema_text
from ticketbench.recipes import dense_run
from ticketbench.runs import STRUCTURE_REWIND, planned_runs

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [str(Path(sys.executable).with_name("snakemake"))]
DEFAULT = str(ROOT / "config" / "config.yaml")
GRID = {"datasets": ["digits"], "backbones": ["test_resnet"], "seeds": [0]}


def _snakemake(*args, cwd=ROOT, timeout=300):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _lines(r) -> list[str]:
    return [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]


def _check_config_cli(capsys, *argv) -> tuple[int, list[str]]:
    code = main(["check-config", *argv])
    out = capsys.readouterr()
    return code, [line for line in (out.out + out.err).splitlines() if line.strip()]


def test_schema_file_is_generated_from_the_dataclasses():
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text() == schema_text()
    props = schema()["properties"]
    for name, cls in block_classes().items():
        assert set(props[name]["properties"]) == {f.name for f in cls._fields()}


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name, capsys):
    # --no-data: the paper grid's data folders are not part of a checkout (tests of data_roots are below).
    code, lines = _check_config_cli(capsys, "--no-data", "--config", DEFAULT, "--config", str(ROOT / "config" / name))
    assert (code, lines) == (0, ["config ok"])


def test_check_config_defaults_to_the_workflow_config(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _check_config_cli(capsys) == (0, ["config ok"])


def test_lint_is_clean():
    r = _snakemake("--lint")
    assert r.returncode == 0 and "good condition" in r.stdout + r.stderr, r.stdout + r.stderr


def _expected_jobs(config: dict) -> dict[str, int]:
    """Jobs per rule that the grid and experiments of a config imply (rules with none are left out)."""
    grid, exp = config["grid"], config.get("experiments") or {}
    only = grid.get("only") or {}
    cells = {(d, b, s) for d, b, s in itertools.product(grid["datasets"], grid["backbones"], grid["seeds"])
             if b in only.get(d, [b])}
    transfer = [(t["source"], t["target"]) for t in exp.get("transfer", [])]
    targets = [(d, b, s, src) for d, b, s in cells for src, tgt in transfer if tgt == b]
    # IMP of a transfer target starts from the PrAC run of its source backbone on the same dataset and seed, which
    # pulls that run and its pretraining in even where grid.only leaves the source out.
    sources = {(d, src, s) for d, _, s, src in targets}
    prac = exp.get("prac", True)
    magnitude = set(exp.get("jackpot_sparsities", [])) | set(exp.get("jackpot_random_sparsities", []))
    random = exp.get("jackpot_random_sparsities", [])
    methods = exp.get("structure_methods", [])
    n = len(cells)

    def listed(key: str) -> list[tuple[str, str, str, int]]:
        """(folder, dataset, backbone, seed) of every run an experiments.<key> mapping lists."""
        return [(name, *cell.split("/"), s) for name, listed_cells in (exp.get(key) or {}).items()
                for cell in listed_cells for s in grid["seeds"]]

    ablations, settings = listed("prac_ablations"), listed("prac_settings")
    structure_ablations, searches = listed("structure_ablations"), listed("jackpot_searches")
    transfers, imp_runs = listed("structure_transfers"), listed("imp_runs")
    # A structure ablation at another rewind point or from another mask source reads an IMP run of its own
    # (structure_lth-rw<p>, structure_lth-<variant>), once per cell however many structure runs read it.
    imp_sources = {(f"structure_lth-{name.split('-', 1)[1].removeprefix('from-')}", d, b, s)
                   for name, d, b, s in structure_ablations if re.fullmatch(r"[a-z_]+-(rw\d+|from-\w+)", name)}
    # A control of another variant's masks (<follower>-of-<source>) reads that variant's run; an instability run reads
    # the IMP run it names. Runs the cell makes anyway count once.
    base_imp = {(v, d, b, s) for d, b, s in cells
                for v in ("full", *exp.get("imp_baselines", []), *exp.get("imp_variants", []))}
    of_sources = {(name.split("-of-")[1], d, b, s) for name, d, b, s in imp_runs if "-of-" in name}
    instability = listed("instability")
    extra_imp = (imp_sources | set(imp_runs) | of_sources | set(instability)) - base_imp
    # Structure-LTH's own IMP runs wherever a structure method or an ablation of one does, and on a transfer target
    # (outside grid.only there: its dense run and this IMP run are all it runs besides the transfers).
    targets_t = {(d, b, s) for _, d, b, s in transfers}
    # A transfer's source outside grid.only runs its dense run, that IMP run and the structure run the transfer reads.
    source_runs = {(name.split("-transfer-")[1], b, s, name.split("-")[0]) for name, _, b, s in transfers} - \
        {(d, b, s, m) for d, b, s in cells for m in methods}
    sources_t = {(d, b, s) for d, b, s, _ in source_runs}
    structure = (cells if methods else set()) | {(d, b, s) for _, d, b, s in structure_ablations} | targets_t | \
        sources_t
    # Each paper's stages start from its dense run: the base one, or its own where its recipe differs (one run per
    # distinct recipe). Full IMP (PrAC's) always runs; transfer sources run PrAC outside grid.only; a PrAC LT setting
    # is a recipe of its own.
    papers = {"prac": cells | sources,
              "structure_lth": structure | (cells if "group_aware" in exp.get("imp_variants", []) else set()),
              "jackpot": (cells if magnitude else set()) | {(d, b, s) for _, d, b, s in searches},
              **{f"prac_{name}": {(d, b, s) for n_, d, b, s in settings if n_ == name} for name, *_ in settings}}
    # grid.dense: cells that run the base dense run and each paper's own, nothing else
    dense = {(d, b, s) for d, backbones in (grid.get("dense") or {}).items() for b in backbones for s in grid["seeds"]}
    papers = {p: used | (dense if p in ("prac", "structure_lth", "jackpot") else set()) for p, used in papers.items()}
    runs = {(d, b, s, dense_run(config, paper, d, b)) for paper, used in papers.items() for d, b, s in used}
    jobs = {"pretrain": len(cells | targets_t | sources_t | dense | {(d, b, s) for d, b, s, name in runs if not name}),
            "pretrain_paper": len({run for run in runs if run[3]}),
            "prac": len((cells if prac else set()) | sources),
            "prac_ablation": len(ablations) + len(settings),
            # full IMP, its baselines and variants, Structure-LTH's own IMP run where a structure method or ablation
            # runs, the transfer targets, full IMP under each PrAC LT setting, and the IMP runs of experiments.imp_runs
            # and of the structure ablations that read their own
            "prac_savings": n if prac else 0,
            "imp": n * (1 + len(exp.get("imp_baselines", [])) + len(exp.get("imp_variants", []))) + len(structure)
            + len(targets) + len(settings) + len(extra_imp),
            "instability": len(instability),
            "jackpot": n * (len(magnitude) + len(random)), "jackpot_search": len(searches),
            "jackpot_cost": n * len(random),
            "jackpot_overlap": 2 * n * len(random),  # random- and magnitude-init studies
            "structure": n * len(methods) + len(structure_ablations) + len(transfers) + len(source_runs),
            "timing": n if {"refill", "regroup"} <= set(methods) else 0, "evaluate": 1, "report": 1, "all": 1}
    return {rule: count for rule, count in jobs.items() if count}


def _job_stats(log: str) -> dict[str, int]:
    table = log[log.index("Job stats:"):].splitlines()[3:]
    rows = [line.split() for line in itertools.takewhile(str.strip, table)]
    return {rule: int(count) for rule, count in rows}


def test_paper_dag_matches_its_grid():
    config = load_config_files([DEFAULT, str(ROOT / "config" / "paper.yaml")])
    expected = _expected_jobs(config)
    # The paper grid is the one that exercises every rule; a rule it leaves out would go unchecked here.
    assert set(expected) == set(_rules())
    r = _snakemake("-n", "--forceall", "--configfile", "config/paper.yaml", "--quiet", "rules")
    assert r.returncode == 0, r.stderr[-2000:]
    stats = _job_stats(r.stdout + r.stderr)
    total = stats.pop("total")
    assert stats == expected
    assert total == sum(expected.values())
    # The targets (pipeline.planned_runs, which `report --coverage` reads) name the rules that write them.
    assert set(planned_runs(config).values()) <= set(stats)


def test_the_miniature_dag_matches_its_grid():
    """config/paper-mini.yaml: three full cells, the other backbones' dense runs (grid.dense), one seed."""
    config = load_config_files([DEFAULT, str(ROOT / "config" / "paper.yaml"), str(ROOT / "config" / "paper-mini.yaml")])
    r = _snakemake("-n", "--forceall", "--configfile", "config/paper.yaml", "config/paper-mini.yaml", "--quiet",
                   "rules")
    assert r.returncode == 0, r.stderr[-2000:]
    stats = _job_stats(r.stdout + r.stderr)
    assert stats.pop("total") == sum(_expected_jobs(config).values())
    assert stats == _expected_jobs(config)


# One job of each kind the paper tables' former gaps added, and the flags that make it that job.
PAPER_JOBS = {
    "imp/cifar10/cifar_resnet20/seed0/snip": [
        "--variant snip --reference results/imp/cifar10/cifar_resnet20/seed0/full", "--rewind=ep3"],
    "imp/cifar10/cifar_resnet18/seed0/structure_lth-rw100": ["--structure-rewind=100%", "--variant structure_lth"],
    "imp/cifar10/cifar_resnet18/seed0/structure_lth-omp": [
        "--policy=structure_lth --rewind=ep8", "--variant omp --reference results/imp/cifar10/cifar_resnet18/seed0/"
        "structure_lth "],
    "structure/cifar10/cifar_resnet18/seed0/regroup-from-omp": [
        "--imp results/imp/cifar10/cifar_resnet18/seed0/structure_lth-omp --method regroup "],
    "structure/cifar10/cifar_resnet18/seed0/refill-rw50": [
        "--imp results/imp/cifar10/cifar_resnet18/seed0/structure_lth-rw50 --method refill "],
    "structure/cifar10/resnet50/seed0/regroup-transfer-imagenet": [
        "--transfer-from results/structure/imagenet/resnet50/seed0/regroup --imp "
        "results/imp/cifar10/resnet50/seed0/structure_lth --method regroup "],
    "imp/cifar10/resnet50/seed0/structure_lth": ["--rounds=1 "],
    "prac/cifar10/cifar_resnet20/seed0/random_subset": ["--random-subset"],
    "jackpot/cifar10/cifar_vgg19_bn/seed0/magnitude-s0.9-r0.5": ["--epochs=30 ", "--rate=0.5 "],
}


def test_the_paper_grid_s_new_runs_call_their_stage_with_the_flags_that_make_them():
    r = _snakemake("-n", "-p", "--forceall", "--configfile", "config/paper.yaml",
                   "--", *(f"results/{job}/metrics.json" for job in PAPER_JOBS))
    assert r.returncode == 0, r.stderr[-2000:]
    shells = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Shell command: ")]
    for job, flags in PAPER_JOBS.items():
        shell = next(line for line in shells if f"--out results/{job} " in line)
        assert all(f in shell for f in flags), (job, shell)
    # The default rewind point of Structure-LTH's IMP, which a variant following it inherits when the config sets
    # none, is imp.structure_rewind's.
    from ticketbench.methods.imp import ImpHparams

    assert STRUCTURE_REWIND == ImpHparams().structure_rewind


# The paper grid's additions (experiments.prac_ablations, prac_settings, structure_ablations, jackpot_searches) are
# empty in the smoke grid: it plans the jobs it planned before. The default grid adds its regroup-released runs (6)
# and the sanity checks on digits/test_resnet (21: four controls of IMP, the instability of its training and Scratch-E
# and Scratch-B of its refilled tickets, three seeds each).
@pytest.mark.parametrize("name,total", [("config.yaml", 138), ("smoke.yaml", 48)])
def test_the_default_and_smoke_dags_plan_what_they_planned(name, total):
    config = load_config_files([DEFAULT, str(ROOT / "config" / name)])
    r = _snakemake("-n", "--forceall", "--configfile", f"config/{name}", "--quiet", "rules")
    assert r.returncode == 0, r.stderr[-2000:]
    stats = _job_stats(r.stdout + r.stderr)
    assert stats.pop("total") == total
    assert stats == _expected_jobs(config)
    assert "pretrain_paper" not in stats and "prac_ablation" not in stats and "jackpot_search" not in stats


# One bad setting each, layered on config/config.yaml as `snakemake --configfile bad.yaml` layers it: the schema's
# kinds of error (unknown key at each level, type, minimum, minItems), then the checks a schema cannot make.
BAD = [
    ({"experiments": {"jackpot_sparsitiez": [0.9]}}, "experiments.jackpot_sparsitiez"),
    ({"grd": {"datasets": ["digits"]}}, "grd"),
    ({"imp": {"round": 3}}, "imp.round"),
    ({"train": {"epochs": "x"}}, "train.epochs"),
    ({"threads": 0}, "threads"),
    ({"grid": {"seeds": [-1]}}, "grid.seeds"),
    ({"grid": {"datasets": []}}, "grid.datasets"),
    ({"overrides": {"digits": {"model": {"backbone": "x"}}}}, "overrides.digits.model"),
    ({"grid": {"backbones": ["resnet_nope"]}}, "grid.backbones"),
    ({"grid": {"datasets": ["mnist"]}}, "grid.datasets"),
    ({"grid": {"dense": {"digits": ["test_resnet"]}}}, "grid.dense.digits"),  # a full cell already
    ({"grid": {"dense": {"digits": ["resnet_nope"]}}}, "grid.dense.digits"),
    ({"experiments": {"jackpot_sparsities": [1.5]}}, "experiments.jackpot_sparsities"),
    ({"experiments": {"structure_methods": ["prune_all"]}}, "experiments.structure_methods"),
    ({"jackpot": {"sparsity": 0.5}}, "jackpot.sparsity"),
    ({"imp": {"rate": 1.2}}, "imp.rate"),
    ({"overrides": {"digits": {"train": {"epochs": 0}}}}, "overrides.digits.train.epochs"),
    ({"data_roots": {"digits": "no/such/folder"}}, "data_roots.digits"),
    ({"recipes": {"prac": {"train": {"epochs": 0}}}}, "recipes.prac.train.epochs"),
    ({"recipes": {"prac": {"overrides": {"digits/resnet_nope": {}}}}}, "recipes.prac.overrides.digits/resnet_nope"),
    ({"experiments": {"prac_ablations": {"no_cepp": ["digits/test_resnet"]}}}, "experiments.prac_ablations"),
    ({"experiments": {"prac_ablations": {"ef2": ["digits/resnet_nope"]}}}, "experiments.prac_ablations.ef2"),
    ({"experiments": {"prac_settings": {"low": ["digits/test_resnet"]}}}, "experiments.prac_settings"),
    ({"experiments": {"structure_ablations": {"refill-nope": ["digits/test_resnet"]}}},
     "experiments.structure_ablations"),
    ({"experiments": {"jackpot_searches": {"magnitude-s0.9-e0": ["digits/test_resnet"]}}},
     "experiments.jackpot_searches"),
    ({"experiments": {"imp_runs": {"structure_lth-full": ["digits/test_resnet"]}}}, "experiments.imp_runs"),
    ({"experiments": {"structure_ablations": {"regroup-rw101": ["digits/test_resnet"]}}},
     "experiments.structure_ablations"),
    ({"experiments": {"structure_transfers": {"regroup-transfer-digits": ["digits/test_resnet"]}}},
     "experiments.structure_transfers.regroup-transfer-digits"),
    ({"cluster": {"rules": {"pretrian": {"runtime": 5}}}}, "cluster.rules.pretrian"),
    ({"cluster": {"gpu_model": "a100:2"}}, "cluster.gpu_model"),
    ({"cluster": {"rules": {"timing": {"extra": "--qos=long"}}}}, "cluster.rules.timing.extra"),
]


@pytest.mark.parametrize("bad,key", BAD, ids=[key for _, key in BAD])
def test_snakemake_and_check_config_reject_a_bad_config_with_the_same_line(tmp_path, capsys, bad, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"results": str(tmp_path / "results"), **bad}))
    code, lines = _check_config_cli(capsys, "--config", DEFAULT, "--config", str(path))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"ticketbench config error: {key}="), lines[0]
    # A dry run leaves data folders alone, so that case needs a real run; --touch keeps it harmless should the
    # check let it through (outputs lie under the temporary results folder).
    mode = ["--touch", "--cores", "1"] if key.startswith("data_roots") else ["-n"]
    r = _snakemake(*mode, "--configfile", str(path))
    assert r.returncode != 0
    assert _lines(r) == lines


def test_config_error_on_the_command_line_is_one_line():
    r = _snakemake("-n", "--config", "threads=0")
    assert r.returncode != 0
    assert _lines(r) == ["ticketbench config error: threads=0 is not allowed; an integer from 1 to 1024 (CPU threads "
                         "per job; part of the recipe, bitwise reproducible per count (1))"]


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError) as e:
        check_config({"grid": GRID, "experiments": {"jackpot_sparsitiez": [0.9]}})
    assert e.value.key == "experiments.jackpot_sparsitiez" and e.value.value == [0.9]
    assert "did you mean jackpot_sparsities?" in e.value.allowed


def test_check_config_unknown_block_key():
    with pytest.raises(ConfigError, match="imp.round="):
        check_config({"grid": GRID, "imp": {"round": 3}})


def test_a_missing_required_key_names_it():
    with pytest.raises(ConfigError) as e:
        check_config({})
    assert str(e.value).startswith("grid=(missing) is not allowed; a mapping with keys datasets, backbones, seeds")
    with pytest.raises(ConfigError, match=r"^grid\.seeds=\(missing\) is not allowed; "
                                          r"a non-empty list of integers from 0 to 4294967295; grid needs datasets, backbones, seeds$"):
        check_config({"grid": {"datasets": ["digits"], "backbones": ["test_resnet"]}})


def test_a_misspelt_key_is_named_before_the_key_it_leaves_missing():
    with pytest.raises(ConfigError, match=r"^grd="):
        check_config({"grd": GRID})


def test_malformed_yaml_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  datasets: [digits\n  seeds: [0]\n")
    code, lines = _check_config_cli(capsys, "--config", str(bad))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"ticketbench config error: config={str(bad)!r} is not allowed; valid YAML (line 3,")
    bad.write_text("- a list\n- not a mapping\n")
    code, lines = _check_config_cli(capsys, "--config", str(bad))
    assert code == 2 and lines == [f"ticketbench config error: config={str(bad)!r} is not allowed; a YAML mapping of "
                                   "top-level keys such as grid:, experiments:, train:"]
    code, lines = _check_config_cli(capsys, "--config", str(tmp_path / "absent.yaml"))
    assert code == 2 and "a path to an existing YAML file" in lines[0]


def test_malformed_workflow_config_is_one_line_through_snakemake(tmp_path):
    for part in ("Snakefile", "workflow", "config", "environment.yml"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    (tmp_path / "config" / "config.yaml").write_text("grid:\n  datasets: [digits]\n   seeds: [0]\n")
    r = _snakemake("-n", cwd=tmp_path)
    assert r.returncode != 0
    assert len(_lines(r)) == 1, _lines(r)
    assert _lines(r)[0].startswith("ticketbench config error: config='config/config.yaml' is not allowed; "
                                   "valid YAML (line 3,")


def _config_with_roots(roots: dict, datasets=("cifar10",), **extra) -> dict:
    return {"grid": {**GRID, "datasets": list(datasets)}, "data_roots": roots, **extra}


def test_a_missing_data_root_is_a_config_error(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError) as e:
        check_config(_config_with_roots({"cifar10": missing}))
    assert (e.value.key, e.value.value) == ("data_roots.cifar10", missing)
    assert "or set data: {download: true}" in e.value.allowed
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^data_roots\.imagenet="):
        check_config(_config_with_roots({"imagenet": str(tmp_path / "file")}, datasets=["imagenet"]))
    # Only the data check: the same config without it passes.
    check_config(_config_with_roots({"cifar10": missing}), data=False)


def test_data_roots_that_exist_or_will_be_downloaded_pass(tmp_path):
    check_config(_config_with_roots({"cifar10": str(tmp_path)}))
    # A dataset the grid does not use is not read, wherever its folder points.
    check_config(_config_with_roots({"cifar10": str(tmp_path), "imagenet": str(tmp_path / "nowhere")}))
    # The CIFAR builders create their folder when they download; ImageNet cannot be downloaded.
    check_config(_config_with_roots({"cifar10": str(tmp_path / "new")}, data={"download": True}))
    check_config(_config_with_roots({"cifar10": str(tmp_path / "new")},
                                    overrides={"cifar10": {"data": {"download": True}}}))
    with pytest.raises(ConfigError, match=r"^data_roots\.imagenet="):
        check_config(_config_with_roots({"imagenet": str(tmp_path / "new")}, datasets=["imagenet"],
                                        data={"download": True}))


_RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    cluster = {"partition": "gpu", "account": "lab", "gpu_model": "a100", "rules": {"imp": {"runtime": 999}}}
    workflow = api.workflow(resource_settings=ResourceSettings(),
                            config_settings=ConfigSettings(config={"gpu": 3, "cluster": cluster}),
                            snakefile=Path("Snakefile"), workdir=Path("."))._workflow
    def res(r):  # the values the rule sets; Snakemake's defaults (tmpdir, disk) evaluate only inside a job
        out = {}
        for k, v in r.resources.items():
            try:
                out[k] = v.value
            except ValueError:
                pass
        return out
    json.dump([{"name": r.name, "norun": r.norun, "benchmark": str(r.benchmark) if r.benchmark else None,
                "gpu": r.resources["gpu"].value if "gpu" in r.resources else None, "shell": r.shellcmd,
                "resources": {k: v for k, v in res(r).items() if isinstance(v, (int, str))},
                "local": r.name in workflow._localrules, "wildcards": sorted(r.wildcard_names)} for r in workflow.rules],
              sys.stdout)
"""


def _rules() -> dict[str, dict]:
    """Every rule as Snakemake parsed it, with the config's gpu set to 3 (the default config says 0) and a cluster
    partition, account, GPU model and one rule's runtime set."""
    r = subprocess.run([sys.executable, "-c", _RULES_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return {rule["name"]: rule for rule in json.loads(r.stdout)}


def _stages_on_a_device() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "stage")
    return {name for name, p in sub.choices.items() if any("--device" in a.option_strings for a in p._actions)}


def test_every_job_has_a_benchmark_and_device_jobs_declare_the_configs_gpus():
    rules = _rules()
    on_device = _stages_on_a_device()
    jobs = {name: rule for name, rule in rules.items() if not rule["norun"]}
    assert set(rules) - set(jobs) == {"all"}
    needs_gpu = set()
    for name, rule in jobs.items():
        bench = rule["benchmark"]
        assert bench and bench.startswith("benchmarks/"), (name, bench)
        # One file per job: a wildcard of the output missing from the benchmark would make jobs share it.
        assert sorted(set(re.findall(r"\{(\w+)", bench))) == rule["wildcards"], (name, bench)
        stage = re.match(r"ticketbench ([\w-]+)", rule["shell"]).group(1)
        if stage in on_device:
            needs_gpu.add(name)
            assert rule["gpu"] == 3, (name, rule["gpu"])
            assert not rule["local"], name
        else:  # a job that never touches the device must not hold a cluster GPU while it runs
            assert rule["gpu"] is None, (name, rule["gpu"])
            assert rule["local"], f"{name} reads files only: it runs beside Snakemake, not as a cluster job"
    assert {"pretrain", "imp", "prac", "jackpot", "structure"} <= needs_gpu


def test_cluster_jobs_ask_for_the_configs_resources():
    rules = _rules()
    for name in ("pretrain", "pretrain_paper", "prac", "prac_ablation", "imp", "instability", "jackpot",
                 "jackpot_search",
                 "jackpot_overlap", "structure", "timing"):
        res = rules[name]["resources"]
        # the SLURM plugin's names; CPUs come from threads (cpus_per_task)
        assert res["slurm_partition"] == "gpu" and res["slurm_account"] == "lab", (name, res)
        assert res["gpu"] == 3 and res["gpu_model"] == "a100", (name, res)
        assert res["mem_mb"] == 4000, (name, res)
        assert res["runtime"] == (999 if name == "imp" else 60), (name, res)
        # timing alone asks for a whole node: latency on a shared one measures the neighbours
        assert ("--exclusive" in res.get("slurm_extra", "")) == (name == "timing"), (name, res)
    # an empty partition or account is left to the cluster, never passed as -p ''
    from ticketbench.cluster import cluster_resources
    assert cluster_resources({"cluster": {"partition": "", "account": "", "gpu_model": "a100"}}, "imp") == {"gpu": 0}
