"""Safe to share, part 1: no code runs from a config, a site file or a data file (issue 24).

Configs, site files and dataset folders come from other labs. Each numbered test group below is one finding of the
issue's probes, and fails on the code before the fix: shell injection through config values (real Snakemake jobs,
with payloads that would create a marker file), sbatch options, a crafted CIFAR batch, paths that leave the results
root, resource exhaustion by a config file, and the smaller config findings. A fuzz test closes it: any config value
is either refused in one line with nothing written, or planned with every shell argument quoted.
"""

import contextlib
import io
import json
import os
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ticketbench.cli import main
from ticketbench.errors import ConfigError
from ticketbench.cluster import SLURM_OPTIONS, cluster_resources
from ticketbench.config import PATTERN_WORDS, RESULTS_PATH, check_config, load_config_files
from ticketbench.runs import EXTRA_RUNS, planned_runs
from ticketbench.untrusted import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, RefusedPickle, load_pickle
from test_data import _fake_cifar
from test_pipeline import _rules

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT = str(ROOT / "config" / "config.yaml")
# One cell, one epoch on 8x8 digits: the cheapest real job of the workflow.
# The default config's runs on named cells (experiments.imp_runs, ...) dropped, as a grid of other backbones must.
_LISTED = {key: {name: [] for name in names} for key, names in
           (yaml.safe_load(Path(DEFAULT).read_text())["experiments"]).items() if key in EXTRA_RUNS}
SMALL = {"grid": {"datasets": ["digits"], "backbones": ["test_resnet"], "seeds": [0]},
         "experiments": {"prac": False, "imp_baselines": [], "jackpot_sparsities": [], "jackpot_random_sparsities": [],
                         "structure_methods": [], **_LISTED},
         "train": {"epochs": 1, "rewind_epochs": "0", "rewind_iterations": ""}, "data": {"image_size": 8}}
# A payload names its marker through $PWNED, so that it holds no "/" and fits in a folder or file name.
PAYLOADS = ["$(touch $PWNED)", "`touch $PWNED`", "x;touch $PWNED;", "x && touch $PWNED", "x|touch $PWNED",
            "x\ntouch $PWNED"]


@pytest.fixture
def marker(tmp_path, monkeypatch):
    """The file every payload tries to create; the test fails if it exists afterwards."""
    path = tmp_path / "PWNED"
    monkeypatch.setenv("PWNED", str(path))
    yield path
    assert not path.exists(), "a config value ran as shell code"


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}


def _snakemake(*args, timeout=600):
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=_env())


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _files(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*") if ".snakemake" not in p.parts}


def _config(tmp_path: Path, values: dict | str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(values if isinstance(values, str) else
                    yaml.safe_dump({**SMALL, "results": str(tmp_path / "results"), **values}))
    return path


def _refused_everywhere(tmp_path: Path, path: Path, key: str, capsys, *, snakemake: bool = True) -> str:
    """``ticketbench check-config`` and (where asked) ``snakemake -n`` refuse the file with the same one line naming
    ``key``, and write nothing."""
    before = _files(tmp_path)
    code = main(["check-config", "--config", DEFAULT, "--config", str(path)])
    out = capsys.readouterr()
    lines = _lines(out.out + out.err)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"ticketbench config error: {key}="), lines[0]
    assert len(lines[0]) < 800, len(lines[0])
    if snakemake:
        r = _snakemake("-n", "--configfile", str(path))
        assert r.returncode != 0 and _lines(r.stdout + r.stderr) == lines, (r.stdout + r.stderr)[-2000:]
    assert _files(tmp_path) == before
    return lines[0]


# --- 1. shell injection through config values: real jobs ----------------------------------------------------------

def _run_one_job(tmp_path: Path, config: Path, target: str):
    r = _snakemake(str(tmp_path / "results" / target), "--cores", "1", "--configfile", str(config))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return json.loads((tmp_path / "results" / Path(target).parent / "hparams.json").read_text())["settings"]


@pytest.mark.slow
@pytest.mark.parametrize("payload", PAYLOADS[:2])
def test_a_data_root_with_shell_code_in_its_name_is_passed_as_one_argument(tmp_path, marker, payload):
    # The folder exists, so the check passes: the value is legitimate, only quoting keeps it from running.
    root = tmp_path / f"data {payload.replace(chr(10), ' ')}"
    root.mkdir()
    config = _config(tmp_path, {"data_roots": {"digits": str(root)}})
    settings_ = _run_one_job(tmp_path, config, "pretrain/digits/test_resnet/seed0/metrics.json")
    assert settings_["data"]["data_root"] == str(root)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["overrides", "recipes"])
