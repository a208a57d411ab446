"""Async breakers with a Redis store never hold the event loop on Redis, healthy or not.

On an event loop's thread the store sends its slow-path scripts on the loop's own asyncio client
and applies the answers when they arrive (see docs/redis.md, "Sync and asyncio code"). A
loop-lag monitor (a coroutine that wakes every 2 ms and records how late it woke) watches the
loop while four tasks trip, probe and recover a breaker, with Redis healthy, then killed,
paused (CLIENT PAUSE) or frozen (SIGSTOP). The Redis timeout is 0.25 s: any wait on Redis would
show as a lag of about that much; the measured lags are in docs/redis.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.redis_service import RedisServer
from tripwise import CircuitBreaker, CircuitBreakerOpen, State, consecutive_failures

TIMEOUT = 0.25
FAULT_S = 1.2
# Far below one Redis timeout (what a blocked loop would show), with room for a loaded box.
LAG_BOUND = TIMEOUT / 3


class Boom(Exception):
    pass


async def _lag_monitor(stop: asyncio.Event, lags: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        await asyncio.sleep(0.002)
        lags.append((start, time.monotonic() - start - 0.002))


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
        except Exception as exc:  # a crashed call: counted, and fails the test
            log.append(f"crash {exc!r}")
        await asyncio.sleep(0.002)


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def _scenario(fault: str, server: RedisServer, store: Any, other: Any) -> dict[str, Any]:
    breaker = CircuitBreaker(
        consecutive_failures(3), name="model", half_open_after=0.2, registry=None, store=store
    )
    # Another process's view of the same breaker (a sync store, its own threads).
    watcher = CircuitBreaker(name="model", half_open_after=0.2, registry=None, store=other)
    failing = False
    stop = asyncio.Event()
    lags: list[tuple[float, float]] = []
    log: list[str] = []
    tasks = [asyncio.create_task(_lag_monitor(stop, lags))]
    tasks += [asyncio.create_task(_traffic(breaker, lambda: failing, stop, log)) for _ in range(4)]
    await asyncio.sleep(0.2)

    # Healthy Redis: trip, probe and recover through the asyncio client.
    failing = True
    healthy_trip = await _until(lambda: watcher.state is State.OPEN, 3.0)
    failing = False
    healthy_recovery = await _until(
        lambda: watcher.state is State.CLOSED and breaker.state is State.CLOSED, 5.0
    )

    # The fault, while the model fails: the breaker trips and probes during it.
    fault_start = time.monotonic()
    if fault == "kill":
        server.stop()
    elif fault == "pause":
        await asyncio.to_thread(server.pause, round(FAULT_S * 1000))
    else:
        server.freeze()
    failing = True
    calls_before = len(log)
    await asyncio.sleep(FAULT_S)
    degraded = not store.available
    outage_calls = len(log) - calls_before
    if fault == "kill":
        await asyncio.to_thread(server.start)
    elif fault == "freeze":
        server.thaw()
    fault_end = time.monotonic()
    # Back: the trip still in effect reaches the fleet; then the model heals and all close.
    pushed = await _until(lambda: store.available and watcher.state is not State.CLOSED, 5.0)
    failing = False
    converged = await _until(
        lambda: watcher.state is State.CLOSED and breaker.state is State.CLOSED, 5.0
    )
    stop.set()
    await asyncio.gather(*tasks)
    fault_lags = [lag for at, lag in lags if fault_start <= at <= fault_end + 1.0]
    return {
        "healthy_trip": healthy_trip,
        "healthy_recovery": healthy_recovery,
        "degraded": degraded,
        "pushed": pushed,
        "converged": converged,
        "outage_calls": outage_calls,
        "max_lag": max(lag for _, lag in lags),
        "max_fault_lag": max(fault_lags),
        "log": log,
    }


@pytest.mark.parametrize("fault", ["kill", "pause", "freeze"])
def test_async_breakers_never_block_the_loop_on_redis(
    fault: str, private_redis: RedisServer, make_store: Callable[..., Any]
) -> None:
    options = {"timeout": TIMEOUT, "refresh_interval": 0.2, "retry_interval": 0.1}
    store = make_store(private_redis.url, **options)
    other = make_store(private_redis.url, **options)

    async def main() -> dict[str, Any]:
        try:
            return await _scenario(fault, private_redis, store, other)
        finally:
            await store.aclose()

    result = asyncio.run(main())

    assert result["healthy_trip"] and result["healthy_recovery"]
    assert result["degraded"] and result["pushed"] and result["converged"], result
    log = result["log"]
    assert not [x for x in log if x.startswith("crash")]  # 0 crashed calls
    assert {"ok", "failed", "rejected"} <= set(log)
    assert result["outage_calls"] > 50  # calls kept flowing during the whole fault
    assert result["max_lag"] < LAG_BOUND, (result["max_lag"], result["max_fault_lag"])
    assert store.stats()["resyncs"] >= 1
