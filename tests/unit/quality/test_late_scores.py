"""Late scores: a quality score arriving after the call returned still counts."""

from __future__ import annotations

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    all_of,
    consecutive_failures,
    error_rate_above,
    quality_below,
)
from tripwise.quality import current_call_id, quality_mean_below, report_quality


def make(trip_on, **kw) -> CircuitBreaker:
    return CircuitBreaker(trip_on, clock=FakeClock(), registry=None, **kw)


def answer() -> str:
    """A guarded function that returns its call id, to be judged later."""
    return current_call_id()


def test_late_scores_trip_the_breaker() -> None:
    breaker = make(quality_below(0.5, window=3))
    ids = [breaker.call(answer) for _ in range(3)]
    assert len(set(ids)) == 3
    assert breaker.state is State.CLOSED  # no score yet: neutral
    assert breaker.record_late_quality(ids[0], 0.1)
    assert breaker.record_late_quality(ids[1], 0.2)
    assert breaker.state is State.CLOSED
    assert breaker.record_late_quality(ids[2], 0.3)
    assert breaker.state is State.OPEN
    stats = breaker.stats()
    assert stats.quality_count == 3 and stats.avg_quality == pytest.approx(0.2)


def test_late_scores_feed_statistical_conditions() -> None:
    breaker = make(quality_mean_below(0.8, window=30, min_calls=20))
    ids = [breaker.call(answer) for _ in range(30)]
    for i in ids:
        breaker.record_late_quality(i, 0.3)
    assert breaker.state is State.OPEN


def test_same_call_gets_same_id_and_in_call_scores_still_count() -> None:
    breaker = make(quality_below(0.5, window=2))

    def fn() -> tuple[str, str]:
        report_quality(0.9)
        return current_call_id(), current_call_id()

    a, b = breaker.call(fn)
    assert a == b
    assert breaker.stats().quality_count == 1
    assert breaker.record_late_quality(a, 0.1)
    assert breaker.stats().quality_count == 2


def test_unknown_or_reused_ids_are_refused() -> None:
    breaker = make(quality_below(0.5))
    cid = breaker.call(answer)
    assert breaker.record_late_quality(cid, 0.9)
    assert not breaker.record_late_quality(cid, 0.9)  # one late score per call
    assert not breaker.record_late_quality("nope#1", 0.9)
    other = make(quality_below(0.5))
    assert not other.record_late_quality(breaker.call(answer), 0.9)
    with pytest.raises(ValueError, match=r"late quality score must be a finite number"):
        breaker.record_late_quality(breaker.call(answer), float("nan"))


def test_scores_for_calls_before_a_transition_count_in_stats_only() -> None:
    breaker = make(quality_below(0.5, window=2))
    old = [breaker.call(answer) for _ in range(2)]
    breaker.reset()  # a new generation
    for cid in old:
        assert breaker.record_late_quality(cid, 0.0)
    assert breaker.state is State.CLOSED
    assert breaker.stats().quality_count == 2
    assert breaker.trip_on.window.count == 0  # the condition never saw them


def test_late_score_while_open_does_not_reopen_or_close() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(quality_below(0.5, window=1), clock=clock, registry=None)
    cid = breaker.call(answer)
    breaker.call(lambda: report_quality(0.0))
    assert breaker.state is State.OPEN
    assert breaker.record_late_quality(cid, 0.0)
    assert breaker.trip_count == 1


def test_late_score_is_not_a_call_outcome_for_error_conditions() -> None:
    breaker = make(consecutive_failures(2) | quality_below(0.1, window=50))

    def fail(cid_box: list) -> None:
        cid_box.append(current_call_id())
        raise RuntimeError("boom")

    box: list[str] = []
    with pytest.raises(RuntimeError):
        breaker.call(fail, box)
    assert breaker.record_late_quality(box[0], 0.9)  # must not break the failure streak
    with pytest.raises(CircuitBreakerOpen):  # the second failure in a row trips
        breaker.call(fail, box)
    assert breaker.state is State.OPEN


def test_late_score_alone_never_trips_all_of() -> None:
    breaker = make(
        all_of(error_rate_above(0.0, window=1, min_calls=1), quality_below(0.5, window=1))
    )
    cid = breaker.call(answer)
    assert breaker.record_late_quality(cid, 0.0)
    assert breaker.state is State.CLOSED


def test_works_in_with_blocks_and_async_calls() -> None:
    breaker = make(quality_below(0.5, window=2))
    with breaker:
        first = current_call_id()

    async def aanswer() -> str:
        return current_call_id()

    import asyncio

    second = asyncio.run(breaker.acall(aanswer))
    assert first != second
    breaker.record_late_quality(first, 0.0)
    breaker.record_late_quality(second, 0.0)
    assert breaker.state is State.OPEN


def test_current_call_id_outside_a_quality_call_raises() -> None:
    with pytest.raises(LookupError, match="inside a call guarded by a breaker that uses quality"):
        current_call_id()
    plain = make(consecutive_failures(3))
    with pytest.raises(LookupError):
        plain.call(current_call_id)


def test_only_the_most_recent_ids_are_remembered() -> None:
    breaker = make(quality_below(0.5, window=5))
    breaker.late_quality_capacity = 3
    ids = [breaker.call(answer) for _ in range(5)]
    assert not breaker.record_late_quality(ids[0], 0.9)
    assert not breaker.record_late_quality(ids[1], 0.9)
    assert all(breaker.record_late_quality(i, 0.9) for i in ids[2:])


def test_lean_breakers_without_quality_keep_their_fast_path() -> None:
    breaker = make(consecutive_failures(3))
    assert breaker.path.lean  # late-score support adds nothing to non-quality breakers
