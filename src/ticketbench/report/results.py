"""An index over a results folder: every run of every phase, by dataset, backbone and seed."""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..artifacts import check_metrics
from ..errors import ArtifactError, short_repr
from ..storage import read_json

Cell = tuple[str, str]  # (dataset, backbone)


def _load(path: Path) -> dict | None:
    """A results file, or None when there is none. Every writer renames complete files into place, so a
    file that exists but does not parse is damaged: it fails naming the file rather than turning its cell
    into "not run"."""
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise ArtifactError(path, f"holds {type(data).__name__}, not a JSON object; the file is damaged")
    return data


@dataclass
class Results:
    """Runs found under ``root``; every accessor returns None (or []) when a run is missing."""

    root: Path
    runs: dict[tuple[str, str, str, int, str], dict] = field(default_factory=dict)  # (phase, d, b, seed, variant)
    extras: dict[tuple[str, str, str, int, str], dict] = field(default_factory=dict)  # savings, cost, overlap
    _settings: dict[tuple, dict | None] = field(default_factory=dict, repr=False)  # hparams.json, read once
    notes: list[str] = field(default_factory=list)  # folders skipped as not runs

    @classmethod
    def scan(cls, root: str | Path) -> "Results":
        """Every run under ``root``; each metrics.json must keep the results contract
        (:data:`ticketbench.artifacts.METRICS_SCHEMA`), and each round's own file must agree with the run's row of
        that round. A folder that is not a run (``seed0_old``, a copy kept aside) is skipped and named in ``notes``."""
        root = Path(root)
        res = cls(root)
        for path in sorted(root.glob("*/*/*/seed*/**/metrics.json")):
            parts = path.relative_to(root).parts
            if parts[0] in ("metrics", "report") or any(p.startswith("round") for p in parts):
                continue
            if not _is_seed(parts[3]):
                res.notes.append(f"skipped {path.parent}: {parts[3]!r} is not a seed folder (seed<k>)")
                continue
            m = _load(path)
            if m is not None:
                check_metrics(m, path)
                _check_rounds(path, m)
                res.runs[(parts[0], parts[1], parts[2], int(parts[3][4:]), "/".join(parts[4:-1]))] = m
        for path in sorted(root.glob("*/*/*/seed*/*.json")):
            parts = path.relative_to(root).parts
            if not _is_seed(parts[3]):
                continue
            data = _load(path)
            if data is not None and path.name != "metrics.json":
                res.extras[(parts[0], parts[1], parts[2], int(parts[3][4:]), path.stem)] = data
        for path in sorted(root.glob("structure/*/*/seed*/timing/timing.json")):
            parts = path.relative_to(root).parts
            data = _load(path) if _is_seed(parts[3]) else None
            if data is not None:
                res.extras[("structure", parts[1], parts[2], int(parts[3][4:]), "timing")] = data
        for path in sorted(root.glob("jackpot/*/*/seed*/overlap-*/overlap.json")):
            parts = path.relative_to(root).parts
            data = _load(path) if _is_seed(parts[3]) else None
            layers = path.with_name("overlap_layers.csv")
            if data is not None:
                if layers.exists():
                    data["layer_rows"] = list(csv.DictReader(layers.open()))
                res.extras[("jackpot", parts[1], parts[2], int(parts[3][4:]), parts[4])] = data
        return res

    def cells(self, phase: str | None = None) -> list[Cell]:
        return sorted({(d, b) for (p, d, b, _, _) in self.runs if phase is None or p == phase})

    def seeds(self, phase: str, cell: Cell, variant: str = "") -> list[int]:
        return sorted(s for (p, d, b, s, v) in self.runs if p == phase and (d, b) == cell and v == variant)

    def get(self, phase: str, cell: Cell, variant: str = "") -> list[dict]:
        """The metrics of every seed of one run."""
        return [self.runs[(phase, *cell, s, variant)] for s in self.seeds(phase, cell, variant)]

    def extra(self, phase: str, cell: Cell, name: str) -> list[dict]:
        return [v for (p, d, b, s, n), v in sorted(self.extras.items()) if p == phase and (d, b) == cell and n == name]

    def extra_by_seed(self, phase: str, cell: Cell, name: str) -> dict[int, dict]:
        return {s: v for (p, d, b, s, n), v in sorted(self.extras.items()) if p == phase and (d, b) == cell
                and n == name}

    def extras_like(self, phase: str, prefix: str, cell: Cell | None = None) -> list[tuple[Cell, int, str, dict]]:
        """(cell, seed, name, data) of every extra of ``phase`` whose name starts with ``prefix``, in path order."""
        return [((d, b), s, n, v) for (p, d, b, s, n), v in sorted(self.extras.items())
                if p == phase and n.startswith(prefix) and (cell is None or (d, b) == cell)]

    def variants(self, phase: str, cell: Cell) -> list[str]:
        return sorted({v for (p, d, b, _, v) in self.runs if p == phase and (d, b) == cell})

    def folder(self, phase: str, cell: Cell, seed: int, variant: str = "") -> Path:
        """The folder of one seed of a run, as the results contract lays it out."""
        return self.root.joinpath(phase, *cell, f"seed{seed}", *([variant] if variant else []))

    def run_settings(self, phase: str, cell: Cell, seed: int, variant: str = "") -> dict | None:
        """The resolved settings (hparams.json) of one seed of a run; read once per run and kept."""
        key = (phase, *cell, seed, variant)
        if key not in self._settings:
            path = self.folder(phase, cell, seed, variant) / "hparams.json"
            settings = (_load(path) or {}).get("settings")
            if settings is not None and not isinstance(settings, dict):
                raise ArtifactError(path, f"its settings are {type(settings).__name__}, not a JSON object; the file "
                                    "is damaged")
            self._settings[key] = settings or None
        return self._settings[key]

    def settings(self, phase: str, cell: Cell, variant: str = "") -> dict | None:
        """The resolved settings (hparams.json) of the first seed of a run."""
        seeds = self.seeds(phase, cell, variant)
        return self.run_settings(phase, cell, seeds[0], variant) if seeds else None

    def _dense_variant(self, phase: str, cell: Cell, seed: int, variant: str) -> str | None:
        """The folder of the pretrain run whose best weights hash to the method run's recorded ``pretrain``: the
        paper's own dense run or the base one; None when the run records none or no such run exists."""
        source = (self.run_settings(phase, cell, seed, variant) or {}).get("pretrain")
        return next((v for v in self.variants("pretrain", cell) if source and
                     self.runs.get(("pretrain", *cell, seed, v), {}).get("state_hash") == source), None)

    def dense_settings(self, phase: str, cell: Cell, variant: str = "") -> dict | None:
        """The settings of the dense run that a method run started from (its first seed)."""
        seeds = self.seeds(phase, cell, variant)
        found = self._dense_variant(phase, cell, seeds[0], variant) if seeds else None
        return None if found is None else self.run_settings("pretrain", cell, seeds[0], found)

    def dense(self, cell: Cell) -> float | None:
        return mean(m["test_acc"] for m in self.get("pretrain", cell))

    def dense_of(self, phase: str, cell: Cell, variant: str = "") -> dict[int, dict]:
        """Per seed, the metrics of the dense run that this method run started from: the pretrain run of the cell
        whose best weights hash to the run's recorded ``pretrain``. A paper with its own recipe has its own dense
        run, and its rules compare against that one; a run without the record falls back to the base run."""
        base = self.by_seed("pretrain", cell)
        out = {}
        for seed in self.seeds(phase, cell, variant):
            found = self._dense_variant(phase, cell, seed, variant)
            if found is not None:
                out[seed] = self.runs[("pretrain", *cell, seed, found)]
            elif seed in base:
                out[seed] = base[seed]
        return out

    def by_seed(self, phase: str, cell: Cell, variant: str = "") -> dict[int, dict]:
        """The metrics of every seed of one run, keyed by seed, for pairing runs seed by seed."""
        return dict(zip(self.seeds(phase, cell, variant), self.get(phase, cell, variant)))

    def per_round(self, phase: str, cell: Cell, variant: str = "") -> dict[int, list[dict]]:
        """Each round's rows, one per seed (seed order), for intervals and paired comparisons."""
        by_round: dict[int, list[dict]] = {}
        for m in self.get(phase, cell, variant):
            for row in m.get("rounds", []):
                by_round.setdefault(row["round"], []).append(row)
        return dict(sorted(by_round.items()))

    def savings(self, cell: Cell, prac: str = "", full: str = "full") -> dict | None:
        """PrAC-IMP's savings over full-data IMP on the seeds both ran, with the paper's matching rule (one std
        over seeds; 1 point with one seed); None when no seed ran both. ``prac`` and ``full`` name the runs' folders
        (an ablation, or the two runs of one LT setting)."""
        from ..methods.prac.savings import savings

        full, prac = self.by_seed("imp", cell, full), self.by_seed("prac", cell, prac)
        seeds = [k for k in sorted(set(full) & set(prac)) if full[k].get("rounds") and prac[k].get("rounds")]
        if not seeds:
            return None
        return savings([full[k]["rounds"] for k in seeds], [prac[k]["rounds"] for k in seeds], tolerance=0.01)

    def structure_imp(self, cell: Cell) -> str:
        """The IMP variant the structured tickets of ``cell`` come from: Structure-LTH's own IMP run (its layers and
        rewind point) where the grid ran one, else full-data IMP, as results from before that run existed."""
        return "structure_lth" if self.seeds("imp", cell, "structure_lth") else "full"

    def dense_runs(self, cell: Cell) -> list[dict]:
        """The dense model's metrics, one per seed."""
        return self.get("pretrain", cell)

    def rounds(self, phase: str, cell: Cell, variant: str = "") -> list[dict]:
        """Per-round rows averaged over seeds (numeric keys only), ordered by round."""
        runs = self.get(phase, cell, variant)
        if not runs:
            return []
        by_round: dict[int, list[dict]] = {}
        for m in runs:
            for row in m.get("rounds", []):
                by_round.setdefault(row["round"], []).append(row)
        out = []
        for r in sorted(by_round):
            rows = by_round[r]
            merged: dict[str, Any] = {"round": r, "seeds": len(rows)}
            for key in rows[0]:
                vals = [row.get(key) for row in rows]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                    merged[key] = statistics.mean(vals)
                    if len(vals) > 1:
                        merged[f"{key}_std"] = statistics.stdev(vals)
            out.append(merged)
        return out


