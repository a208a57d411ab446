"""Each condition keeps one data structure, and every public accessor answers truthfully.

Before: count-window ``error_rate_above`` and ``quality_below`` kept a window they never
filled beside the structure they really used, so ``aggregate()`` said 0 calls after 6, and
the time-window ``quality_below.mean()`` was always None.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any
from unittest.mock import MagicMock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tripwise
from tripwise import CircuitBreaker, FakeClock, State
from tripwise.core import conditions as c
from tripwise.core.windows import CountWindow, SequenceWindow, TimeWindow, ValueWindow, Window

from ._records import fail, feed, ok, raise_value_error


def test_count_window_error_rate_aggregate_counts_every_call() -> None:
    cond = c.error_rate_above(0.5, window=10)
    feed(cond, [ok(), fail(), ok(), ok(), fail(), ok()])
    agg = cond.aggregate()
    assert (agg.count, agg.flagged) == (6, 2)
    assert cond.failure_count() == 2
    assert isinstance(cond.window, SequenceWindow)
    assert (cond.window.count, cond.window.flagged) == (6, 2)


def test_count_window_quality_below_aggregate_and_mean() -> None:
    cond = c.quality_below(0.5, window=4)
    feed(cond, [ok(quality=q) for q in (0.5, 1.0, 0.25, 0.75, 0.5, 1.0)])
    agg = cond.aggregate()
    assert (agg.count, agg.valued) == (4, 4)
    assert agg.total == 2.5 and agg.mean == 0.625 == cond.mean()
    assert (agg.min, agg.max) == (0.25, 1.0)
    assert isinstance(cond.window, ValueWindow)


def test_time_window_quality_below_mean() -> None:
    cond = c.quality_below(0.5, window_seconds=10, min_calls=1)
    cond(ok(quality=0.25, t=1.0))
    cond(ok(quality=0.75, t=2.0))
    assert cond.mean() == 0.5
    assert cond.mean(now=30.0) is None  # both scores have left the window
    assert isinstance(cond.window, TimeWindow)


@pytest.mark.parametrize(
    "cond",
    [
        c.error_rate_above(0.5, window=5),
        c.error_rate_above(0.5, window_seconds=5),
        c.quality_below(0.5, window=5),
        c.quality_below(0.5, window_seconds=5),
        c.latency_above(100, window=5),
        c.slow_call_rate_above(0.5, 100, window_seconds=5),
        c.latency_quantile_above(0.9, 100, window=5),
        c.low_quality_rate_above(0.5, 0.5, window=5),
    ],
    ids=repr,
)
def test_every_window_rule_has_one_window_with_the_protocol(cond: c.WindowRule) -> None:
    assert isinstance(cond.window, Window)
    structures = [v for v in vars(cond).values() if isinstance(v, (list, dict, Window))]
    assert structures == [cond.window]  # no second ring, deque or window beside it


def test_lean_error_rate_follows_the_breaker_call_counter() -> None:
    """Driven by a breaker, a lean rule hears of failures only; with the breaker's counter
    its accessors still count the plain successes."""
    cond = c.error_rate_above(0.5, window=4)
    counter = itertools.count(1)
    calls = {"n": 0}
    cond.follow_calls(lambda: calls["n"])

    def call(failed: bool) -> None:
        calls["n"] = seq = next(counter)
        if failed:  # the breaker reports failures only
            cond.observe(RuntimeError("down"), 1.0, None, 0.0, seq)

    call(True)
    call(False)  # not reported: a lean success
    call(False)
    assert (cond.window.count, cond.window.flagged) == (3, 1)
    for _ in range(4):
        call(False)
    assert (cond.window.count, cond.window.flagged) == (4, 0)  # the failure left the window


def test_consecutive_failures_streak_is_zero_after_an_unreported_success() -> None:
    cond = c.consecutive_failures(3)
    n = {"seq": 0}
    cond.follow_calls(lambda: n["seq"])
    for seq in (1, 2):
        n["seq"] = seq
        cond.observe(RuntimeError(), 1.0, None, 0.0, seq)
    assert cond.streak == 2
    n["seq"] = 3  # a plain success the lean breaker did not report
    assert cond.streak == 0


def test_error_rate_rule_through_a_breaker_counts_calls_truthfully() -> None:
    clock = FakeClock()
    cond = c.error_rate_above(0.5, window=20)
    breaker = CircuitBreaker(cond, clock=clock, registry=None)
    guarded = breaker(lambda: "fine")
    for _ in range(6):
        guarded()
    assert cond.aggregate().count == 6
    for _ in range(30):  # past min_calls: plain successes no longer reach the condition
        guarded()
    with pytest.raises(ValueError):
        breaker.call(raise_value_error)
    for _ in range(3):
        guarded()
    assert (cond.aggregate().count, cond.failure_count()) == (20, 1)
    for _ in range(20):
        guarded()
    assert (cond.window.count, cond.window.flagged) == (20, 0)  # the failure left the window


def test_consecutive_failures_through_a_breaker_sees_the_unreported_success() -> None:
    cond = c.consecutive_failures(3)
    breaker = CircuitBreaker(cond, clock=FakeClock(), registry=None)
    for _ in range(2):
        with pytest.raises(ValueError):
            breaker.call(raise_value_error)
    assert cond.streak == 2
    breaker(lambda: "fine")()  # a lean success: the condition is not told
    assert cond.streak == 0


def test_a_new_generation_empties_the_lean_window() -> None:
    clock = FakeClock()
    cond = c.error_rate_above(0.5, window=4)
    breaker = CircuitBreaker(cond, clock=clock, registry=None, half_open_after=1)
    for _ in range(4):
        with pytest.raises((ValueError, tripwise.CircuitBreakerOpen)):
            breaker.call(raise_value_error)
    assert breaker.state is State.OPEN
    breaker.reset()
    assert (cond.aggregate().count, cond.failure_count()) == (0, 0)
    breaker.call(lambda: "fine")
    assert (cond.aggregate().count, cond.failure_count()) == (1, 0)


# ------------------------------------------------------------------ constructors are the classes


@pytest.mark.parametrize(
    ("function", "cls"),
    [
        (c.quality_below, c.QualityBelow),
        (c.latency_above, c.LatencyAbove),
        (c.error_rate_above, c.ErrorRateAbove),
        (c.consecutive_failures, c.ConsecutiveFailures),
        (c.slow_call_rate_above, c.SlowCallRateAbove),
        (c.latency_quantile_above, c.LatencyQuantileAbove),
        (c.low_quality_rate_above, c.LowQualityRateAbove),
        (c.any_of, c.AnyOf),
        (c.all_of, c.AllOf),
    ],
)
def test_ml_breaker_names_are_the_classes(function: Any, cls: type) -> None:
    assert function is cls


def test_ml_breaker_import_paths_work() -> None:
    from tripwise._conditions import consecutive_failures, quality_below
    from tripwise.quality._scored import ScoredCondition

    assert ScoredCondition is c.ScoredCondition
    cond = quality_below(threshold=0.7, window=20, score_fn=lambda r: r.confidence)
    assert repr(cond) == "quality_below(0.7, window=20, score_fn=...)"
    assert repr(consecutive_failures(5)) == "consecutive_failures(5)"


def test_reprs_rebuild_the_same_condition() -> None:
    for cond in [
        c.error_rate_above(0.25, window_seconds=30, buckets=5, min_calls=4),
        c.quality_below(70, window=10, score_range=(0, 100)),
        c.low_quality_rate_above(0.1, 0.0, window=5, score_range=(-1, 1)),
        c.latency_quantile_above(0.95, 250, window=50),
    ]:
        rebuilt = eval(repr(cond), vars(c))  # our own reprs, built just above
        assert repr(rebuilt) == repr(cond)
        assert type(rebuilt) is type(cond)


# ------------------------------------------------------------------ traps refused at construction


@pytest.mark.parametrize(
    ("build", "exc", "words"),
    [
        (lambda: c.error_rate_above(0.5, window=20, window_seconds=10), ValueError, "not both"),
        (lambda: c.quality_below(0.5, window=5, window_seconds=10), ValueError, "not both"),
        (lambda: c.latency_above(100, window=5, window_seconds=10), ValueError, "not both"),
        (lambda: c.error_rate_above(1.0), ValueError, "never"),
        (lambda: c.error_rate_above(1), ValueError, "never"),
        (lambda: c.slow_call_rate_above(1.0, 100), ValueError, "never"),
        (lambda: c.low_quality_rate_above(1.0, 0.5), ValueError, "never"),
        (lambda: c.quality_below(0.0), ValueError, "never trip"),
        (lambda: c.low_quality_rate_above(0.2, 0.0), ValueError, "never trip"),
        (lambda: c.quality_below(0, score_range=(0, 100)), ValueError, "never trip"),
        (lambda: c.quality_below(150, score_range=(0, 100)), ValueError, "score range"),
        (lambda: c.quality_below(True), TypeError, "threshold"),
        (lambda: c.quality_below(0.5, score_range=(1, 0)), ValueError, "low < high"),
        (lambda: c.quality_below(0.5, score_range=(0, math.inf)), ValueError, "finite"),
        (lambda: c.quality_below(0.5, score_range=0.5), TypeError, "pair"),
        (lambda: c.quality_below(0.5, score_range=(False, 1)), TypeError, "numbers"),
        (lambda: c.latency_above(1e300), ValueError, "never trip"),
        (lambda: c.latency_quantile_above(True, 100), ValueError, "q"),
        (lambda: c.slow_call_rate_above(0.5, math.inf), ValueError, "slow_ms"),
        (lambda: c.error_rate_above(0.5, window=True), ValueError, "window"),
        (lambda: c.error_rate_above(0.5, window_seconds=math.inf), ValueError, "window_seconds"),
        (lambda: c.error_rate_above(0.5, window_seconds=True), TypeError, "window_seconds"),
        (lambda: c.error_rate_above(0.5, window_seconds=10, buckets=True), ValueError, "buckets"),
        (lambda: c.consecutive_failures(math.nan), ValueError, "n"),
        (lambda: c.quality_below(0.5, window=10**9), ValueError, "window"),
        (lambda: c.latency_above(100, window_seconds=60, buckets=10**8), ValueError, "buckets"),
    ],
)
def test_conditions_that_could_never_fire_or_would_drop_an_argument_are_refused(
    build: Any, exc: type[Exception], words: str
) -> None:
    with pytest.raises(exc, match=words):
        build()


def test_numpy_numbers_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    cond = c.error_rate_above(np.float64(0.5), window=np.int64(4), min_calls=np.int32(2))
    assert repr(cond) == "error_rate_above(0.5, window=4, min_calls=2)"
    assert type(cond.window.size) is int


# ------------------------------------------------------------------ score ranges


def test_out_of_range_scores_are_clamped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cond = c.quality_below(0.5, window=2)
    with caplog.at_level(logging.WARNING, logger="tripwise.conditions"):
        assert feed(cond, [ok(quality=1.2), ok(quality=-0.05), ok(quality=-3.0)]) == [
            False,
            False,  # mean of 1.0 and 0.0 is 0.5: not below
            True,  # mean of 0.0 and 0.0
        ]
    assert cond.clamped_scores == 3
    assert cond.aggregate().max == 0.0
    (record,) = caplog.records
    assert "1.2" in record.getMessage() and "score_range" in record.getMessage()


def test_nan_and_inf_scores_reaching_a_condition_are_handled() -> None:
    cond = c.quality_below(0.5, window=2)
    assert feed(cond, [ok(quality=math.nan), ok(quality=math.inf)]) == [False, False]
    assert cond.aggregate().valued == 1  # NaN counts as no score; inf as the top of the range
    assert cond.mean() == 1.0


def test_declared_score_range_for_ratings_and_cosine() -> None:
    ratings = c.quality_below(70, window=2, score_range=(0, 100))
    assert feed(ratings, [ok(quality=80), ok(quality=50)]) == [False, True]
    assert ratings.clamped_scores == 0
    cosine = c.low_quality_rate_above(0.0, 0.2, window=1, score_range=(-1, 1))
    assert feed(cosine, [ok(quality=0.5), ok(quality=-0.4)]) == [False, True]


def test_quality_conditions_of_the_quality_package_get_the_range_too() -> None:
    from tripwise.quality import quality_mean_below

    cond = quality_mean_below(0.8, window=20, min_calls=20)
    feed(cond, [ok(quality=1.5)] * 20)
    assert cond.clamped_scores == 20
    assert cond.aggregate().max == 1.0


# ------------------------------------------------------------------ mocks and proxies


def test_a_magicmock_condition_drives_a_breaker() -> None:
    cond = MagicMock(return_value=False)
    breaker = CircuitBreaker(cond, clock=FakeClock(), registry=None)
    assert breaker.call(lambda: 1) == 1
    cond.return_value = True
    with pytest.raises(tripwise.CircuitBreakerOpen):  # the tripping call's own error, chained
        breaker.call(raise_value_error)
    assert breaker.state is State.OPEN
    assert cond.call_count == 2
    assert isinstance(cond.call_args[0][0], tripwise.CallRecord)


def test_a_mock_is_not_mistaken_for_a_condition_owned_elsewhere() -> None:
    cond = MagicMock(return_value=False)
    CircuitBreaker(cond, registry=None)
    with pytest.raises(ValueError, match="already belongs"):
        CircuitBreaker(cond, registry=None)  # the same mock really is shared: refused


def test_a_mock_does_not_invent_a_score_fn() -> None:
    wrapped = c.as_condition(MagicMock(return_value=False))
    assert wrapped.score_fn is None


def test_a_weakref_proxy_condition_is_accepted() -> None:
    import weakref

    class Never:
        def __call__(self, record: tripwise.CallRecord) -> bool:
            return False

        def reset(self) -> None:
            pass

    target = Never()
    breaker = CircuitBreaker(weakref.proxy(target), clock=FakeClock(), registry=None)
    assert breaker.call(lambda: 2) == 2


def test_windows_share_the_add_signature() -> None:
    for window in (CountWindow(3), ValueWindow(3), SequenceWindow(3), TimeWindow(3)):
        assert window.add(1.0 if not isinstance(window, SequenceWindow) else None, False, 1.0)
        assert window.count == 1
        window.clear()
        assert window.aggregate().count == 0


# ------------------------------------------------------------------ lean window vs brute force


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 8),
    outcomes=st.lists(st.booleans(), max_size=40),
    restart_at=st.none() | st.integers(0, 40),
)
def test_lean_error_rate_window_matches_a_brute_force_reference(
    size: int, outcomes: list[bool], restart_at: int | None
) -> None:
    """Told only of failures, with the breaker's counter, the window holds what a window of
    every call would hold; a restart (new generation, numbered from 0) empties it."""
    cond = c.error_rate_above(0.5, window=size, min_calls=1)
    seq = {"n": 0}
    cond.follow_calls(lambda: seq["n"])
    history: list[bool] = []
    for i, failed in enumerate(outcomes):
        if i == restart_at:
            cond.restart(0)
            seq["n"] = 0
            history = []
        seq["n"] += 1
        history.append(failed)
        if failed:
            cond.observe(RuntimeError("down"), 1.0, None, 0.0, seq["n"])
        held = history[-size:]
        agg = cond.aggregate()
        assert (agg.count, agg.flagged) == (len(held), sum(held))
        assert cond.failure_count() == sum(held)


# ------------------------------------------------------------------ ml-breaker's Condition


def test_ml_breaker_condition_is_the_protocol_and_subclasses_work() -> None:
    from tripwise._conditions import CallRecord, Condition

    class FailsTwice(Condition):  # written for ml-breaker: __call__ and reset only
        def __init__(self) -> None:
            self.failures = 0

        def __call__(self, record: CallRecord) -> bool:
            self.failures += record.error is not None
            return self.failures >= 2

        def reset(self) -> None:
            self.failures = 0

    class Halfway(c.Condition):  # tripwise's base class, ml-breaker's methods only
        def __call__(self, record: CallRecord) -> bool:
            return record.error is not None

        def reset(self) -> None:
            pass

    for cond in (FailsTwice(), Halfway()):
        assert isinstance(cond, Condition)
        breaker = CircuitBreaker(cond, clock=FakeClock(), registry=None)
        with pytest.raises((ValueError, tripwise.CircuitBreakerOpen)):
            breaker.call(raise_value_error)
        with pytest.raises((ValueError, tripwise.CircuitBreakerOpen)):
            breaker.call(raise_value_error)
        assert breaker.state is State.OPEN


def test_a_condition_subclass_with_no_decision_is_refused() -> None:
    class Empty(c.Condition):
        def reset(self) -> None:
            pass

    with pytest.raises(TypeError, match="neither"):
        CircuitBreaker(Empty(), registry=None)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 6),
    threshold=st.sampled_from([k / 16 for k in range(1, 17)]),
    scores=st.lists(st.integers(-64, 80).map(lambda k: k / 16), max_size=30),
)
def test_quality_below_with_out_of_range_scores_matches_a_clamped_reference(
    size: int, threshold: float, scores: list[float]
) -> None:
    cond = c.quality_below(threshold, window=size)
    held: list[float] = []
    for score in scores:
        held = ([*held, min(1.0, max(0.0, score))])[-size:]
        expected = len(held) == size and sum(held) / size < threshold
        assert cond(ok(quality=score)) is expected
    assert cond.clamped_scores == sum(1 for s in scores if not 0.0 <= s <= 1.0)
