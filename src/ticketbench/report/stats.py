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

import contextlib
import contextvars
import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
from scipy import special, stats

LEVEL = 0.95
RESAMPLES = 4000
# Seeds needed: the spread of a few seeds is itself uncertain, so the plan uses its one-sided upper confidence bound at
# SPREAD_BOUND, and asks for the number of seeds that decides the claim with probability POWER at the observed effect.
SPREAD_BOUND = 0.80
POWER = 0.80
MAX_SEEDS = 100
# Values bounded to [0, 1] whose interval is made on the logit scale; a value on a bound is moved inside by this much.
LOGIT_EPS = 1e-3
PER_SEED_BELOW = 5  # with fewer seeds a bounded cell lists them
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
# A number above what it is compared with by more than the noise allows (ours over the paper's, a check's gain over
# its baseline): marked, not failed, since it may be right, but nobody should take it on trust (MLPerf's reference
# convergence points flag both directions).
TOO_GOOD = "better than expected: check"

RULE = (f"Every number is the mean over seeds with its {LEVEL:.0%} Student-t interval (± half-width) and n, the "
        f"number of seeds; 'test ±' is the {LEVEL:.0%} Wilson interval of the mean test accuracy on the test set's "
        f"own size (the seeds share their test examples), the noise of a test set of that size. A claim is decided "
        f"on the interval of the quantity it is about: 'holds' when the whole interval lies on the claim's side of "
        f"its threshold, 'does not hold' when it lies wholly on the other side, 'inconclusive' when it straddles "
        f"the threshold. Differences between two methods are paired by "
        f"seed and test example; their interval is the wider of a bootstrap over test examples ({RESAMPLES} "
        f"resamples, the difference averaged over seeds) and a t interval over the seeds' differences. "
        f"A verdict drawn from one seed says so. A quantity bounded to [0, 100%] (a sparsity, a share, a saving) "
        f"gets its t interval on the logit scale, mapped back, so it never leaves its bounds (a gap between two such "
        f"quantities, bounded to [-100, 100] points, likewise), shown as [low, high] with the per-seed values when "
        f"fewer than {PER_SEED_BELOW} seeds ran.")
SEEDS_RULE = (f"Seeds needed: for an undecided claim, the smallest number of seeds whose t interval would exclude the "
              f"threshold with probability {POWER:.0%} if the observed effect were the true one, the seeds' standard "
              f"deviation taken at its one-sided {SPREAD_BOUND:.0%} upper confidence bound (chi-square, the spread "
              f"of a few seeds being itself uncertain), the power from the noncentral t distribution. The part of a "
              f"paired interval that comes from the test examples is split, from the per-example variance over "
              f"seeds, into the test set's own noise, which no number of seeds shrinks, and the seeds' per-example "
              f"disagreement, which more seeds average away; a margin inside the first cannot be decided by seeds, "
              f"and neither can a claim the grid's highest sparsity caps or one with no interval to narrow. Estimates above {MAX_SEEDS} seeds are reported as out of reach. "
              f"`ticketbench decide` (make decide) adds the seeds and looks again, deciding every look at "
              f"1 - alpha/K for a number of looks K fixed before the first (Bonferroni), which the report then "
              f"states here.")

_LEVEL: contextvars.ContextVar[float] = contextvars.ContextVar("level", default=LEVEL)


def level() -> float:
    """The confidence level intervals are made at now: ``LEVEL``, or a stricter one inside :func:`confidence`."""
    return _LEVEL.get()


