"""Every method a grid can run, by name: the IMP variants and the structure methods, torch-free.

A method is a class in its own module (an IMP :class:`~ticketbench.methods.imp.Variant`, a
:class:`~ticketbench.methods.structure.stage.StructureMethod`) plus one line here naming it and saying where it
lives. The planner, the config check and schema, the CLI help, the figures and the report's grid tables read these
lines, so a method added here appears in all of them; only a job that runs the method imports its module (and
torch).

A lab's own method, in its own package, registers without editing this project through a Python entry point
of group ``ticketbench.variants`` (an IMP variant) or ``ticketbench.structure_methods``::

    [project.entry-points."ticketbench.variants"]
    my_prune = "mylab.pruning:MyPrune"

Its name is the entry point's; it runs under PrAC's IMP recipe and, if its class sets ``reference = True``, follows
full IMP's run of the same cell as the random baselines do (docs/methods.md "Methods from outside the project").
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Mapping

from ..errors import ConfigError

#: Entry-point groups of outside packages.
VARIANT_GROUP = "ticketbench.variants"
STRUCTURE_GROUP = "ticketbench.structure_methods"


@dataclass(frozen=True)
class Method:
    """One registered method: its name (the run folder and ``metrics.json``'s ``method``), where its class lives
    (``module:attribute``, imported only by a job that runs it) and what the planner and report need to know."""

    name: str
    target: str
    #: The recipe its runs follow: an IMP variant of "prac" follows full IMP's run (PrAC's recipe); one of
    #: "structure_lth" is Structure-LTH's own IMP or follows it.
    paper: str = "prac"
    #: Structure methods: the settings of ``<name>-released`` (the released code's), if it has any.
    released: Mapping[str, Any] = field(default_factory=dict)
    #: Structure methods: whether ``<name>-<criterion>`` and ``<name>-rho<r>`` (a channel score, Refill+'s rate)
    #: make sense for it.
    channels: bool = False
    #: IMP variants that are a sanity control of the run they follow: the report's label for it (its sanity
    #: section puts each beside the ticket it controls).
    control: str = ""
    #: From an outside package's entry point.
    outside: bool = False

    def load(self):
        module, _, attr = self.target.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(self.name, self.target, f"an importable module:attribute ({e})") from None
        obj = obj() if isinstance(obj, type) else obj
        obj.name = self.name  # one name, the registry's: a subclass cannot inherit its parent's by mistake
        return obj


class Methods:
    """Registered methods of one kind in registration order, then those of installed outside packages."""

    def __init__(self, concept: str, group: str, paper: str):
        self.concept, self.group, self.paper = concept, group, paper
        self._own: dict[str, Method] = {}
        self._every: dict[str, Method] | None = None

    def add(self, method: Method) -> Method:
        if method.name in self._own:
            raise KeyError(f"{self.concept} {method.name!r} is registered twice")
        self._own[method.name] = method
        self.refresh()
        return method

    def refresh(self) -> None:
        """Forget what was read of installed packages (a test that installs one asks again)."""
        self._every = None
        _loaded.cache_clear()

    def _all(self) -> dict[str, Method]:
        # Scanning the installed packages' metadata takes milliseconds; the planner asks thousands of times.
        if self._every is None:
            outside = {ep.name: Method(ep.name, ep.value, self.paper, outside=True)
                       for ep in entry_points(group=self.group) if ep.name not in self._own}
            self._every = {**self._own, **outside}
        return self._every

    def names(self, paper: str | None = None) -> list[str]:
        return [n for n, m in self._all().items() if paper is None or m.paper == paper]

    def spec(self, name: str) -> Method:
        found = self._all().get(name)
        if found is None:
            raise ConfigError(self.concept, name, f"one of {', '.join(self.names())}")
        return found

    def get(self, name: str):
        """The method's object (its module imported)."""
        return _loaded(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self):
        return iter(self.names())


@functools.lru_cache(maxsize=None)
def _loaded(methods: Methods, name: str):
    return methods.spec(name).load()


IMP_VARIANTS = Methods("imp.variant", VARIANT_GROUP, "prac")
STRUCTURE_METHODS = Methods("structure.method", STRUCTURE_GROUP, "structure_lth")

_IMP = "ticketbench.methods.imp"
_SLTH = "ticketbench.methods.structure"
for _m in (
    Method("full", f"{_IMP}:Full"),
    Method("structure_lth", f"{_IMP}:StructureLth", paper="structure_lth"),
    Method("group_aware", f"{_SLTH}.group_aware:GroupAware", paper="structure_lth"),
    Method("random_prune", f"{_IMP}:RandomPrune", control="random mask (global)"),
    Method("random_prune_layerwise", f"{_IMP}:RandomPruneLayerwise", control="mask shuffled within each layer"),
    Method("random_reinit", f"{_IMP}:RandomReinit", control="re-initialised weights"),
    Method("snip", f"{_IMP}:SNIP"),
    Method("grasp", f"{_IMP}:GRASP"),
    Method("synflow", f"{_IMP}:SYNFLOW"),
    Method("omp", f"{_IMP}:OneShotMagnitude", control="one-shot magnitude pruning"),
    Method("admm", f"{_IMP}:Admm"),
    Method("rewind_magnitude", f"{_IMP}:RewindMagnitude", control="magnitude at the rewind point"),
    Method("inverted", f"{_IMP}:Inverted", control="inverted ranking"),
):
    IMP_VARIANTS.add(_m)

_REFILL_RELEASED = {"refill_rule": "released", "coupled": "per_layer", "refill_batchnorm": "released",
                    "criterion": "remain"}
for _m in (
    Method("refill", f"{_SLTH}.stage:Refill", "structure_lth", _REFILL_RELEASED, channels=True),
    Method("refill_plus", f"{_SLTH}.stage:RefillPlus", "structure_lth", _REFILL_RELEASED, channels=True),
    Method("regroup", f"{_SLTH}.stage:Regroup", "structure_lth", {"regroup_preset": "released"}),
):
    STRUCTURE_METHODS.add(_m)


def figure_order() -> list[str]:
    """The ``method`` of every kind of run, in the order figures give them colours: PrAC's comparisons, then
    Structure-LTH's, then the jackpot."""
    return ["imp", "prac", *IMP_VARIANTS.names("prac")[1:], "prac_transfer", *IMP_VARIANTS.names("structure_lth"),
            *STRUCTURE_METHODS.names(), "jackpot"]
