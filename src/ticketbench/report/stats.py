"""Intervals and verdicts: every reported number is a mean over seeds with its interval, and a claim is decided
only when the interval of the quantity it is about lies on one side of its threshold.

Three sources of uncertainty are kept apart, because they answer different questions:

* **seeds**: a Student-t interval of the mean over seeds (``seed_interval``): how much another set of seeds
  would move the number;
* **test examples**: the Wilson interval of the mean test accuracy at the test set's size (``test_interval_of``):
  how much another test set of the same size would move it;
* **paired**: two methods evaluated on the same seeds and the same test examples differ by much less than their
  two intervals suggest, so a difference is bootstrapped over test examples (the per-example difference averaged
  over seeds) and also given a t interval over the seeds' differences; the wider of the two is reported
  (``paired_difference``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 4000
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"

RULE = (f"Every number is the mean over seeds with its {LEVEL:.0%} Student-t interval (± half-width) and n, the "
        f"number of seeds; 'test ±' is the {LEVEL:.0%} Wilson interval of the mean test accuracy on the test set's "
        f"own size (the seeds share their test examples), the noise of a test set of that size. A claim is decided "
        f"on the interval of the quantity it is about: 'holds' when the whole interval lies on the claim's side of "
        f"its threshold, 'does not hold' when it lies wholly on the other side, 'inconclusive' when it straddles "
        f"the threshold. Differences between two methods are paired by "
        f"seed and test example; their interval is the wider of a bootstrap over test examples ({RESAMPLES} "
        f"resamples, the difference averaged over seeds) and a t interval over the seeds' differences. "
        f"A verdict drawn from one seed says so.")


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval (None when it cannot be estimated, e.g. one seed for a seed interval)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    test: str = ""  # how the interval was made, e.g. "t over seeds", "paired bootstrap"

    @property
    def half(self) -> float | None:
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2

    def fmt(self, scale: float = 100.0, digits: int = 2, unit: str = "") -> str:
        """``98.61 ± 0.52 (n=3)``; with one sample, ``98.61 (n=1, no interval)``."""
        m = f"{self.mean * scale:.{digits}f}{unit}"
        if self.half is None:
            return f"{m} (n={self.n}, no interval)"
        return f"{m} ± {self.half * scale:.{digits}f} (n={self.n})"

    def range(self, scale: float = 100.0, digits: int = 2) -> str:
        """``[97.10, 99.30]``, or ``-`` without an interval."""
        if self.lo is None:
            return "-"
        return f"[{self.lo * scale:.{digits}f}, {self.hi * scale:.{digits}f}]"


def _clean(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def seed_interval(values: Iterable[float | None], level: float = LEVEL) -> Estimate | None:
    """Mean over seeds with a Student-t interval; None when there is no value. Identical seeds give a zero-width
    interval: the seeds agree, and nothing here widens it (tables also show the test-set interval)."""
    vals = _clean(values)
    if not vals:
        return None
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return Estimate(m, None, None, 1, "t over seeds")
    sem = statistics.stdev(vals) / math.sqrt(len(vals))
    half = float(stats.t.ppf(0.5 + level / 2, len(vals) - 1)) * sem
    return Estimate(m, m - half, m + half, len(vals), "t over seeds")


def test_interval(correct: Sequence[int] | int, total: Sequence[int] | int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson interval of a test accuracy from its counts, pooled when given one count per seed."""
    k = int(np.sum(correct))
    n = int(np.sum(total))
    if n == 0:
        return (math.nan, math.nan)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def test_interval_of(records: Iterable[dict | None]) -> tuple[float, float] | None:
    """The Wilson interval of runs' mean test accuracy on their test set, from the stored per-example correctness.

    Every seed is scored on the same test examples, so ``n`` is the test set's size, not seeds times that size:
    pooling the seeds would count each image once per seed and shrink the interval by sqrt(seeds).
    """
    from ..artifacts import unpack_bits

    flags = [unpack_bits(r) for r in records if r]
    if not flags:
        return None
    n = min(f.size for f in flags)
    accuracy = float(np.mean([f.mean() for f in flags]))
    return test_interval(round(accuracy * n), n)


