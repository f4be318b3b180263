"""PrAC: pruning-aware critical training sets (Zhang, Chen, Chen & Wang, ICML 2021).

Read in this order:

* :mod:`.critical_sets`: a round's PrAC set P = CET ∪ CEP (forgotten or never-learned samples, and samples
  on which the dense and the sparse model disagree).
* :mod:`.early_stop`: every round, round 0 included, stops once the mask it would prune next stops moving.
* :mod:`.stage`: PrAC-IMP (``ticketbench prac``): IMP (:mod:`ticketbench.methods.imp`) whose rounds train on
  the previous round's PrAC set for proportionally fewer iterations; tickets are judged retrained on full data.
* :mod:`.savings`: the training iterations PrAC-IMP saves up to the highest sparsity that still matches
  full-data IMP (``ticketbench prac-savings``; torch-free, the report uses it too).

The random pruning baseline is the IMP variant ``random_prune``, the pruning-at-init comparison the variants ``snip``,
``grasp`` and ``synflow`` (:mod:`ticketbench.methods.imp`); ``prac.random_subset`` trains each round on a random set
of the PrAC set's size instead (the paper's random-subset comparison).
"""
