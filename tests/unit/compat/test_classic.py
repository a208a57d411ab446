"""The classic breaker APIs of the seed systems, on the tripwise engine."""

from __future__ import annotations

import asyncio

import pytest

from tripwise import CircuitBreakerOpen, FakeClock, State
from tripwise.compat import classic
from tripwise.compat.classic import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitBreakerRegistry,
    CircuitState,
)
from tripwise.observe import snapshot


def boom() -> None:
    raise RuntimeError("service down")


def test_opens_after_failure_threshold_and_reports_retry_after() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=30.0, name="ext", clock=clock)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            breaker.call(boom)
    assert breaker.is_closed
    with pytest.raises(CircuitBreakerError) as tripped:
        breaker.call(boom)
    assert isinstance(tripped.value.__cause__, RuntimeError)
    assert breaker.is_open and breaker.state is CircuitState.OPEN
    clock.advance(10)
    with pytest.raises(CircuitBreakerError) as rejected:
        breaker.call(lambda: "never runs")
    assert rejected.value.retry_after == pytest.approx(20.0)
    assert isinstance(rejected.value, CircuitBreakerOpen)  # catchable as the native error


def test_success_threshold_closes_after_recovery_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=1,
        recovery_timeout=5,
        success_threshold=2,
        half_open_max_calls=3,
        clock=clock,
    )
    with pytest.raises(CircuitBreakerError):
        breaker.call(boom)
    clock.advance(5)
    assert breaker.call(lambda: 1) == 1
    assert breaker.state is State.HALF_OPEN
    assert breaker.call(lambda: 2) == 2
    assert breaker.state is State.CLOSED


def test_failure_rate_threshold_trips_on_rate() -> None:
    breaker = CircuitBreaker(
        failure_threshold=100, failure_rate_threshold=0.5, failure_rate_window=4
    )
    outcomes = [True, False, True, False]  # 2 of 4 fail: not above 0.5
    for ok in outcomes:
        if ok:
            breaker.call(lambda: None)
        else:
            with pytest.raises(RuntimeError):
                breaker.call(boom)
    assert breaker.is_closed
    with pytest.raises(CircuitBreakerError):
        breaker.call(boom)  # window now F,T,F,F = 3 of 4


def test_excluded_exceptions_do_not_count() -> None:
    breaker = CircuitBreaker(failure_threshold=1, excluded_exceptions=(KeyError,))

    def missing() -> None:
        raise KeyError("k")

    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call(missing)
    assert breaker.is_closed
    assert breaker.stats.total_failures == 0


def test_stats_rates_and_dict() -> None:
    breaker = CircuitBreaker(failure_threshold=10, name="stats")
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    breaker.call(lambda: 1)
    with pytest.raises(RuntimeError):
        breaker.call(boom)
    stats = breaker.stats
    assert stats.failure_rate == pytest.approx(0.25)
    assert stats.success_rate == pytest.approx(0.75)
    d = stats.to_dict()
    assert d["state"] == "closed"
    assert d["total_requests"] == 4 and d["total_failures"] == 1 and d["total_successes"] == 3
    assert d["last_failure_time"] is not None


def test_decorator_and_registry_stats() -> None:
    registry = CircuitBreakerRegistry()

    @registry.breaker("openai_api", failure_threshold=2)
    def call_openai(prompt: str) -> str:
        return prompt.upper()

    assert call_openai("hi") == "HI"
    assert registry.get_or_create("openai_api") is registry.get("openai_api")
    assert registry.get_all_stats()["openai_api"]["total_successes"] == 1
    assert registry.get_stats("nope") is None


def test_module_level_decorator_and_stats_functions() -> None:
    @classic.circuit_breaker("classic-module-test", failure_threshold=3)
    def call_api() -> int:
        return 42

    assert call_api() == 42
    stats = classic.get_circuit_stats("classic-module-test")
    assert stats is not None and stats["total_successes"] == 1
    assert "classic-module-test" in classic.get_all_circuit_stats()
    assert classic.get_circuit_stats("never-made") is None


async def test_platform_breaker_times_out_async_calls_as_failures() -> None:
    breaker = classic.get_circuit_breaker(
        "platform-timeout-test", CircuitBreakerConfig(failure_threshold=2, timeout_seconds=0.01)
    )
    assert classic.get_circuit_breaker("platform-timeout-test") is breaker

    async def hangs() -> None:
        await asyncio.Event().wait()  # never set: only the timeout ends it

    with pytest.raises(TimeoutError):
        await breaker.call(hangs)
    with pytest.raises(CircuitBreakerError):
        await breaker.call(hangs)
    assert breaker.stats.total_timeouts == 2
    assert snapshot()["circuit_breakers"]["platform-timeout-test"]["total_timeouts"] == 2
    assert breaker.is_open
    breaker.reset()
    assert breaker.is_closed

    async def ok() -> str:
        return "fine"

    assert await breaker.call(ok) == "fine"


def test_bad_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        CircuitBreaker(timeout=0)
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
