"""Trip semantics of each built-in condition, on hand-written histories.

Conditions are driven through ml-breaker's protocol (``condition(CallRecord) -> bool``), which
is also how a user-defined condition is called.
"""

from __future__ import annotations

import pytest

import tripwise
from tripwise.core.conditions import (
    consecutive_failures,
    error_rate_above,
    latency_above,
    latency_quantile_above,
    low_quality_rate_above,
    quality_below,
    slow_call_rate_above,
)

from ._records import fail, feed, ok, raise_value_error

# ------------------------------------------------------------------ quality_below


def test_quality_below_trips_when_full_window_mean_drops_below_threshold() -> None:
    cond = quality_below(0.7, window=4)
    # mean of the first full window: (0.9 + 0.6 + 0.6 + 0.6) / 4 = 0.675 < 0.7
    assert feed(cond, [ok(quality=q) for q in (0.9, 0.6, 0.6, 0.6)]) == [False] * 3 + [True]


def test_quality_below_needs_a_full_window() -> None:
    cond = quality_below(0.7, window=5)
    assert feed(cond, [ok(quality=0.0)] * 4) == [False] * 4
    assert cond(ok(quality=0.0)) is True


def test_quality_below_mean_equal_to_threshold_does_not_trip() -> None:
    cond = quality_below(0.5, window=2)
    assert feed(cond, [ok(quality=0.25), ok(quality=0.75), ok(quality=0.25)]) == [False] * 3


def test_quality_below_low_scores_fall_out_of_the_window() -> None:
    cond = quality_below(0.5, window=3)
    history = [ok(quality=q) for q in (0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0)]
    # windows: -, -, 2/3, 2/3, 1/3 (trip), 1/3 (trip), 2/3
    assert feed(cond, history) == [False, False, False, False, True, True, False]


def test_quality_below_ignores_unscored_calls() -> None:
    """Calls without a score are neutral: they neither fill the window nor trip it."""
    cond = quality_below(0.7, window=3)
    history = [ok(quality=0.1), ok(), fail(), ok(quality=0.1), ok(), ok()]
    assert feed(cond, history) == [False] * 6
    assert cond(ok(quality=0.1)) is True  # the third *scored* call fills the window


def test_quality_below_with_min_calls_trips_before_the_window_is_full() -> None:
    cond = quality_below(0.7, window=10, min_calls=3)
    assert feed(cond, [ok(quality=0.2)] * 3) == [False, False, True]


def test_quality_below_time_window_uses_scores_of_the_last_seconds() -> None:
    cond = quality_below(0.5, window_seconds=10, buckets=10, min_calls=2)
    assert cond(ok(quality=0.0, t=100.0)) is False  # one score: below min_calls
    assert cond(ok(quality=0.0, t=101.0)) is True
    # 20 s later both low scores have expired; one good score alone is below min_calls
    assert cond(ok(quality=1.0, t=121.0)) is False
    assert cond(ok(quality=0.25, t=122.0)) is False  # mean 0.625


def test_quality_below_time_window_defaults_to_ten_scored_calls() -> None:
    cond = quality_below(0.5, window_seconds=60)
    assert feed(cond, [ok(quality=0.0, t=float(i)) for i in range(9)]) == [False] * 9
    assert cond(ok(quality=0.0, t=9.0)) is True


# ------------------------------------------------------------------ latency_above


def test_latency_above_trips_only_when_every_latency_of_a_full_window_exceeds() -> None:
    cond = latency_above(100, window=3)
    assert feed(cond, [ok(150), ok(150)]) == [False, False]  # window not full
    assert cond(ok(150)) is True
    cond.reset()
    assert feed(cond, [ok(150), ok(100), ok(150), ok(150)]) == [False] * 4  # 100 in window
    assert cond(ok(150)) is True


def test_latency_above_threshold_is_exclusive() -> None:
    cond = latency_above(100, window=2)
    assert feed(cond, [ok(100), ok(100), ok(100.001)]) == [False, False, False]
    assert cond(ok(100.001)) is True


def test_latency_above_counts_failed_calls_latency() -> None:
    cond = latency_above(100, window=2)
    assert feed(cond, [fail(500), fail(500)]) == [False, True]


