"""The papers' tables as data (config/paper_tables/*.yaml) and how each row maps onto our results.

A resolver gets one paper row and returns our value for each of its value columns, or None where
the grid did not run that experiment. Nothing here ever copies a paper value into our column.
Our values are means over seeds with their intervals (``SeedMean``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from .matching import AT_LEAST_DENSE, WITHIN_1_OF_DENSE, Rule, mean_extreme, round_by_seed, seed_extremes
from .results import Cell, Results, mean
from .stats import Estimate, seed_interval, test_interval_of, value_cell

DATASETS = {"CIFAR-10": "cifar10", "C10": "cifar10", "CIFAR-100": "cifar100", "C100": "cifar100",
            "Tiny-ImageNet": "tiny-imagenet", "Tiny": "tiny-imagenet", "ImageNet": "imagenet"}
NETWORKS = {"ResNet-20": "cifar_resnet20", "ResNet-56": "cifar_resnet56", "VGG-16": "cifar_vgg16_bn",
            "VGG-16(+)": "cifar_vgg16_bn", "ResNet-18": "cifar_resnet18", "RN-18": "cifar_resnet18",
            "WRN-32-2": "cifar_wrn32_2", "WRN-32-2(+)": "cifar_wrn32_2", "ResNet-32": "cifar_wrn32_2",
            "VGGNet-19": "cifar_vgg19_bn", "VGG-19": "cifar_vgg19_bn", "ResNet-50": "resnet50", "RN-50(+)": "resnet50",
            "RN-50": "resnet50"}


@dataclass
class PaperTable:
    paper: str
    id: str
    source: str
    title: str
    kind: str
    key_columns: list[str]
    value_columns: list[str]
    units: dict[str, str]
    headers: dict[str, str]
    rows: list[dict[str, Any]]
    fixed: dict[str, Any]
    notes: str = ""


def load_tables(folder: str | Path) -> list[PaperTable]:
    tables = []
    for path in sorted(Path(folder).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for t in data["tables"]:
            tables.append(PaperTable(paper=data["paper"], id=t["id"], source=t["source"], title=t["title"],
                                     kind=t.get("kind", "results"), key_columns=t["key_columns"],
                                     value_columns=t["value_columns"], units=t.get("units", {}),
                                     headers=t.get("headers", {}), rows=t["rows"], fixed=t.get("fixed") or {},
                                     notes=t.get("notes") or ""))
    return tables


def cell_of(row: dict, table: PaperTable) -> Cell | None:
    """Our (dataset, backbone) for a paper row, or None when the paper names something we do not map."""
    ctx = {**table.fixed, **row}
    dataset = DATASETS.get(str(ctx.get("dataset", "")))
    network = str(ctx.get("network", ctx.get("model", "")))
    if dataset == "tiny-imagenet" and network == "ResNet-18":
        return dataset, "resnet18"  # PrAC's Tiny-ImageNet ResNet-18 keeps the ImageNet stem
    backbone = NETWORKS.get(network)
    return (dataset, backbone) if dataset and backbone else None


class SeedMean(float):
    """Our mean over seeds, carrying its interval. It is a float so that the paper table formats it with the
    column's unit and subtracts the paper's value from it as before; formatting writes the interval after the
    mean: ``98.61 ± 0.52 (n=3; test ±1.21)``, or ``98.61 (n=1, no interval)`` from one seed."""

    half: float | None
    n: int
    test_half: float | None

    def __new__(cls, est: Estimate, scale: float = 100.0, test_half: float | None = None) -> "SeedMean":
        return cls._make(est.mean * scale, None if est.half is None else est.half * scale, est.n, test_half)

    @classmethod
    def _make(cls, value: float, half: float | None, n: int, test_half: float | None) -> "SeedMean":
        obj = super().__new__(cls, value)
        obj.half, obj.n, obj.test_half = half, n, test_half
        return obj

    def __format__(self, spec: str) -> str:
        m = format(float(self), spec)
        if self.half is None:
            return f"{m} (n={self.n}, no interval)"
        test = "" if self.test_half is None else f"; test ±{self.test_half:.2f}"
        return f"{m} ± {format(self.half, spec)} (n={self.n}{test})"

    def __sub__(self, other: float) -> "SeedMean":
        # ours - paper: the paper's number is a constant, so the difference keeps our interval.
        return SeedMean._make(float(self) - other, self.half, self.n, self.test_half)


def _ours(values, scale: float = 100.0, runs: list[dict] | None = None) -> SeedMean | None:
    """The mean over seeds of ``values``; for a test accuracy, ``runs`` (the per-seed records) add the Wilson
    interval of the pooled test set."""
    est = seed_interval(values)
    if est is None:
        return None
    ci = test_interval_of(r.get("test_correct") for r in runs) if runs else None
    return SeedMean(est, scale, None if ci is None else scale * (ci[1] - ci[0]) / 2)


def _shared(values, scale: float = 100.0) -> float | SeedMean | None:
    """A number every seed shares (a sparsity set by the pruning schedule) stays plain; if seeds differ, the
    interval shows it."""
    vals = [v for v in values if v is not None]
    if vals and max(vals) - min(vals) < 1e-9:
        return scale * vals[0]
    return _ours(vals, scale)


def _nearest_round(rows: list[dict], sparsity_pct: float, tol: float = 0.5) -> dict | None:
    best = min(rows, key=lambda r: abs(100 * r["sparsity"] - sparsity_pct), default=None)
    return best if best is not None and abs(100 * best["sparsity"] - sparsity_pct) <= tol else None


Resolver = Callable[[PaperTable, dict, Results], dict[str, Any]]
RESOLVERS: dict[str, Resolver] = {}


def resolver(*ids: str):
    def deco(fn: Resolver) -> Resolver:
        for i in ids:
            RESOLVERS[i] = fn
        return fn
    return deco


@resolver("prac_a2")
def _prac_fraction(t: PaperTable, row: dict, res: Results) -> dict:
    cell = cell_of(row, t)
    runs = res.get("prac", cell) if cell else []
    # Each seed's mean over its rounds, as the paper averages rounds; the interval is over seeds.
    return {"prac_fraction": _ours(mean(r.get("prac_trained_fraction") for r in m.get("rounds", [])) for m in runs)}


@resolver("prac_a3")
def _prac_sets(t: PaperTable, row: dict, res: Results) -> dict:
    cell = cell_of(row, t)
    r = _nearest_round(res.rounds("prac", cell), float(row["sparsity"])) if cell else None
    if r is None:
        return {}
    seeds = res.per_round("prac", cell)[r["round"]]
    sizes = {col: _ours((x.get(key) for x in seeds), 1) for col, key in
             (("cep", "cep_size"), ("cet", "cet_size"), ("prac", "prac_size"))}
    return {**sizes, "overlap": _ours(x.get("overlap_rate") for x in seeds)}


@resolver("slth_a5", "slth_a6", "slth_a7")
def _structure_rounds(t: PaperTable, row: dict, res: Results) -> dict:
    cell = cell_of(row, t)
    if cell is None:
        return {}
    out = {}
    # Beside the structured tickets, the IMP run they come from, as the paper's tables put them.
    for prefix, phase, variant in (("imp", "imp", res.structure_imp(cell)), ("refill", "structure", "refill"),
                                   ("regroup", "structure", "regroup")):
        seeds = res.per_round(phase, cell, variant).get(int(row["round"]))
        if seeds:
            out[f"{prefix}_remaining"] = _shared(1 - x["sparsity"] for x in seeds)
            out[f"{prefix}_acc"] = _ours((x["test_acc"] for x in seeds), runs=seeds)
    return out


@resolver("slth_a3", "slth_a4")
def _structure_vs_random(t: PaperTable, row: dict, res: Results) -> dict:
    cell = cell_of(row, t)
    method = "refill" if t.id == "slth_a3" else "regroup"
    seeds = res.per_round("structure", cell, method).get(int(row["round"])) if cell else None
    # Random re-initialisation of structured tickets is not part of the grid: that column stays "not run".
    return {} if not seeds else {"remaining": _shared(1 - x["sparsity"] for x in seeds),
                                 "acc_ours": _ours((x["test_acc"] for x in seeds), runs=seeds)}


@resolver("jp_r1")
def _jackpot_readme(t: PaperTable, row: dict, res: Results) -> dict:
    cell = cell_of(row, t)
    if cell is None:
        return {}
    sp = float(str(row["sparsity"]).rstrip("%")) / (100 if float(str(row["sparsity"]).rstrip("%")) > 1 else 1)
    out = {}
    for run in res.get("jackpot", cell, f"magnitude-s{sp:g}"):
        epochs = len(run.get("epochs", []))
        col = {30: "top1_30s", 160: "top1_160s"}.get(epochs)
        if col:
            out.setdefault(col, []).append(run)
    return {k: _ours((r["test_acc"] for r in runs), runs=runs) for k, runs in out.items()}


@resolver("prac_1", "slth_1")
def _recipe(t: PaperTable, row: dict, res: Results) -> dict:
    """Settings tables: the recipe our run of that cell actually used (from its hparams.json)."""
    datasets = [d.strip() for d in str(row.get("dataset") or "").split("&")]
    out: dict[str, Any] = {}
    for d in datasets:
        cell = cell_of({**row, "dataset": d}, t)
        settings = res.settings("pretrain", cell) if cell else None
        if settings:
            train = settings["train"]
            out = {"batch_size": train["batch_size"], "learning_rate": str(train["lr"]),
                   "weight_decay": str(train["weight_decay"]), "warmup": train["warmup_epochs"],
                   "optimizer": f"SGD momentum {train['momentum']}"}
            break
    return out


def _extremes_cell(res: Results, cell: Cell, runs: dict[str, tuple[str, str]], rule: Rule) -> str | None:
    """Each run's extreme matching sparsity over seeds (mean ± interval), saying how many seeds are capped."""
    parts = []
    for label, (phase, variant) in runs.items():
        ext = seed_extremes(res, cell, phase, variant, rule)
        if ext:
            capped = sum(e.capped for e in ext.values())
            parts.append(f"{label} {value_cell((e.sparsity for e in ext.values()), unit='%')}" +
                         (f" (capped on {capped} of {len(ext)} seeds)" if capped else ""))
    return ", ".join(parts) or None