def test_a_data_folder_setting_with_shell_code_reaches_the_stage_unchanged(tmp_path, marker, where):
    # data.data_root and data.cache travel the same way (a recipe's value as --<key>=<value>); digits accepts the
    # first (it ignores it), so the job runs to the end.
    payload = "c $(touch $PWNED) `touch $PWNED`;touch $PWNED;"
    block = {"data": {"data_root": payload}}
    if where == "overrides":
        config, target = {"overrides": {"digits": block}}, "pretrain/digits/test_resnet/seed0/metrics.json"
    else:  # PrAC's own recipe: its dense run is the pretrain_paper job
        config, target = {"recipes": {"prac": block}}, "pretrain/digits/test_resnet/seed0/prac/metrics.json"
    settings_ = _run_one_job(tmp_path, _config(tmp_path, config), target)
    assert settings_["data"]["data_root"] == payload


@pytest.mark.slow
def test_a_config_file_named_with_spaces_and_shell_code_runs(tmp_path, marker):
    config = _config(tmp_path, {}, name="my config $(touch $PWNED).yaml")
    _run_one_job(tmp_path, config, "pretrain/digits/test_resnet/seed0/metrics.json")


def test_every_placeholder_of_every_shell_command_is_quoted():
    rules = [rule for rule in _rules().values() if rule["shell"]]
    assert {"pretrain", "imp", "prac", "jackpot", "structure", "timing", "report"} <= {r["name"] for r in rules}
    for rule in rules:
        fields = re.findall(r"\{([^{}]*)\}", rule["shell"])
        assert fields, rule
        unquoted = [f for f in fields if not f.endswith(":q")]
        assert not unquoted, (rule["name"], unquoted)
        assert "$(" not in rule["shell"] and "`" not in rule["shell"], rule


@pytest.mark.parametrize("values,key", [
    ({"results": "results$(touch $PWNED)"}, "results"),
    ({"results": "res{x}"}, "results"),
    ({"results": "my results"}, "results"),
    ({"grid": {**SMALL["grid"], "backbones": ["local-dir:/tmp/evil;touch $PWNED;"]}}, "grid.backbones"),
    ({"grid": {**SMALL["grid"], "datasets": ["digits;touch $PWNED"]}}, "grid.datasets"),
    ({"overrides": {"digits": {"data": {"cache": "c\ntouch $PWNED"}}}}, "overrides.digits.data.cache"),
    ({"recipes": {"prac": {"train": {"milestones": "1\n2"}}}}, "recipes.prac.train.milestones"),
    ({"data_roots": {"digits": "/tmp\n/x"}}, "data_roots.digits"),
], ids=["results-subst", "results-braces", "results-space", "backbone", "dataset", "cache-newline",
        "milestones-newline", "data-root-newline"])
def test_names_that_become_paths_or_flags_are_refused_in_one_line(tmp_path, capsys, marker, values, key):
    _refused_everywhere(tmp_path, _config(tmp_path, values), key, capsys)


# --- 2. sbatch options ---------------------------------------------------------------------------------------------

SBATCH_WITNESS = {"extra": "--mail-type=FAIL; touch $PWNED #", "partition": "gpu;touch $PWNED",
                  "account": "lab $(touch $PWNED)", "qos": "long`touch $PWNED`", "constraint": "a100|h100;touch $PWNED"}


