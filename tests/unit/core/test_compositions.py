"""Compositions (any_of, all_of, |, &) and user-defined conditions (ml-breaker protocol)."""

from __future__ import annotations

import pytest

import tripwise
from tripwise import CallRecord
from tripwise.core.conditions import (
    all_of,
    any_of,
    consecutive_failures,
    error_rate_above,
    latency_above,
    quality_below,
)

from ._records import fail, feed, fields, ok, raise_value_error

# ------------------------------------------------------------------ compositions


class Spy:
    """A user-defined condition (ml-breaker protocol) that records what it sees."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[CallRecord] = []
        self.resets = 0

    def __call__(self, record: CallRecord) -> bool:
        self.seen.append(record)
        return self.answer

    def reset(self) -> None:
        self.resets += 1
        self.seen.clear()


def test_any_of_does_not_short_circuit() -> None:
    first, second = Spy(True), Spy(False)
    cond = any_of(first, second)
    records = [ok(), fail(), ok(quality=0.3)]
    assert feed(cond, records) == [True] * 3
    assert fields(second.seen) == fields(records)  # every condition sees every record


def test_all_of_does_not_short_circuit() -> None:
    first, second = Spy(False), Spy(True)
    cond = all_of(first, second)
    records = [ok(), fail()]
    assert feed(cond, records) == [False, False]
    assert fields(second.seen) == fields(records)


def test_any_of_keeps_independent_windows() -> None:
    """The ml-breaker example: the latency rule trips on its 10-call window while the
    quality rule's 20-call window is still filling."""
    cond = any_of(quality_below(0.7, window=20), latency_above(2000, window=10))
    records = [ok(2500, quality=0.9)] * 10
    assert feed(cond, records) == [False] * 9 + [True]


def test_all_of_needs_every_condition_at_the_same_call() -> None:
    cond = all_of(error_rate_above(0.3, window=5), consecutive_failures(3))
    assert feed(cond, [fail(), fail(), ok(), ok(), ok()]) == [False] * 5  # rate 2/5, no streak
    assert feed(cond, [fail(), fail()]) == [False, False]  # rate 2/5, streak 2
    assert cond(fail()) is True  # window [ok, ok, fail, fail, fail]: rate 3/5, streak 3


def test_operators_build_flat_compositions() -> None:
    a, b, c = quality_below(0.5), latency_above(100), consecutive_failures(2)
    either = a | b | c
    assert isinstance(either, tripwise.AnyOf)
    assert either.conditions == (a, b, c)
    d, e = error_rate_above(0.5), consecutive_failures(3)
    both = d & e
    assert isinstance(both, tripwise.AllOf)
    assert both.conditions == (d, e)
    nested = any_of(all_of(quality_below(0.1), latency_above(1)), consecutive_failures(1))
    assert isinstance(nested.conditions[0], tripwise.AllOf)


def test_composition_reset_resets_every_child() -> None:
    spy_a, spy_b = Spy(False), Spy(False)
    cond = any_of(spy_a, all_of(spy_b, consecutive_failures(2)))
    feed(cond, [fail(), fail()])
    cond.reset()
    assert (spy_a.resets, spy_b.resets) == (1, 1)


def test_composition_reset_empties_a_count_window_error_rate() -> None:
    """ml-breaker protocol: after ``reset()`` the error-rate window of 4 must fill again
    before it can trip, also when the rule sits inside a composition."""
    alone = error_rate_above(0.0, window=4)
    composed = any_of(quality_below(0.5, window=1), error_rate_above(0.0, window=4))
    for cond in (alone, composed):
        feed(cond, [ok()] * 6)
        cond.reset()
        assert feed(cond, [ok(), ok(), fail()]) == [False] * 3, cond  # 3 calls: not full
        assert cond(fail()) is True


def test_empty_composition_is_rejected() -> None:
    with pytest.raises(ValueError, match="any_of"):
        any_of()
    with pytest.raises(ValueError, match="all_of"):
        all_of()


def test_reprs_read_like_the_code_that_built_them() -> None:
    assert repr(quality_below(0.7, window=20)) == "quality_below(0.7, window=20)"
    assert repr(consecutive_failures(5)) == "consecutive_failures(5)"
    assert repr(error_rate_above(0.5, window_seconds=60, min_calls=5)) == (
        "error_rate_above(0.5, window_seconds=60, min_calls=5)"
    )
    composed = any_of(latency_above(2000, window=10), consecutive_failures(3))
    assert repr(composed) == "any_of(latency_above(2000.0, window=10), consecutive_failures(3))"


# ------------------------------------------------------------------ user-defined conditions


class FailedTwice:
    """A condition written for ml-breaker: plain class, ``__call__`` + ``reset``."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, record: CallRecord) -> bool:
        if record.error is not None:
            self.failures += 1
        return self.failures >= 2

    def reset(self) -> None:
        self.failures = 0


def test_user_condition_satisfies_the_protocol() -> None:
    assert isinstance(FailedTwice(), tripwise.ConditionProtocol)
    assert isinstance(tripwise.as_condition(FailedTwice()), tripwise.Condition)


def test_user_condition_drives_a_breaker(clock) -> None:
    cond = FailedTwice()
    breaker = tripwise.CircuitBreaker(cond, registry=None, clock=clock, half_open_after=5)
    breaker.call(lambda: 1)
    with pytest.raises(ValueError):
        breaker.call(raise_value_error)
    with pytest.raises(tripwise.CircuitBreakerOpen):
        breaker.call(raise_value_error)
    assert breaker.state is tripwise.State.OPEN
    clock.advance(5)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    assert breaker.state is tripwise.State.CLOSED
    assert cond.failures == 0  # reset when the breaker closed


def test_user_condition_sees_latency_quality_and_timestamp(clock) -> None:
    spy = Spy(False)
    breaker = tripwise.CircuitBreaker(spy, registry=None, clock=clock)

    def work() -> str:
        clock.advance(0.25)
        tripwise.report_quality(0.75)
        return "x"

    breaker.call(work)
    (record,) = spy.seen
    assert record.latency_ms == 250.0
    assert record.quality == 0.75
    assert record.error is None
    assert record.timestamp == clock()


def test_user_condition_composes_with_builtins() -> None:
    spy = Spy(False)
    cond = any_of(consecutive_failures(2), spy)
    assert feed(cond, [fail(), fail()]) == [False, True]
    assert len(spy.seen) == 2


def test_objects_without_the_protocol_are_rejected() -> None:
    with pytest.raises(TypeError, match="trip_on"):
        tripwise.CircuitBreaker(lambda record: True, registry=None)  # no reset()
    with pytest.raises(TypeError):
        any_of(consecutive_failures(1), 42)
