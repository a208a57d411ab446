"""The state machine: closed -> open -> half-open -> closed, probes, recovery, backoff."""

from __future__ import annotations

import math
import random

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Mode,
    State,
    consecutive_failures,
    latency_above,
    quality_below,
)

from ._helpers import Inflight, attempt, boom, make_breaker, trip

make = make_breaker


def test_states_are_strings() -> None:
    assert [s.value for s in State] == ["closed", "open", "half_open"]
    assert State.HALF_OPEN == "half_open"
    assert str(State.OPEN) == "open"


def test_default_condition_is_five_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(registry=None, clock=clock)
    trip(breaker, 4)
    assert breaker.state is State.CLOSED
    trip(breaker, 1)
    assert breaker.state is State.OPEN


def test_closed_to_open(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(2))
    assert breaker.state is State.CLOSED and breaker.trip_count == 0
    assert breaker.opened_at is None
    trip(breaker, 2)
    assert breaker.state is State.OPEN
    assert breaker.trip_count == 1
    assert breaker.opened_at == clock()
    assert breaker.retry_after() == 10.0


def test_open_rejects_without_calling_the_function(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    ran: list[int] = []
    clock.advance(4)
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(ran.append, 1)
    assert ran == []
    assert info.value.state is State.OPEN
    assert info.value.retry_after == pytest.approx(6.0)
    assert info.value.trip_count == 1
    assert breaker.stats().rejected == 1


def test_open_becomes_half_open_after_exactly_half_open_after(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(9.999)
    assert isinstance(attempt(breaker, lambda: 1), CircuitBreakerOpen)
    assert breaker.state is State.OPEN
    clock.advance(0.001)
    assert breaker.retry_after() == 0.0
    assert breaker.call(lambda: "probe") == "probe"
    assert breaker.state is State.HALF_OPEN


def test_recovery_threshold_defaults_to_two(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.recovery_threshold == 2
    trip(breaker)
    clock.advance(10)
    breaker.call(lambda: 1)
    assert breaker.state is State.HALF_OPEN  # one lucky probe is not enough
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED


@pytest.mark.parametrize("threshold", [1, 3])
def test_recovery_threshold(clock: FakeClock, threshold: int) -> None:
    breaker = make(clock, recovery_threshold=threshold)
    trip(breaker)
    clock.advance(10)
    for _ in range(threshold - 1):
        breaker.call(lambda: 1)
        assert breaker.state is State.HALF_OPEN
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED


def test_any_failed_probe_reopens(clock: FakeClock) -> None:
    breaker = make(clock, recovery_threshold=3)
    trip(breaker)
    clock.advance(10)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    err = attempt(breaker, boom)
    assert isinstance(err, CircuitBreakerOpen)  # the probe's failure re-opened it...
    assert isinstance(err.__cause__, RuntimeError)  # ...and the failure is chained
    assert breaker.state is State.OPEN
    assert breaker.trip_count == 2
    assert breaker.stats().failed_recoveries == 1
    assert breaker.opened_at == clock()
    # the earlier successful probes do not carry over to the next half-open period
    clock.advance(10)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    assert breaker.state is State.HALF_OPEN
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    assert breaker.stats().failed_recoveries == 0


def test_closing_restarts_the_windows(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(3), recovery_threshold=1)
    trip(breaker, 3)
    clock.advance(10)
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    trip(breaker, 2)
    assert breaker.state is State.CLOSED  # the failures before the trip are forgotten


def test_half_open_admits_at_most_max_calls_concurrent_probes(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=2, recovery_threshold=3)
    trip(breaker)
    clock.advance(10)
    first, second = Inflight(breaker), Inflight(breaker)
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(CircuitBreakerOpen) as info:
        Inflight(breaker)
    assert info.value.state is State.HALF_OPEN
    assert info.value.retry_after == 0.0  # waiting for running probes, not for time
    first.succeed()
    third = Inflight(breaker)  # a slot came free
    with pytest.raises(CircuitBreakerOpen):
        Inflight(breaker)
    second.succeed()
    third.succeed()
    assert breaker.state is State.CLOSED
    assert breaker.stats().rejected == 2


def test_probe_slot_freed_by_an_ignored_exception(clock: FakeClock) -> None:
    breaker = make(clock, ignore_exceptions=(KeyError,))
    trip(breaker)
    clock.advance(10)
    probe = Inflight(breaker)
    with pytest.raises(CircuitBreakerOpen):
        Inflight(breaker)
    assert probe.fail(KeyError("not a health signal")) is None
    assert breaker.state is State.HALF_OPEN
    Inflight(breaker).succeed()  # admitted: the slot was released


def test_slow_probe_reopens_a_latency_breaker(clock: FakeClock) -> None:
    breaker = make(clock, latency_above(100, window=2), recovery_threshold=1)

    def slow() -> str:
        clock.advance(0.5)
        return "slow"

    breaker.call(slow)
    assert isinstance(attempt(breaker, slow), str)  # the tripping call still returns
    assert breaker.state is State.OPEN
    clock.advance(10)
    breaker.call(slow)  # a probe that succeeds but is slow is a failed probe
    assert breaker.state is State.OPEN
    assert breaker.trip_count == 2
    clock.advance(10)
    breaker.call(lambda: "fast")
    assert breaker.state is State.CLOSED


def test_low_quality_probe_reopens_and_unscored_probe_is_neutral(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1), recovery_threshold=2)
    Inflight(breaker).succeed(quality=0.1)
    assert breaker.state is State.OPEN
    clock.advance(10)
    Inflight(breaker).succeed()  # no score: neutral, counts as a good probe
    assert breaker.state is State.HALF_OPEN
    Inflight(breaker).succeed(quality=0.2)
    assert breaker.state is State.OPEN
    clock.advance(10)
    Inflight(breaker).succeed(quality=0.9)
    Inflight(breaker).succeed(quality=0.5)
    assert breaker.state is State.CLOSED


# ------------------------------------------------------------------ backoff and jitter


def open_durations(breaker: CircuitBreaker, clock: FakeClock, failed_probes: int) -> list[float]:
    """Trip, then fail ``failed_probes`` probes in a row; the open period before each."""
    durations = []
    trip(breaker)
    for _ in range(failed_probes + 1):
        durations.append(breaker.retry_after())
        clock.advance(breaker.retry_after())
        if len(durations) <= failed_probes:
            attempt(breaker, boom)
    return durations


def test_half_open_after_grows_on_failed_recoveries_and_is_capped(clock: FakeClock) -> None:
    breaker = make(clock, half_open_backoff=2.0, max_half_open_after=35)
    assert open_durations(breaker, clock, 4) == [10, 20, 35, 35, 35]
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    assert open_durations(breaker, clock, 1) == [10, 20]  # a recovery resets the backoff


def test_without_backoff_half_open_after_is_constant(clock: FakeClock) -> None:
    breaker = make(clock)
    assert open_durations(breaker, clock, 3) == [10, 10, 10, 10]


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return self.value


def test_jitter_uses_the_injected_rng(clock: FakeClock) -> None:
    rng = FixedRandom(0.5)
    breaker = make(clock, half_open_jitter=0.2, half_open_backoff=2.0, rng=rng)
    # duration = half_open_after * backoff**failed * (1 + jitter * rng.random())
    assert open_durations(breaker, clock, 2) == pytest.approx([11.0, 22.0, 44.0])
    assert rng.draws == 3


def test_jitter_never_exceeds_the_cap(clock: FakeClock) -> None:
    breaker = make(
        clock,
        half_open_jitter=1.0,
        half_open_backoff=3.0,
        max_half_open_after=50,
        rng=FixedRandom(0.999),
    )
    assert open_durations(breaker, clock, 3) == pytest.approx([19.99, 50, 50, 50])


def test_seeded_jitter_is_reproducible() -> None:
    def run() -> list[float]:
        clock = FakeClock()
        breaker = make(clock, half_open_jitter=0.5, rng=random.Random(42))
        return open_durations(breaker, clock, 4)

    first = run()
    assert first == run()
    assert all(10 <= d <= 15 for d in first)
    assert len(set(first)) > 1


# ------------------------------------------------------------------ retry_after


def test_retry_after_by_state(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.retry_after() == 0.0
    trip(breaker)
    clock.advance(3)
    assert breaker.retry_after() == pytest.approx(7)
    assert breaker.stats().retry_after == pytest.approx(7)
    clock.advance(7)
    probe = Inflight(breaker)
    assert breaker.retry_after() == 0.0
    probe.succeed()
    breaker.force_open()
    assert breaker.retry_after() == math.inf


def test_mode_starts_normal(clock: FakeClock) -> None:
    assert make(clock).mode is Mode.NORMAL
    assert make(clock, metrics_only=True).mode is Mode.METRICS_ONLY