@pytest.mark.parametrize("key,value", [
    ("extra", "--mail-type=FAIL; touch $PWNED #"),
    ("extra", "--comment=$(touch $PWNED)"),
    ("extra", "--mail-type=FAIL `touch $PWNED`"),
    ("extra", "--mail-type=FAIL && touch $PWNED"),
    ("extra", "--comment='two words'"),
    ("extra", "mail-type=FAIL"),
    ("extra", "--mail-type=FAIL\n--exclusive"),
    ("partition", "gpu;touch $PWNED"),
    ("account", "lab $(touch $PWNED)"),
    ("qos", "long`touch $PWNED`"),
    ("constraint", "a100|h100;touch $PWNED"),
])
def test_sbatch_values_with_shell_characters_are_refused(tmp_path, capsys, marker, key, value):
    # The workflow refuses a config through the same check as check-config (Snakefile: check_workflow_config):
    # one `snakemake -n` per option (its first value) witnesses that; the other values ask check-config alone, which
    # saves a Snakemake start (~10 s on 2 cores) per value.
    witness = value == SBATCH_WITNESS.get(key)
    line = _refused_everywhere(tmp_path, _config(tmp_path, {"cluster": {key: value}}), f"cluster.{key}", capsys,
                               snakemake=witness)
    if key == "extra":
        assert "--mail-type=FAIL --mail-user=me@lab.org" in line  # says how to write it
        per_rule = _config(tmp_path, {"cluster": {"rules": {"imp": {key: value}}}}, "rules.yaml")
        _refused_everywhere(tmp_path, per_rule, "cluster.rules.imp.extra", capsys, snakemake=witness)


@pytest.mark.parametrize("extra", ["--mail-type=FAIL", "--mail-type=FAIL --mail-user=me@lab.org", "--exclusive",
                                   "--signal=B:USR1@300 --mail-type=END", "-x node01,node02"])
def test_sbatch_options_of_the_documented_shape_pass_and_split_as_written(extra):
    config = {**SMALL, "cluster": {"extra": extra, "partition": "gpu-a100", "constraint": "a100|h100",
                                   "account": "lab_1,lab_2", "qos": "normal"}}
    check_config(config, data=False)
    res = cluster_resources(config, "imp")
    # The SLURM plugin appends slurm_extra to a command it runs through a shell: the shell must split it as written.
    assert shlex.split(res["slurm_extra"]) == res["slurm_extra"].split()
    assert shlex.quote(res["slurm_extra"].replace(" ", "")) == res["slurm_extra"].replace(" ", "")


# --- 3. code from a dataset file -----------------------------------------------------------------------------------

class _Payload:
    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        return self.how


def _cifar_folder(root: Path, first_batch: bytes | None = None, protocol: int | None = None) -> Path:
    """test_data's CIFAR-10 replica, its batches pickled again at ``protocol``, and ``first_batch`` as the bytes of
    data_batch_1."""
    _fake_cifar(str(root), hundred=False)
    folder = root / "cifar-10-batches-py"
    for path in folder.iterdir() if protocol is not None else ():
        path.write_bytes(pickle.dumps(pickle.loads(path.read_bytes()), protocol=protocol))
    if first_batch is not None:
        (folder / "data_batch_1").write_bytes(first_batch)
    return folder


@pytest.mark.parametrize("how", ["system", "eval", "popen", "nested"])
def test_a_crafted_cifar_batch_is_refused_before_any_of_it_runs(tmp_path, marker, capsys, how):
    command = f"touch {marker}"
    reduce = {"system": (os.system, (command,)), "eval": (eval, (f"__import__('os').system({command!r})",)),
              "popen": (subprocess.Popen, (["touch", str(marker)],))}
    payload = _Payload(reduce.get(how, (os.system, (command,))))
    obj = {b"data": [payload], b"labels": [0]} if how == "nested" else payload
    _cifar_folder(tmp_path / "cifar", pickle.dumps(obj, protocol=2))
    out = tmp_path / "run"
    code = main(["pretrain", "--dataset", "cifar10", "--data-root", str(tmp_path / "cifar"), "--backbone",
                 "test_resnet", "--epochs", "1", "--out", str(out), "--no-progress"])
    lines = _lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1, lines
    assert "data_batch_1" in lines[0] and "is not a CIFAR batch" in lines[0] and "nothing of it was run" in lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_as_numpy_pickles_them_still_load(tmp_path, protocol):
    from ticketbench.data import load_splits

    _cifar_folder(tmp_path, protocol=protocol)
    splits = load_splits("cifar10", root=str(tmp_path))
    x, y, _ = splits.test[0]
    assert tuple(x.shape) == (3, 32, 32) and int(y) == 0 and len(splits.train) + len(splits.val) == 20


