"""Hostile arguments at construction: each is refused with a short error naming what was wrong."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    FakeClock,
    circuit_breaker,
    error_rate_above,
    latency_above,
    quality_below,
)
from tripwise.core.windows import TimeWindow
from tripwise.policies import Backoff


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("nul\x00byte", "U\\+0000"),
        ("lone\ud800surrogate", "U\\+D800"),
        ("line\nbreak", "U\\+000A"),
        ("x" * 257, "at most 256"),
        ("   ", "non-empty"),
    ],
)
def test_unusable_breaker_names_are_refused(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitBreaker(name=name, registry=None)
    with pytest.raises(ValueError, match=match):
        circuit_breaker(name=name, registry=None)


def test_names_in_any_script_are_fine() -> None:
    for name in ("モデル-ranker", "ранжир v2", "gpu 🚀 tier", "a" * 256):
        assert CircuitBreaker(name=name, registry=None).name == name


@pytest.mark.parametrize(
    "build",
    [
        lambda v: error_rate_above(v),
        lambda v: latency_above(v),
        lambda v: CircuitBreaker(name="h", registry=None, half_open_after=v),
        lambda v: FakeClock(v),
    ],
)
@pytest.mark.parametrize(
    "value", [10**100_000, -(10**400), "x" * 1_000_000], ids=["googol", "neg", "megabyte"]
)
def test_huge_arguments_give_a_short_error(build: Any, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        build(value)
    assert len(str(info.value)) < 400  # not a megabyte of digits


@pytest.mark.parametrize("value", [True, 2.5, "3"])
def test_a_count_of_the_wrong_kind_is_both_a_type_and_a_value_error(value: Any) -> None:
    for kind in (TypeError, ValueError):
        with pytest.raises(kind, match="window must be an integer"):
            error_rate_above(0.5, window=value)


def test_a_bool_is_never_a_number() -> None:
    for kind in (TypeError, ValueError):
        with pytest.raises(kind, match="half_open_after"):
            CircuitBreaker(name="b", registry=None, half_open_after=True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "soon", None])
def test_fake_clock_refuses_non_finite_times(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="FakeClock"):
        FakeClock(bad)
    clock = FakeClock(10.0)
    with pytest.raises((TypeError, ValueError), match="FakeClock"):
        clock.advance(bad)
    with pytest.raises((TypeError, ValueError), match="FakeClock"):
        clock.set(bad)
    assert clock() == 10.0  # nothing was half-applied


def test_fake_clock_cannot_be_pushed_past_infinity() -> None:
    clock = FakeClock(1e308)
    with pytest.raises(ValueError, match="infinity"):
        clock.advance(1.7e308)
    assert clock() == 1e308


@pytest.mark.parametrize("bad", [math.nan, 0.0, 1.0, -0.1, "0.01", True])
def test_time_window_refuses_a_bad_relative_accuracy(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="relative_accuracy"):
        TimeWindow(10.0, relative_accuracy=bad)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: quality_below(10**400), "threshold"),
        (lambda: quality_below(0.5, score_range=(0, 10**400)), "score_range"),
        (lambda: error_rate_above(0.5, window_seconds=10**400), "window_seconds"),
        (lambda: Backoff(initial=10**400), "initial"),
        (lambda: latency_above(10**400), "threshold_ms"),
    ],
)
def test_an_int_beyond_floats_is_a_clear_value_error(build: Any, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        build()
    assert len(str(info.value)) < 300  # the number is shortened, not printed in full
