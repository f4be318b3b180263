"""Issue 16: timing repeats until the interval of the time ratio is tight, or says 'noisy'.

Only the stopping logic is tested, on a fake clock and fake functions: speed targets never live in timed unit tests.
"""

import itertools
import json
import math

import pytest

from ticketbench.timing import NOISY, TIGHT, paired_until_tight, ratio_interval, saving_metrics


class FakeMachine:
    """A clock that advances only when a fake function runs: each call takes the next of its durations."""

    def __init__(self, base, test):
        self.now = 0.0
        self.calls = {"base": 0, "test": 0}
        self._durations = {"base": itertools.cycle(base), "test": itertools.cycle(test)}

    def clock(self) -> float:
        return self.now

    def fn(self, name):
        def call():
            self.calls[name] += 1
            self.now += next(self._durations[name])
        return call


def _run(m: FakeMachine, **kw):
    return paired_until_tight(m.fn("base"), m.fn("test"), clock=m.clock, **kw)


def test_steady_timings_stop_after_the_first_batch_that_gives_a_tight_interval():
    m = FakeMachine([1.0], [0.7, 0.71, 0.69])
    t = _run(m, rounds=10, warmup=2)
    assert t.verdict == TIGHT and t.rounds == 10
    assert m.calls == {"base": 12, "test": 12}  # warm-up calls are not timed rounds
    assert (t.base_s, t.test_s) == pytest.approx((1.0, 0.7))
    assert t.ratio == pytest.approx(0.7) and t.saving == pytest.approx(0.3)
    assert t.ratio_low <= t.ratio <= t.ratio_high and t.ratio_high - t.ratio_low < 0.05
    assert (t.saving_low, t.saving_high) == pytest.approx((1 - t.ratio_high, 1 - t.ratio_low))


def test_too_few_rounds_for_an_interval_time_another_batch():
    m = FakeMachine([1.0], [0.5])
    t = _run(m, rounds=4, warmup=0)  # 4 rounds give no 95% interval of a median; 8 do
    assert t.verdict == TIGHT and t.rounds == 8


def test_a_noisy_pair_runs_to_max_rounds_and_says_noisy():
    m = FakeMachine([1.0], [0.5, 1.0])  # the ratio jumps between 0.5 and 1 round by round
    t = _run(m, rounds=10, max_rounds=35, max_seconds=1e9, warmup=0)
    assert t.verdict == NOISY and t.rounds == 35  # the last batch is cut to max_rounds
    assert m.calls == {"base": 35, "test": 35}
    assert t.ratio_high - t.ratio_low >= 0.05


def test_the_time_limit_stops_a_noisy_pair_between_batches():
    m = FakeMachine([1.0], [0.5, 1.0])
    t = _run(m, rounds=10, max_rounds=200, max_seconds=25.0, warmup=0)
    # Each round takes 1.5 or 2 fake seconds: after the first batch (17.5 s) there is time left, after the second not.
    assert t.verdict == NOISY and t.rounds == 20


def test_a_wider_tolerance_stops_sooner():
    durations = [0.70, 0.74, 0.66, 0.72, 0.68]
    strict = _run(FakeMachine([1.0], durations), rounds=10, width=0.01, max_rounds=60, max_seconds=1e9, warmup=0)
    loose = _run(FakeMachine([1.0], durations), rounds=10, width=0.1, max_rounds=60, max_seconds=1e9, warmup=0)
    assert loose.verdict == TIGHT and loose.rounds == 10
    assert strict.verdict == NOISY and strict.rounds == 60


def test_the_calls_alternate_which_goes_first():
    order = []
    t = paired_until_tight(lambda: order.append("b"), lambda: order.append("t"), rounds=6, max_rounds=6, warmup=0,
                           clock=itertools.count().__next__)
    assert order == ["b", "t", "t", "b"] * 3 and t.rounds == 6


def test_the_interval_is_of_the_median_and_robust_to_a_stall():
    lo, hi = ratio_interval([0.70] * 19 + [5.0])  # one stall of the machine
    assert lo == hi == 0.70
    assert all(math.isnan(x) for x in ratio_interval([0.7] * 5))


def test_no_rounds_is_refused():
    with pytest.raises(ValueError):
        paired_until_tight(lambda: None, lambda: None, rounds=0)


def test_metrics_keys_of_a_timed_saving_are_json():
    m = FakeMachine([1.0], [0.8])
    metrics = saving_metrics(_run(m, rounds=10, warmup=0))
    assert metrics["time_saving"] == pytest.approx(0.2) and metrics["timing_verdict"] == "tight"
    assert metrics["time_saving_low"] <= metrics["time_saving"] <= metrics["time_saving_high"]
    assert metrics["timing_rounds_used"] == 10
    short = saving_metrics(_run(FakeMachine([1.0], [0.8]), rounds=3, max_rounds=3, warmup=0))
    assert short["timing_verdict"] == "noisy" and short["time_saving_low"] is None  # 3 rounds: no interval
    json.loads(json.dumps(short, allow_nan=False))
