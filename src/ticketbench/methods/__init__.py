"""The methods of the three papers, one package each, on a shared IMP base.

* :mod:`.common` and :mod:`.imp` are the base: a finished pretrain run loaded back (:class:`~.common.Pretrained`),
  one masked training round, and iterative magnitude pruning with its registered variants (vanilla,
  Structure-LTH's own IMP, group-aware IMP, and the random baselines).
* :mod:`.prac`: PrAC (Zhang et al., ICML 2021), IMP on pruning-aware critical sets.
* :mod:`.jackpot`: lottery jackpots (Zhang, Lin et al., TPAMI 2023), masks searched over frozen weights.
* :mod:`.structure`: Structure-LTH (Chen et al., ICML 2022), refilled and regrouped tickets and their speed.

Each package's ``stage`` (or ``search``) module registers its CLI stages on import.
"""
