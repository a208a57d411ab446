"""Generations (stale calls cannot drive transitions) and manual control: force_open,
disable, metrics_only shadow mode, reset."""

from __future__ import annotations

import pytest

from tripwise import (
    CircuitBreakerOpen,
    FakeClock,
    Mode,
    State,
    consecutive_failures,
    error_rate_above,
    quality_below,
)

from ._helpers import Inflight, attempt, boom, make_breaker, trip

make = make_breaker


# ------------------------------------------------------------------ generations


def test_call_started_while_closed_cannot_reopen_a_half_open_breaker(clock: FakeClock) -> None:
    breaker = make(clock)
    slow = Inflight(breaker)  # admitted while CLOSED
    trip(breaker)
    clock.advance(10)
    probe = Inflight(breaker)
    assert breaker.state is State.HALF_OPEN
    assert slow.fail() is None  # a failure from the old generation: no transition
    assert breaker.state is State.HALF_OPEN
    probe.succeed()
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.failures, stats.successes) == (2, 2)  # still counted in the stats


def test_call_started_while_closed_cannot_close_a_half_open_breaker(clock: FakeClock) -> None:
    breaker = make(clock, recovery_threshold=1)
    slow = Inflight(breaker)
    trip(breaker)
    clock.advance(10)
    probe = Inflight(breaker)
    slow.succeed()  # a success from the old generation is not a probe
    assert breaker.state is State.HALF_OPEN
    probe.fail()
    assert breaker.state is State.OPEN


def test_probe_of_an_earlier_half_open_period_does_not_count(clock: FakeClock) -> None:
    breaker = make(clock, half_open_max_calls=2, recovery_threshold=2)
    trip(breaker)
    clock.advance(10)
    old_probe, failing_probe = Inflight(breaker), Inflight(breaker)
    failing_probe.fail()
    assert breaker.state is State.OPEN
    clock.advance(10)
    new_probe = Inflight(breaker)
    old_probe.succeed()  # belongs to the previous half-open period
    new_probe.succeed()
    assert breaker.state is State.HALF_OPEN  # only one probe of this period succeeded
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED


def test_call_started_before_a_trip_cannot_trip_again(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(2))
    stale = [Inflight(breaker) for _ in range(3)]
    trip(breaker, 2)
    assert breaker.trip_count == 1
    for call in stale:
        assert call.fail() is None
    assert breaker.trip_count == 1
    assert breaker.state is State.OPEN


def test_call_started_before_reset_does_not_count_in_the_new_window(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(2))
    stale = Inflight(breaker)
    breaker.reset()
    stale.fail()
    attempt(breaker, boom)
    assert breaker.state is State.CLOSED  # one failure of the new generation, not two


@pytest.mark.parametrize("stale_outcome", ["success", "failure"])
@pytest.mark.parametrize(
    "trip_on",
    [
        lambda: error_rate_above(0.4, window=2),
        lambda: error_rate_above(0.4, window_seconds=60, min_calls=2),
    ],
    ids=["count-window", "time-window"],
)
def test_stale_call_does_not_fill_the_new_window(
    clock: FakeClock, trip_on: object, stale_outcome: str
) -> None:
    """After the breaker closed, a window of 2 needs 2 calls of the new generation: a call that
    started before the transitions must not make the window look full."""
    breaker = make(clock, trip_on(), recovery_threshold=1)  # type: ignore[operator]
    stale = Inflight(breaker)
    trip(breaker, 2)
    assert breaker.state is State.OPEN
    clock.advance(10)
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    if stale_outcome == "success":
        stale.succeed()
    else:
        stale.fail()
    attempt(breaker, boom)  # the new generation's first call
    assert breaker.state is State.CLOSED


# ------------------------------------------------------------------ force_open


def test_force_open_rejects_until_reset(clock: FakeClock) -> None:
    changes: list[tuple[State, State]] = []
    breaker = make(clock, on_state_change=lambda b, old, new: changes.append((old, new)))
    breaker.force_open()
    assert breaker.state is State.OPEN
    assert breaker.mode is Mode.FORCED_OPEN
    assert breaker.trip_count == 0  # a manual open is not a trip
    clock.advance(10_000)
    ran: list[int] = []
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(ran.append, 1)
    assert ran == []
    assert info.value.retry_after == float("inf")
    assert breaker.state is State.OPEN
    breaker.reset()
    assert (breaker.state, breaker.mode) == (State.CLOSED, Mode.NORMAL)
    assert breaker.call(lambda: 5) == 5
    assert changes == [(State.CLOSED, State.OPEN), (State.OPEN, State.CLOSED)]