def _claim_cells(row: dict, t: PaperTable) -> list[tuple[str, Cell]]:
    """(label, our cell) for every dataset x network a claims row names that the grid can map."""
    out = []
    for dataset in row.get("datasets") or []:
        for network in row.get("networks") or [None]:
            cell = cell_of({"dataset": dataset, **({"network": network} if network else {})}, t)
            if cell is not None:
                out.append((f"{dataset} {network}" if network else dataset, cell))
    return out


@resolver("prac_claims")
def _prac_claims(t: PaperTable, row: dict, res: Results) -> dict:
    """Savings claims with PrAC's savings rule, the matching-sparsity claim with its 'within 1% of dense' rule."""
    text = str(row.get("claim"))
    parts = []
    if "aving" in text and row.get("numbers") and row.get("networks"):
        for key in row["numbers"]:
            dataset = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(key, key)
            for network in row["networks"]:
                cell = cell_of({"dataset": dataset, "network": network}, t)
                s = res.savings(cell) if cell else None  # the claims table's all-seed matching rule
                if s is not None:
                    parts.append(f"{key} {network}: " + ("no matching sparsity" if s["saving"] is None else
                                                          f"{value_cell(s['seed_savings'], unit='%')} up to sparsity "
                                                          f"{100 * s['matched_sparsity']:.2f}%" +
                                                          (" (capped)" if s["capped"] else "")))
    elif text.startswith("Matching sparsity within 1% of dense"):
        # The paper names no network for this sentence: every network the grid ran on the dataset.
        for dataset in row.get("datasets") or []:
            for cell in (c for c in res.cells("imp") if c[0] == DATASETS.get(dataset)):
                shown = _extremes_cell(res, cell, {"PrAC": ("prac", ""), "random pruning": ("imp", "random_prune"),
                                                   "random tickets": ("imp", "random_reinit")}, WITHIN_1_OF_DENSE)
                if shown:
                    parts.append(f"{dataset} {cell[1]}: {shown}")
    return {"value": "; ".join(parts)} if parts else {}


