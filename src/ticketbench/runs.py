"""The kinds of run a grid makes, as data, and the runs a config plans.

Every run lives in ``results/<phase>/<dataset>/<backbone>/seed<k>/<folder>/``. Each :class:`Kind` below is one
shape of ``<folder>``: its pattern, the recipe it follows, the run of the same cell whose masks it reads, what it
changes in the config, and the ``experiments:`` key that asks for it. Everything that reads or writes a folder name
asks here: the Snakemake wildcard constraints, :func:`planned_runs`, the config check, the report's coverage and
lookups. Folder names are formatted from the patterns and parsed back with the same patterns (:func:`parse`), as
open_lth derives a job's folder from its description. The names keep their historical spelling, so results
already shared through DVC stay valid.

Torch-free: it runs inside every Snakemake start.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ConfigError
from .methods.registry import IMP_VARIANTS, STRUCTURE_METHODS
from .recipes import PAPERS, PRAC_SETTINGS, RECIPES, dense_run

# Structure-LTH's own IMP run (its policy and rewind point): refill, refill+, regroup and timing read it.
STRUCTURE_IMP = "structure_lth"
# Where it rewinds by default: the paper's epoch 8 of 160 (imp.structure_rewind's default, stated here because the
# planner cannot import the hparams of methods/imp.py, which import torch).
STRUCTURE_REWIND = "5%"
NAME = r"[a-z][a-z0-9_]*"  # a registered name's shape (criteria, IMP variants); the config check asks the registries
DATASET = r"[a-z][a-z0-9_-]*"
FRACTION = r"0\.\d+"


def _alternatives(names) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n)))


def field_patterns(datasets: list[str] | None = None) -> dict[str, str]:
    """The regex of each field a folder pattern holds; ``datasets``: the grid's, where a field names one (the
    Snakemake rules know them), else any dataset-shaped name."""
    return {
        "percent": r"\d+", "k": r"\d+", "rho": FRACTION, "sparsity": FRACTION, "variant": NAME, "follower": NAME,
        "criterion": NAME, "source_variant": NAME, "source": "[^/]+", "init": "magnitude|random",
        "search": rf"[et]\d+|r{FRACTION}", "budget": "e|b", "setting": "|".join(PRAC_SETTINGS),
        "method": _alternatives(STRUCTURE_METHODS.names()),
        "own": _alternatives(IMP_VARIANTS.names(STRUCTURE_IMP)),
        "dataset": _alternatives(datasets) if datasets else DATASET,
    }


@dataclass(frozen=True)
class Kind:
    """One shape of run folder within a phase."""

    phase: str
    pattern: str  # the folder, with {field} placeholders
    what: str  # in words, for help texts
    recipe: str = "prac"  # the recipe it follows; "{setting}" fields name PrAC's LT settings
    variant: str = ""  # IMP: the variant it runs (a pattern)
    reads: str = ""  # IMP: the folder of the same cell whose masks it follows
    imp: str = STRUCTURE_IMP  # structure: the IMP folder of the same cell whose rounds it structures
    changes: Callable[[dict[str, str]], dict[str, dict]] = field(default=lambda f: {})
    key: str = ""  # experiments.<key> that lists it by name, if any

    def regex(self, fields: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{fields[m[1]]})", re.escape(self.pattern).replace(
            r"\{", "{").replace(r"\}", "}"))

    def format(self, **values: Any) -> str:
        return self.pattern.format(**values)


def _prac_changes(f: dict[str, str]) -> dict[str, dict]:
    return {"prac": {"forget_threshold": int(f["k"])}} if "k" in f else {}


def _released(f: dict[str, str]) -> dict[str, dict]:
    return {"structure": dict(STRUCTURE_METHODS.spec(f["method"]).released)}


# Within a phase, the first kind whose pattern matches the whole folder is the folder's kind: the specific shapes
# come before the general ones.
KINDS: tuple[Kind, ...] = (
    Kind("pretrain", "", "the grid's dense run", recipe=""),
    Kind("pretrain", "{paper}", "a paper's own dense run, where its recipe trains another", recipe="{paper}"),
    Kind("prac", "", "PrAC-IMP"),
    Kind("prac", "no_cep", "PrAC-IMP with CET only", changes=lambda f: {"prac": {"no_cep": True}},
         key="prac_ablations"),
    Kind("prac", "no_early_stop", "PrAC-IMP without early stop", changes=lambda f: {"prac": {"no_early_stop": True}},
         key="prac_ablations"),
    Kind("prac", "random_subset", "PrAC-IMP on a random subset of the PrAC set's size",
         changes=lambda f: {"prac": {"random_subset": True}}, key="prac_ablations"),
    Kind("prac", "ef{k}", "PrAC-IMP with E_F = k", changes=_prac_changes, key="prac_ablations"),
    Kind("prac", "{setting}", "PrAC-IMP under one of PrAC's LT settings", recipe="prac_{setting}",
         key="prac_settings"),
    Kind("imp", "full", "full IMP", variant="full"),
    Kind("imp", "{own}", "Structure-LTH's own IMP, or a variant of its family", recipe=STRUCTURE_IMP,
         variant="{own}"),
    Kind("imp", "full-{setting}", "full IMP under one of PrAC's LT settings", recipe="prac_{setting}",
         variant="full"),
    Kind("imp", "prac-from-{source}", "IMP on another backbone's PrAC sets", variant="full"),
    Kind("imp", STRUCTURE_IMP + "-rw{percent}", "Structure-LTH's IMP rewound to p% of training",
         recipe=STRUCTURE_IMP, variant=STRUCTURE_IMP,
         changes=lambda f: {"imp": {"structure_rewind": f"{f['percent']}%"}}, key="imp_runs"),
    Kind("imp", STRUCTURE_IMP + "-{follower}", "a variant following Structure-LTH's IMP", recipe=STRUCTURE_IMP,
         variant="{follower}", reads=STRUCTURE_IMP, key="imp_runs"),
    Kind("imp", "{follower}-of-{source_variant}", "a variant following another variant's masks (a control of it: "
         "shuffled, inverted, re-initialised)", variant="{follower}", reads="{source_variant}", key="imp_runs"),
    Kind("imp", "{variant}", "a variant following full IMP's masks", variant="{variant}", reads="full",
         key="imp_runs"),
    Kind("structure", "timing", "latency of the structured tickets", recipe=STRUCTURE_IMP),
    Kind("structure", "{method}", "a structure method", recipe=STRUCTURE_IMP),
    Kind("structure", "{method}-reinit", "random re-initialisation", recipe=STRUCTURE_IMP,
         changes=lambda f: {"structure": {"reinit": True}}, key="structure_ablations"),
    Kind("structure", "{method}-scratch_{budget}", "Scratch-E/B: the slimmed architecture from scratch",
         recipe=STRUCTURE_IMP, changes=lambda f: {"structure": {"scratch": f["budget"]}}, key="structure_ablations"),
    Kind("structure", "{method}-released", "the released code's settings", recipe=STRUCTURE_IMP, changes=_released,
         key="structure_ablations"),
    Kind("structure", "{method}-rho{rho}", "Refill+'s rate", recipe=STRUCTURE_IMP,
         changes=lambda f: {"structure": {"rho": float(f["rho"])}}, key="structure_ablations"),
    Kind("structure", "{method}-rw{percent}", "from the IMP run rewound to p%", recipe=STRUCTURE_IMP,
         imp=STRUCTURE_IMP + "-rw{percent}", key="structure_ablations"),
    Kind("structure", "{method}-from-{source_variant}", "from another IMP run's masks", recipe=STRUCTURE_IMP,
         imp=STRUCTURE_IMP + "-{source_variant}", key="structure_ablations"),
    Kind("structure", "{method}-transfer-{dataset}", "structured masks of another dataset", recipe=STRUCTURE_IMP,
         imp="", key="structure_transfers"),
    Kind("structure", "{method}-{criterion}", "a refill channel score", recipe=STRUCTURE_IMP,
         changes=lambda f: {"structure": {"criterion": f["criterion"]}}, key="structure_ablations"),
    Kind("instability", "{source}", "the instability of the cell's IMP run <source>", reads="{source}",
         key="instability"),
    Kind("jackpot", "{init}-s{sparsity}", "a jackpot search", recipe="jackpot"),
    Kind("jackpot", "{init}-s{sparsity}-{search}", "a jackpot search of another length", recipe="jackpot",
         changes=lambda f: {"jackpot": ({"rate": float(f["search"][1:])} if f["search"][0] == "r" else
                                        {"epochs" if f["search"][0] == "e" else "tune_epochs": int(f["search"][1:])})},
         key="jackpot_searches"),
)


def kinds(phase: str | None = None, key: str | None = None) -> list[Kind]:
    return [k for k in KINDS if (phase is None or k.phase == phase) and (key is None or k.key == key)]


def folder(phase: str, pattern: str, **values: Any) -> str:
    """The folder of the kind ``pattern`` of ``phase`` with these fields: ``folder("structure", "{method}-released",
    method="regroup")`` is ``regroup-released``. A pattern that is no kind's fails here, not as a missing run."""
    kind = next((k for k in kinds(phase) if k.pattern == pattern), None)
    if kind is None:
        raise KeyError(f"no run kind {phase}/{pattern}")
    return kind.format(**values)


