"""Fallbacks (callable, static, none) and the CircuitBreakerOpen error."""

from __future__ import annotations

import contextlib
import functools
import pickle
from typing import Any

import pytest

from tripwise import (
    CircuitBreaker,
    CircuitBreakerOpen,
    FakeClock,
    State,
    TripwiseError,
)

from ._helpers import Inflight, attempt, boom, make_breaker, raiser

make = functools.partial(make_breaker, failures=2, half_open_after=30)


def test_callable_fallback_gets_the_same_arguments(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def lightweight(query: str, candidates: list[str], *, top_k: int = 3) -> list[str]:
        seen.append((query, candidates, top_k))
        return candidates[:top_k]

    breaker = make(clock, fallback=lightweight)

    @breaker
    def rerank(query: str, candidates: list[str], *, top_k: int = 3) -> list[str]:
        raise TimeoutError("reranker down")

    with pytest.raises(TimeoutError):
        rerank("q", ["a", "b"], top_k=1)  # a failure that does not trip propagates as is
    assert rerank("q", ["a", "b"], top_k=1) == ["a"]  # the tripping call answers via fallback
    assert rerank("q2", ["x", "y", "z", "w"]) == ["x", "y", "z"]  # open: fallback
    assert seen == [("q", ["a", "b"], 1), ("q2", ["x", "y", "z", "w"], 3)]


@pytest.mark.parametrize("static", [[], 0, "", False, {"answer": None}])
def test_static_fallback_is_returned_as_is(clock: FakeClock, static: object) -> None:
    breaker = make(clock, fallback=static)
    attempt(breaker, boom)
    assert attempt(breaker, boom) is static
    assert breaker.call(lambda: "live") is static
    assert breaker.fallback is static


def test_no_fallback_raises_circuit_breaker_open(clock: FakeClock) -> None:
    breaker = make(clock, name="reranker", fallback=None)
    assert breaker.fallback is None
    attempt(breaker, boom)
    attempt(breaker, boom)
    clock.advance(12)
    ran: list[int] = []
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(ran.append, 1)
    assert ran == []
    err = info.value
    assert isinstance(err, TripwiseError)
    assert (err.name, err.state, err.trip_count) == ("reranker", State.OPEN, 1)
    assert err.retry_after == pytest.approx(18.0)
    assert err.__cause__ is None


def test_tripping_call_chains_the_original_exception(clock: FakeClock) -> None:
    breaker = make(clock, name="reranker")
    attempt(breaker, raiser(TimeoutError("first")))
    original = ConnectionError("second")
    with pytest.raises(CircuitBreakerOpen) as info:
        breaker.call(raiser(original))
    err = info.value
    assert err.__cause__ is original  # raise ... from err: never lost
    assert (err.name, err.state, err.trip_count) == ("reranker", State.OPEN, 1)
    assert err.retry_after == 30.0
    assert "reranker" in str(err) and "open" in str(err)


def test_failed_probe_chains_its_exception_or_uses_the_fallback(clock: FakeClock) -> None:
    plain = make(clock)
    with_fallback = make(clock, fallback="degraded")
    for breaker in (plain, with_fallback):
        attempt(breaker, boom)
        attempt(breaker, boom)
    clock.advance(30)
    probe_error = RuntimeError("still down")
    err = attempt(plain, raiser(probe_error))
    assert isinstance(err, CircuitBreakerOpen) and err.__cause__ is probe_error
    assert err.trip_count == 2
    assert attempt(with_fallback, raiser(probe_error)) == "degraded"
    assert with_fallback.state is State.OPEN


def test_half_open_rejection_uses_the_fallback(clock: FakeClock) -> None:
    breaker = make(clock, fallback=lambda: "busy")
    attempt(breaker, boom)
    attempt(breaker, boom)
    clock.advance(30)
    probe = Inflight(breaker)
    assert breaker.call(lambda: "live") == "busy"
    probe.succeed()


def test_fallback_exceptions_propagate(clock: FakeClock) -> None:
    breaker = make(clock, fallback=raiser(LookupError("no cache")))
    attempt(breaker, boom)
    attempt(breaker, boom)
    with pytest.raises(LookupError):
        breaker.call(lambda: 1)


def test_circuit_breaker_open_pickles(clock: FakeClock) -> None:
    err = CircuitBreakerOpen("svc", State.HALF_OPEN, 3, 1.5)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, copy.state, copy.trip_count, copy.retry_after) == (
        "svc",
        State.HALF_OPEN,
        3,
        1.5,
    )


async def _coro() -> str:
    return "x"


def test_awaitable_fallback_is_rejected() -> None:
    coro = _coro()
    try:
        with pytest.raises(TypeError, match="fallback"):
            CircuitBreaker(fallback=coro, registry=None)
    finally:
        coro.close()


def test_generator_fallback_is_rejected() -> None:
    with pytest.raises(TypeError, match="fallback"):
        CircuitBreaker(fallback=(x for x in range(3)), registry=None)


# ------------------------------------------------------------------ async


async def test_async_function_with_async_fallback(clock: FakeClock) -> None:
    calls: list[str] = []

    async def cached(query: str) -> str:
        calls.append(query)
        return f"cached:{query}"

    breaker = make(clock, fallback=cached)

    @breaker
    async def generate(query: str) -> str:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await generate("a")
    assert await generate("b") == "cached:b"  # tripping call
    assert await generate("c") == "cached:c"  # open
    assert calls == ["b", "c"]


async def test_async_function_with_sync_and_static_fallbacks(clock: FakeClock) -> None:
    async def down() -> str:
        raise TimeoutError

    sync_fb = make(clock, fallback=lambda: "sync")
    static_fb = make(clock, fallback="static")
    no_fb = make(clock)
    for breaker in (sync_fb, static_fb, no_fb):
        for _ in range(2):
            with contextlib.suppress(TimeoutError, CircuitBreakerOpen):
                await breaker.acall(down)
    assert await sync_fb.acall(down) == "sync"
    assert await static_fb.acall(down) == "static"
    with pytest.raises(CircuitBreakerOpen):
        await no_fb.acall(down)


async def test_async_tripping_call_chains_the_original_exception(clock: FakeClock) -> None:
    breaker = make(clock)
    original = TimeoutError("slow model")

    async def down() -> None:
        raise original

    with pytest.raises(TimeoutError):
        await breaker.acall(down)
    with pytest.raises(CircuitBreakerOpen) as info:
        await breaker.acall(down)
    assert info.value.__cause__ is original


def test_a_fallback_taking_only_the_required_arguments_is_accepted() -> None:
    from tripwise import circuit_breaker, consecutive_failures

    def rerank(query: str, candidates: list[str], top_k: int = 10) -> list[str]:
        raise RuntimeError("down")

    guarded = circuit_breaker(
        consecutive_failures(1), fallback=lambda query, candidates: [], registry=None
    )(rerank)
    assert guarded("q", ["a"]) == []  # (ml-breaker 0.1.1 accepts this fallback too)
    loose = circuit_breaker(consecutive_failures(1), fallback=lambda q: [], registry=None)(
        lambda *a, **k: 1 / 0
    )
    assert loose("q") == []


def test_a_call_fallback_that_cannot_take_the_arguments_is_named() -> None:
    from tripwise import CircuitBreaker, consecutive_failures

    breaker = CircuitBreaker(
        consecutive_failures(1), name="fb-arity", registry=None, fallback=lambda: "cached"
    )

    def boom(x: int) -> int:
        raise RuntimeError("down")

    with pytest.raises(TypeError, match=r"fallback .* of breaker 'fb-arity' cannot take"):
        breaker.call(boom, 1)
