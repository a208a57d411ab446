"""A condition's quick step (``Condition.quick_step``): the breaker's quick path hands an
in-range score straight to the root condition's shortcut (for ``quality_below`` on a count
window, the window's own ``push``). It must decide exactly what ``observe`` decides, and never
bypass what a subclass or a score outside the range needs."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwise import CircuitBreaker, FakeClock, State, any_of, quality_below
from tripwise.core.scored import QualityBelow, ScoredCondition
from tripwise.core.windows import ValueWindow

SCORES = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=-3.0, max_value=3.0),  # outside the score range: clamped
    st.sampled_from([0.0, 1.0, 0.5, 0.4999999999, -0.0, 1e-300]),
)


class _Quiet:
    """A listener: its presence takes the breaker off the quick path (the general _record)."""

    def on_call(self, breaker: Any, record: Any, outcome: str) -> None:
        pass


def _run(scores: list[float], *, quick: bool, **rule: Any) -> tuple[int | None, Any]:
    """Feed ``scores`` through a decorated function; the 1-based call that opened the breaker
    (None if none did) and the condition's window afterwards."""
    cond = quality_below(0.5, **rule)
    breaker = CircuitBreaker(
        cond, registry=None, clock=FakeClock(), score_fn=lambda r: r, fallback="fallback"
    )
    if not quick:
        breaker.add_listener(_Quiet())
    assert breaker.path.quick is quick
    guarded = breaker(lambda s: s)
    for i, s in enumerate(scores, 1):
        guarded(s)
        if breaker.state is State.OPEN:
            return i, cond
    return None, cond


def _reference(scores: list[float], size: int, min_calls: int) -> int | None:
    """The call at which the mean of the last ``size`` clamped scores drops below 0.5."""
    held: list[float] = []
    for i, s in enumerate(scores, 1):
        held = [*held, min(1.0, max(0.0, s))][-size:]
        if len(held) >= min_calls and math.fsum(held) / len(held) < 0.5 - 1e-9:
            return i
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(SCORES, min_size=1, max_size=60), st.integers(1, 12), st.integers(1, 12))
def test_the_quick_step_trips_on_the_same_call_as_observe(
    scores: list[float], size: int, min_calls: int
) -> None:
    min_calls = min(min_calls, size)
    quick_at, quick_cond = _run(scores, quick=True, window=size, min_calls=min_calls)
    slow_at, slow_cond = _run(scores, quick=False, window=size, min_calls=min_calls)
    assert quick_at == slow_at == _reference(scores, size, min_calls)
    assert quick_cond.window.aggregate() == slow_cond.window.aggregate()
    assert quick_cond.clamped_scores == slow_cond.clamped_scores


def test_quality_below_on_a_count_window_steps_through_its_window() -> None:
    cond = quality_below(0.5, window=4)
    breaker = CircuitBreaker(cond, registry=None, score_fn=lambda r: r)
    assert breaker.path.step == cond.window.push
    assert (breaker.path.step_low, breaker.path.step_high) == (0.0, 1.0)
    rated = quality_below(50, window=4, score_range=(0, 100))
    path = CircuitBreaker(rated, registry=None, score_fn=lambda r: r).path
    assert (path.step_low, path.step_high) == (0.0, 100.0)


def test_a_score_outside_the_range_still_goes_through_observe() -> None:
    cond = quality_below(0.5, window=2)
    breaker = CircuitBreaker(cond, registry=None, score_fn=lambda r: r, fallback="fb")
    guarded = breaker(lambda s: s)
    assert guarded(-0.7) == -0.7  # clamped to 0.0, logged, counted; one score, window of 2
    assert cond.clamped_scores == 1
    assert guarded(0.9) == "fb"  # mean (0.0 + 0.9) / 2 < 0.5
    assert breaker.state is State.OPEN


