"""The per-generation fast path (``breaker.path``): a success that completes after a trip and
a reset counts on its own generation's counter, never in the new generation's windows; the
frozen config and ``configure()``; the default clock follows ``time.monotonic``."""

from __future__ import annotations

import sys
import threading
import time
from unittest import mock

import pytest

from tripwise import (
    BreakerConfig,
    CircuitBreaker,
    FakeClock,
    State,
    consecutive_failures,
    error_rate_above,
    latency_above,
)
from tripwise.core.path import Path, Tally

from ._helpers import attempt, boom


def _warm_rate_breaker(clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker(error_rate_above(0.5, window=4), registry=None, clock=clock)
    for _ in range(4):
        breaker.call(lambda: "ok")  # fills the window: the breaker is lean from now on
    assert breaker.path.lean
    return breaker


def test_a_stale_lean_success_cannot_count_in_the_new_generation(clock: FakeClock) -> None:
    """The interleaving of issue 9, driven deterministically: a lean success read the path,
    then (the thread switch) the breaker trips and is reset, then the success is counted."""
    breaker = _warm_rate_breaker(clock)
    stale = breaker.path  # what the in-flight lean success holds
    assert breaker.trip()
    breaker.reset()
    assert breaker.path is not stale and breaker.path.gen > stale.gen
    next(stale.calls)  # the lean success completes on the path it started on
    if breaker.path is not stale:
        breaker._late_success(stale)
    for _ in range(3):
        attempt(breaker, boom)
    # 3 failures of 3 calls: the window of 4 is not full, the breaker stays closed. (Before,
    # the stale success took a number in the new generation: 3 of 4 failed and it opened.)
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.successes, stats.failures) == (5, 3)  # the stale success still counts


def test_a_success_finishing_across_a_trip_and_reset_through_the_decorator(
    clock: FakeClock,
) -> None:
    breaker = _warm_rate_breaker(clock)

    @breaker
    def slow_success() -> str:
        breaker.trip()  # other threads trip and reset the breaker while this call runs
        breaker.reset()
        return "ok"

    assert slow_success() == "ok"
    for _ in range(3):
        attempt(breaker, boom)
    assert breaker.state is State.CLOSED
    assert breaker.stats().successes == 5


def test_the_fourth_call_of_the_new_generation_decides(clock: FakeClock) -> None:
    breaker = _warm_rate_breaker(clock)
    breaker.trip()
    breaker.reset()
    breaker.call(lambda: "ok")
    for _ in range(3):
        attempt(breaker, boom)
    assert breaker.state is State.OPEN  # 3 of 4 failed, as the rule says


def test_the_path_is_immutable_and_swapped_on_transitions(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), registry=None, clock=clock)
    closed = breaker.path
    assert isinstance(closed, Path) and closed.admit and closed.lean
    with pytest.raises(AttributeError, match="immutable"):
        closed.lean = False  # type: ignore[misc]
    attempt(breaker, boom)
    opened = breaker.path
    assert opened is not closed and not opened.admit and opened.open_until is not None
    assert opened.calls is not closed.calls


def test_tally_counts_without_parsing_its_repr() -> None:
    tally = Tally()
    for _ in range(5):
        next(tally)
    assert tally.value() == 5
    assert tally.value() == 5  # reading does not count
    assert tally.take() == 6


def test_config_is_frozen_and_configure_rederives_the_fast_path(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(3), registry=None, clock=clock)
    assert isinstance(breaker.config, BreakerConfig)
    assert breaker.path.lean and not breaker.path.timed
    with pytest.raises(AttributeError):
        breaker.track_latency = True  # type: ignore[misc]
    breaker.configure(track_latency=True)
    assert breaker.track_latency and breaker.path.timed and not breaker.path.lean

    def slow() -> str:
        clock.advance(0.25)
        return "ok"

    breaker.call(slow)
    assert breaker.stats().avg_latency_ms == pytest.approx(250.0)


def test_configure_validates_like_the_constructor(clock: FakeClock) -> None:
    breaker = CircuitBreaker(registry=None, clock=clock)
    with pytest.raises(ValueError, match="half_open_after"):
        breaker.configure(half_open_after=-1)
    with pytest.raises(TypeError, match="unknown breaker setting"):
        breaker.configure(half_open_afterr=5)
    assert breaker.configure(half_open_after=5).half_open_after == 5.0
    assert breaker.half_open_after == 5.0


def test_the_default_clock_follows_a_patched_time_monotonic() -> None:
    fake = FakeClock(500.0)
    with mock.patch("time.monotonic", fake):
        breaker = CircuitBreaker(consecutive_failures(1), half_open_after=30, registry=None)
        attempt(breaker, boom)
        assert breaker.last_trip_at == 500.0
        assert breaker.retry_after() == 30.0
        fake.advance(30)
        assert breaker.call(lambda: "probe") == "probe"
    assert time.monotonic() != fake()


def test_latency_rules_time_calls_with_the_patched_clock() -> None:
    fake = FakeClock()
    with mock.patch("time.monotonic", fake):
        breaker = CircuitBreaker(latency_above(100, window=1), registry=None)

        def slow() -> str:
            fake.advance(0.5)
            return "ok"

        breaker.call(slow)
    assert breaker.state is State.OPEN


def test_a_success_counted_just_before_the_swap_is_settled_once(clock: FakeClock) -> None:
    breaker = _warm_rate_breaker(clock)
    stale = breaker.path
    next(stale.calls)  # counted on the old path...
    breaker.trip()  # ...then the thread switch: the breaker moves on
    breaker.reset()
    breaker._late_success(stale)  # the success notices the swap and settles
    breaker._late_success(stale)  # settling twice counts nothing twice
    assert breaker.stats().successes == 5


def test_no_success_is_lost_or_double_counted_across_concurrent_transitions() -> None:
    breaker = CircuitBreaker(error_rate_above(0.5, window=4), fallback="rejected", registry=None)
    for _ in range(4):
        breaker.call(lambda: None)
    calls_per_thread, threads = 2_000, 4
    stop = threading.Event()

    @breaker
    def ok() -> None:
        return None

    def work() -> None:
        for _ in range(calls_per_thread):
            ok()

    def churn() -> None:
        while not stop.is_set():
            breaker.trip()
            breaker.reset()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    churner = threading.Thread(target=churn)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: mid-call swaps
    try:
        churner.start()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        stop.set()
        churner.join()
        sys.setswitchinterval(interval)
    stats = breaker.stats()
    # every call was admitted (reset right after each trip) or rejected while open
    assert stats.successes + stats.rejected == 4 + calls_per_thread * threads
    assert stats.failures == 0
