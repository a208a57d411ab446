"""The core hooks health checks use: CircuitBreaker.trip() and half_open_now()."""

from __future__ import annotations

from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, State


def test_trip_opens_normally_and_recovers_after_the_cool_down() -> None:
    clock = FakeClock()
    changes: list[tuple[State, State]] = []
    breaker = CircuitBreaker(
        half_open_after=10.0,
        recovery_threshold=1,
        clock=clock,
        registry=None,
        on_state_change=lambda b, old, new: changes.append((old, new)),
    )
    assert breaker.trip() is True
    assert breaker.state is State.OPEN and breaker.trip_count == 1
    assert breaker.trip() is False  # already open
    try:
        breaker.call(lambda: "x")
    except CircuitBreakerOpen as exc:
        assert exc.retry_after == 10.0
    clock.advance(10.0)
    assert breaker.call(lambda: "x") == "x"
    assert breaker.state is State.CLOSED
    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


def test_half_open_now_ends_the_cool_down_early() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(half_open_after=60.0, recovery_threshold=1, clock=clock, registry=None)
    assert breaker.half_open_now() is False  # closed: nothing to do
    breaker.trip()
    assert breaker.half_open_now() is True
    assert breaker.state is State.HALF_OPEN
    assert breaker.call(lambda: 1) == 1
    assert breaker.state is State.CLOSED


def test_hooks_respect_manual_modes() -> None:
    breaker = CircuitBreaker(registry=None)
    breaker.force_open()
    assert breaker.half_open_now() is False and breaker.state is State.OPEN
    breaker.disable()
    assert breaker.trip() is False and breaker.state is State.CLOSED
