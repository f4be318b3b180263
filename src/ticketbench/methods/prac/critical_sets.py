"""The PrAC set of a round: samples critical for training (CET) and for pruning (CEP).

CET = samples the current sparse net forgot at least once (> E_F forgetting events) or never learned;
CEP = samples on which the best dense model and the current sparse model disagree (eval mode).
"""

from __future__ import annotations

import torch

NEVER_LEARNED = float("inf")


def forgetting_counts(correct: torch.Tensor) -> torch.Tensor:
    """Forgetting events per sample from an [epochs, samples] record of 1 (right), 0 (wrong), -1 (not trained on).

    A forgetting event is a right -> wrong transition between consecutive epochs the sample was
    trained in. A sample that was trained on but never right counts as infinitely many events;
    a sample never trained on gets NaN, so that it falls in no set.
    """
    n = correct.shape[1]
    prev = torch.full((n,), -1, dtype=torch.int8)
    count = torch.zeros(n)
    learned = torch.zeros(n, dtype=torch.bool)
    seen = torch.zeros(n, dtype=torch.bool)
    for row in correct:
        valid = row >= 0
        count += (valid & (prev == 1) & (row == 0)).float()
        learned |= valid & (row == 1)
        seen |= valid
        prev = torch.where(valid, row, prev)
    count[seen & ~learned] = NEVER_LEARNED
    count[~seen] = float("nan")
    return count


def critical_for_training(correct: torch.Tensor, threshold: int = 0) -> torch.Tensor:
    """CET: ids with more than ``threshold`` forgetting events (never-learned samples included)."""
    return (forgetting_counts(correct) > threshold).nonzero().flatten()


def critical_for_pruning(dense_preds: torch.Tensor, sparse_preds: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """CEP: ids whose predicted label differs between the dense and the sparse model."""
    return ids[dense_preds != sparse_preds].sort().values
