"""Bad input raises at construction, with an error naming the parameter (and the value)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

import tripwise
from tripwise import CircuitBreaker, FakeClock, circuit_breaker
from tripwise.core import conditions as c

NAN, INF = math.nan, math.inf


def expect(exc: type[Exception], param: str, fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert param in message, f"error does not name {param!r}: {message}"
    return message


# ------------------------------------------------------------------ CircuitBreaker

BREAKER_BAD: list[tuple[str, Any, type[Exception]]] = [
    ("half_open_after", 0, ValueError),
    ("half_open_after", -1, ValueError),
    ("half_open_after", NAN, ValueError),
    ("half_open_after", INF, ValueError),
    ("half_open_after", "60", TypeError),
    ("half_open_after", None, TypeError),
    ("half_open_after", True, TypeError),
    ("half_open_max_calls", 0, ValueError),
    ("half_open_max_calls", 1.5, ValueError),
    ("half_open_max_calls", True, ValueError),
    ("recovery_threshold", 0, ValueError),
    ("recovery_threshold", -2, ValueError),
    ("recovery_threshold", 2.0, ValueError),
    ("half_open_backoff", 0.5, ValueError),
    ("half_open_backoff", NAN, ValueError),
    ("half_open_backoff", INF, ValueError),
    ("max_half_open_after", 5, ValueError),  # below half_open_after (60)
    ("max_half_open_after", NAN, ValueError),
    ("half_open_jitter", -0.1, ValueError),
    ("half_open_jitter", 1.5, ValueError),
    ("half_open_jitter", NAN, ValueError),
    ("score_fn", 0.5, TypeError),
    ("exception_predicate", "yes", TypeError),
    ("result_predicate", 1, TypeError),
    ("on_state_change", "log", TypeError),
    ("record_exceptions", "ValueError", TypeError),
    ("record_exceptions", (ValueError, 3), TypeError),
    ("record_exceptions", [int], TypeError),
    ("ignore_exceptions", (object,), TypeError),
    ("trip_on", 0.5, TypeError),
    ("trip_on", "error_rate", TypeError),
]


@pytest.mark.parametrize(("param", "value", "exc"), BREAKER_BAD)
def test_breaker_rejects_bad_arguments(param: str, value: Any, exc: type[Exception]) -> None:
    message = expect(exc, param, CircuitBreaker, registry=None, **{param: value})
    if not isinstance(value, (tuple, list)):
        assert repr(value) in message or str(value) in message, message


# Parameters whose bad values must be refused at construction too, instead of failing later
# (at the first call or the first trip) with an error that does not say what was wrong.
BREAKER_BAD_LATE: list[tuple[str, Any, type[Exception]]] = [
    ("name", 123, TypeError),
    ("clock", 5, TypeError),
    ("rng", "seed", TypeError),
    ("listeners", 5, TypeError),
    ("record_exceptions", None, TypeError),
    ("record_exceptions", ValueError("not a class"), TypeError),
    ("ignore_exceptions", 42, TypeError),
    ("registry", "default", TypeError),
]


@pytest.mark.parametrize(("param", "value", "exc"), BREAKER_BAD_LATE)
def test_breaker_rejects_bad_arguments_naming_them(
    param: str, value: Any, exc: type[Exception]
) -> None:
    kwargs: dict[str, Any] = {param: value}
    kwargs.setdefault("registry", None)
    expect(exc, param, CircuitBreaker, **kwargs)


def test_good_arguments_are_accepted() -> None:
    breaker = CircuitBreaker(
        c.error_rate_above(0.5),
        name="ok",
        fallback=[],
        half_open_after=0.001,
        half_open_max_calls=3,
        recovery_threshold=1,
        half_open_backoff=1.0,
        max_half_open_after=0.001,
        half_open_jitter=1.0,
        score_fn=float,
        record_exceptions=OSError,
        ignore_exceptions=[FileNotFoundError, KeyError],
        exception_predicate=bool,
        result_predicate=callable,
        listeners=(object(),),
        clock=FakeClock(),
        rng=random.Random(1),
        registry=tripwise.Registry(),
    )
    assert breaker.half_open_after == 0.001


def test_decorator_validates_through_the_breaker() -> None:
    expect(ValueError, "recovery_threshold", lambda: circuit_breaker(recovery_threshold=0)(len))


def test_a_condition_belongs_to_one_breaker() -> None:
    cond = c.consecutive_failures(3)
    CircuitBreaker(cond, name="first", registry=None)
    expect(ValueError, "first", CircuitBreaker, cond, name="second", registry=None)
    shared = c.quality_below(0.5)
    CircuitBreaker(c.any_of(shared, c.consecutive_failures(2)), registry=None)
    with pytest.raises(ValueError, match="already belongs"):
        CircuitBreaker(shared, registry=None)


# ------------------------------------------------------------------ conditions

CONDITION_BAD: list[tuple[str, Any, type[Exception]]] = [
    ("threshold", lambda: c.quality_below(NAN), ValueError),
    ("threshold", lambda: c.quality_below(1.5), ValueError),
    ("threshold", lambda: c.quality_below(-0.1), ValueError),
    ("threshold", lambda: c.quality_below("0.7"), TypeError),
    ("window", lambda: c.quality_below(0.7, window=0), ValueError),
    ("window", lambda: c.quality_below(0.7, window=-20), ValueError),
    ("window", lambda: c.quality_below(0.7, window=2.5), ValueError),
    ("score_fn", lambda: c.quality_below(0.7, score_fn="confidence"), TypeError),
    ("min_calls", lambda: c.quality_below(0.7, window=5, min_calls=6), ValueError),
    ("min_calls", lambda: c.quality_below(0.7, min_calls=0), ValueError),
    ("window_seconds", lambda: c.quality_below(0.7, window_seconds=0), ValueError),
    ("window_seconds", lambda: c.quality_below(0.7, window_seconds=-60), ValueError),
    ("window_seconds", lambda: c.quality_below(0.7, window_seconds=NAN), ValueError),
    ("window_seconds", lambda: c.quality_below(0.7, window_seconds="60"), TypeError),
    ("buckets", lambda: c.quality_below(0.7, window_seconds=60, buckets=0), ValueError),
    ("threshold_ms", lambda: c.latency_above(0), ValueError),
    ("threshold_ms", lambda: c.latency_above(-5), ValueError),
    ("threshold_ms", lambda: c.latency_above(NAN), ValueError),
    ("threshold_ms", lambda: c.latency_above(INF), ValueError),
    ("threshold_ms", lambda: c.latency_above(None), TypeError),
    ("window", lambda: c.latency_above(100, window=0), ValueError),
    ("rate", lambda: c.error_rate_above(1.5), ValueError),
    ("rate", lambda: c.error_rate_above(-0.1), ValueError),
    ("rate", lambda: c.error_rate_above(NAN), ValueError),
    ("rate", lambda: c.error_rate_above(True), TypeError),
    ("window", lambda: c.error_rate_above(0.5, window=-1), ValueError),
    ("min_calls", lambda: c.error_rate_above(0.5, window_seconds=10, min_calls=0), ValueError),
    ("n", lambda: c.consecutive_failures(0), ValueError),
    ("n", lambda: c.consecutive_failures(2.5), ValueError),
    ("n", lambda: c.consecutive_failures(True), ValueError),
    ("rate", lambda: c.slow_call_rate_above(2, 100), ValueError),
    ("slow_ms", lambda: c.slow_call_rate_above(0.5, 0), ValueError),
    ("slow_ms", lambda: c.slow_call_rate_above(0.5, NAN), ValueError),
    ("q", lambda: c.latency_quantile_above(0, 100), ValueError),
    ("q", lambda: c.latency_quantile_above(1.5, 100), ValueError),
    ("q", lambda: c.latency_quantile_above(95, 100), ValueError),
    ("q", lambda: c.latency_quantile_above(NAN, 100), ValueError),
    ("threshold_ms", lambda: c.latency_quantile_above(0.95, -1), ValueError),
    ("rate", lambda: c.low_quality_rate_above(1.1, 0.5), ValueError),
    ("threshold", lambda: c.low_quality_rate_above(0.5, NAN), ValueError),
    ("score_fn", lambda: c.low_quality_rate_above(0.5, 0.5, score_fn=3), TypeError),
]


@pytest.mark.parametrize(("param", "build", "exc"), CONDITION_BAD)
def test_conditions_reject_bad_arguments(param: str, build: Any, exc: type[Exception]) -> None:
    expect(exc, param, build)


def test_fake_clock_refuses_to_go_back() -> None:
    clock = FakeClock(10)
    expect(ValueError, "seconds", clock.advance, -1)
    expect(ValueError, "backwards", clock.set, 5)
    clock.set(12)
    assert clock() == 12.0