@contextlib.contextmanager
def confidence(at: float) -> Iterator[None]:
    """Make every interval inside the block at level ``at`` (a correction for repeated looks at the data)."""
    token = _LEVEL.set(at)
    try:
        yield
    finally:
        _LEVEL.reset(token)


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval (None when it cannot be estimated, e.g. one seed for a seed interval)."""

    mean: float
    lo: float | None
    hi: float | None
    n: int
    test: str = ""  # how the interval was made, e.g. "t over seeds", "paired bootstrap"
    sd: float | None = None  # the seeds' standard deviation of the quantity (what more seeds average away)
    floor: float | None = None  # the half-width more seeds do not shrink (a paired interval's test-example part)
    # The part of a paired interval's test-example half-width that more seeds average away: at n seeds that half-width
    # is about sqrt(floor**2 + shrinking / n) (``paired_difference``).
    shrinking: float = 0.0
    bounds: tuple[float, float] | None = None  # a bounded quantity: its interval came from the logit scale
    values: tuple[float, ...] = field(default=(), compare=False)  # the per-seed values, for small n

    @property
    def half(self) -> float | None:
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2

    def fmt(self, scale: float = 100.0, digits: int = 2, unit: str = "") -> str:
        """``98.61 ± 0.52 (n=3)``; with one sample, ``98.61 (n=1, no interval)``; a bounded quantity, whose interval
        is not symmetric, ``55.47% [12.10, 88.02] (n=3: 0.00, 59.27, 97.44)``."""
        m = f"{self.mean * scale:.{digits}f}{unit}"
        if self.half is None:
            return f"{m} (n={self.n}, no interval)"
        if self.bounds is None or self.half == 0:  # seeds that agree: a point, symmetric as any
            return f"{m} ± {self.half * scale:.{digits}f} (n={self.n})"
        each = (": " + ", ".join(f"{v * scale:.{digits}f}" for v in self.values)
                if self.values and self.n < PER_SEED_BELOW else "")
        return f"{m} {self.range(scale, digits)} (n={self.n}{each})"

    def range(self, scale: float = 100.0, digits: int = 2) -> str:
        """``[97.10, 99.30]``, or ``-`` without an interval."""
        if self.lo is None:
            return "-"
        return f"[{self.lo * scale:.{digits}f}, {self.hi * scale:.{digits}f}]"


def _clean(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def seed_interval(values: Iterable[float | None], level: float | None = None,
                  bounds: tuple[float, float] | None = None) -> Estimate | None:
    """Mean over seeds with a Student-t interval; None when there is no value. Identical seeds give a zero-width
    interval: the seeds agree, and nothing here widens it (tables also show the test-set interval).

    ``bounds`` (low, high): the quantity cannot leave them (a sparsity in [0, 1]); the t interval is made on the
    logit scale of ``(x - low) / (high - low)``, values on a bound moved ``LOGIT_EPS`` inside, and mapped back, so
    it stays inside; it always contains the mean.
    """
    level = _LEVEL.get() if level is None else level
    vals = _clean(values)
    if not vals:
        return None
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return Estimate(m, None, None, 1, "t over seeds", bounds=bounds, values=tuple(vals))
    sd = statistics.stdev(vals)
    q = float(stats.t.ppf(0.5 + level / 2, len(vals) - 1))
    if bounds is None or sd == 0:
        half = q * sd / math.sqrt(len(vals))
        return Estimate(m, m - half, m + half, len(vals), "t over seeds", sd=sd, bounds=bounds, values=tuple(vals))
    low, high = bounds
    z = [float(special.logit(min(max((v - low) / (high - low), LOGIT_EPS), 1 - LOGIT_EPS))) for v in vals]
    zm, zhalf = statistics.fmean(z), q * statistics.stdev(z) / math.sqrt(len(z))
    lo, hi = (low + (high - low) * float(special.expit(x)) for x in (zm - zhalf, zm + zhalf))
    return Estimate(m, min(lo, m), max(hi, m), len(vals), "t over seeds, logit scale", sd=sd, bounds=bounds,
                    values=tuple(vals))


def test_interval(correct: Sequence[int] | int, total: Sequence[int] | int,
                  level: float | None = None) -> tuple[float, float]:
    """Wilson interval of a test accuracy from its counts, pooled when given one count per seed."""
    level = _LEVEL.get() if level is None else level
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


def paired_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], level: float | None = None,
                      seed: int = 0) -> Estimate:
    """Accuracy of ``a`` minus that of ``b``, paired per test example and per seed, averaged over seeds.

    ``a[i]`` and ``b[i]`` are the per-example correctness of the two methods on seed ``i``. Two sources of noise
    bound the difference, and the interval is the wider of the two:

    * the test examples: a bootstrap over examples of the per-example difference averaged over seeds (the seeds
      share their test examples, so an example is resampled for all seeds at once);
    * the seeds: a Student-t interval of the per-seed differences (none with one seed), which is what another
      set of seeds would move.
    """
    level = _LEVEL.get() if level is None else level
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
    floor, shrinking = _example_parts(diffs, (hi - lo) / 2, level)
    over_seeds = seed_interval(per_seed, level)
    if over_seeds is not None and over_seeds.lo is not None:
        lo, hi = min(lo, over_seeds.lo), max(hi, over_seeds.hi)
    return Estimate(point, min(lo, point), max(hi, point), len(diffs), "paired",
                    sd=None if over_seeds is None else over_seeds.sd, floor=floor, shrinking=shrinking,
                    values=tuple(per_seed))


def _example_parts(diffs: list[np.ndarray], half: float, level: float) -> tuple[float, float]:
    """Split the test-example half-width ``half`` of a paired difference into what more seeds cannot shrink and what
    they average away: (floor, shrinking), with the half-width at n seeds about ``sqrt(floor**2 + shrinking / n)``.

    Per example, the difference averaged over n seeds varies over the examples by ``var_b + var_w / n``: ``var_b``
    the examples' own differences (a property of the test set), ``var_w`` how much a seed moves an example's
    difference (estimated from the per-example variance over seeds). With one seed, or test sets that differ per
    seed, nothing is split and the whole half-width is the floor (the conservative side).
    """
    n = len(diffs)
    if n < 2 or len({d.size for d in diffs}) != 1 or half == 0:
        return half, 0.0
    d = np.stack(diffs)
    within = float(d.var(axis=0, ddof=1).mean())
    total = float(d.mean(axis=0).var(ddof=1))
    if total <= 0:
        return half, 0.0
    between = max(total - within / n, 0.0)
    # The bootstrap's half-width, scaled: its share of the variance that stays is between / total.
    return half * math.sqrt(between / total), half ** 2 * (within / total)


def paired_seed_difference(a: Sequence[float], b: Sequence[float], level: float | None = None,
                           bounds: tuple[float, float] | None = None) -> Estimate | None:
    """``a - b`` paired by seed (e.g. two criteria's overlaps on the same seed), with a t interval over seeds;
    ``bounds`` as :func:`seed_interval`'s (two fractions differ by -1 to 1)."""
    est = seed_interval([x - y for x, y in zip(a, b)], level, bounds)
    return None if est is None else dataclasses.replace(est, test="paired " + est.test)


FRACTION = (0.0, 1.0)  # bounds of a share, a sparsity, an accuracy
GAP = (-1.0, 1.0)  # bounds of the difference of two fractions


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
    est = seed_interval((r.get(key) for r in runs), bounds=FRACTION)
    if est is None:
        return "-"
    text = est.fmt()
    ci = test_interval_of(r.get("test_correct") for r in runs) if key == "test_acc" else None
    if ci is not None:
        text = f"{text[:-1]}; test ±{100 * (ci[1] - ci[0]) / 2:.2f})"
    return text


def value_cell(values: Iterable[float | None], scale: float = 100.0, digits: int = 2, unit: str = "",
               bounds: tuple[float, float] | None = None) -> str:
    """A table cell for any other number over seeds: mean ± t half-width (n), ``-`` when nothing ran. A percentage
    (``unit="%"``) is a fraction of something and stays inside [0, 100]: its interval comes from the logit scale."""
    est = seed_interval(values, bounds=bounds or (FRACTION if unit == "%" else None))
    return "-" if est is None else est.fmt(scale, digits, unit)


@dataclass(frozen=True)
class Decision:
    """A claim's test: the estimate of the quantity it is about, on the claim's side of ``threshold`` or not."""

    est: Estimate | None
    threshold: float
    above: bool = True
    level: float | None = None  # where the claim widens its interval itself (a correction of its own)

    @property
    def verdict(self) -> str:
        return decide(self.est, self.threshold, above=self.above)


@dataclass(frozen=True)
class SeedsNeeded:
    seeds: int | None  # None: no number of seeds decides it (``why`` says why)
    text: str


def seeds_needed(d: Decision, level: float | None = None, *, power: float = POWER, bound: float = SPREAD_BOUND,
                 most: int = MAX_SEEDS) -> SeedsNeeded:
    """How many seeds would decide an undecided ``d`` at its observed effect (``SEEDS_RULE``).

    The effect is the distance of the mean from the threshold; the spread is the seeds' standard deviation at its
    one-sided ``bound`` upper confidence bound, ``sd * sqrt((n - 1) / chi2.ppf(1 - bound, n - 1))``; the answer is
    the smallest n whose t interval at ``level`` excludes the threshold with probability ``power`` (noncentral t).
    A bounded quantity is planned on its own scale, which is the conservative side where the logit interval is
    narrower near the threshold.
    """
    level = d.level or (_LEVEL.get() if level is None else level)
    est = d.est
    if est is None:
        return SeedsNeeded(None, "no estimate to narrow")
    effect = abs(est.mean - d.threshold)
    pts = f"{100 * effect:.2f} points"
    if est.floor is not None and est.floor >= effect:
        return SeedsNeeded(None, f"none: the margin ({pts}) lies within the test set's own noise (±"
                           f"{100 * est.floor:.2f} points at any number of seeds)")
    if est.n < 2 or est.sd is None:
        return SeedsNeeded(None, "none estimable from one seed: run a second seed to measure the spread")
    if effect == 0:
        return SeedsNeeded(None, "none: the mean sits on the threshold")
    if est.sd == 0:
        return SeedsNeeded(est.n + 1, f"{est.n + 1}: the seeds agree exactly; one more seed measures a spread")
    sd_hi = est.sd * math.sqrt((est.n - 1) / float(stats.chi2.ppf(1 - bound, est.n - 1)))
    for n in range(est.n + 1, most + 1):
        if est.floor is not None and math.sqrt(est.floor ** 2 + est.shrinking / n) >= effect:
            continue  # the test-example part of the interval alone still straddles the threshold
        crit = float(stats.t.ppf(0.5 + level / 2, n - 1))
        if float(stats.nct.sf(crit, n - 1, effect / (sd_hi / math.sqrt(n)))) >= power:
            return SeedsNeeded(n, f"{n} (margin {pts}, seed sd {100 * est.sd:.2f}, upper bound {100 * sd_hi:.2f})")
    return SeedsNeeded(None, f"none within {most} seeds (margin {pts}, seed sd {100 * est.sd:.2f}, upper bound "
                       f"{100 * sd_hi:.2f})")
