"""Quality signals: report_quality, score_fn, their precedence, missing and required scores."""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    QualitySignalMissing,
    State,
    TripwiseError,
    any_of,
    consecutive_failures,
    error_rate_above,
    low_quality_rate_above,
    quality_below,
    report_quality,
)
from tripwise.quality import current_call_id

from ._helpers import attempt, boom


def answer(confidence: float) -> SimpleNamespace:
    return SimpleNamespace(confidence=confidence)


def test_report_quality_feeds_the_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(quality_below(0.5, window=2), registry=None, clock=clock)

    def model(conf: float) -> str:
        assert report_quality(conf) is True  # a guarded call received it
        return "answer"

    assert breaker.call(model, 0.4) == "answer"  # the return value is unchanged
    assert breaker.state is State.CLOSED
    breaker.call(model, 0.5)
    assert breaker.state is State.OPEN  # mean 0.45 < 0.5
    stats = breaker.stats()
    assert (stats.quality_count, stats.last_quality) == (2, 0.5)
    assert stats.avg_quality == pytest.approx(0.45)


def test_report_quality_outside_a_guarded_call_is_dropped() -> None:
    assert report_quality(0.5) is False


def test_breaker_without_quality_rules_does_not_collect_scores(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(3), registry=None, clock=clock)
    assert breaker.call(lambda: report_quality(0.3)) is False
    assert breaker.stats().quality_count == 0


def test_last_report_of_a_call_wins(clock: FakeClock) -> None:
    breaker = CircuitBreaker(quality_below(0.5, window=1), registry=None, clock=clock)

    def model() -> None:
        report_quality(0.1)
        report_quality(0.9)

    breaker.call(model)
    assert breaker.state is State.CLOSED
    assert breaker.stats().last_quality == 0.9


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_report_quality_rejects_non_finite_numbers(score: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        report_quality(score)


def _readme_rule(clock: FakeClock, **kw: Any) -> CircuitBreaker:
    """The README's rule: quality and errors, either of which may open the breaker."""
    return CircuitBreaker(
        any_of(quality_below(0.5, window=2), error_rate_above(0.5, window=2)),
        registry=None,
        clock=clock,
        **kw,
    )


@pytest.mark.parametrize("score", [1.2, -0.05, 87.0, -3.5])
def test_finite_scores_outside_0_1_are_recorded_and_never_fail_the_call(
    clock: FakeClock, score: float
) -> None:
    breaker = _readme_rule(clock)

    def answer() -> str:
        report_quality(score)
        return "ok"

    assert breaker.call(answer) == "ok"
    stats = breaker.stats()
    assert (stats.successes, stats.failures, stats.last_quality) == (1, 0, score)


@pytest.mark.parametrize("score", ["high", None, object()])
def test_report_quality_rejects_non_numbers(score: object) -> None:
    with pytest.raises(TypeError, match="quality score"):
        report_quality(score)  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [Decimal("0.25"), Fraction(1, 4), 0, 1])
def test_report_quality_accepts_numeric_types(clock: FakeClock, score: object) -> None:
    breaker = CircuitBreaker(quality_below(0.5, window=5), registry=None, clock=clock)
    breaker.call(lambda: report_quality(score))  # type: ignore[arg-type]
    assert breaker.stats().last_quality == float(score)  # type: ignore[arg-type]


def test_score_fn_on_the_condition(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.7, window=2, score_fn=lambda r: r.confidence),
        registry=None,
        clock=clock,
    )
    breaker.call(answer, 0.6)
    breaker.call(answer, 0.7)
    assert breaker.state is State.OPEN
    assert breaker.stats().last_quality == 0.7


def test_report_quality_wins_over_score_fn(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1, score_fn=lambda r: r.confidence),
        registry=None,
        clock=clock,
    )

    def model() -> SimpleNamespace:
        report_quality(0.9)
        return answer(0.0)

    breaker.call(model)
    assert breaker.state is State.CLOSED
    assert breaker.stats().last_quality == 0.9
    breaker.call(answer, 0.0)  # no report: score_fn decides
    assert breaker.state is State.OPEN