def _fields(datasets=None) -> dict[str, str]:
    return {**field_patterns(datasets), "paper": "|".join(RECIPES)}


@functools.lru_cache(maxsize=None)
def _compiled(phase: str) -> list[tuple[Kind, re.Pattern]]:
    fields = _fields()
    return [(kind, re.compile(kind.regex(fields))) for kind in kinds(phase)]


def refresh() -> None:
    """Read the method registries again (after a package that registers methods was installed)."""
    for methods in (IMP_VARIANTS, STRUCTURE_METHODS):
        methods.refresh()
    _compiled.cache_clear()
    parse.cache_clear()


@functools.lru_cache(maxsize=4096)
def parse(phase: str, folder: str) -> tuple[Kind, dict[str, str]] | None:
    """The kind of ``results/<phase>/.../<folder>`` and its fields, or None for a folder of no kind."""
    for kind, pattern in _compiled(phase):
        m = pattern.fullmatch(folder)
        if m:
            return kind, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


def folder_pattern(phase: str, datasets: list[str] | None = None, *, named: bool = False) -> str:
    """One regex for every named folder of a phase: the Snakemake wildcard constraint of the rule that writes them."""
    fields = _fields(datasets)
    alts = [k.regex(fields) for k in kinds(phase) if k.pattern and k.pattern != "timing" and
            (not named or k.key)]
    return re.sub(r"\(\?P<\w+>", "(?:", "|".join(f"(?:{a})" for a in alts))


