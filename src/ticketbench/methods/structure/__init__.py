"""Structure-LTH: structurally sparse lottery tickets (Chen, Chen, Ma, Wang & Wang, ICML 2022).

The method post-processes the rounds of its own IMP run (``ticketbench imp --variant structure_lth``:
every conv but the stem, rewound to 5% of training; ``group_aware`` regroups inside every round).

* :mod:`.refill`: IMP-Refill and Refill+ (Alg. 2), whole output channels chosen by a channel score.
* :mod:`.regroup`: IMP-Regroup (Alg. 3), dense blocks found by hypergraph partitioning (KaHyPar).
* :mod:`.slim`: refilled tickets physically slimmed along Torch-Pruning's dependency graph.
* :mod:`.blocksparse`: regrouped convs executed block by block, chosen by a stored rule.
* :mod:`.stage`: ``ticketbench structure`` (retrain each round's structured ticket from the rewind point and
  time it against dense) and ``ticketbench timing``.
"""