def test_no_step_without_quality_or_for_a_composite() -> None:
    plain = CircuitBreaker(quality_below(0.5, window=3), registry=None)  # no score_fn: quality
    assert plain.path.step is not None
    both = CircuitBreaker(
        any_of(quality_below(0.5, window=3), quality_below(0.2, window=9)), registry=None
    )
    assert both.path.quick and both.path.step is None  # composites always observe
    timed = CircuitBreaker(quality_below(0.5, window_seconds=10), registry=None)
    cond = timed.trip_on
    assert timed.path.step == cond._score  # a time window: the condition's own step


def test_a_subclass_that_replaces_observe_is_never_bypassed() -> None:
    seen: list[float | None] = []

    class Audited(QualityBelow):
        def observe(
            self, error: Any, latency_ms: float, quality: Any, now: float, seq: int
        ) -> bool:
            seen.append(quality)
            return super().observe(error, latency_ms, quality, now, seq)

    breaker = CircuitBreaker(Audited(0.5, window=3), registry=None, score_fn=lambda r: r)
    assert breaker.path.quick and breaker.path.step is None
    breaker(lambda s: s)(0.8)
    assert seen == [0.8]


def test_a_subclass_that_replaces_score_steps_through_its_own_score() -> None:
    class Strict(QualityBelow):
        def _score(self, quality: float, now: float) -> bool:
            return quality < 0.1 or super()._score(quality, now)

    breaker = CircuitBreaker(Strict(0.5, window=10), registry=None, score_fn=lambda r: r)
    guarded = breaker(lambda s: s)
    guarded(0.9)
    assert breaker.state is State.CLOSED
    guarded(0.05)  # the window's mean is 0.475 over 2 of 10: only Strict's own rule fires
    assert breaker.state is State.OPEN


def test_a_user_scored_condition_gets_its_score_step() -> None:
    class LastBelow(ScoredCondition):
        def __init__(self) -> None:
            self.scores: list[float] = []

        def _score(self, quality: float, now: float) -> bool:
            self.scores.append(quality)
            return quality < 0.2

        def reset(self) -> None:
            self.scores.clear()

    cond = LastBelow()
    breaker = CircuitBreaker(cond, registry=None, score_fn=lambda r: r)
    assert breaker.path.step == cond._score
    guarded = breaker(lambda s: s)
    guarded(0.5)
    guarded(7.0)  # out of range: observe clamps it to 1.0 before _score sees it
    assert cond.scores == [0.5, 1.0] and cond.clamped_scores == 1
    guarded(0.1)
    assert breaker.state is State.OPEN


def test_a_value_window_watching_its_mean() -> None:
    w = ValueWindow(3)
    assert w.push(0.0) is False  # no floor watched: never
    w.clear()
    w.watch_mean(0.5, 2)
    assert w.push(0.1) is False  # 1 value held, 2 needed
    assert w.push(0.8) is True  # mean 0.45 is below 0.5, with 2 held
    w.clear()
    assert [w.push(v) for v in (0.2, 0.9, 0.3, 1.0)] == [False, False, True, False]
    with pytest.raises(ValueError, match="floor must be a finite number"):
        w.watch_mean(math.nan, 1)
    with pytest.raises(ValueError, match="min_count"):
        w.watch_mean(0.5, 0)


def test_async_calls_take_the_quick_step_and_the_tripping_call_gets_the_fallback() -> None:
    cond = quality_below(0.5, window=3)
    breaker = CircuitBreaker(cond, registry=None, score_fn=lambda r: r, fallback="cached")

    @breaker
    async def model(score: float) -> float:
        return score

    async def run() -> list[Any]:
        return [await model(s) for s in (0.9, 0.6, 0.1, 0.2)]

    assert asyncio.run(run()) == [0.9, 0.6, 0.1, "cached"]  # mean 0.3 after the 4th
    assert breaker.state is State.OPEN
    assert cond.window.aggregate().count == 3
    stats = breaker.stats()
    assert stats.quality_count == 4 and stats.last_quality == 0.2
