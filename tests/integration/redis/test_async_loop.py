"""Breakers with a Redis store used from asyncio code, while Redis hangs (CLIENT PAUSE).

The store's slow-path round trips are synchronous (see docs/redis.md, "Sync and asyncio
clients"): a trip or probe in async code may hold the event loop for one Redis command, at most
``timeout``, once per outage. A loop-lag probe (a coroutine that wakes every few ms and records
how late it woke) checks that the loop is never held for anything near the outage's length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio

from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures

TIMEOUT = 0.1
PAUSE_S = 2.0
# Generous against a loaded CI machine, yet far below the pause: a loop held for the outage
# would show a lag of ~PAUSE_S.
LAG_BOUND = TIMEOUT + 0.4


class Boom(Exception):
    pass


async def _lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        await asyncio.sleep(0.005)
        lags.append(time.monotonic() - start - 0.005)


async def _traffic(
    breaker: CircuitBreaker, failing: Callable[[], bool], stop: asyncio.Event, log: list[str]
) -> None:
    @breaker
    async def model() -> int:
        await asyncio.sleep(0.001)
        if failing():
            raise Boom
        return 1

    while not stop.is_set():
        try:
            await model()
            log.append("ok")
        except Boom:
            log.append("failed")
        except CircuitBreakerOpen:
            log.append("rejected")
        await asyncio.sleep(0.002)


async def _scenario(private_redis: RedisServer, store: Any, other: Any) -> dict[str, Any]:
    breaker = CircuitBreaker(
        consecutive_failures(3), name="model", half_open_after=0.2, registry=None, store=store
    )
    # Another process's view of the same breaker (a sync store, its own threads).
    watcher = CircuitBreaker(name="model", half_open_after=0.2, registry=None, store=other)
    fail = False
    stop, lags, log = asyncio.Event(), [], []  # type: ignore[var-annotated]
    tasks = [asyncio.create_task(_lag_probe(stop, lags))]
    tasks += [asyncio.create_task(_traffic(breaker, lambda: fail, stop, log)) for _ in range(4)]
    await asyncio.sleep(0.3)
    healthy_lags = len(lags)

    # Redis hangs; the model fails meanwhile, so the breaker trips and probes during the pause.
    await asyncio.to_thread(private_redis.pause, round(PAUSE_S * 1000))
    paused_at, calls_before = time.monotonic(), len(log)
    fail = True
    await asyncio.sleep(PAUSE_S * 0.5)
    assert not store.available
    fail = False
    await asyncio.sleep(PAUSE_S * 0.5 + 0.1)
    outage_calls = len(log) - calls_before
    outage_lags = lags[healthy_lags:]

    # Redis is back: the store resyncs and the fleet learns of the outage's trip.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not (store.available and watcher.trip_count >= 1):
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*tasks)
    return {
        "breaker": breaker,
        "watcher": watcher,
        "log": log,
        "outage_calls": outage_calls,
        "max_outage_lag": max(outage_lags),
        "long_stalls": sum(lag > TIMEOUT / 2 for lag in outage_lags),
        "paused_for": time.monotonic() - paused_at,
    }


def test_loop_never_stalls_longer_than_the_timeout_bound_while_redis_hangs(
    private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)  # an asyncio client is accepted
    # refresh_interval is long, so the guarded calls themselves are the first to hit the hung
    # Redis (the worst case for the loop: it waits the full timeout once).
    options = {"timeout": TIMEOUT, "refresh_interval": 5.0, "retry_interval": 0.1}
    store = make_store(client, **options)
    other = make_store(private_redis.url, **options)
    result = asyncio.run(_scenario(private_redis, store, other))

    assert result["max_outage_lag"] < LAG_BOUND, result["max_outage_lag"]
    # Once the first command timed out, nothing waits on Redis until it is back: the loop is
    # held about once per outage, not once per call (a couple of scheduler hiccups tolerated).
    assert result["long_stalls"] <= 3, result["long_stalls"]
    assert result["outage_calls"] > 100  # calls kept flowing during the whole pause
    log = result["log"]
    assert {"ok", "failed", "rejected"} <= set(log)
    assert store.stats()["redis_timeouts"] >= 1 and store.stats()["resyncs"] >= 1
    # The trip made on local state during the outage reached the other process afterwards.
    assert result["watcher"].trip_count >= 1
    assert result["breaker"].state in (State.CLOSED, State.HALF_OPEN, State.OPEN)