def _is_seed(folder: str) -> bool:
    return folder.startswith("seed") and folder[4:].isdigit() and folder[4:].isascii()


# What a round's own metrics.json must share with the run's row of that round.
ROUND_KEYS = ("sparsity", "test_acc", "val_acc", "train_iterations", "state_hash")


def _check_rounds(path: Path, m: dict) -> None:
    """Each ``round<r>/metrics.json`` beside a multi-round run holds the numbers of the run's row ``r``: the gate
    and the report read the rows, so a round file that says otherwise means one of the two was changed."""
    rows = {row["round"]: row for row in m.get("rounds", [])}
    for r, row in sorted(rows.items()):
        round_path = path.parent / f"round{r}" / "metrics.json"
        own = _load(round_path)
        if own is None:
            continue
        check_metrics(own, round_path)
        for key in ROUND_KEYS:
            if key in row and key in own and own[key] != row[key]:
                raise ArtifactError(round_path, f"{key} is {short_repr(own[key])} here but "
                                    f"{short_repr(row[key])} in round {r} of {path}: one of the two files was changed")


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.mean(vals) if vals else None


def overlap_init(name: str) -> str:
    """``overlap-random-s0.9`` -> ``random``; the layout before both studies ran (``overlap-s0.9``) was magnitude."""
    parts = name.split("-")
    return parts[1] if len(parts) > 2 else "magnitude"