def test_the_restricted_unpickler_builds_plain_data_and_arrays_only():
    data = {b"a": [1, 2.5, "s", b"b", (1, None)], "arr": np.arange(6, dtype=np.int64).reshape(2, 3)}
    for protocol in range(2, 6):
        back = load_pickle(io.BytesIO(pickle.dumps(data, protocol=protocol)))
        assert back[b"a"] == data[b"a"] and np.array_equal(back["arr"], data["arr"])
    for obj in (_Payload((os.getcwd, ())), Path("x"), {1: np.random.default_rng(0)}):
        with pytest.raises(RefusedPickle):
            load_pickle(io.BytesIO(pickle.dumps(obj, protocol=2)))


# --- 4. paths that leave the results root ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["local-dir:../../../../tmp/evil", "hf-hub:timm/resnet18.a1_in1k", "../evil",
                                  "a/b", ".hidden", "-resnet18"])
def test_backbone_names_that_are_not_plain_names_are_refused(tmp_path, capsys, name):
    line = _refused_everywhere(tmp_path, _config(tmp_path, {"grid": {**SMALL["grid"], "backbones": [name]}}),
                               "grid.backbones", capsys)
    assert "hf-hub: and local-dir:" in line


@pytest.mark.parametrize("name", ["local-dir:../../../../tmp/evil", "hf-hub:timm/resnet18.a1_in1k"])
def test_a_stage_refuses_a_backbone_from_outside_the_project(tmp_path, capsys, name):
    out = tmp_path / "run"
    code = main(["pretrain", "--backbone", name, "--epochs", "1", "--out", str(out), "--no-progress"])
    lines = _lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "source prefix" in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["paper.yaml"], ["smoke.yaml"]], ids=["default", "paper", "smoke"])
def test_every_planned_output_lies_under_the_results_root(extra):
    config = load_config_files([DEFAULT, *(str(ROOT / "config" / f) for f in extra)])
    root = config.get("results", "results")
    paths = list(planned_runs(config))
    assert paths
    for path in paths:
        assert os.path.commonpath([root, path]) == root and ".." not in Path(path).parts, path


# --- 5. resource exhaustion -----------------------------------------------------------------------------------------

def _bomb(levels: int, leaf: str = "x") -> str:
    """A YAML alias bomb of 10**levels leaves under grid.seeds."""
    text = "grid: {datasets: [digits], backbones: [test_resnet], seeds: [&a [" + ",".join([leaf] * 10) + "]"
    text += "".join(f", &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]" for i in range(levels))
    return text + "]}\n"


def _file_refused(tmp_path: Path, capsys, text: str, words: str, *, snakemake: bool) -> None:
    """The whole file is refused, in one line naming it."""
    path = _config(tmp_path, text)
    line = _refused_everywhere(tmp_path, path, "config", capsys, snakemake=snakemake)
    assert line.startswith(f"ticketbench config error: config={str(path)!r} ") and words in line, line


@pytest.mark.parametrize("text,words", [
    ("grid:\n  datasets: [digits]\n  backbones: [test_resnet]\n  seeds: [0]\n# padding\n" +
     "#" * (MAX_CONFIG_BYTES + 1) + "\n", "at most 1 MiB"),
    (_bomb(8), "once its aliases"),
    ("grid: " + "[" * 20000 + "]" * 20000 + "\n", f"at most {MAX_CONFIG_DEPTH} levels of nesting"),
], ids=["oversized", "billion-laughs", "deep-nesting"])
def test_a_config_that_would_exhaust_the_machine_is_refused_in_one_line(tmp_path, capsys, text, words):
    # Snakemake's own reader recurses on deep nesting before the Snakefile runs (docs/sharing.md)
    _file_refused(tmp_path, capsys, text, words, snakemake="nesting" not in words)


