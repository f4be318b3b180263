"""The papers' tables as data (config/paper_tables/*.yaml), and what a cell of ours needs: the runs it is read from.

A value column of a paper row needs one of three things:

* :class:`Run` s: runs of the grid, each ``results/<phase>/<dataset>/<backbone>/seed<k>/<folder>/<file>`` over
  the seeds. The report's resolver reads the cell from exactly these runs (:mod:`.paper`), and
  ``ticketbench report --coverage`` (:mod:`.coverage`) checks that a config plans them, so the two cannot disagree.
* :class:`Reading`: runs, as above, that fill a cell only under our reading of something the paper leaves
  undefined; the reading is a deviation of :mod:`.deviations`, which the coverage names.
* :class:`PaperOnly`: a fact of the paper that no run can give (a model size, a section reference).
* :class:`Unmapped`: a cell no run of ticketbench can fill, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .results import Cell, Results

DATASETS = {"CIFAR-10": "cifar10", "C10": "cifar10", "CIFAR-100": "cifar100", "C100": "cifar100",
            "Tiny-ImageNet": "tiny-imagenet", "Tiny": "tiny-imagenet", "ImageNet": "imagenet"}
# RN-50(+) is Structure-LTH's ResNet-50 with a 3x3 stride-1 stem and no max-pool (Table A7); plain RN-50 keeps the
# ImageNet stem, on Tiny-ImageNet too (methods.md §3.6). OpenLTH's model names are its registry's.
NETWORKS = {"ResNet-20": "cifar_resnet20", "ResNet-56": "cifar_resnet56", "VGG-16": "cifar_vgg16_bn",
            "VGG-16(+)": "cifar_vgg16_bn", "ResNet-18": "cifar_resnet18", "RN-18": "cifar_resnet18",
            "WRN-32-2": "cifar_wrn32_2", "WRN-32-2(+)": "cifar_wrn32_2", "ResNet-32": "cifar_wrn32_2",
            "VGGNet-19": "cifar_vgg19_bn", "VGG-19": "cifar_vgg19_bn", "ResNet-50": "resnet50", "RN-50": "resnet50",
            "RN-50(+)": "resnet50_cifar_stem", "MBNet-v1": "cifar_mobilenet_v1", "MobileNet-v1": "cifar_mobilenet_v1",
            "cifar_resnet_20": "cifar_resnet20", "cifar_vgg_16": "cifar_vgg16_bn", "imagenet_resnet_50": "resnet50"}


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
    # Value columns where more is better (accuracies, savings): ours beating the paper's by more than our interval
    # is "better than expected: check", the mirror of falling short.
    higher_is_better: tuple[str, ...] = ()
    # Series of (weights remaining, accuracy) column pairs, by the paper's method name: drawn beside our curves.
    curves: dict[str, tuple[str, str]] = field(default_factory=dict)


def load_tables(folder: str | Path) -> list[PaperTable]:
    tables = []
    for path in sorted(Path(folder).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for t in data["tables"]:
            tables.append(PaperTable(paper=data["paper"], id=t["id"], source=t["source"], title=t["title"],
                                     kind=t.get("kind", "results"), key_columns=t["key_columns"],
                                     value_columns=t["value_columns"], units=t.get("units", {}),
                                     headers=t.get("headers", {}), rows=t["rows"], fixed=t.get("fixed") or {},
                                     notes=t.get("notes") or "",
                                     higher_is_better=tuple(t.get("higher_is_better") or ()),
                                     curves={k: tuple(v) for k, v in (t.get("curves") or {}).items()}))
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


def cell_named(dataset: str, network: str) -> Cell | None:
    """Our cell for a dataset and network named as the papers name them."""
    return cell_of({"dataset": dataset, "network": network}, _NO_TABLE)


@dataclass(frozen=True)
class Run:
    """One run of the grid over its seeds: ``results/<phase>/<dataset>/<backbone>/seed<k>/<folder>/<file>``.

    ``settings`` ((block, key, value), ...) are what the paper's column assumes of the run (a 30-epoch search, E_F
    = 0): a run with other settings does not fill the cell. ``dense`` stands for the dense run that this run
    started from (its data settings), wherever that run's folder is. ``sparsity`` is the percentage of weights
    pruned at which the cell reads the run's rounds (its round nearest that sparsity): a grid whose rounds stop
    short of it does not fill the cell.
    """

    phase: str
    cell: Cell
    folder: str = ""
    file: str = "metrics.json"
    settings: tuple[tuple[str, str, Any], ...] = ()
    dense: bool = False
    sparsity: float | None = None
    label: str = field(default="", compare=False)  # the cell as the paper names it, for a claim's text

    @property
    def extra(self) -> str:
        """The name Results indexes a file other than metrics.json by."""
        return self.folder or Path(self.file).stem

    def parts(self) -> list[str]:
        return [p for p in (self.folder, self.file) if p]

    def matches(self, res: Results) -> bool:
        if not self.settings:
            return True
        got = res.settings(self.phase, self.cell, self.folder) or {}
        return all((got.get(block) or {}).get(key) == value for block, key, value in self.settings)

    def by_seed(self, res: Results) -> dict[int, dict]:
        """Each seed's metrics (or its extra file); {} when the run is missing or has other settings."""
        if not self.matches(res):
            return {}
        if self.file == "metrics.json":
            return res.by_seed(self.phase, self.cell, self.folder)
        return res.extra_by_seed(self.phase, self.cell, self.extra)

    def get(self, res: Results) -> list[dict]:
        return list(self.by_seed(res).values())

    def per_round(self, res: Results) -> dict[int, list[dict]]:
        return res.per_round(self.phase, self.cell, self.folder) if self.matches(res) else {}

    def hparams(self, res: Results) -> dict | None:
        """The settings the run recorded (hparams.json), or the dense run's for ``dense``."""
        if not self.matches(res):
            return None
        if self.dense:
            return res.dense_settings(self.phase, self.cell, self.folder)
        return res.settings(self.phase, self.cell, self.folder)


class Reading(tuple):
    """Runs that fill a cell under our reading of an undefined term: ``Reading(runs, deviation)``, where
    ``deviation`` is the key of the entry of :data:`.deviations.DEVIATIONS` that states the reading. A tuple of
    its runs, so that whatever reads a cell's runs reads these."""

    deviation: str

    def __new__(cls, runs, deviation: str) -> "Reading":
        obj = super().__new__(cls, runs)
        obj.deviation = deviation
        return obj


@dataclass(frozen=True)
class PaperOnly:
    """A fact of the paper with nothing to run: the cell is shown as the paper's alone."""

    why: str


@dataclass(frozen=True)
class Unmapped:
    """No run of ticketbench fills the cell."""

    why: str


Need = Union[tuple[Run, ...], PaperOnly, Unmapped]

_NO_TABLE = PaperTable("", "", "", "", "results", [], [], {}, {}, [], {})