def allowed_names(key: str) -> str:
    """What the names of ``experiments.<key>`` look like: the config error's "allowed" words."""
    methods = ", ".join(STRUCTURE_METHODS.names())
    channels = ", ".join(m for m in STRUCTURE_METHODS.names() if STRUCTURE_METHODS.spec(m).channels)
    return {
        "prac_ablations": "no_cep, no_early_stop, random_subset or ef<k> (PrAC-IMP with E_F = k)",
        "prac_settings": " or ".join(PRAC_SETTINGS),
        "imp_runs": "<variant> (follows full IMP), <variant>-of-<source> (follows the run of variant <source>, e.g. "
                    "random_reinit-of-snip), structure_lth-<variant> (follows Structure-LTH's IMP) or "
                    "structure_lth-rw<p> (Structure-LTH's IMP rewound to p% of training)",
        "structure_ablations": f"<method>-<criterion>, <method>-rho<r>, <method>-scratch_e or <method>-scratch_b "
                               f"({channels}), or <method>-reinit, "
                               f"<method>-released, <method>-rw<p>, <method>-from-<variant> ({methods})",
        "structure_transfers": f"<method>-transfer-<dataset> ({methods}), e.g. regroup-transfer-imagenet",
        "instability": "the folder of an IMP run of the cell: full, a variant (e.g. random_prune_layerwise) or "
                       "<variant>-of-<source>",
        "jackpot_searches": "<init>-s<sparsity>-e<search epochs>, <init>-s<sparsity>-t<tuning epochs> or "
                            "<init>-s<sparsity>-r<rate>, e.g. magnitude-s0.9-e160",
    }[key]