def paired_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], level: float = LEVEL,
                      seed: int = 0) -> Estimate:
    """Accuracy of ``a`` minus that of ``b``, paired per test example and per seed, averaged over seeds.

    ``a[i]`` and ``b[i]`` are the per-example correctness of the two methods on seed ``i``. Two sources of noise
    bound the difference, and the interval is the wider of the two:

    * the test examples: a bootstrap over examples of the per-example difference averaged over seeds (the seeds
      share their test examples, so an example is resampled for all seeds at once);
    * the seeds: a Student-t interval of the per-seed differences (none with one seed), which is what another
      set of seeds would move.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_difference needs the same seeds on both sides, got {len(a)} and {len(b)}")
    diffs = []
    for x, y in zip(a, b):
        x, y = np.asarray(x, dtype=bool), np.asarray(y, dtype=bool)
        if x.shape != y.shape:
            raise ValueError(f"paired_difference: test sets differ in size ({x.size} vs {y.size})")
        if x.size == 0:
            raise ValueError("paired_difference: an empty test set")
        diffs.append(x.astype(np.float64) - y.astype(np.float64))
    per_seed = [float(d.mean()) for d in diffs]
    point = float(np.mean(per_seed))
    if len({d.size for d in diffs}) == 1:
        samples = (np.mean(diffs, axis=0),)
        statistic = np.mean
    else:  # different test sets per seed: resample each seed's examples on their own
        samples = tuple(diffs)

        def statistic(*xs, axis=-1):
            return np.mean([x.mean(axis=axis) for x in xs], axis=0)
    if all(np.all(x == x[0]) for x in samples):
        lo = hi = point  # nothing varies over the examples
    else:
        res = stats.bootstrap(samples, statistic, n_resamples=RESAMPLES, confidence_level=level,
                              method="percentile", vectorized=True, rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    over_seeds = seed_interval(per_seed, level)
    if over_seeds is not None and over_seeds.lo is not None:
        lo, hi = min(lo, over_seeds.lo), max(hi, over_seeds.hi)
    return Estimate(point, min(lo, point), max(hi, point), len(diffs), "paired")


def paired_seed_difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate | None:
    """``a - b`` paired by seed (e.g. two criteria's overlaps on the same seed), with a t interval over seeds."""
    est = seed_interval([x - y for x, y in zip(a, b)], level)
    return None if est is None else Estimate(est.mean, est.lo, est.hi, est.n, "paired t over seeds")


def decide(est: Estimate | None, threshold: float, *, above: bool = True) -> str:
    """``holds`` when the interval lies wholly on the claim's side of ``threshold`` (above it when ``above``),
    ``does not hold`` when wholly on the other side, else ``inconclusive``. Without an interval (one seed), the
    point estimate decides and the caller labels the verdict as resting on one seed."""
    if est is None:
        return INCONCLUSIVE
    lo = est.mean if est.lo is None else est.lo
    hi = est.mean if est.hi is None else est.hi
    if not above:
        lo, hi, threshold = -hi, -lo, -threshold
    if lo > threshold:
        return HOLDS
    if hi < threshold:
        return FAILS
    return INCONCLUSIVE


def accuracy_cell(runs: Sequence[dict], key: str = "test_acc") -> str:
    """A table cell for an accuracy over seeds: ``98.61 ± 0.52 (n=3; test ±1.21)``, ``-`` when nothing ran.

    ``runs`` are per-seed records (metrics.json or one round's row) holding ``key`` and, for test accuracies,
    ``test_correct``, whose pooled Wilson interval gives the test-set part.
    """
    est = seed_interval(r.get(key) for r in runs)
    if est is None:
        return "-"
    text = est.fmt()
    ci = test_interval_of(r.get("test_correct") for r in runs) if key == "test_acc" else None
    if ci is not None:
        text = f"{text[:-1]}; test ±{100 * (ci[1] - ci[0]) / 2:.2f})"
    return text


def value_cell(values: Iterable[float | None], scale: float = 100.0, digits: int = 2, unit: str = "") -> str:
    """A table cell for any other number over seeds: mean ± t half-width (n), ``-`` when nothing ran."""
    est = seed_interval(values)
    return "-" if est is None else est.fmt(scale, digits, unit)
