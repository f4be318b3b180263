"""How each row of the papers' tables maps onto our results, and each paper's headline claims tested on them.

One module per paper, beside its table file config/paper_tables/<paper>.yaml: :mod:`.prac`, :mod:`.structure_lth`,
:mod:`.jackpot` and :mod:`.imp_reference`, each holding that paper's table declarations, claims rows and headline
claims; :mod:`.framework` holds what they register with and the readers they share.
"""

from __future__ import annotations

from typing import Any, Callable

from ..needs import DATASETS, NETWORKS, PaperTable, cell_of, load_tables
from ..results import Results
# Each paper's module registers its tables and claims when imported; the claims table lists them in this order.
from . import prac, structure_lth, jackpot, imp_reference
from .framework import CLAIMS, SPECS, SeedMean, evaluate, needs_of, ours

Resolver = Callable[[PaperTable, dict, Results], dict[str, Any]]
# Table id -> its resolver with its own needs: ``RESOLVERS[id](table, row, results)``.
RESOLVERS: dict[str, Resolver] = {i: ours for i in SPECS}

__all__ = ["CLAIMS", "DATASETS", "NETWORKS", "PaperTable", "RESOLVERS", "SPECS", "SeedMean", "cell_of", "evaluate",
           "load_tables", "needs_of", "ours", "prac", "structure_lth", "jackpot", "imp_reference"]