def test_latency_above_time_window_with_min_calls() -> None:
    cond = latency_above(100, window_seconds=10, min_calls=3)
    assert feed(cond, [ok(200, t=0.0), ok(200, t=1.0)]) == [False, False]
    assert cond(ok(200, t=2.0)) is True
    assert cond(ok(50, t=3.0)) is False
    # 15 s later the fast call is gone, but so is everything else: 1 call < min_calls
    assert cond(ok(200, t=18.0)) is False


# ------------------------------------------------------------------ error_rate_above


def test_error_rate_above_strictly_exceeds() -> None:
    cond = error_rate_above(0.5, window=4)
    assert feed(cond, [fail(), ok(), fail(), ok(), fail()]) == [False] * 5  # 2/4: not above
    assert cond(fail()) is True  # window [fail, ok, fail, fail]: 3/4


def test_error_rate_above_over_a_sliding_window() -> None:
    cond = error_rate_above(0.5, window=4)
    history = [fail(), ok(), ok(), ok(), fail(), fail(), fail()]
    # full windows: [f,o,o,o] 1/4, [o,o,o,f] 1/4, [o,o,f,f] 2/4, [o,f,f,f] 3/4 -> trip
    assert feed(cond, history) == [False] * 6 + [True]


def test_error_rate_above_waits_for_a_full_window() -> None:
    cond = error_rate_above(0.1, window=5)
    assert feed(cond, [fail()] * 4) == [False] * 4
    assert cond(fail()) is True


def test_error_rate_above_judges_the_window_when_a_success_fills_it() -> None:
    """3 failures in the first 4 calls is a 75% error rate over a full window of 4: the call
    that fills the window trips it, whether that call failed or not (ml-breaker semantics)."""
    cond = error_rate_above(0.5, window=4)
    assert feed(cond, [fail(), fail(), fail(), ok()]) == [False, False, False, True]


def test_error_rate_above_breaker_trips_when_window_fills_on_a_success(clock) -> None:
    breaker = tripwise.CircuitBreaker(error_rate_above(0.5, window=4), registry=None, clock=clock)
    for _ in range(3):
        with pytest.raises(ValueError):
            breaker.call(raise_value_error)
    breaker.call(lambda: "fine")
    assert breaker.state is tripwise.State.OPEN


def test_error_rate_above_with_min_calls() -> None:
    cond = error_rate_above(0.5, window=10, min_calls=2)
    assert feed(cond, [fail(), fail()]) == [False, True]


def test_error_rate_above_time_window_expires_old_failures() -> None:
    cond = error_rate_above(0.5, window_seconds=10, buckets=10, min_calls=4)
    assert feed(cond, [fail(t=0.0), fail(t=1.0), fail(t=2.0)]) == [False] * 3
    assert cond(ok(t=3.0)) is True  # 3/4 > 0.5
    # at t=13 the failures of t<=3 have left the 10 one-second buckets
    assert feed(cond, [ok(t=13.0), ok(t=13.5), ok(t=14.0), fail(t=14.5)]) == [False] * 4


# ------------------------------------------------------------------ consecutive_failures


def test_consecutive_failures_trips_on_the_nth_failure_in_a_row() -> None:
    cond = consecutive_failures(3)
    assert feed(cond, [fail(), fail(), ok(), fail(), fail()]) == [False] * 5
    assert cond(fail()) is True
    assert cond(fail()) is True  # still a run of >= 3


def test_consecutive_failures_ignores_quality_and_latency() -> None:
    cond = consecutive_failures(2)
    assert feed(cond, [ok(9999, quality=0.0), ok(9999, quality=0.0), fail(), ok()]) == [False] * 4


# ------------------------------------------------------------------ slow_call_rate_above


def test_slow_call_rate_above() -> None:
    cond = slow_call_rate_above(0.5, slow_ms=100, window=4)
    history = [ok(200), ok(50), ok(200), ok(50), ok(200)]
    # full windows: [200, 50, 200, 50] and [50, 200, 50, 200]: 2/4 is not above 0.5
    assert feed(cond, history) == [False] * 5
    assert cond(ok(200)) is True  # [200, 50, 200, 200]: 3/4


def test_slow_call_rate_above_time_window() -> None:
    cond = slow_call_rate_above(0.25, slow_ms=100, window_seconds=4, buckets=4, min_calls=2)
    assert feed(cond, [ok(50, t=0.0), ok(150, t=0.5)]) == [False, True]  # 1/2 > 1/4
    assert cond(ok(50, t=10.0)) is False  # old calls expired, 1 call < min_calls


