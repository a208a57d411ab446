"""Redis goes away (killed) or hangs (CLIENT PAUSE) under running breakers: calls keep going
per the configured policy, never wait long on Redis, and the fleet resyncs when it returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures

CALL_BOUND = 1.0  # far above the 0.05 s Redis timeout: a call that waits this long is a hang
FAST = {"timeout": 0.05, "refresh_interval": 0.1, "retry_interval": 0.1}


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom


def _timed(breaker: CircuitBreaker, fn: Callable[[], Any]) -> tuple[str, float]:
    start = time.monotonic()
    try:
        breaker.call(fn)
        outcome = "ok"
    except Boom:
        outcome = "failed"
    except CircuitBreakerOpen:
        outcome = "rejected"
    return outcome, time.monotonic() - start


def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _pair(make_store: Callable[..., Any], url: str, **options: Any) -> tuple[Any, ...]:
    stores = [make_store(url, **FAST, **options) for _ in range(2)]
    breakers = [
        CircuitBreaker(
            consecutive_failures(2), name="model", half_open_after=30.0, registry=None, store=s
        )
        for s in stores
    ]
    return (*stores, *breakers)


def test_redis_killed_breakers_go_local_then_resync(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    store_a, store_b, a, b = _pair(make_store, private_redis.url)
    assert _timed(a, lambda: 1)[0] == "ok"

    private_redis.stop()
    assert _until(lambda: not store_a.available and not store_b.available)

    # Local policy: a still trips on its own failures, quickly, with Redis gone.
    outcomes = [_timed(a, _fail) for _ in range(3)]
    assert [o for o, _ in outcomes] == ["failed", "rejected", "rejected"]
    assert max(t for _, t in outcomes) < CALL_BOUND
    assert a.state is State.OPEN and b.state is State.CLOSED  # b cannot know yet
    assert store_a.stats()["outages"] == 1 and store_a.stats()["redis_errors"] >= 1

    # Redis returns (empty: no persistence); a's trip is pushed to the fleet.
    private_redis.start()
    assert _until(lambda: store_a.available and store_b.available)
    assert _until(lambda: b.state is State.OPEN), store_b.stats()
    assert a.trip_count == b.trip_count == 1
    assert store_a.stats()["resyncs"] == 1
    assert _timed(b, lambda: 1)[0] == "rejected"


def test_paused_redis_bounds_the_tripping_call_and_resyncs(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    store_a, _store_b, a, b = _pair(make_store, private_redis.url)
    assert _timed(a, _fail)[0] == "failed"

    private_redis.pause(1500)
    # The tripping call runs the trip script against a hung Redis: it times out (0.05 s) and
    # the breaker trips locally instead of hanging.
    outcome, elapsed = _timed(a, _fail)
    assert outcome == "rejected" and elapsed < CALL_BOUND
    assert a.state is State.OPEN and not store_a.available
    latencies = [_timed(b, lambda: 1)[1] for _ in range(20)]
    assert max(latencies) < CALL_BOUND  # b's CLOSED calls never touch Redis

    assert _until(lambda: b.state is State.OPEN, timeout=6.0)
    assert b.trip_count == 1


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_policies_while_redis_hangs(
    policy: str, private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    store = make_store(private_redis.url, on_unavailable=policy, **FAST)
    breaker = CircuitBreaker(
        consecutive_failures(2), name="model", half_open_after=30.0, registry=None, store=store
    )
    assert _timed(breaker, lambda: 1)[0] == "ok"

    private_redis.pause(1200)
    assert _until(lambda: not store.available, timeout=1.0)
    if policy == "fail_closed":
        assert _until(lambda: breaker.state is State.OPEN, timeout=1.0)
        outcome, elapsed = _timed(breaker, lambda: 1)
        assert outcome == "rejected" and elapsed < CALL_BOUND
    else:
        # Failures while Redis is away never open a fail-open breaker.
        outcomes = [_timed(breaker, _fail) for _ in range(4)]
        assert [o for o, _ in outcomes] == ["failed"] * 4
        assert max(t for _, t in outcomes) < CALL_BOUND
        assert breaker.state is State.CLOSED

    # Redis answers again: the fleet state (closed, nothing tripped it) comes back.
    assert _until(lambda: store.available, timeout=5.0)
    assert _until(lambda: breaker.state is State.CLOSED)
    assert _timed(breaker, lambda: 1)[0] == "ok"
