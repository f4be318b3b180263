"""Training batches that never hold a single sample."""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import BatchSampler, Sampler


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
        n = len(self.sampler)  # type: ignore[arg-type]
        full, rest = divmod(n, self.batch_size)
        if rest == 1 and full > 0:
            return full
        return full + (1 if rest else 0)
