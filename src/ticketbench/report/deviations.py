"""Every deliberate deviation from a paper or its released code, with the reason: the report's list of them.

The entries are data beside the papers' tables, config/paper_tables/deviations/<paper>.yaml, whose header says how
to add one; the report renders them as a table, in the order of :data:`FILES` and of each file. A test checks every
field is filled and every key is unique.

Torch-free: ``ticketbench report`` must not import a training stack.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import ConfigError
from ..untrusted import read_yaml_mapping
from .render import Table


@dataclass(frozen=True)
class Deviation:
    key: str  # stable id, for finding and editing an entry
    paper: str  # PrAC, Structure-LTH, Lottery-Jackpots, or "all"
    topic: str
    source: str  # what the paper and/or its released code does
    ours: str  # what ticketbench does, and the setting that changes it, if any
    why: str


# The checkout's folder, not the report's --tables: the deviations are the code's, whichever tables it renders.
FOLDER = Path(__file__).resolve().parents[3] / "config" / "paper_tables" / "deviations"
FILES = ("prac", "structure_lth", "jackpot", "all")
FIELDS = [f.name for f in fields(Deviation)][1:]


def load(folder: Path = FOLDER) -> list[Deviation]:
    out = []
    for name in FILES:
        path = folder / f"{name}.yaml"
        for key, entry in read_yaml_mapping(path, "deviations, each keyed by its id").items():
            if not isinstance(entry, dict) or set(entry) != set(FIELDS) or \
                    not all(isinstance(v, str) for v in entry.values()):
                raise ConfigError(f"{path}: {key}", entry, f"a mapping of {', '.join(FIELDS)} to text")
            out.append(Deviation(str(key), **entry))
    return out


DEVIATIONS: list[Deviation] = load()

COLUMNS = ["paper", "topic", "the paper / its released code", "ours", "why"]


def check(entries: list[Deviation] = DEVIATIONS) -> None:
    """Every field filled and every key unique; raises ValueError naming the first entry that is not."""
    seen = set()
    for d in entries:
        empty = [f.name for f in fields(d) if not str(getattr(d, f.name)).strip()]
        if empty:
            raise ValueError(f"deviation {d.key or d.topic!r} has empty fields: {', '.join(empty)}")
        if d.key in seen:
            raise ValueError(f"deviation key {d.key!r} is used twice")
        seen.add(d.key)


def deviations_table(entries: list[Deviation] = DEVIATIONS) -> Table:
    check(entries)
    return Table("deviations", "Deviations from the papers and their released code", COLUMNS,
                 [[d.paper, d.topic, d.source, d.ours, d.why] for d in entries],
                 "Each deliberate difference between ticketbench and a paper or its released code, and the reason. "
                 "Settings in parentheses change it.")
