"""Through a real breaker (decorator and ``call``, fake clock), each condition trips at exactly
the call where its brute-force reference first says so, and not before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import CircuitBreaker, CircuitBreakerOpen, FakeClock, State, report_quality

from ._reference import Rec, ref_any_of
from ._strategies import KINDS, calls, rules


class Down(Exception):
    pass


def drive(breaker: CircuitBreaker, clock: FakeClock, plan: list[Any], via: str) -> int | None:
    """Run the planned calls until the breaker opens; return the index of the tripping call."""

    def work(error: bool, latency_ms: float, quality: float | None) -> str:
        clock.advance(latency_ms / 1000)
        if quality is not None:
            report_quality(quality)
        if error:
            raise Down
        return "ok"

    guarded = breaker(work) if via == "decorator" else None
    for i, (error, latency_ms, quality, gap) in enumerate(plan):
        clock.advance(gap)
        try:
            if guarded is not None:
                result = guarded(error, latency_ms, quality)
            else:
                result = breaker.call(work, error, latency_ms, quality)
        except Down:
            result = "down"
        except CircuitBreakerOpen as err:
            assert breaker.state is State.OPEN
            assert isinstance(err.__cause__, Down)  # the tripping call's own error, chained
            return i
        assert result == ("down" if error else "ok")
        if breaker.state is not State.CLOSED:
            assert not error  # a failing call that trips raises CircuitBreakerOpen
            return i
    return None


def expected_trip(ref: Any, plan: list[Any]) -> int | None:
    history: list[Rec] = []
    t = 1000.0
    for i, (error, latency_ms, quality, gap) in enumerate(plan):
        t += gap + latency_ms / 1000
        history.append(Rec(error, latency_ms, quality, t))
        if ref(history):
            return i
    return None


PLANS = st.lists(calls(scored_failures=False), min_size=1, max_size=40)


@pytest.mark.parametrize("kind", KINDS)
def test_breaker_trips_where_the_reference_says(kind: str) -> None:
    @settings(max_examples=20, deadline=None)
    @given(rule=rules(kinds=(kind,)), plan=PLANS, via=st.sampled_from(["decorator", "call"]))
    def check(rule, plan, via) -> None:
        clock = FakeClock(1000.0)
        breaker = CircuitBreaker(rule.build(), clock=clock, registry=None)
        assert drive(breaker, clock, plan, via) == expected_trip(rule.reference(), plan), rule

    check()


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(rules(), min_size=2, max_size=3),
    plan=PLANS,
    via=st.sampled_from(["decorator", "call"]),
)
def test_composed_breaker_trips_where_the_reference_says(parts, plan, via) -> None:
    clock = FakeClock(1000.0)
    built = [p.build() for p in parts]
    trip_on = built[0]
    for b in built[1:]:
        trip_on = trip_on | b
    breaker = CircuitBreaker(trip_on, clock=clock, registry=None)
    ref = ref_any_of(*(p.reference() for p in parts))
    assert drive(breaker, clock, plan, via) == expected_trip(ref, plan), parts