# --- 6. smaller findings --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,key", [
    ("grid:\n  datasets: [digits]\n  backbones: [test_resnet]\n  seeds: [0]\n  seeds: [1]\n", "'seeds' again"),
    ("train: {epochs: 1}\ngrid: {datasets: [digits], backbones: [test_resnet], seeds: [0]}\ntrain: {lr: 0.1}\n",
     "'train' again"),
    ("__use_yte__: true\nthreads: ?__import__('os').getpid()\n", "__use_yte__"),
], ids=["duplicate-key", "duplicate-block", "yte-template"])
def test_duplicate_keys_and_yte_templates_are_refused(tmp_path, capsys, text, key):
    # Snakemake evaluates a YTE file itself before the Snakefile runs (docs/sharing.md)
    _file_refused(tmp_path, capsys, text, key, snakemake="yte" not in key)


@pytest.mark.parametrize("target", ["reproduce", "smoke", "pull"])
def test_make_checks_a_site_file_before_snakemake_reads_it(tmp_path, marker, target):
    # Snakemake would evaluate this YTE template while reading its command line, before the Snakefile's check.
    site = _config(tmp_path, f"__use_yte__: true\nthreads: ?__import__('os').system('touch {marker}') + 1\n")
    r = subprocess.run(["make", "--no-print-directory", "-o", "install", f"VENV={sys.prefix}", target,
                        f"CONFIGS={site}"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env())
    errors = [line for line in _lines(r.stderr) if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert r.returncode != 0 and len(errors) == 1 and "__use_yte__" in errors[0], r.stderr


@pytest.mark.parametrize("values,key", [
    ({"threads": 1000000}, "threads"),
    ({"grid": {**SMALL["grid"], "seeds": [10 ** 20]}}, "grid.seeds"),
    ({"gpu": 100000}, "gpu"),
    ({"cluster": {"rules": {"imp": {"gpu": 100000}}}}, "cluster.rules.imp.gpu"),
])
def test_counts_past_any_machine_are_refused(tmp_path, capsys, values, key):
    _refused_everywhere(tmp_path, _config(tmp_path, values), key, capsys)


def test_a_refusal_of_a_huge_value_is_one_short_line(tmp_path, capsys):
    # 10**4 strings behind five aliases: the whole value in the message was one line of 1.6 MB
    bomb = _bomb(4, "xxxxxxxxxx").replace("seeds: [&a", "seeds: [0]}\ndata_roots: {digits: [&a")
    line = _refused_everywhere(tmp_path, _config(tmp_path, bomb), "data_roots.digits", capsys)
    assert len(line) < 600
    with pytest.raises(ConfigError) as e:
        check_config({**SMALL, "results": "r" * 100_000})
    assert len(str(e.value)) < 800


# --- fuzz: any value is refused in one line, or planned with every shell argument quoted ----------------------------

# Where a config value goes: (the config it makes, the key a refusal names, how the value appears on a shell line).
SLOTS = {
    "data_roots": (lambda v: {"data_roots": {"digits": v}}, "data_roots.digits", lambda v: f"--data-root={v}"),
    "cache": (lambda v: {"overrides": {"digits": {"data": {"cache": v}}}}, "overrides.digits.data.cache",
              lambda v: f"--cache={v}"),
    # experiments.prac: PrAC's recipe trains its own dense run, whose command carries the value
    "recipe_cache": (lambda v: {"recipes": {"prac": {"data": {"cache": v}}}, "experiments": {**SMALL["experiments"],
                                                                                               "prac": True}},
                     "recipes.prac.data.cache", lambda v: f"--cache={v}"),
    "backbone": (lambda v: {"grid": {**SMALL["grid"], "backbones": [v]}}, "grid.backbones", None),
    "results": (lambda v: {"results": v}, "results", None),
    "extra": (lambda v: {"cluster": {"extra": v}}, "cluster.extra", None),
    "partition": (lambda v: {"cluster": {"partition": v}}, "cluster.partition", None),
}
SHELLY = st.text(alphabet=st.sampled_from(list("ab0_-./=, ;&|$`()<>'\"\\*?#~!{}\n\t:@%+[]")), min_size=1, max_size=12)
VALUES = st.one_of(SHELLY, st.sampled_from([p.replace("$PWNED", "PWNED") for p in PAYLOADS]),
                   st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True),
                   st.from_regex(r"--[a-z][a-z-]{0,8}(=[a-z0-9:@.|;$]{1,6})?( -[a-z]{1,5})?", fullmatch=True),
                   st.sampled_from(["resnet18", "cifar_resnet20", "-x node01", "--mail-type=FAIL", "gpu-a100"]))


def _place(tmp: Path, slot: str, value: str) -> tuple[Path, str]:
    """The config file that puts ``value`` in ``slot``; a data root is made to exist (the check asks for it)."""
    if slot == "data_roots" and not any(c < " " for c in value):
        value = str(tmp / "roots" / value.replace("/", "_"))
        Path(value).mkdir(parents=True, exist_ok=True)
    return _config(tmp, SLOTS[slot][0](value)), value


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(slot=st.sampled_from(sorted(SLOTS)), value=VALUES)
def test_fuzz_any_config_value_is_refused_in_one_line_or_accepted_safe(tmp_path_factory, monkeypatch, slot, value):
    tmp = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setenv("PWNED", str(tmp / "PWNED"))
    config, value = _place(tmp, slot, value)
    before = _files(tmp)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check-config", "--config", DEFAULT, "--config", str(config)])
    lines = _lines(out.getvalue() + err.getvalue())
    assert len(lines) == 1 and len(lines[0]) < 800, lines
    assert _files(tmp) == before and not (tmp / "PWNED").exists()
    event(f"{slot} {'refused' if code else 'accepted'}")  # pytest --hypothesis-show-statistics shows the mix
    if code != 0:
        assert code == 2 and lines[0].startswith(f"ticketbench config error: {SLOTS[slot][1]}="), lines
        return
    assert lines == ["config ok"]
    res = cluster_resources(load_config_files([DEFAULT, str(config)]), "imp")
    for text in (res.get("slurm_extra", ""), res.get("slurm_partition", "")):
        # sbatch's command line is run by a shell: an accepted value splits as written and needs no quotes
        assert shlex.split(text) == text.split() and all(shlex.quote(t) == t for t in text.split()), text


# The slots that become a rule's shell arguments, with values the check accepts (no control characters).
PLANNED = st.text(alphabet=st.sampled_from(list("ab0_-./=, ;&|$`()<>'\"\\*?#~!{}:@%+[]")), min_size=1, max_size=12)


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(slot=st.sampled_from(["cache", "data_roots", "recipe_cache"]), value=PLANNED)
def test_fuzz_an_accepted_value_plans_with_every_shell_argument_quoted(tmp_path_factory, slot, value):
    tmp = tmp_path_factory.mktemp("plan")
    config, value = _place(tmp, slot, value)
    check_config(load_config_files([DEFAULT, str(config)]))
    r = _snakemake("-n", "-p", "--forceall", "--configfile", str(config))
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    commands = [line.removeprefix("Shell command: ") for line in r.stdout.splitlines()
                if line.startswith("Shell command: ")]
    # Each command splits into exactly the arguments the rule meant: the value is one of them, whole.
    assert any(SLOTS[slot][2](value) in shlex.split(c) for c in commands), (value, commands[:2])
    assert not (tmp / "PWNED").exists()


def test_the_patterns_explain_themselves():
    # Every pattern a refusal can name has its words; the results pattern keeps Snakemake's wildcards out.
    assert {RESULTS_PATH, SLURM_OPTIONS} <= set(PATTERN_WORDS)
    assert not re.fullmatch(RESULTS_PATH.strip("^$"), "res{x}")