def test_breaker_score_fn_overrides_the_conditions(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1, score_fn=lambda r: 0.0),
        score_fn=lambda r: r.confidence,
        registry=None,
        clock=clock,
    )
    breaker.call(answer, 0.8)
    assert breaker.state is State.CLOSED
    assert breaker.stats().last_quality == 0.8


def test_breaker_score_fn_alone_feeds_quality_rules(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        low_quality_rate_above(0.5, 0.6, window=2),
        score_fn=lambda r: r.confidence,
        registry=None,
        clock=clock,
    )
    breaker.call(answer, 0.1)
    breaker.call(answer, 0.2)
    assert breaker.state is State.OPEN


def test_conflicting_score_fns_are_rejected() -> None:
    with pytest.raises(ValueError, match="score_fn"):
        CircuitBreaker(
            quality_below(0.5, score_fn=lambda r: 1.0)
            | low_quality_rate_above(0.5, 0.5, score_fn=lambda r: 0.0),
            registry=None,
        )


def test_one_score_fn_shared_by_two_conditions_is_fine(clock: FakeClock) -> None:
    def conf(r: SimpleNamespace) -> float:
        return r.confidence

    breaker = CircuitBreaker(
        quality_below(0.5, window=1, score_fn=conf)
        | low_quality_rate_above(0.5, 0.5, window=1, score_fn=conf),
        registry=None,
        clock=clock,
    )
    breaker.call(answer, 0.1)
    assert breaker.state is State.OPEN


def test_missing_scores_are_neutral(clock: FakeClock) -> None:
    breaker = CircuitBreaker(quality_below(0.5, window=2), registry=None, clock=clock)
    breaker.call(lambda: report_quality(0.2))
    for _ in range(10):
        breaker.call(lambda: "no score")
    assert breaker.state is State.CLOSED
    stats = breaker.stats()
    assert (stats.successes, stats.quality_count) == (11, 1)
    breaker.call(lambda: report_quality(0.2))
    assert breaker.state is State.OPEN


def test_score_fn_is_not_called_for_failed_calls(clock: FakeClock) -> None:
    seen: list[object] = []
    breaker = CircuitBreaker(
        quality_below(0.5, window=1, score_fn=seen.append), registry=None, clock=clock
    )
    attempt(breaker, boom)
    assert seen == []


def test_a_score_fn_result_outside_0_1_is_recorded_as_it_is(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1), score_fn=lambda r: 7.0, registry=None, clock=clock
    )
    assert breaker.call(lambda: "result") == "result"
    assert breaker.stats().last_quality == 7.0


@pytest.mark.parametrize("bad_score_fn", [lambda r: 1 / 0, lambda r: "0.5", lambda r: None])
def test_broken_score_fn_is_logged_and_the_call_counts_without_score(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, bad_score_fn: object
) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1),
        score_fn=bad_score_fn,  # type: ignore[arg-type]
        name="scored",
        registry=None,
        clock=clock,
    )
    with caplog.at_level(logging.ERROR, logger="tripwise"):
        assert breaker.call(lambda: "result") == "result"
    assert "score_fn" in caplog.text and "scored" in caplog.text
    stats = breaker.stats()
    assert (stats.successes, stats.failures, stats.quality_count) == (1, 0, 0)


# ------------------------------------------------------------------ require_quality_signal


def test_require_quality_signal_raises_naming_the_breaker(clock: FakeClock) -> None:
    ran: list[int] = []
    breaker = CircuitBreaker(
        quality_below(0.5),
        name="reranker",
        require_quality_signal=True,
        registry=None,
        clock=clock,
    )
    with pytest.raises(QualitySignalMissing, match="reranker") as info:
        breaker.call(ran.append, 1)
    assert ran == [1]  # the call ran; its missing score is reported at once
    assert info.value.name == "reranker"
    assert isinstance(info.value, TripwiseError)
    stats = breaker.stats()
    assert (stats.successes, stats.failures) == (0, 0)


