"""The stats snapshot: counts, rates, latency, quality, state, as an object and a dict."""

from __future__ import annotations

import contextlib
import time

import pytest

from tripwise import (
    BreakerStats,
    CircuitBreaker,
    FakeClock,
    Mode,
    State,
    consecutive_failures,
    quality_below,
    report_quality,
)

from ._helpers import attempt, boom, raiser

KEYS = {
    "name",
    "state",
    "mode",
    "trip_count",
    "successes",
    "failures",
    "ignored",
    "rejected",
    "avg_latency_ms",
    "max_latency_ms",
    "avg_quality",
    "last_quality",
    "quality_count",
    "opened_at",
    "state_changed_at",
    "created_at",
    "retry_after",
    "failed_recoveries",
    "calls",
    "failure_rate",
    "success_rate",
}


def test_fresh_breaker_stats() -> None:
    before = time.time()
    stats = CircuitBreaker(name="fresh", registry=None).stats()
    assert isinstance(stats, BreakerStats)
    assert (stats.name, stats.state, stats.mode) == ("fresh", State.CLOSED, Mode.NORMAL)
    assert (stats.calls, stats.failure_rate, stats.success_rate) == (0, 0.0, 0.0)
    assert stats.avg_latency_ms is None and stats.avg_quality is None
    assert stats.opened_at is None
    assert before - 1 <= stats.created_at <= time.time() + 1


def test_counts_and_rates(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(3),
        name="svc",
        half_open_after=10,
        ignore_exceptions=KeyError,
        registry=None,
        clock=clock,
    )
    for _ in range(6):
        breaker.call(lambda: 1)
    attempt(breaker, boom)
    attempt(breaker, raiser(KeyError()))
    attempt(breaker, boom)
    attempt(breaker, boom)  # trips
    attempt(breaker, lambda: 1)  # rejected
    stats = breaker.stats()
    assert (stats.successes, stats.failures, stats.ignored, stats.rejected) == (6, 3, 1, 1)
    assert stats.calls == 9
    assert stats.failure_rate == pytest.approx(3 / 9)
    assert stats.success_rate == pytest.approx(6 / 9)
    assert (stats.state, stats.trip_count) == (State.OPEN, 1)
    assert stats.retry_after == 10.0
    assert stats.opened_at is not None
    assert abs(stats.opened_at - time.time()) < 60  # epoch seconds, not the fake clock


def test_latency_is_measured_only_when_asked(clock: FakeClock) -> None:
    def work(seconds: float) -> None:
        clock.advance(seconds)

    untimed = CircuitBreaker(consecutive_failures(3), registry=None, clock=clock)
    untimed.call(work, 0.5)
    assert untimed.stats().avg_latency_ms is None
    assert untimed.stats().max_latency_ms is None

    timed = CircuitBreaker(consecutive_failures(3), track_latency=True, registry=None, clock=clock)
    timed.call(work, 0.25)
    timed.call(work, 0.75)
    attempt(timed, raiser(RuntimeError()))
    stats = timed.stats()
    assert stats.avg_latency_ms == pytest.approx(1000 / 3)
    assert stats.max_latency_ms == 750.0


def test_quality_stats(clock: FakeClock) -> None:
    breaker = CircuitBreaker(quality_below(0.1, window=50), registry=None, clock=clock)
    for score in (0.5, 0.75, None, 1.0):
        breaker.call(lambda s=score: s is not None and report_quality(s))
    stats = breaker.stats()
    assert (stats.quality_count, stats.last_quality) == (3, 1.0)
    assert stats.avg_quality == pytest.approx(0.75)


def test_to_dict(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(1), name="svc", half_open_after=10, registry=None, clock=clock
    )
    breaker.call(lambda: 1)
    attempt(breaker, boom)
    d = breaker.stats().to_dict()
    assert set(d) == KEYS
    assert d["state"] == "open" and d["mode"] == "normal"
    assert (d["successes"], d["failures"], d["calls"], d["trip_count"]) == (1, 1, 2, 1)
    assert d["failure_rate"] == 0.5 and d["success_rate"] == 0.5
    assert d["name"] == "svc"
    assert isinstance(d["opened_at"], float)


def test_stats_is_a_frozen_snapshot(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), registry=None, clock=clock)
    snapshot = breaker.stats()
    breaker.call(lambda: 1)
    assert snapshot.successes == 0
    with pytest.raises(AttributeError):
        snapshot.successes = 5  # type: ignore[misc]


def test_lean_path_successes_are_counted(clock: FakeClock) -> None:
    """The decorator's lock-free success path still counts every call exactly."""
    breaker = CircuitBreaker(consecutive_failures(100), registry=None, clock=clock)

    @breaker
    def fn(fail: bool) -> int:
        if fail:
            raise RuntimeError
        return 1

    for i in range(50):
        with contextlib.suppress(RuntimeError):
            fn(i % 5 == 0)
    stats = breaker.stats()
    assert (stats.successes, stats.failures) == (40, 10)