EXTRA_RUNS = ("prac_ablations", "prac_settings", "imp_runs", "instability", "structure_ablations",
              "structure_transfers", "jackpot_searches")
# The keys whose cells may lie outside grid.only: a transfer target needs its dense run only, not the cell's grid.
ANY_CELL = {"structure_transfers"}
EXTRA_RUNS_HELP = {
    "prac_ablations": "PrAC-IMP with one setting changed, in results/prac/<d>/<b>/seed<k>/<name>/: no_cep (CET "
                      "only), no_early_stop, random_subset (each round on a random subset of the PrAC set's size), "
                      "ef<k> (forget threshold E_F = k); name -> [<dataset>/<backbone>, ...]",
    "prac_settings": "PrAC Table 1's LT settings (low, warmup) with their recipes recipes.prac_<name>: PrAC-IMP in "
                     "results/prac/<d>/<b>/seed<k>/<name>/ and full IMP in results/imp/<d>/<b>/seed<k>/full-<name>/; "
                     "name -> cells",
    "imp_runs": "IMP runs on a few cells, in results/imp/<d>/<b>/seed<k>/<name>/: <variant> (a variant that follows "
                "full IMP's masks, e.g. snip), <variant>-of-<source> (one that follows the masks of the run of variant <source> of the "
                "cell, which runs too: e.g. random_prune_layerwise-of-snip shuffles SNIP's masks within each layer), "
                "structure_lth-<variant> (one that follows Structure-LTH's own IMP run, "
                "with its recipe, layers and rewind point), structure_lth-rw<p> (Structure-LTH's IMP rewound to p% of "
                "training); name -> cells",
    "instability": "the instability of an IMP run's tickets (Frankle et al. 2020: two copies trained from its rewind "
                   "point with different data orders, the error barrier on the line between them; block instability:) "
                   "in results/instability/<d>/<b>/seed<k>/<imp run>/, e.g. full; the IMP run runs too; name -> cells",
    "structure_ablations": "Structure-LTH ablations in results/structure/<d>/<b>/seed<k>/<name>/: "
                           "<method>-<criterion> (refill channel score), <method>-rho<r> (Refill+ rate), "
                           "<method>-reinit (random re-initialisation), <method>-scratch_e and "
                           "<method>-scratch_b (Liu et al.'s Scratch-E/B: the slimmed architecture of each round's "
                           "ticket from a fresh init for the recipe's epochs, or for the dense run's MACs; refill "
                           "and refill_plus), <method>-released (the released code's "
                           "settings: regroup_preset released; refill_rule released, coupled per_layer, "
                           "refill_batchnorm released, criterion remain), <method>-rw<p> (from the IMP run "
                           "structure_lth-rw<p>), <method>-from-<variant> (from the masks of the IMP run "
                           "structure_lth-<variant>); the IMP runs they read run too; name -> cells",
    "structure_transfers": "structured tickets found on another dataset, in results/structure/<d>/<b>/seed<k>/"
                           "<method>-transfer-<source>/: round r's structured conv masks are those of the <method> "
                           "run of <source> with the same backbone, retrained on <d>; name -> cells (a cell outside "
                           "grid.only runs these, its dense run and its Structure-LTH IMP run, for the rewind point; "
                           "a source cell outside grid.only runs its dense run, that IMP run and the <method> run)",
    "jackpot_searches": "jackpot searches of another length in results/jackpot/<d>/<b>/seed<k>/<name>/: "
                        "<init>-s<sparsity>-e<epochs> (search epochs), <init>-s<sparsity>-t<epochs> (weight tuning "
                        "after the recipe's search) or <init>-s<sparsity>-r<rate> (swaps restricted to that rate, our "
                        "reading of the short restriction); name -> cells",
}