def test_require_quality_signal_is_satisfied_by_either_source(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, score_fn=lambda r: r.confidence),
        require_quality_signal=True,
        registry=None,
        clock=clock,
    )
    breaker.call(answer, 0.9)
    breaker.call(lambda: report_quality(0.9))
    assert breaker.stats().quality_count == 2


def test_require_quality_signal_does_not_mask_exceptions(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5), require_quality_signal=True, registry=None, clock=clock
    )
    assert isinstance(attempt(breaker, boom), RuntimeError)
    assert breaker.stats().failures == 1


def test_require_quality_signal_without_quality_rules(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(3), require_quality_signal=True, registry=None, clock=clock
    )
    breaker.call(lambda: report_quality(0.4))
    with pytest.raises(QualitySignalMissing):
        breaker.call(lambda: None)
    assert breaker.stats().last_quality == 0.4


def test_missing_signal_releases_the_probe_slot(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1),
        require_quality_signal=True,
        half_open_after=5,
        registry=None,
        clock=clock,
    )
    breaker.call(lambda: report_quality(0.0))
    assert breaker.state is State.OPEN
    clock.advance(5)
    with pytest.raises(QualitySignalMissing):
        breaker.call(lambda: None)
    assert breaker.state is State.HALF_OPEN
    breaker.call(lambda: report_quality(1.0))  # admitted: the slot was released
    breaker.call(lambda: report_quality(1.0))
    assert breaker.state is State.CLOSED


def test_require_quality_signal_in_a_with_block(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5), require_quality_signal=True, registry=None, clock=clock
    )
    with breaker:
        report_quality(0.8)
    with pytest.raises(QualitySignalMissing), breaker:
        pass


# ------------------------------------------------------------------ scoping


def test_nested_guarded_calls_keep_their_own_scores(clock: FakeClock) -> None:
    outer = CircuitBreaker(quality_below(0.5, window=10), registry=None, clock=clock)
    inner = CircuitBreaker(quality_below(0.5, window=10), registry=None, clock=clock)

    def retrieve() -> str:
        report_quality(0.2)
        return "docs"

    def answer_with_report() -> str:
        docs = inner.call(retrieve)
        report_quality(0.9)
        return docs

    def answer_without_report() -> str:
        return inner.call(retrieve)

    outer.call(answer_with_report)
    outer.call(answer_without_report)
    assert outer.stats().quality_count == 1  # the inner score did not leak outwards
    assert outer.stats().last_quality == 0.9
    assert inner.stats().quality_count == 2
    assert inner.stats().avg_quality == pytest.approx(0.2)


def test_quality_breaker_rejects_like_any_other(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        quality_below(0.5, window=1), fallback=None, registry=None, clock=clock
    )
    breaker.call(lambda: report_quality(0.0))
    with pytest.raises(CircuitBreakerOpen):
        breaker.call(lambda: report_quality(1.0))


@pytest.mark.parametrize("score", [10**400, -(10**400), 1e200])
def test_a_finite_score_beyond_float_range_never_fails_the_call(
    clock: FakeClock, score: float
) -> None:
    breaker = _readme_rule(clock, fallback="fallback")
    ids = []

    @breaker
    def answer() -> str:
        report_quality(score)
        ids.append(current_call_id())
        return "ok"

    # held as windows hold it: +-1e140; a huge negative score drags the mean below 0.5
    assert [answer(), answer()] == (["ok", "ok"] if score > 0 else ["ok", "fallback"])
    stats = breaker.stats()
    assert (stats.failures, stats.last_quality) == (0, 1e140 if score > 0 else -1e140)
    if score > 0:
        assert breaker.record_late_quality(ids[0], score) is True


def test_numpy_bools_are_not_scores() -> None:
    import numpy as np

    with pytest.raises(TypeError, match="not bool"):
        report_quality(np.bool_(True))
