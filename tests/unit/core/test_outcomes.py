"""Outcome classification: which exceptions and results count as failures."""

from __future__ import annotations

import asyncio
import functools

import pytest

from tripwise import (
    CallRecord,
    CircuitBreaker,
    CircuitBreakerOpen,
    FailedResult,
    FakeClock,
    State,
    consecutive_failures,
)

from ._helpers import attempt, make_breaker, raiser


class HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


make = functools.partial(make_breaker, failures=2)


def test_every_exception_is_a_failure_by_default(clock: FakeClock) -> None:
    breaker = make(clock)
    assert isinstance(attempt(breaker, raiser(KeyError("k"))), KeyError)
    assert isinstance(attempt(breaker, raiser(ValueError("v"))), CircuitBreakerOpen)
    assert breaker.stats().failures == 2


def test_record_exceptions_limits_what_counts(clock: FakeClock) -> None:
    breaker = make(clock, record_exceptions=(ConnectionError, TimeoutError))
    for _ in range(5):
        assert isinstance(attempt(breaker, raiser(ValueError("bad input"))), ValueError)
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.failures, stats.ignored) == (0, 5)
    attempt(breaker, raiser(ConnectionResetError()))  # a subclass of ConnectionError
    attempt(breaker, raiser(TimeoutError()))
    assert breaker.state is State.OPEN


def test_record_exceptions_accepts_a_single_class(clock: FakeClock) -> None:
    breaker = make(clock, record_exceptions=TimeoutError)
    attempt(breaker, raiser(ValueError()))
    assert breaker.stats().failures == 0


def test_ignore_exceptions_wins_over_record_exceptions(clock: FakeClock) -> None:
    breaker = make(clock, ignore_exceptions=(LookupError,))
    for _ in range(4):
        assert isinstance(attempt(breaker, raiser(KeyError("missing"))), KeyError)
    assert breaker.state is State.CLOSED
    assert breaker.stats().ignored == 4
    assert breaker.stats().failures == 0


def test_ignored_exception_does_not_break_a_failure_streak(clock: FakeClock) -> None:
    breaker = make(clock, ignore_exceptions=KeyError)
    attempt(breaker, raiser(RuntimeError()))
    attempt(breaker, raiser(KeyError()))
    attempt(breaker, raiser(RuntimeError()))
    assert breaker.state is State.OPEN


def test_exception_predicate(clock: FakeClock) -> None:
    breaker = make(clock, exception_predicate=lambda e: getattr(e, "status", 500) >= 500)
    for _ in range(3):
        assert isinstance(attempt(breaker, raiser(HTTPError(404))), HTTPError)
    assert breaker.state is State.CLOSED
    attempt(breaker, raiser(HTTPError(503)))
    attempt(breaker, raiser(HTTPError(502)))
    assert breaker.state is State.OPEN


def test_result_predicate_makes_a_returned_value_a_failure(clock: FakeClock) -> None:
    seen: list[tuple[CallRecord | None, str]] = []

    class Recorder:
        def on_call(self, breaker: CircuitBreaker, record: CallRecord | None, outcome: str) -> None:
            seen.append((record, outcome))

    breaker = make(
        clock, result_predicate=lambda r: r.get("status") == "error", listeners=[Recorder()]
    )
    bad = {"status": "error"}
    assert breaker.call(lambda: bad) is bad  # the caller still gets the value
    assert breaker.call(lambda: {"status": "ok"}) == {"status": "ok"}
    assert [o for _, o in seen] == ["failure", "success"]
    record = seen[0][0]
    assert record is not None
    assert isinstance(record.error, FailedResult) and record.error.value is bad
    assert breaker.state is State.CLOSED
    breaker.call(lambda: bad)
    breaker.call(lambda: bad)
    assert breaker.state is State.OPEN
    assert breaker.stats().failures == 3


def test_result_predicate_is_not_asked_about_exceptions(clock: FakeClock) -> None:
    asked: list[object] = []
    breaker = make(clock, result_predicate=lambda r: asked.append(r) or False)
    attempt(breaker, raiser(RuntimeError()))
    assert asked == []


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(1), asyncio.CancelledError(), GeneratorExit()]
)
def test_base_exceptions_propagate_and_are_ignored(clock: FakeClock, exc: BaseException) -> None:
    breaker = make(clock)
    for _ in range(3):
        with pytest.raises(type(exc)):
            breaker.call(raiser(exc))
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.failures, stats.successes, stats.ignored) == (0, 0, 3)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), asyncio.CancelledError()])
def test_base_exception_in_a_probe_releases_the_slot(clock: FakeClock, exc: BaseException) -> None:
    breaker = make(clock, trip_on=consecutive_failures(1))
    attempt(breaker, raiser(RuntimeError()))
    clock.advance(10)
    with pytest.raises(type(exc)):
        breaker.call(raiser(exc))
    assert breaker.state is State.HALF_OPEN
    breaker.call(lambda: 1)  # admitted: the interrupted probe gave its slot back
    breaker.call(lambda: 1)
    assert breaker.state is State.CLOSED


def test_base_exception_through_the_decorator(clock: FakeClock) -> None:
    breaker = make(clock)

    @breaker
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert breaker.stats().ignored == 1


# ------------------------------------------------------------------ broken user predicates


def test_a_raising_result_predicate_does_not_wedge_the_breaker(clock: FakeClock) -> None:
    """A bug in a user predicate (here: it assumes every result is a dict) must not leak the
    half-open probe slot: afterwards the breaker has to admit probes again instead of
    rejecting every call forever, and the call must still be accounted for."""
    breaker = make(
        clock,
        trip_on=consecutive_failures(1),
        result_predicate=lambda r: r["status"] == "error",
    )
    attempt(breaker, raiser(RuntimeError("down")))  # trips; predicates skip exceptions
    clock.advance(10)
    attempt(breaker, lambda: None)  # the probe: the predicate raises TypeError on None
    clock.advance(100)
    outcome = attempt(breaker, lambda: {"status": "ok"})
    assert outcome == {"status": "ok"}, f"breaker wedged in {breaker.state}: {outcome!r}"
    stats = breaker.stats()
    assert stats.successes + stats.failures + stats.ignored + stats.rejected == 3


def test_a_raising_exception_predicate_does_not_wedge_the_breaker(clock: FakeClock) -> None:
    """Same for an exception predicate that assumes every error has a ``status``."""
    breaker = make(
        clock,
        trip_on=consecutive_failures(1),
        exception_predicate=lambda e: e.status >= 500,
    )
    attempt(breaker, raiser(HTTPError(503)))
    clock.advance(10)
    attempt(breaker, raiser(RuntimeError("no status attribute")))  # predicate raises
    clock.advance(100)
    outcome = attempt(breaker, lambda: "ok")
    assert outcome == "ok", f"breaker wedged in {breaker.state}: {outcome!r}"
    stats = breaker.stats()
    assert stats.successes + stats.failures + stats.ignored + stats.rejected == 3