def _listed(key: str, name: str) -> tuple[Kind, dict[str, str]] | None:
    """The kind of an ``experiments.<key>`` name, if it is one of the kinds that key lists."""
    phase = kinds(key=key)[0].phase
    found = parse(phase, str(name))
    # experiments.imp_runs names full IMP's and Structure-LTH's own runs too: the config check refuses them with its
    # own words (they follow no reference).
    if found and (found[0].key == key or (key == "imp_runs" and found[0].pattern in ("full", "{own}"))):
        return found
    return None


def grid_cells(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, backbone, seed) of the grid; ``grid.only`` narrows a dataset's backbones."""
    grid = config["grid"]
    only = grid.get("only") or {}
    return [(d, b, s) for d, b, s in itertools.product(grid["datasets"], grid["backbones"], grid["seeds"])
            if b in only.get(d, [b])]


def dense_cells(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (dataset, backbone, seed) of ``grid.dense``: cells that run their dense runs alone (the base one and
    each paper's own), outside grid.only."""
    grid = config["grid"]
    return [(d, b, s) for d, backbones in (grid.get("dense") or {}).items() for b in backbones
            for s in grid["seeds"]]


def extra_runs(config: dict[str, Any], key: str) -> dict[str, list[tuple[str, str]]]:
    """``experiments.<key>`` as {run folder: [(dataset, backbone), ...]}, each cell one of the grid's."""
    grid = config["grid"]
    if key in ANY_CELL:
        cells = set(itertools.product(grid["datasets"], grid["backbones"]))
        where = "grid.datasets x grid.backbones"
    else:
        cells = {(d, b) for d, b, _ in grid_cells(config)}
        where = "grid.datasets x grid.backbones, narrowed by grid.only"
    out = {}
    for name, listed in ((config.get("experiments") or {}).get(key) or {}).items():
        if _listed(key, name) is None:
            raise ConfigError(f"experiments.{key}", name, allowed_names(key))
        out[name] = []
        for text in listed or []:
            d, _, b = str(text).partition("/")
            if (d, b) not in cells:
                raise ConfigError(f"experiments.{key}.{name}", text, f"a cell of the grid as <dataset>/<backbone> "
                                  f"({where}); a grid layered on another config drops that config's runs with "
                                  f"experiments.{key}.{name}: []")
            out[name].append((d, b))
    return out


def _parsed(phase: str, folder: str) -> tuple[Kind | None, dict[str, str]]:
    found = parse(phase, folder)
    return found if found else (None, {})


def imp_run(folder: str) -> tuple[str, str | None]:
    """An IMP folder's variant, and the folder of the IMP run of the same cell whose masks it follows (None for
    none). A name that is no other run's is a variant that follows full IMP (random_prune, snip, ...)."""
    kind, f = _parsed("imp", folder)
    if kind is None:
        return folder, "full"
    return kind.variant.format(**f), kind.reads.format(**f) or None


def rewind_percent(folder: str) -> int | None:
    """The rewind point of ``structure_lth-rw<p>``, in percent of training; None for other folders."""
    _, f = _parsed("imp", folder)
    return int(f["percent"]) if "percent" in f else None


def structure_run(folder: str) -> tuple[str, dict[str, dict]]:
    """A structure folder's method and what it changes in the ``structure`` block."""
    kind, f = _parsed("structure", folder)
    if kind is None or "method" not in f:
        return folder, {}
    return f["method"], kind.changes(f)


def structure_source(folder: str) -> tuple[str, str]:
    """Where a structure run's tickets come from: ("imp", the IMP folder of the same cell whose rounds it
    structures) or ("transfer", the dataset whose structure run of the same backbone gives its masks)."""
    kind, f = _parsed("structure", folder)
    if kind is None:
        return "imp", STRUCTURE_IMP
    return ("imp", kind.imp.format(**f)) if kind.imp else ("transfer", f["dataset"])


def recipe_of(phase: str, folder: str = "") -> str | None:
    """The recipe (a paper's, or a variant of it) that a run in ``results/<phase>/.../seed<k>/<folder>`` follows;
    None for the grid's base dense run. The rules and the report's coverage both ask here."""
    kind, f = _parsed(phase, folder)
    if kind is None:
        return {"pretrain": folder or None, "structure": STRUCTURE_IMP, "jackpot": "jackpot"}.get(phase, "prac")
    if phase == "instability":  # trains the tickets of an IMP run as that run trained them
        return recipe_of("imp", f["source"])
    return kind.recipe.format(**f) or None


def run_changes(phase: str, folder: str, recipe: dict[str, dict] | None = None) -> dict[str, dict]:
    """What a run folder changes on top of its recipe (an ablation or another search length); {} for the others.

    ``recipe``, the run's resolved recipe: a variant that follows Structure-LTH's IMP prunes its layers and rewinds
    where that run does (imp.structure_rewind), so that its tickets differ from Structure-LTH's in the mask alone.
    """
    kind, f = _parsed(phase, folder)
    if kind is None:
        return {}
    if kind.reads == STRUCTURE_IMP:
        rewind = ((recipe or {}).get("imp") or {}).get("structure_rewind", STRUCTURE_REWIND)
        return {"imp": {"policy": "structure_lth", "rewind": rewind}}
    return kind.changes(f)




def planned_runs(config: dict[str, Any]) -> dict[str, str]:
    """Every output the workflow's `all` rule asks for, as {path: the rule that writes it}, in a stable order.

    Every run is a target, not only the report: a fresh clone holds the committed report, and asking for it alone
    would let Snakemake stop there without running a single job. Each paper's own dense run is listed too (it is
    an input of that paper's stages anyway), so that the report's coverage finds every run it reads here.
    """
    exp = config.get("experiments") or {}
    root = config.get("results", "results")
    transfer = [(t["source"], t["target"]) for t in exp.get("transfer", [])]
    extra = {key: extra_runs(config, key) for key in EXTRA_RUNS}
    out: dict[str, str] = {}

    def add(rule: str, phase: str, d: str, b: str, s: int, *parts: str) -> None:
        out.setdefault(os.path.join(root, phase, d, b, f"seed{s}", *parts), rule)

    def here(key: str, d: str, b: str) -> list[str]:
        return [n for n, cells in extra[key].items() if (d, b) in cells]

    for d, b, s in grid_cells(config):
        # The base dense run even where every paper trains its own: the report's dense accuracy of a cell is its.
        add("pretrain", "pretrain", d, b, s, "metrics.json")
        structure = [*exp.get("structure_methods", []), *here("structure_ablations", d, b)]
        variants = ["full", *exp.get("imp_baselines", []), *exp.get("imp_variants", [])]
        if structure:
            variants.append(STRUCTURE_IMP)
        variants += [folder("imp", "full-{setting}", setting=v) for v in here("prac_settings", d, b)]
        # The IMP runs that structure ablations read (another rewind point or mask source), then those listed alone.
        variants += [source for kind, source in map(structure_source, structure) if kind == "imp"]
        for n in [*here("imp_runs", d, b), *here("instability", d, b)]:
            # A control of another variant's masks (<follower>-of-<source>) needs that variant's run of the cell.
            reads = imp_run(n)[1]
            variants += [reads, n] if reads not in (None, "full", STRUCTURE_IMP) else [n]
        for v in variants:
            add("imp", "imp", d, b, s, v, "metrics.json")
        for n in here("instability", d, b):
            add("instability", "instability", d, b, s, n, "metrics.json")
        for src, tgt in transfer:
            if tgt == b:
                add("imp", "imp", d, b, s, folder("imp", "prac-from-{source}", source=src), "metrics.json")
        if exp.get("prac", True):
            add("prac", "prac", d, b, s, "metrics.json")
            add("prac_savings", "prac", d, b, s, "savings.json")
        for n in [*here("prac_ablations", d, b), *here("prac_settings", d, b)]:
            add("prac_ablation", "prac", d, b, s, n, "metrics.json")
        for sp in exp.get("jackpot_sparsities", []):
            add("jackpot", "jackpot", d, b, s, folder("jackpot", "{init}-s{sparsity}", init="magnitude", sparsity=sp),
                "metrics.json")
        for n in here("jackpot_searches", d, b):
            add("jackpot_search", "jackpot", d, b, s, n, "metrics.json")
        for sp in exp.get("jackpot_random_sparsities", []):
            add("jackpot_cost", "jackpot", d, b, s, f"cost-s{sp}.json")
            for init in ("random", "magnitude"):
                search = folder("jackpot", "{init}-s{sparsity}", init=init, sparsity=sp)
                add("jackpot_overlap", "jackpot", d, b, s, f"overlap-{search}", "overlap.csv")
        for m in structure:
            add("structure", "structure", d, b, s, m, "metrics.json")
        if {"refill", "regroup"} <= set(exp.get("structure_methods", [])):
            add("timing", "structure", d, b, s, "timing", "timing.json")
    for n, targets in extra["structure_transfers"].items():
        method, _ = structure_run(n)
        _, source = structure_source(n)
        for (d, b), s in itertools.product(targets, config["grid"]["seeds"]):
            # A target outside grid.only runs these alone: its dense run, and its own Structure-LTH IMP run, which
            # gives the rewind point (the masks are the source's); so does a source outside grid.only, with the
            # structure run whose masks the transfer reads.
            for cell, run in (((d, b), n), ((source, b), method)):
                add("pretrain", "pretrain", *cell, s, "metrics.json")
                add("imp", "imp", *cell, s, STRUCTURE_IMP, "metrics.json")
                add("structure", "structure", *cell, s, run, "metrics.json")
    for d, b, s in dense_cells(config):
        add("pretrain", "pretrain", d, b, s, "metrics.json")
        for paper in PAPERS:
            own = dense_run(config, paper, d, b)
            if own:
                add("pretrain_paper", "pretrain", d, b, s, own, "metrics.json")
    dense: dict[tuple, str] = {}
    for path in list(out):
        phase, d, b, seed, *rest = os.path.relpath(path, root).split(os.sep)
        if phase == "pretrain":
            continue
        recipe = recipe_of(phase, rest[0] if len(rest) > 1 else "")
        key = (recipe, d, b)
        if key not in dense:
            dense[key] = dense_run(config, recipe, d, b)
        if dense[key]:
            add("pretrain_paper", "pretrain", d, b, int(seed[4:]), dense[key], "metrics.json")
    return out


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def job_kind(rule: str, path: str, root: str = "results") -> str:
    """What a planned output's job is, as ``rule:phase/folder`` with every number in the folder as N (``imp:imp/
    structure_lth-rwN``, ``pretrain_paper:pretrain/prac``): the paper grid's ~60 kinds, which its miniature runs
    each at least once (the cells and seeds a kind runs on are the grid's scale, not another code path)."""
    parts = os.path.relpath(path, root).split(os.sep)
    if len(parts) < 5 or not parts[3].startswith("seed"):  # collecting and the report: one job per grid
        return rule
    phase, _, _, _, *rest = parts
    folder = '/'.join(rest[:-1]) or rest[-1]
    # The run a control or an instability run reads is the grid's choice too: random_reinit-of-snip and
    # random_reinit-of-grasp run the same code on another run's masks.
    kind, f = _parsed(phase, folder) if len(rest) > 1 else (None, {})
    if kind is not None and kind.reads and kind.reads != "full":
        folder = kind.format(**{**f, **{k: "R" for k in ("source_variant", "source") if k in f}})
    return f"{rule}:{phase}/{NUMBER.sub('N', folder)}"
