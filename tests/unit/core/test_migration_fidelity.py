"""Behaviour ml-breaker users rely on, and defects a new user would hit (issue 9)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    Registry,
    State,
    circuit_breaker,
    consecutive_failures,
    error_rate_above,
    quality_below,
    report_quality,
)

from ._helpers import attempt, boom


def make(clock: FakeClock, trip_on: Any = None, **kw: Any) -> CircuitBreaker:
    kw.setdefault("half_open_after", 10)
    return CircuitBreaker(
        consecutive_failures(1) if trip_on is None else trip_on, registry=None, clock=clock, **kw
    )


def test_fallback_raise_raises_circuit_breaker_open(clock: FakeClock) -> None:
    @circuit_breaker(consecutive_failures(1), "raise", registry=None, clock=clock)
    def model() -> str:
        raise RuntimeError("down")

    with pytest.raises(CircuitBreakerOpen):
        model()  # this call tripped it
    with pytest.raises(CircuitBreakerOpen) as info:
        model()
    assert info.value.trip_count == 1 and model.breaker.fallback is None  # type: ignore[attr-defined]


def test_circuit_breaker_takes_the_fallback_positionally(clock: FakeClock) -> None:
    @circuit_breaker(consecutive_failures(1), "cached", registry=None, clock=clock)
    def model() -> str:
        raise RuntimeError("down")

    assert model() == "cached"
    assert model() == "cached"


def test_a_call_judged_bad_on_quality_gets_the_fallback(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1), fallback="fallback")

    def answer(q: float) -> str:
        report_quality(q)
        return "model answer"

    assert breaker.call(answer, 0.1) == "fallback"  # it tripped on its own score
    assert breaker.state is State.OPEN
    clock.advance(10)
    assert breaker.call(answer, 0.2) == "fallback"  # a probe failing on quality
    assert breaker.state is State.OPEN
    clock.advance(20)
    assert breaker.call(answer, 0.9) == "model answer"


def test_shadow_mode_never_substitutes_the_fallback(clock: FakeClock) -> None:
    breaker = make(clock, quality_below(0.5, window=1), fallback="fb", metrics_only=True)

    def answer() -> str:
        report_quality(0.1)
        return "model answer"

    assert breaker.call(answer) == "model answer"
    assert breaker.state is State.OPEN


def test_trips_log_at_warning_and_recovery_at_info(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker(
        consecutive_failures(1),
        name="x",
        half_open_after=10,
        recovery_threshold=1,
        registry=None,
        clock=clock,
    )
    with caplog.at_level(logging.INFO, logger="tripwise"):
        attempt(breaker, boom)
        clock.advance(10)
        breaker.call(lambda: "ok")
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tripwise.breaker"]
    assert (logging.WARNING, "Circuit breaker 'x' opened (trip #1)") in levels
    assert any(level == logging.INFO and "'x' closed" in msg for level, msg in levels)


def test_last_trip_at_str_and_the_three_argument_error(clock: FakeClock) -> None:
    breaker = CircuitBreaker(consecutive_failures(1), name="svc", registry=None, clock=clock)
    assert breaker.last_trip_at is None
    attempt(breaker, boom)
    assert breaker.last_trip_at == clock()
    assert str(breaker) == "svc" and f"{breaker}" == "svc"
    error = CircuitBreakerOpen("svc", State.OPEN, 3)
    assert error.retry_after is None and "svc" in str(error) and "3 times" in str(error)


def test_on_state_change_can_use_the_breaker_as_its_name(clock: FakeClock) -> None:
    seen: list[str] = []
    breaker = CircuitBreaker(
        consecutive_failures(1),
        name="svc",
        registry=None,
        clock=clock,
        on_state_change=lambda name, old, new: seen.append(f"{name}: {old} -> {new}"),
    )
    attempt(breaker, boom)
    assert seen == ["svc: closed -> open"]


def test_report_quality_refuses_strings_like_ml_breaker() -> None:
    with pytest.raises(TypeError, match="real number"):
        report_quality("0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="real number"):
        report_quality(True)


# ---------------------------------------------------------------------------- new-user defects


def test_wrong_kind_fallbacks_are_refused_at_construction_or_decoration(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="exception class"):
        make(clock, fallback=RuntimeError)

    async def afb() -> str:
        return "x"

    with pytest.raises(TypeError, match="async"):

        @make(clock, fallback=afb)
        def sync_fn() -> str:
            return "y"

    def one_arg(a: int) -> str:
        return "fb"

    with pytest.raises(TypeError, match=r"fallback .* signature"):

        @make(clock, fallback=one_arg)
        def two_args(a: int, b: int) -> str:
            return "y"


def test_fallbacks_that_fit_are_accepted(clock: FakeClock) -> None:
    def fb(a: int, *rest: Any, **kw: Any) -> str:
        return "fb"

    @make(clock, fallback=fb)
    def f(a: int, b: int = 2, *, c: int = 3) -> str:
        raise RuntimeError

    assert f(1) == "fb"

    @make(clock, fallback=functools.partial(fb, 0))
    def g() -> str:
        raise RuntimeError

    assert g() == "fb"

    @make(clock, fallback=dict)  # a builtin without a signature: not checked
    def h() -> str:
        raise RuntimeError

    assert h() == {}

    async def afb(x: int) -> str:
        return "afb"

    @make(clock, fallback=afb)
    async def k(x: int) -> str:
        raise RuntimeError

    assert k.breaker is not None  # type: ignore[attr-defined]


def test_conflicting_settings_for_an_existing_name_are_refused() -> None:
    registry = Registry()

    @circuit_breaker(name="same", trip_on=error_rate_above(0.5), registry=registry)
    def a() -> None: ...

    with pytest.raises(ValueError, match=r"already exists with other settings.*trip_on"):

        @circuit_breaker(name="same", trip_on=consecutive_failures(3), registry=registry)
        def b() -> None: ...

    with pytest.raises(ValueError, match="half_open_after"):

        @circuit_breaker(name="same", half_open_after=5, registry=registry)
        def c() -> None: ...

    @circuit_breaker(name="same", trip_on=error_rate_above(0.5), registry=registry)
    def d() -> None: ...

    assert d.breaker is a.breaker  # type: ignore[attr-defined]


def test_rules_that_differ_only_in_their_score_fn_are_a_conflict() -> None:
    registry = Registry()

    def confidence(r: Any) -> float:
        return float(r["confidence"])

    @circuit_breaker(
        name="q", trip_on=quality_below(0.5, window=2, score_fn=confidence), registry=registry
    )
    def a() -> None: ...

    with pytest.raises(ValueError, match="another score_fn"):

        @circuit_breaker(
            name="q",
            trip_on=quality_below(0.5, window=2, score_fn=lambda r: r["score"]),
            registry=registry,
        )
        def b() -> None: ...

    @circuit_breaker(
        name="q", trip_on=quality_below(0.5, window=2, score_fn=confidence), registry=registry
    )
    def c() -> None: ...

    assert c.breaker is a.breaker  # type: ignore[attr-defined]


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        CircuitBreaker(name="", registry=None)


def test_a_shared_store_needs_a_name() -> None:
    class Store:
        def attach(self, breaker: Any) -> None:
            return None

    with pytest.raises(ValueError, match="needs a name"):
        CircuitBreaker(registry=None, store=Store())
    CircuitBreaker(name="named", registry=None, store=Store())


def test_with_block_while_open_raises_even_with_a_fallback(clock: FakeClock) -> None:
    breaker = make(clock, fallback="fb")
    breaker.force_open()
    with pytest.raises(CircuitBreakerOpen), breaker:
        pass


def test_a_registry_default_store_applies_to_decorated_functions() -> None:
    attached: list[str] = []

    class Link:
        def sync(self) -> None: ...

    class Store:
        def attach(self, breaker: Any) -> Link:
            attached.append(breaker.name)
            return Link()

    registry = Registry()
    registry.set_default_store(Store())  # type: ignore[arg-type]

    @circuit_breaker(name="decorated", registry=registry)
    def f() -> int:
        return 1

    direct = CircuitBreaker(name="direct", registry=registry)
    assert attached == ["decorated", "direct"]
    assert f.breaker.shares_state and direct.shares_state  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs a name"):
        CircuitBreaker(registry=registry)


def test_a_breaker_that_is_refused_leaves_its_condition_free() -> None:
    from unittest.mock import MagicMock

    registry = Registry()
    CircuitBreaker(name="taken", registry=registry)
    for cond in (consecutive_failures(2), MagicMock()):
        with pytest.raises(ValueError, match="already registered"):
            CircuitBreaker(cond, name="taken", registry=registry)
        fresh = CircuitBreaker(cond, name="fresh", registry=None)  # the retry is fine
        with pytest.raises(ValueError, match="already belongs to breaker 'fresh'"):
            CircuitBreaker(cond, name="third", registry=None)
        assert fresh.trip_on is not None


def test_a_callable_without_a_qualname_needs_a_name() -> None:
    class Model:
        def __call__(self, x: int) -> int:
            return x

    def f(a: int, b: int) -> int:
        return a + b

    for fn in (Model(), functools.partial(f, 1)):
        with pytest.raises(ValueError, match="pass name="):
            circuit_breaker(consecutive_failures(2), registry=Registry())(fn)
    named = circuit_breaker(consecutive_failures(2), name="model", registry=Registry())(Model())
    assert named(3) == 3


def test_assigning_a_setting_points_to_configure() -> None:
    breaker = CircuitBreaker(name="settings", registry=None)
    with pytest.raises(AttributeError, match=r"configure\(track_latency=True\)"):
        breaker.track_latency = True  # type: ignore[misc]
    breaker.configure(track_latency=True)
    assert breaker.track_latency is True
