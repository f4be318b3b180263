"""The paper grid's recipes against the papers' own tables, transcribed below cell by cell.

Sources, as research/methods.md transcribes them: "PrAC Table 1" (implementation details: batch
size, learning rate, warm-up; methods.md Table PrAC-1) and methods.md §2.3 (PrAC's epochs, schedule, weight decay,
rewinding, pruning, E_F, early stop); "Structure-LTH Table 1" (methods.md Table SLTH-1 and §3.6), §3.1 (rewind to
epoch 8), the README's 10 rounds (§3.2) and the l1 refill criterion (§3.3); the lottery jackpots' released search
configs (methods.md §1.6; the paper's own tables are NOT FOUND, §1.8) and its dense recipe, NOT FOUND (§1.7).

A cell the paper leaves blank, or a value that could not be found, is ``BLANK``: config/paper.yaml must then say
which value it chose and why, in a comment starting ``# not in the paper:``.
"""

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ticketbench.hparams import int_list
from ticketbench.config import block_classes, load_config_files
from ticketbench.methods.registry import STRUCTURE_METHODS
from ticketbench.recipes import DENSE_BLOCKS, PAPERS, dense_run, recipe_changes, recipe_layers, resolve_recipe
from ticketbench.runs import planned_runs, run_changes

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "config"
PAPER = CONFIGS / "paper.yaml"
MARKER = "not in the paper:"
BLANK = "blank"
C10, C100, TINY, IMAGENET = "cifar10", "cifar100", "tiny-imagenet", "imagenet"

# --- PrAC (Zhang, Chen, Chen & Wang, ICML'21) ---
# methods.md §2.3, the same for every network and dataset.
PRAC_ALL = {"train.epochs": 182, "train.milestones": [91, 136], "train.schedule": "multistep", "train.momentum": 0.9,
            "train.weight_decay": 1e-4, "imp.rate": 0.2, "imp.rounds": 16, "imp.policy": "prac",
            "imp.rewind": "ep3",  # "rewind to the third epoch" (code: rewind_epoch=2, the weights after 3 epochs)
            "prac.forget_threshold": 0, "prac.eps": 0.07, "prac.patience": 5}
