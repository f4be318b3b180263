"""Training batches that never hold a single sample."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import BatchSampler, RandomSampler, Sampler


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of the batches of an epoch of ``n`` samples, a trailing single sample folded into the batch before."""
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if len(sizes) > 1 and sizes[-1] == 1:
        sizes[-2:] = [batch_size + 1]
    return sizes


class NoSingletonBatchSampler(BatchSampler):
    """A :class:`BatchSampler` that folds a trailing batch of one sample into the batch before it.

    BatchNorm in training mode cannot normalise one value per channel, so a split of ``k * batch_size + 1``
    samples crashes any backbone whose last stage reaches 1×1 on its final step. Dropping that sample would
    silently lose its training dynamics (forgetting events, PrAC sets), so the last full batch grows by one
    instead. Every other batch, and the order of samples, is exactly what a plain ``BatchSampler`` gives.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int):
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        held: list[int] | None = None
        for batch in super().__iter__():
            if held is not None:
                if len(batch) == 1:
                    batch = held + batch
                    held = None
                    yield batch
                    continue
                yield held
            held = batch
        if held is not None:
            yield held

    def __len__(self) -> int:
        return len(batch_sizes(len(self.sampler), self.batch_size))  # type: ignore[arg-type]


class EpochShuffle(RandomSampler):
    """A :class:`RandomSampler` on a generator of its own, whose epochs do not depend on the worker count.

    With ``DataLoader(shuffle=True, generator=g)`` the loader draws a base seed for its workers from ``g``, the
    generator that also shuffles: once per epoch in-process, but only once for persistent workers, so from the
    second epoch on the sample order (and the trained model) changed with ``--workers``. Here the sampler owns its
    generator and spends one draw per epoch itself, exactly where the in-process loader did, so every worker count
    gets the order that ``workers=0`` always had.
    """

    def __iter__(self):
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return super().__iter__()
