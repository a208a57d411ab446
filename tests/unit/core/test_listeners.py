"""Event listeners and on_state_change callbacks: what they receive, and that their
exceptions are logged, never propagated."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from tripwise import (
    CallRecord,
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    consecutive_failures,
    quality_below,
    report_quality,
)

from ._helpers import attempt, boom, make_breaker, raiser


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_state_change(self, breaker: CircuitBreaker, old: State, new: State) -> None:
        self.events.append(("state", breaker.name, old, new))

    def on_call(self, breaker: CircuitBreaker, record: CallRecord | None, outcome: str) -> None:
        self.events.append(("call", outcome, record))

    def on_rejection(self, breaker: CircuitBreaker, error: CircuitBreakerOpen) -> None:
        self.events.append(("rejected", error.state, error.retry_after))


class Exploding:
    def on_state_change(self, *args: Any) -> None:
        raise RuntimeError("listener bug: state")

    def on_call(self, *args: Any) -> None:
        raise RuntimeError("listener bug: call")

    def on_rejection(self, *args: Any) -> None:
        raise RuntimeError("listener bug: rejection")


make = functools.partial(make_breaker, name="svc")


def test_listener_sees_calls_rejections_and_transitions(clock: FakeClock) -> None:
    rec = Recorder()
    breaker = make(clock, listeners=[rec], trip_on=quality_below(0.5, window=1))

    def work(score: float | None) -> str:
        clock.advance(0.125)
        if score is not None:
            report_quality(score)
        return "ok"

    breaker.call(work, 0.9)
    breaker.call(work, 0.1)  # trips
    attempt(breaker, work, 0.9)  # rejected
    clock.advance(10)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(raiser(KeyboardInterrupt()))  # an ignored probe
    kinds = [e[0] for e in rec.events]
    assert kinds == ["call", "call", "state", "rejected", "state", "call"]
    _, outcome, record = rec.events[0]
    assert outcome == "success"
    assert (record.latency_ms, record.quality, record.error) == (125.0, 0.9, None)
    assert record.timestamp == 1000.125
    assert rec.events[2] == ("state", "svc", State.CLOSED, State.OPEN)
    assert rec.events[3] == ("rejected", State.OPEN, 10.0)
    assert rec.events[4] == ("state", "svc", State.OPEN, State.HALF_OPEN)
    assert rec.events[5] == ("call", "ignored", None)


def test_listener_sees_failures(clock: FakeClock) -> None:
    rec = Recorder()
    breaker = make(clock, listeners=[rec], trip_on=consecutive_failures(3))
    err = RuntimeError("x")
    attempt(breaker, raiser(err))
    assert rec.events == [("call", "failure", rec.events[0][2])]
    assert rec.events[0][2].error is err


def test_partial_listeners_are_fine(clock: FakeClock) -> None:
    class OnlyCalls:
        def __init__(self) -> None:
            self.n = 0

        def on_call(self, *args: Any) -> None:
            self.n += 1

    listener = OnlyCalls()
    breaker = make(clock, listeners=[listener])
    attempt(breaker, boom)
    attempt(breaker, boom)
    assert listener.n == 1
    assert breaker.stats().rejected == 1


def test_add_and_remove_listener(clock: FakeClock) -> None:
    rec = Recorder()
    breaker = make(clock, trip_on=consecutive_failures(5))
    breaker.call(lambda: 1)
    breaker.add_listener(rec)
    breaker.call(lambda: 2)
    breaker.remove_listener(rec)
    breaker.call(lambda: 3)
    assert [e[:2] for e in rec.events] == [("call", "success")]


def test_on_state_change_callback_and_decorator_form(clock: FakeClock) -> None:
    seen: list[tuple[str, State, State]] = []
    breaker = make(clock, on_state_change=lambda b, old, new: seen.append(("ctor", old, new)))

    @breaker.on_state_change
    def later(b: CircuitBreaker, old: State, new: State) -> None:
        seen.append(("added", old, new))

    attempt(breaker, boom)
    clock.advance(10)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    assert seen == [
        ("ctor", State.CLOSED, State.OPEN),
        ("added", State.CLOSED, State.OPEN),
        ("ctor", State.OPEN, State.HALF_OPEN),
        ("added", State.OPEN, State.HALF_OPEN),
        ("ctor", State.HALF_OPEN, State.CLOSED),
        ("added", State.HALF_OPEN, State.CLOSED),
    ]


def test_failing_listeners_are_logged_not_propagated(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    def bad_callback(*args: Any) -> None:
        raise ValueError("callback bug")

    breaker = make(
        clock,
        listeners=[Exploding(), rec],
        on_state_change=bad_callback,
        fallback="fallback",
    )
    with caplog.at_level(logging.ERROR, logger="tripwise"):
        assert breaker.call(lambda: "live") == "live"
        assert breaker.call(boom) == "fallback"  # trips
        assert breaker.call(lambda: "live") == "fallback"  # rejected
    assert breaker.state is State.OPEN
    # the healthy listener after the broken one still got everything
    assert [e[0] for e in rec.events] == ["call", "call", "state", "rejected"]
    text = caplog.text
    for needle in ("callback bug", "listener bug: state", "listener bug: call", "rejection"):
        assert needle in text


def test_callbacks_may_use_the_breaker(clock: FakeClock) -> None:
    """Callbacks run with no lock held: reading stats or even resetting must not deadlock."""
    snapshots: list[str] = []

    def on_change(b: CircuitBreaker, old: State, new: State) -> None:
        snapshots.append(b.stats().state.value)
        if new is State.OPEN:
            b.reset()

    breaker = make(clock, on_state_change=on_change)
    attempt(breaker, boom)
    assert breaker.state is State.CLOSED
    assert snapshots == ["open", "closed"]


def test_transitions_are_logged(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    breaker = make(clock)
    with caplog.at_level(logging.INFO, logger="tripwise"):
        attempt(breaker, boom)
    assert any(
        r.name.startswith("tripwise") and "svc" in r.getMessage() and "open" in r.getMessage()
        for r in caplog.records
    )