# PrAC Table 1, the "Standard" rows (the "Low" and "Warmup" rows are recipes of their own: PRAC_LT_SETTINGS).
PRAC_TABLE_1 = {
    (C10, "cifar_resnet20"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (C100, "cifar_resnet20"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (C10, "cifar_resnet56"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (C100, "cifar_resnet56"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (C10, "cifar_vgg16_bn"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (C100, "cifar_vgg16_bn"): {"train.batch_size": 128, "train.lr": 0.1, "train.warmup_epochs": 0},
    (TINY, "cifar_vgg16_bn"): {"train.batch_size": 512, "train.lr": 0.1, "train.warmup_epochs": BLANK},
    (TINY, "resnet18"): {"train.batch_size": 512, "train.lr": 0.1, "train.warmup_epochs": 0},
}
# PrAC Table 1's "Low" and "Warmup" rows and §2.3 (they rewind to the random initialisation), on the cells §4.4 and
# A2.2 run them on (Table 1 leaves their dataset blank): recipes.prac_low and recipes.prac_warmup.
PRAC_LT_SETTINGS = {
    "prac_low": {(C10, "cifar_resnet20"): {"train.lr": 0.01, "train.warmup_epochs": 0},
                 (C100, "cifar_resnet56"): {"train.lr": 0.01, "train.warmup_epochs": 0}},
    "prac_warmup": {(C10, "cifar_resnet20"): {"train.lr": 0.03, "train.warmup_epochs": 15},
                    (C100, "cifar_resnet56"): {"train.lr": BLANK, "train.warmup_epochs": 15}},
}

# --- Structure-LTH (Chen, Chen, Ma, Wang & Wang, ICML'22) ---
SLTH_ALL = {"train.lr": 0.1, "train.momentum": 0.9, "train.schedule": "multistep",  # Table 1, every column
            "imp.rate": 0.2, "imp.rounds": 10,  # README (methods.md §3.2)
            "imp.structure_rewind": "ep8",  # §3.1: "rewound to the eighth epoch"
            "structure.criterion": "l1",  # §3.3: l1 norm of the channel's remaining weights
            "structure.rho": BLANK}  # Refill+'s extra channels: NOT FOUND (methods.md §3.3, §6)
SLTH_CIFAR = {"train.epochs": 160, "train.milestones": [80, 120]}  # Table 1: "x0.1 at 80,120 of 160 epochs"
SLTH_LARGE = {"train.epochs": 95, "train.milestones": [30, 60]}  # Table 1: "x0.1 at 30,60 of 95 epochs"
# Structure-LTH Table 1: batch size and weight decay per column; "-" batch cells are BLANK.
SLTH_TABLE_1 = {
    (C10, "cifar_wrn32_2"): {**SLTH_CIFAR, "train.batch_size": 128, "train.weight_decay": 1e-4},
    (C10, "cifar_resnet18"): {**SLTH_CIFAR, "train.batch_size": 128, "train.weight_decay": 1e-4},
    (C10, "cifar_vgg16_bn"): {**SLTH_CIFAR, "train.batch_size": 128, "train.weight_decay": 2e-4},
    (C10, "cifar_mobilenet_v1"): {**SLTH_CIFAR, "train.batch_size": 128, "train.weight_decay": 1e-4},
    (C100, "cifar_mobilenet_v1"): {**SLTH_CIFAR, "train.batch_size": 64, "train.weight_decay": 2e-4},
    (C100, "cifar_wrn32_2"): {**SLTH_CIFAR, "train.batch_size": BLANK, "train.weight_decay": 2e-4},
    (C100, "cifar_resnet18"): {**SLTH_CIFAR, "train.batch_size": BLANK, "train.weight_decay": 2e-4},
    (C100, "cifar_vgg16_bn"): {**SLTH_CIFAR, "train.batch_size": BLANK, "train.weight_decay": 5e-4},
    (TINY, "resnet50"): {**SLTH_LARGE, "train.batch_size": 32, "train.weight_decay": 5e-4},
    (IMAGENET, "resnet50"): {**SLTH_LARGE, "train.batch_size": BLANK, "train.weight_decay": 1e-4},
}

# --- Lottery jackpots (Zhang, Lin et al., TPAMI'23) ---
# methods.md §1.6: the released search configs (SGD momentum 0.9, lr 0.1 with cosine annealing, which is the
# jackpot stage's only schedule). VGGNet-19 is cifar_vgg19_bn, the wide ResNet-32 cifar_wrn32_2.
JP_CIFAR = {"jackpot.epochs": 30, "jackpot.lr": 0.1, "jackpot.batch_size": 256, "jackpot.weight_decay": 5e-4}
JP_TABLE = {
    (C10, "cifar_vgg19_bn"): JP_CIFAR, (C100, "cifar_vgg19_bn"): JP_CIFAR,
    (C10, "cifar_wrn32_2"): JP_CIFAR, (C100, "cifar_wrn32_2"): JP_CIFAR,
    (IMAGENET, "resnet50"): {**JP_CIFAR, "jackpot.weight_decay": 1e-4},
}

TABLES = {
    "prac": {cell: {**PRAC_ALL, **row} for cell, row in PRAC_TABLE_1.items()},
    "structure_lth": {cell: {**SLTH_ALL, **row} for cell, row in SLTH_TABLE_1.items()},
    "jackpot": JP_TABLE,
}
# Blocks a paper does not give at all: every cell's values there are the config's documented choice.
NOT_FOUND_BLOCKS = {"jackpot": {"train", "data"}}
# Cells of networks (or datasets) a paper does not run, and the row whose values the config documents it takes;
# "base": the grid's base dense run, with the paper's own settings outside the dense recipe.
STAND_INS = {
    "prac": {**{(d, b): (d, "cifar_resnet20") for d in (C10, C100)
                for b in ("cifar_wrn32_2", "cifar_resnet18", "cifar_vgg19_bn", "cifar_mobilenet_v1")},
             (TINY, "resnet50"): (TINY, "resnet18"), (TINY, "cifar_resnet20"): (TINY, "resnet18"),
             (TINY, "resnet50_cifar_stem"): (TINY, "resnet18"),
             (IMAGENET, "resnet50"): "base"},
    "structure_lth": {**{(d, b): (d, "cifar_wrn32_2") for d in (C10, C100)
                         for b in ("cifar_resnet20", "cifar_resnet56")},
                      **{(d, "cifar_vgg19_bn"): (d, "cifar_vgg16_bn") for d in (C10, C100)},
                      (TINY, "resnet18"): (TINY, "resnet50"), (TINY, "cifar_vgg16_bn"): (TINY, "resnet50"),
                      (TINY, "resnet50_cifar_stem"): (TINY, "resnet50"),
                      (C10, "resnet50"): (C10, "cifar_resnet18")},  # Table A2's transfer target
    "jackpot": {**{(d, b): (d, "cifar_vgg19_bn") for d in (C10, C100)
                   for b in ("cifar_resnet20", "cifar_resnet56", "cifar_vgg16_bn", "cifar_resnet18",
                             "cifar_mobilenet_v1")},
                **{(TINY, b): (C10, "cifar_vgg19_bn")
                   for b in ("resnet18", "cifar_vgg16_bn", "resnet50", "resnet50_cifar_stem")}},
}


# Settings in which a cell departs from its row on purpose; the config must say why where it sets them.
DEPARTS = {("structure_lth", C10, "resnet50"): {"imp.rounds"}}  # the transfer target's IMP gives a rewind point only


def _paper_config() -> dict:
    return load_config_files([str(CONFIGS / "config.yaml"), str(PAPER)])


def _runs(config: dict) -> list[tuple[str, str, str]]:
    """Every (paper, dataset, backbone) whose pipeline the grid runs."""
    grid, exp = config["grid"], config.get("experiments") or {}
    only = grid.get("only") or {}
    cells = [(d, b) for d, b in itertools.product(grid["datasets"], grid["backbones"]) if b in only.get(d, [b])]
    # A transfer target's IMP replays the PrAC run of its source, on the target's dataset.
    sources = [(d, t["source"]) for d, b in cells for t in exp.get("transfer", []) if t["target"] == b]
    runs = {("prac", d, b) for d, b in cells + sources}
    if exp.get("structure_methods") or "group_aware" in exp.get("imp_variants", []):
        runs |= {("structure_lth", d, b) for d, b in cells}
    if exp.get("jackpot_sparsities") or exp.get("jackpot_random_sparsities"):
        runs |= {("jackpot", d, b) for d, b in cells}
    # A structure transfer's target runs Structure-LTH's dense and IMP runs outside grid.only.
    runs |= {("structure_lth", *cell.split("/")) for cells_ in (exp.get("structure_transfers") or {}).values()
             for cell in cells_}
    return sorted(runs)


def _value(recipe: dict, key: str):
    block, field = key.split(".")
    value = recipe[block].get(field, next(f.default for f in block_classes()[block]._fields() if f.name == field))
    return int_list(value) if field == "milestones" else value


class _Text:
    """config/paper.yaml as text: the line of every mapping key, and the comments that say `not in the paper:`."""

    def __init__(self, path: Path):
        self.lines = path.read_text().splitlines()
        self.keys: dict[tuple[str, ...], int] = {}
        self._walk(yaml.compose(path.read_text()), ())

    def _walk(self, node, path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.keys[(*path, k.value)] = k.start_mark.line
                self._walk(v, (*path, k.value))

    def note(self, line: int) -> str | None:
        """The `not in the paper:` comment that starts on ``line`` with the comment lines that continue it."""
        comment = self.lines[line].partition("#")[2].strip()
        if not comment.startswith(MARKER):
            return None
        words = [comment]
        for text in self.lines[line + 1:]:
            if not text.strip().startswith("#") or MARKER in text:
                break
            words.append(text.strip().lstrip("#").strip())
        return " ".join(words)

    def notes_of(self, paper: str) -> list[str]:
        """The notes inside ``recipes.<paper>``, up to the next paper's key."""
        starts = sorted(line for path, line in self.keys.items() if len(path) == 2 and path[0] == "recipes")
        start = self.keys[("recipes", paper)]
        end = next((s for s in starts if s > start), len(self.lines))
        return [n for n in map(self.note, range(start, end)) if n]


TEXT = _Text(PAPER)
CONFIG = _paper_config()


def _documented_at(paper: str, dataset: str, backbone: str, key: str) -> str | None:
    """The note on the line that sets ``key`` in the paper's most specific layer for this cell (or on its block or
    override key): a blank cell must be set by the paper's own recipe, next to the reason."""
    block, field = key.split(".")
    for where, layer in reversed(recipe_layers(CONFIG, paper, dataset, backbone)):
        if field not in (layer.get(block) or {}):
            continue
        if not where.startswith("recipes."):
            return None
        # recipes.<paper> or recipes.<paper>.overrides.<dataset or dataset/backbone> as a path of YAML keys
        head, _, over = where.partition(".overrides.")
        base = tuple(head.split(".")) + (("overrides", over) if over else ())
        for path in ((*base, block, field), (*base, block), *([base] if over else [])):
            note = TEXT.note(TEXT.keys[path])
            if note:
                return note
        return None
    return None


def _mentioned(paper: str, names: set[str]) -> bool:
    """A note of the paper's recipe names one of ``names`` (a backbone, or dataset/backbone) as a whole word."""
    patterns = [re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])") for n in names]
    return any(p.search(note) for note in TEXT.notes_of(paper) for p in patterns)


@pytest.mark.parametrize("paper,dataset,backbone", _runs(CONFIG), ids="/".join)
def test_recipe_matches_the_papers_table(paper, dataset, backbone):
    recipe = resolve_recipe(CONFIG, paper, dataset, backbone)
    table = TABLES[paper]
    in_paper = {b for _, b in table}
    row = table.get((dataset, backbone))
    if row is None:
        # A network (or dataset) the paper does not run: the recipe's notes must name it, and the config must do
        # what they say.
        stand_in = STAND_INS[paper][(dataset, backbone)]
        names = {f"{dataset}/{backbone}"} | (set() if backbone in in_paper else {backbone})
        assert _mentioned(paper, names), f"no `# {MARKER}` note in recipes.{paper} names {' or '.join(names)}"
        if stand_in == "base":
            assert dense_run(CONFIG, paper, dataset, backbone) == ""
            row = {k: v for k, v in next(iter(table.values())).items()
                   if k.split(".")[0] not in DENSE_BLOCKS and k != "imp.rounds"}
        else:
            row = table[stand_in]
    for key, expected in row.items():
        if key in DEPARTS.get((paper, dataset, backbone), ()):
            note = _documented_at(paper, dataset, backbone, key)
            assert note and len(note) > len(MARKER) + 20, f"{paper} {dataset}/{backbone} {key}: set without a note"
        elif expected == BLANK:
            note = _documented_at(paper, dataset, backbone, key)
            assert note and len(note) > len(MARKER) + 20, (
                f"{paper} {dataset}/{backbone} {key}: blank in the paper, so recipes.{paper} must set it with a "
                f"`# {MARKER}` comment giving the value and why")
        else:
            assert _value(recipe, key) == expected, f"{paper} {dataset}/{backbone} {key}"
    for block in NOT_FOUND_BLOCKS.get(paper, ()):
        assert _mentioned(paper, {backbone, f"{dataset}/{backbone}"}), (
            f"{paper}'s {block} recipe is not found: a `# {MARKER}` note in recipes.{paper} must name {backbone}")


# The report's transcription of the same tables (config/paper_tables/), in its own names.
NETWORKS = {"ResNet-20": "cifar_resnet20", "ResNet-56": "cifar_resnet56", "VGG-16": "cifar_vgg16_bn",
            "WRN-32-2": "cifar_wrn32_2", "RN-50": "resnet50"}
DATASETS = {"CIFAR-10": C10, "CIFAR-100": C100, "Tiny-ImageNet": TINY, "ImageNet": IMAGENET}


def _report_rows(name: str, table_id: str) -> list[dict]:
    tables = yaml.safe_load((CONFIGS / "paper_tables" / name).read_text())["tables"]
    return next(t for t in tables if t["id"] == table_id)["rows"]


def test_the_transcription_agrees_with_the_reports_tables():
    for row in _report_rows("prac.yaml", "prac_1"):
        if row["variant"] not in ("Standard", None):
            continue
        for dataset in str(row["dataset"]).split(" & "):
            d = DATASETS[dataset]
            b = "resnet18" if row["network"] == "ResNet-18" else NETWORKS[row["network"]]
            ours = PRAC_TABLE_1[(d, b)]
            assert (ours["train.batch_size"], ours["train.lr"]) == (row["batch_size"], float(row["learning_rate"]))
            assert ours["train.warmup_epochs"] == (BLANK if row["warmup"] is None else row["warmup"]), (d, b)
    for row in _report_rows("structure_lth.yaml", "slth_1"):
        b = {"RN-18": "cifar_resnet18", "MBNet-v1": "cifar_mobilenet_v1"}.get(row["network"],
                                                                                NETWORKS.get(row["network"]))
        ours = SLTH_TABLE_1[(DATASETS[row["dataset"]], b)]
        assert ours["train.batch_size"] == (BLANK if row["batch_size"] is None else row["batch_size"]), row
        assert ours["train.weight_decay"] == float(row["weight_decay"]), row
        assert f"of {ours['train.epochs']} epochs" in row["learning_rate"], row
        assert "at " + ",".join(map(str, ours["train.milestones"])) in row["learning_rate"], row


@pytest.mark.parametrize("setting", sorted(PRAC_LT_SETTINGS))
def test_lt_setting_recipes_match_prac_table_1(setting):
    # Everything but the learning rate, the warm-up and the rewind point is PrAC's standard recipe.
    listed = CONFIG["experiments"]["prac_settings"][setting.removeprefix("prac_")]
    assert {tuple(c.split("/")) for c in listed} == set(PRAC_LT_SETTINGS[setting])
    for (dataset, backbone), row in PRAC_LT_SETTINGS[setting].items():
        recipe = resolve_recipe(CONFIG, setting, dataset, backbone)
        expected = {**PRAC_ALL, **PRAC_TABLE_1[(dataset, backbone)], **row, "imp.rewind": "init"}
        for key, value in expected.items():
            if value == BLANK:
                note = _documented_at(setting, dataset, backbone, key)
                assert note and len(note) > len(MARKER) + 20, (setting, dataset, backbone, key)
            else:
                assert _value(recipe, key) == value, (setting, dataset, backbone, key)
        # Another learning rate trains another dense model: the setting has its own.
        assert dense_run(CONFIG, setting, dataset, backbone) == setting


def test_every_stand_in_is_a_cell_the_grid_runs():
    runs = set(_runs(CONFIG))
    for paper, stand_ins in STAND_INS.items():
        assert {(paper, d, b) for d, b in stand_ins} <= runs, paper
    assert {p for p, _, _ in runs} == set(PAPERS)


def test_papers_with_different_recipes_get_their_own_dense_runs():
    # PrAC's 182 epochs are nobody else's; Structure-LTH's VGG-16 weight decay is not the base's; the jackpot's
    # VGG-19 on CIFAR-100 and Structure-LTH's have the same recipe and share one run, named after the first.
    assert dense_run(CONFIG, "prac", C10, "cifar_resnet20") == "prac"
    assert dense_run(CONFIG, "structure_lth", C10, "cifar_wrn32_2") == ""
    assert dense_run(CONFIG, "structure_lth", C10, "cifar_vgg16_bn") == "structure_lth"
    assert dense_run(CONFIG, "jackpot", C10, "cifar_vgg16_bn") == ""
    assert dense_run(CONFIG, "jackpot", C100, "cifar_vgg19_bn") == "structure_lth"
    assert dense_run(CONFIG, "jackpot", C10, "cifar_vgg19_bn") == "jackpot"


# --- no recipes: nothing changes ---

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _arg(command: str, flag: str) -> str:
    """The value after ``flag`` in a shell command, as the shell passes it."""
    args = shlex.split(command)
    return args[args.index(flag) + 1]


def _dry_run(*args: str) -> tuple[dict[str, int], list[str]]:
    r = subprocess.run([SNAKEMAKE, "-n", "--forceall", "-p", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    log = r.stdout + r.stderr
    table = log[log.index("Job stats:"):].splitlines()[3:]
    stats = {row.split()[0]: int(row.split()[1]) for row in itertools.takewhile(str.strip, table)}
    commands = [line.removeprefix("Shell command:").strip() for line in log.splitlines()
                if line.startswith("Shell command:")]
    return stats, commands


def _flags_of_blocks() -> set[str]:
    return {"--" + f.name.replace("_", "-") for cls in block_classes().values() for f in cls._fields()}


@pytest.mark.parametrize("files", [["config.yaml"], ["config.yaml", "smoke.yaml"]], ids=["default", "smoke"])
def test_a_config_without_recipes_runs_the_jobs_it_ran_before(files):
    config = load_config_files([str(CONFIGS / f) for f in files])
    assert "recipes" not in config
    grid = config["grid"]
    for paper, d, b in itertools.product(PAPERS, grid["datasets"], grid["backbones"]):
        assert recipe_changes(config, paper, d, b) == {k: dict(v or {}) for k, v in
                                                       ((config.get("overrides") or {}).get(d) or {}).items()}
        assert dense_run(config, paper, d, b) == ""
    stats, commands = _dry_run(*(["--configfile", f"config/{files[-1]}"] if len(files) > 1 else []))
    assert "pretrain_paper" not in stats
    results = config.get("results", "results")
    base = re.compile(rf"^{re.escape(results)}/pretrain/[^/]+/[^/]+/seed\d+$")
    pretrains = [_arg(c, "--pretrain") for c in commands if "--pretrain" in shlex.split(c)]
    assert pretrains and all(base.match(p) for p in pretrains), sorted(set(pretrains))[:5]
    # Recipes reach the stages only through the config files (no overrides here): no recipe flag on any command
    # but the few the grid sets per job.
    per_job = {"--dataset", "--backbone", "--seed", "--variant", "--init", "--sparsity", "--method"}
    # ... and the released code's settings, which a <method>-released run's folder names.
    per_job |= {f"--{k.replace('_', '-')}" for v in (STRUCTURE_METHODS.spec(m).released for m in STRUCTURE_METHODS.names()) for k in v}
    # ... and what any other planned run's folder changes (an ablation such as refill-scratch_e).
    for path in planned_runs(config):
        phase, _, _, _, *rest = os.path.relpath(path, results).split(os.sep)
        changes = run_changes(phase, rest[0]) if len(rest) > 1 else {}
        per_job |= {f"--{k.replace('_', '-')}" for block in changes.values() for k in block}
    used = {f for c in commands for f in re.findall(r"(?<= )--[a-z-]+", c)}
    assert used & _flags_of_blocks() <= per_job, sorted(used & _flags_of_blocks() - per_job)


def test_two_papers_with_equal_recipes_share_one_dense_run(tmp_path):
    config = tmp_path / "recipes.yaml"
    config.write_text(yaml.safe_dump({
        "results": str(tmp_path / "results"),
        "grid": {"backbones": ["test_resnet"], "seeds": [0]},
        "recipes": {"prac": {"train": {"epochs": 4}}, "jackpot": {"train": {"epochs": 4}},
                    "structure_lth": {"train": {"epochs": 5}, "imp": {"rounds": 2}}},
    }))
    stats, commands = _dry_run("--configfile", str(config))
    # The base run (the grid's dense model), PrAC's (shared with the jackpot) and Structure-LTH's.
    assert (stats["pretrain"], stats["pretrain_paper"]) == (1, 2)
    seed = f"{tmp_path}/results/pretrain/digits/test_resnet/seed0"

    def pretrain_of(stage: str) -> set[str]:
        return {_arg(c, "--pretrain") for c in commands if c.startswith(f"ticketbench {stage} ")}

    assert pretrain_of("prac") == pretrain_of("jackpot") == {f"{seed}/prac"}
    assert pretrain_of("structure") == {f"{seed}/structure_lth"}
    dense = {c.split("--out ")[1].split()[0]: c for c in commands if c.startswith("ticketbench pretrain ")}
    assert set(dense) == {seed, f"{seed}/prac", f"{seed}/structure_lth"}
    assert "--epochs=4" in dense[f"{seed}/prac"] and "--epochs=5" in dense[f"{seed}/structure_lth"]
    assert "--epochs" not in dense[seed]
    # The paper's recipe reaches its method stages too.
    imp = [c for c in commands if c.startswith("ticketbench imp ") and "--variant structure_lth" in c]
    assert imp and all("--rounds=2" in c and "--epochs=5" in c for c in imp)