@resolver("slth_claims")
def _slth_claims(t: PaperTable, row: dict, res: Results) -> dict:
    """Extreme sparsities and the savings at them, with Structure-LTH's 'at least dense accuracy' rule."""
    text = str(row.get("claim"))
    parts = []
    if text.startswith("CIFAR extreme"):
        methods = ("refill", "refill_plus") if "channel" in text else ("regroup",)
        for label, cell in _claim_cells(row, t):
            shown = _extremes_cell(res, cell, {m: ("structure", m) for m in methods}, AT_LEAST_DENSE)
            if shown:
                parts.append(f"{label}: {shown}")
    elif text.startswith("Group-wise time savings at undamaged accuracy"):
        for label, cell in _claim_cells(row, t):
            for method in ("regroup", "refill"):
                found = mean_extreme(res, cell, "structure", method, AT_LEAST_DENSE)
                if found is None:
                    continue
                ext = found.extreme
                if ext.point is None:
                    parts.append(f"{label} {method}: no round at dense accuracy")
                    continue
                rows = round_by_seed(res, "structure", cell, method, ext.point.round)
                saving = value_cell((rows[s].get("time_saving") for s in found.seeds if s in rows), unit="%")
                parts.append(f"{label} {method}: {saving} at sparsity {ext.describe()}")
    return {"value": "; ".join(parts)} if parts else {}


def ours(table: PaperTable, row: dict, res: Results) -> dict[str, Any]:
    fn = RESOLVERS.get(table.id)
    return fn(table, row, res) if fn else {}