# ------------------------------------------------------------------ latency_quantile_above


def test_latency_quantile_above_p95_nearest_rank() -> None:
    """p95 of 20 latencies is the 19th smallest: it exceeds T once 2 of 20 calls exceed T."""
    cond = latency_quantile_above(0.95, 100, window=20)
    assert feed(cond, [ok(10)] * 19 + [ok(500)]) == [False] * 20  # 1 of 20 slow: p95 = 10
    assert cond(ok(500)) is True  # window [10 x 18, 500, 500]: p95 = 500


def test_latency_quantile_above_median() -> None:
    cond = latency_quantile_above(0.5, 100, window=4)
    # the nearest-rank median of 4 values is the 2nd smallest: [10, 10, 200, 200] -> 10
    assert feed(cond, [ok(10), ok(200), ok(200), ok(10)]) == [False] * 4
    assert cond(ok(200)) is True  # [200, 200, 10, 200] -> 200


def test_latency_quantile_above_max() -> None:
    cond = latency_quantile_above(1.0, 100, window=3)
    assert feed(cond, [ok(10), ok(10), ok(101)]) == [False, False, True]


# ------------------------------------------------------------------ low_quality_rate_above


def test_low_quality_rate_above() -> None:
    cond = low_quality_rate_above(0.5, threshold=0.6, window=4)
    history = [ok(quality=0.5), ok(), ok(quality=0.9), fail(), ok(quality=0.5), ok(quality=0.9)]
    # scored window [0.5, 0.9, 0.5, 0.9]: 2/4 low, not strictly above 0.5
    assert feed(cond, history) == [False] * 6
    assert cond(ok(quality=0.1)) is False  # [0.9, 0.5, 0.9, 0.1]: 2/4
    assert cond(ok(quality=0.1)) is True  # [0.5, 0.9, 0.1, 0.1]: 3/4


def test_low_quality_rate_above_threshold_is_exclusive() -> None:
    cond = low_quality_rate_above(0.0, threshold=0.5, window=1)
    assert cond(ok(quality=0.5)) is False
    assert cond(ok(quality=0.4999)) is True


# ------------------------------------------------------------------ decimal boundaries


@pytest.mark.parametrize(
    ("rate", "window"), [(0.5, 20), (0.3, 10), (0.58, 50), (0.29, 100), (0.7, 90)]
)
def test_error_rate_exactly_at_rate_does_not_trip(rate: float, window: int) -> None:
    """``error_rate_above(0.58, window=50)`` with 29 failures in 50 calls is a 58% rate: it
    does not strictly exceed 58%, whatever the binary rounding of ``0.58 * 50``."""
    failures = round(rate * window)
    cond = error_rate_above(rate, window=window)
    assert not any(feed(cond, [ok()] * (window - failures) + [fail()] * failures))


def test_other_rates_exactly_at_rate_do_not_trip() -> None:
    """29 of 50 is exactly 58%: not above 0.58 for any rate rule, count or time window."""
    slow = slow_call_rate_above(0.58, slow_ms=100, window=50)
    assert not any(feed(slow, [ok(10)] * 21 + [ok(500)] * 29))
    low = low_quality_rate_above(0.58, threshold=0.5, window=50)
    assert not any(feed(low, [ok(quality=0.9)] * 21 + [ok(quality=0.1)] * 29))
    timed = error_rate_above(0.58, window_seconds=60, min_calls=50)
    assert not any(feed(timed, [ok(t=1.0)] * 21 + [fail(t=2.0)] * 29))


def test_quality_mean_exactly_at_threshold_does_not_trip() -> None:
    """An LLM judge scoring in tenths: scores 0.1 and 0.7 average exactly 0.4."""
    cond = quality_below(0.4, window=2)
    assert feed(cond, [ok(quality=0.1), ok(quality=0.7)]) == [False, False]


def test_latency_quantile_rank_uses_the_quantile_as_written() -> None:
    """p7 of 100 latencies is the 7th smallest (rank ceil(0.07 * 100) = 7): with 7 fast calls
    it is fast, so the rule must not trip."""
    cond = latency_quantile_above(0.07, 100, window=100)
    assert not any(feed(cond, [ok(10)] * 7 + [ok(500)] * 93))