def test_force_open_uses_the_fallback(clock: FakeClock) -> None:
    breaker = make(clock, fallback="cached")
    breaker.force_open()
    assert breaker.call(lambda: "live") == "cached"


def test_calls_in_flight_when_forced_open_cannot_change_state(clock: FakeClock) -> None:
    breaker = make(clock, recovery_threshold=1)
    trip(breaker)
    clock.advance(10)
    probe = Inflight(breaker)
    breaker.force_open()
    probe.succeed()
    assert (breaker.state, breaker.mode) == (State.OPEN, Mode.FORCED_OPEN)


# ------------------------------------------------------------------ disable


def test_disable_admits_everything_and_still_records(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(2))
    trip(breaker, 2)
    assert breaker.state is State.OPEN
    breaker.disable()
    assert (breaker.state, breaker.mode) == (State.CLOSED, Mode.DISABLED)
    for _ in range(10):
        assert isinstance(attempt(breaker, boom), RuntimeError)  # never converted or rejected
    assert breaker.state is State.CLOSED
    assert breaker.call(lambda: "ok") == "ok"
    stats = breaker.stats()
    assert (stats.failures, stats.successes, stats.rejected) == (12, 1, 0)
    assert stats.mode is Mode.DISABLED
    breaker.reset()
    assert breaker.mode is Mode.NORMAL
    attempt(breaker, boom)
    assert breaker.state is State.CLOSED  # failures while disabled are not in the window


# ------------------------------------------------------------------ metrics_only


def test_metrics_only_never_blocks_but_transitions_and_emits(clock: FakeClock) -> None:
    changes: list[tuple[State, State]] = []
    ran: list[int] = []
    breaker = make(
        clock,
        consecutive_failures(2),
        metrics_only=True,
        on_state_change=lambda b, old, new: changes.append((old, new)),
    )
    trip(breaker, 2)
    assert breaker.state is State.OPEN
    assert breaker.trip_count == 1
    for i in range(3):
        breaker.call(ran.append, i)  # runs although the breaker is open
    assert ran == [0, 1, 2]
    clock.advance(10)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert breaker.stats().rejected == 0
    assert breaker.mode is Mode.METRICS_ONLY


def test_metrics_only_admits_beyond_half_open_max_calls(clock: FakeClock) -> None:
    breaker = make(clock, metrics_only=True)
    trip(breaker)
    clock.advance(10)
    calls = [Inflight(breaker) for _ in range(3)]  # 1 probe + 2 extra, none rejected
    assert breaker.state is State.HALF_OPEN
    for call in calls:
        call.succeed()
    assert breaker.stats().rejected == 0


@pytest.mark.parametrize("fallback", [None, "fallback value"])
def test_metrics_only_is_transparent_to_the_caller(clock: FakeClock, fallback: object) -> None:
    """Shadow mode must not change what callers see: every call's own exception propagates
    unchanged (no CircuitBreakerOpen, no fallback), including the call that trips it."""
    breaker = make(clock, consecutive_failures(2), metrics_only=True, fallback=fallback)
    outcomes = [attempt(breaker, boom) for _ in range(4)]
    assert breaker.state is State.OPEN
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    clock.advance(10)
    assert isinstance(attempt(breaker, boom), RuntimeError)  # a failed probe, shadowed


def test_metrics_only_survives_reset(clock: FakeClock) -> None:
    breaker = make(clock, metrics_only=True)
    breaker.force_open()
    assert breaker.mode is Mode.FORCED_OPEN
    breaker.reset()
    assert breaker.mode is Mode.METRICS_ONLY


# ------------------------------------------------------------------ reset


def test_reset_closes_and_empties_windows_but_keeps_history(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures(3))
    trip(breaker, 3)
    breaker.reset()
    assert breaker.state is State.CLOSED
    assert breaker.trip_count == 1
    assert breaker.stats().failures == 3
    trip(breaker, 2)
    assert breaker.state is State.CLOSED  # 2 new failures, not 5


def test_reset_clear_stats(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1), track_latency=True)
    Inflight(breaker).succeed(quality=0.1)
    attempt(breaker, lambda: 1)
    breaker.reset(clear_stats=True)
    stats = breaker.stats()
    assert (stats.successes, stats.failures, stats.ignored, stats.rejected) == (0, 0, 0, 0)
    assert (stats.trip_count, stats.quality_count) == (0, 0)
    assert stats.avg_quality is None and stats.last_quality is None
    assert stats.avg_latency_ms is None
    breaker.call(lambda: 1)
    assert breaker.stats().successes == 1


def test_reset_of_a_closed_breaker_emits_nothing(clock: FakeClock) -> None:
    changes: list[object] = []
    breaker = make(clock, on_state_change=lambda *a: changes.append(a))
    breaker.reset()
    assert changes == []
