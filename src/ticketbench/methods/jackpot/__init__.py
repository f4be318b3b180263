"""Lottery jackpots (Zhang, Lin et al., TPAMI 2023): winning masks searched over frozen pre-trained weights.

* :mod:`.search`: the mask search (scores trained through a straight-through estimator, magnitude- or
  random-initialised, with the swap update that we read as the paper's "short restriction") and the
  ``ticketbench jackpot`` stage, with optional weight tuning under the found mask.
* :mod:`.criteria`: magnitude, random, SNIP, GraSP and SynFlow scores on a trained model.
* :mod:`.studies`: the paper's two studies, mask overlap across criteria (``jackpot-overlap``) and search
  cost of random against magnitude initialisation (``jackpot-cost``).
"""
