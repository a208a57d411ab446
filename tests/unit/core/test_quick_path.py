"""The decorator's inlined path for latency and quality rules (``Path.quick``): it must give
the same outcome as ``breaker.call()`` and stay inside the generation a call started in."""

from __future__ import annotations

import logging
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    FakeClock,
    State,
    latency_above,
    quality_below,
    slow_call_rate_above,
)
from tripwise.core.windows import FlagWindow


def _breaker(clock: FakeClock, trip_on: Any, **kw: Any) -> CircuitBreaker:
    return CircuitBreaker(trip_on, registry=None, clock=clock, half_open_after=10, **kw)


@pytest.mark.parametrize(
    ("raw", "counted"),
    [
        (0.75, 0.75),
        (1, 1.0),  # an int
        (Fraction(1, 4), 0.25),
        (Decimal("0.5"), 0.5),
        (float("nan"), None),  # refused: logged, the call has no score
        (float("inf"), None),
        ("0.5", None),  # a string is not a score
        (None, None),
    ],
)
@pytest.mark.parametrize("entry", ["decorator", "call"])
def test_score_fn_answers_count_the_same_through_every_entry(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, entry: str, raw: Any, counted: Any
) -> None:
    breaker = _breaker(clock, quality_below(0.5, window=5), score_fn=lambda r: raw, name="s")

    def model() -> str:
        return "answer"

    guarded = breaker(model) if entry == "decorator" else (lambda: breaker.call(model))
    with caplog.at_level(logging.ERROR, logger="tripwise"):
        assert guarded() == "answer"
    stats = breaker.stats()
    assert stats.successes == 1 and stats.failures == 0
    assert stats.last_quality == counted
    assert stats.quality_count == (0 if counted is None else 1)
    assert ("score_fn of breaker 's' failed" in caplog.text) is (counted is None)


def test_a_raising_score_fn_is_neutral_on_the_decorator_path(clock: FakeClock) -> None:
    def bad(result: object) -> float:
        raise RuntimeError("scorer bug")

    breaker = _breaker(clock, quality_below(0.5, window=1), score_fn=bad)
    guarded = breaker(lambda: "answer")
    for _ in range(3):
        assert guarded() == "answer"
    assert breaker.state is State.CLOSED
    assert breaker.stats().successes == 3


def test_the_call_that_drops_the_mean_gets_the_fallback(clock: FakeClock) -> None:
    breaker = _breaker(clock, quality_below(0.5, window=2), score_fn=lambda r: r, fallback="cached")
    guarded = breaker(lambda score: score)
    assert guarded(0.9) == 0.9
    assert guarded(0.0) == "cached"  # mean 0.45 < 0.5: this answer opened the breaker
    assert breaker.state is State.OPEN


def test_a_slow_call_that_outlives_a_reset_counts_in_its_own_generation(
    clock: FakeClock,
) -> None:
    cond = latency_above(100.0, window=2)
    breaker = _breaker(clock, cond)
    guarded = breaker(lambda: None)
    guarded_reset: list[int] = []

    def slow_and_reset() -> None:
        clock.advance(1.0)  # 1000 ms: slow
        if not guarded_reset:
            guarded_reset.append(1)
            breaker.reset()  # a new generation starts while this call runs

    slow = breaker(slow_and_reset)
    clock.advance(1.0)
    guarded()
    slow()  # started before the reset: must not fill the new generation's window
    assert cond.aggregate().count == 0
    assert breaker.stats().calls >= 1
    slow()
    assert breaker.state is State.CLOSED  # one slow call in the new window of two
    slow()
    assert breaker.state is State.OPEN


def test_a_call_that_outlives_a_path_refresh_still_counts(clock: FakeClock) -> None:
    cond = latency_above(100.0, window=3)
    breaker = _breaker(clock, cond)
    heard: list[object] = []

    class Listener:
        def on_call(self, *args: object, **kwargs: object) -> None:
            heard.append(args)

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    def work() -> None:
        clock.advance(0.5)
        breaker.add_listener(Listener())  # the same generation gets a new Path meanwhile

    breaker(work)()
    assert cond.aggregate().count == 1 and cond.aggregate().flagged == 1
    assert breaker.stats().max_latency_ms == pytest.approx(500.0)


def test_latency_rules_report_their_window(clock: FakeClock) -> None:
    lat = latency_above(100.0, window=4)
    rate = slow_call_rate_above(0.5, 100.0, window=4)
    for cond in (lat, rate):
        breaker = _breaker(clock, cond)
        delays = iter([0.2, 0.0, 0.2, 0.0, 0.0, 0.0])

        def call(delays: Any = delays) -> None:
            clock.advance(next(delays))

        guarded = breaker(call)
        for _ in range(6):
            guarded()
        agg = cond.aggregate()
        assert (agg.count, agg.flagged) == (4, 1)  # the last four calls: one slow


def test_flag_window_holds_flags_only() -> None:
    w = FlagWindow(3)
    for flag in (True, False, True, True):
        assert w.add(None, flag, 0.0) is True
    assert (w.count, w.flagged, w.full) == (3, 2, True)
    assert w.aggregate().count == 3 and w.aggregate().flagged == 2
    with pytest.raises(ValueError, match="flags only"):
        w.add(0.5, False, 0.0)
    w.clear()
    assert (w.count, w.flagged) == (0, 0)
    with pytest.raises(ValueError, match="window"):
        FlagWindow(0)


def test_a_breaker_still_takes_user_attributes_and_instance_patches(clock: FakeClock) -> None:
    from unittest import mock

    breaker = _breaker(clock, latency_above(100.0))
    breaker.owner = "ranking team"  # type: ignore[attr-defined]
    assert breaker.owner == "ranking team"  # type: ignore[attr-defined]
    with mock.patch.object(breaker, "reset") as fake_reset:
        breaker.reset()
    fake_reset.assert_called_once_with()
