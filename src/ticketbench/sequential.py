"""Repeated looks at one grid's results: the plan ``ticketbench decide`` records, and the level the report decides at.

``ticketbench decide`` adds seeds where a claim is undecided and looks at the report again; each look is another
chance to declare a verdict by luck. The correction is Bonferroni alpha spending over a number of looks fixed before
the first one: with at most ``max_looks`` looks, every look decides at ``1 - alpha / max_looks``, so that the chance
of any wrong verdict over all looks stays below ``alpha`` whatever the looks' dependence (it is conservative; Pocock's
or O'Brien-Fleming's boundaries spend less but assume the looks' correlation). The plan lives beside the results it
is about (``<results>/decide.json``), and a report of those results reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import storage
from .errors import ArtifactError

PLAN_FILE = "decide.json"
CORRECTION = "bonferroni"


@dataclass
class Plan:
    alpha: float
    max_looks: int
    looks: list[dict] = field(default_factory=list)  # one entry per look: seeds per cell, verdict counts, seconds

    @property
    def level(self) -> float:
        return 1 - self.alpha / self.max_looks

    def text(self) -> str:
        return (f"Sequential: `ticketbench decide` has looked at these results {len(self.looks)} time(s) of at most "
                f"{self.max_looks}, adding seeds between looks where a claim was undecided; every claim is decided "
                f"at the {100 * self.level:.2f}% level (alpha {self.alpha:g} spent equally over the {self.max_looks} "
                f"looks, a Bonferroni bound that holds whatever the looks' dependence), not at the single look's "
                f"{100 * (1 - self.alpha):g}%.")

    def to_json(self) -> dict:
        return {"correction": CORRECTION, "alpha": self.alpha, "max_looks": self.max_looks, "looks": self.looks}


def read(results: str | Path) -> Plan | None:
    """The plan recorded beside ``results``, checked; None when the results were never extended."""
    path = Path(results) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        data = storage.read_json(path)
    except (OSError, ValueError) as e:
        raise ArtifactError(path, f"cannot be read ({e})") from None
    if not isinstance(data, dict) or data.get("correction") != CORRECTION:
        raise ArtifactError(path, f"correction: {data.get('correction') if isinstance(data, dict) else data!r}; "
                            f"allowed: {CORRECTION}")
    alpha, looks, most = data.get("alpha"), data.get("looks"), data.get("max_looks")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ArtifactError(path, f"alpha: {alpha!r}; allowed: a number between 0 and 1")
    if not isinstance(most, int) or isinstance(most, bool) or most < 1:
        raise ArtifactError(path, f"max_looks: {most!r}; allowed: an integer of at least 1")
    if not isinstance(looks, list) or not all(isinstance(x, dict) for x in looks) or len(looks) > most:
        raise ArtifactError(path, f"looks: {len(looks) if isinstance(looks, list) else looks!r} entries; allowed: "
                            f"a list of at most max_looks ({most}) objects")
    return Plan(float(alpha), most, looks)


def write(results: str | Path, plan: Plan) -> None:
    storage.write_json(Path(results) / PLAN_FILE, plan.to_json())
